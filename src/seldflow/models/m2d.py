"""M2D (Masked Modeling Duo) ViT encoder over a log-mel "image", the backbone of the S5 audio tagger.

The DCASE2025 Task 4 baseline tags with the M2D ViT-Base encoder (``m2d_as_vit_base-80x1001p16x16p32k``: 80 mel
bins x 1001 frames per unit, 16 x 16 patches, 32 kHz) run through the M2D portable runtime. What this module
reproduces, and how:

* **Architecture** - a timm-style ViT: ``patch_embed.proj`` (Conv2d, kernel = stride = patch), a class token,
  absolute position embeddings ``pos_embed`` [1, 1 + F*T, D] (slot 0 for the class token), ``blocks.<i>`` with
  ``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2`` (pre-norm, GELU, LayerNorm eps 1e-6),
  then ``norm``. The module and parameter names are those of the M2D encoder-only checkpoints, so weights load
  without renaming (see :func:`seldflow.models.taggers.load_m2d_weights`). ViT-Base: D = 768, 12 blocks, 12 heads,
  MLP ratio 4.
* **Position embeddings** - a parameter, as in the runtime's timm ViT (trained only when fine-tuning everything).
  M2D pre-trains with a *fixed* 2-D sin-cos table, so that is the initial value here; a checkpoint overwrites it.
* **Class token** - prepended (with ``pos_embed[:, 0]``) and attended to by every block, as the runtime does, but
  dropped from the output: the features are the patch tokens only.
* **Features** - the F frequency patches of one time step are concatenated (frequency-major) into one
  ``F * D`` vector (5 x 768 = 3840 for ViT-Base): output [B, T', F*D].
* **Short inputs** - fewer time patches than the unit: the first ``t`` time columns of the position table are used
  (the runtime's ``adjust_short``).
* **Long inputs** - cut into units of ``unit_frames`` frames (1001), each encoded on its own and the features
  concatenated over time. Before cutting, the frames are zero-padded so that the *last* unit holds a whole number of
  patches, the rule of the M2D repository's ``runtime_audio.encode_lms``. (The baseline's older copy pads the total
  length to a multiple of the patch width instead; both agree on the task's 10-s clips, 1001 frames = one unit.)
  Frames of a unit beyond its last whole patch are dropped by the strided patch convolution, as in the runtime.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seldflow.models.mlp import Mlp

# The ViT-Base encoder of the baseline's checkpoint ``m2d_as_vit_base-80x1001p16x16p32k``.
VIT_BASE = {"embed_dim": 768, "depth": 12, "num_heads": 12, "mlp_ratio": 4.0}
M2D_PATCH = 16
M2D_UNIT_FRAMES = 1001
# timm/M2D build their ViT LayerNorms with eps 1e-6 (not PyTorch's 1e-5); it matters for loaded weights.
LAYER_NORM_EPS = 1e-6
# Wavelength base of the sin-cos table (the Transformer / MAE convention).
SINCOS_BASE = 10_000.0


def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """[len(positions), dim]: sines in the first half, cosines in the second, geometric frequencies."""
    omega = 1.0 / SINCOS_BASE ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2))
    angles = np.outer(positions.astype(np.float64), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_pos_embed_2d(dim: int, grid: tuple[int, int]) -> np.ndarray:
    """float32 [1 + F*T, dim]: zero row for the class token, then one row per patch in frequency-major order.

    Half of the dimensions encode the time column, half the frequency row (MAE's 2-D table, used by M2D's
    pre-training as a fixed embedding).
    """
    if dim % 4:
        raise ValueError(f"a 2-D sin-cos embedding needs a dimension divisible by 4, got {dim}")
    n_freq, n_time = grid
    freq_idx, time_idx = np.meshgrid(np.arange(n_freq), np.arange(n_time), indexing="ij")
    table = np.concatenate([sincos_1d(dim // 2, time_idx.ravel()), sincos_1d(dim // 2, freq_idx.ravel())], axis=1)
    return np.concatenate([np.zeros((1, dim)), table]).astype(np.float32)


class PatchEmbed(nn.Module):
    """Non-overlapping patches of the [B, 1, F_bins, T] log-mel -> tokens [B, F*T', D], frequency-major."""

    def __init__(self, patch: tuple[int, int], embed_dim: int, in_chans: int = 1) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection (timm layout: [3, heads, head_dim] outputs)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class M2DViT(nn.Module):
    """M2D encoder: normalised log-mel [B, 1, freq_bins, T] -> per-time-step features [B, T', feature_dim]."""

    def __init__(
        self,
        freq_bins: int = 80,
        unit_frames: int = M2D_UNIT_FRAMES,
        patch_size: int | tuple[int, int] = M2D_PATCH,
        embed_dim: int = VIT_BASE["embed_dim"],
        depth: int = VIT_BASE["depth"],
        num_heads: int = VIT_BASE["num_heads"],
        mlp_ratio: float = VIT_BASE["mlp_ratio"],
    ) -> None:
        super().__init__()
        patch = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
        if freq_bins % patch[0]:
            raise ValueError(f"freq_bins {freq_bins} is not a multiple of the patch height {patch[0]}")
        if unit_frames < patch[1]:
            raise ValueError(f"unit_frames {unit_frames} is shorter than one patch ({patch[1]} frames)")
        self.patch = patch
        self.unit_frames = unit_frames
        self.grid = (freq_bins // patch[0], unit_frames // patch[1])
        self.embed_dim = embed_dim
        self.feature_dim = embed_dim * self.grid[0]
        self.patch_embed = PatchEmbed(patch, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self._init_embeddings()

    def _init_embeddings(self) -> None:
        """Sin-cos positions (M2D's pre-training table) and a small random class token; checkpoints overwrite both."""
        with torch.no_grad():
            self.pos_embed.copy_(torch.from_numpy(sincos_pos_embed_2d(self.embed_dim, self.grid)).unsqueeze(0))
            nn.init.normal_(self.cls_token, std=0.02)

    def stage_modules(self, stage: str) -> list[nn.Module]:
        """Parts trained in a fine-tuning stage: ``"head"`` none, ``"<n>_blocks"`` the last n blocks and ``norm``.

        As the baseline's ``finetuning_layers``: position embeddings, class token and patch embedding train only in
        ``"all"``.
        """
        if stage == "all":
            return [self]
        n_blocks = n_blocks_of_stage(stage, len(self.blocks))
        return [] if n_blocks == 0 else [*self.blocks[-n_blocks:], self.norm]

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters by depth, input first, for layer-wise learning-rate decay: patch embedding, position table and
        class token share the first block's group, the final norm the last block's (the grouping of the
        second-place system's ``split_params``)."""
        groups = [list(block.parameters()) for block in self.blocks]
        groups[0] = [*self.patch_embed.parameters(), self.pos_embed, self.cls_token, *groups[0]]
        groups[-1] = [*groups[-1], *self.norm.parameters()]
        return groups

    def encode_unit(self, x: torch.Tensor, hidden: list[torch.Tensor] | None = None) -> torch.Tensor:
        """One unit (<= ``unit_frames`` frames) -> patch tokens [B, F*t, D] final-normed, no class token.

        With a ``hidden`` list, appends the patch tokens of the patch embedding (before the position table) and of
        every block's output (before the final norm), each [B, F*t, D] without the class token: the ``depth + 1``
        hidden outputs a separator's embedding injection weighs.
        """
        tokens = self.patch_embed(x)
        if hidden is not None:
            hidden.append(tokens)
        n_freq, n_time = self.grid
        t = tokens.shape[1] // n_freq
        positions = self.pos_embed[:, 1:, :].reshape(1, n_freq, n_time, -1)[:, :, :t, :].reshape(1, n_freq * t, -1)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(tokens.shape[0], -1, -1)
        x = torch.cat([cls, tokens + positions], dim=1)
        for block in self.blocks:
            x = block(x)
            if hidden is not None:
                hidden.append(x[:, 1:, :])
        return self.norm(x)[:, 1:, :]

    def stack_frequency(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, F*t, D] (frequency-major) -> [B, t, F*D]: one vector per time step, frequency patches side by side."""
        batch, n_tokens, dim = tokens.shape
        n_freq = self.grid[0]
        return (
            tokens.reshape(batch, n_freq, n_tokens // n_freq, dim).permute(0, 2, 1, 3).reshape(batch, -1, n_freq * dim)
        )

    def token_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, F*t, D] (frequency-major) -> [B, D, t, F]: a (time, frequency) map with the embedding as channels."""
        batch, n_tokens, dim = tokens.shape
        n_freq = self.grid[0]
        return tokens.reshape(batch, n_freq, n_tokens // n_freq, dim).permute(0, 3, 2, 1)

    def _units(self, lms: torch.Tensor) -> list[torch.Tensor]:
        n_frames = lms.shape[-1]
        n_units = max(1, math.ceil(n_frames / self.unit_frames))
        pad = (self.patch[1] - n_frames % self.unit_frames % self.patch[1]) % self.patch[1]
        if pad:
            lms = F.pad(lms, (0, pad))
        return [lms[..., i * self.unit_frames : (i + 1) * self.unit_frames] for i in range(n_units)]

    def forward(self, lms: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.stack_frequency(self.encode_unit(unit)) for unit in self._units(lms)], dim=1)

    def forward_hidden(self, lms: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Features [B, T', F*D] as :meth:`forward`, and the ``depth + 1`` hidden outputs as [B, D, T', F] maps.

        Units are joined along time in both (for one unit, the 10-s clip of the task, the maps hold exactly the
        tokens of :meth:`encode_unit`'s hidden list, reshaped).
        """
        features, per_unit = [], []
        for unit in self._units(lms):
            hidden: list[torch.Tensor] = []
            features.append(self.stack_frequency(self.encode_unit(unit, hidden)))
            per_unit.append([self.token_map(tokens) for tokens in hidden])
        maps = [torch.cat(layer, dim=2) for layer in zip(*per_unit, strict=True)]
        return torch.cat(features, dim=1), maps


def n_blocks_of_stage(stage: str, depth: int) -> int:
    """Number of trailing blocks a stage name trains: ``"head"`` 0, ``"<n>_blocks"`` n (1 <= n <= depth)."""
    if stage == "head":
        return 0
    prefix, _, suffix = stage.partition("_")
    if suffix == "blocks" and prefix.isdigit() and 1 <= int(prefix) <= depth:
        return int(prefix)
    raise ValueError(f"unknown fine-tuning stage {stage!r} (known: 'head', '1_blocks'..'{depth}_blocks', 'all')")
