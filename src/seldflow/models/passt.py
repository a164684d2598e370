"""PaSST (Koutini et al., 2022) as PSELDNets uses it for SELD: a ViT over the (frequency, time) feature image with
separate frequency and time position embeddings, one output vector per 100-ms time column.

PSELDNets' mACCDOA-PaSST (``configs/model/passt.yaml``, ``src/models/{accdoa,multi_accdoa}.py`` and
``components/passt.py``) starts from the light AudioSet PaSST ``passt-l-kd-ap.47`` (depth 7, knowledge-distilled)
and runs it on 7-channel ``logmelIV`` features (24 kHz, hop 240, 64 mels, 10-s chunks of 1001 frames):

1. Per-channel BatchNorm scalars (as in :mod:`seldflow.models.cnn14`); the features are transposed to
   ``(B, C, n_mels, frames)``.
2. **Patch embedding of all channels at once**: ``Conv2d(C -> 768, kernel 16x16, stride 10x10, padding 3x3)``, a
   6 x 100 grid of overlapping patches for 64 x 1001 inputs. AudioSet initialisation gives each of the C input
   channels the single-channel AudioSet kernel divided by C (see :mod:`seldflow.models.audioset`).
3. ``time_new_pos_embed`` (1, 768, 1, 100) and ``freq_new_pos_embed`` (1, 768, 6, 1) are added to the patch map;
   for fewer time columns than positions, the first ones are taken at evaluation and a random contiguous run in
   training (the reference's random offset). More time columns than positions is an error here (the reference
   cuts the input with a warning).
4. The patches are flattened frequency-major; the class and distillation tokens (plus ``new_pos_embed``) are
   prepended; 7 pre-norm ViT blocks (12 heads, MLP ratio 4, LayerNorm eps 1e-6, no stochastic depth) and a final
   LayerNorm follow.
5. The two tokens are dropped, the patch tokens averaged over the frequency rows -> ``(B, 100, 768)``; the head's
   LayerNorm (``head.0``, eps 1e-5) and ``fc`` give one output vector per time column, i.e. per 100-ms label
   frame (the time stride equals the label hop: 10 frames of 10 ms), then the method's output activation.

**Patchout** is off in every PSELDNets recipe (``u_patchout``, ``s_patchout_t``, ``s_patchout_f`` all 0, for
pretraining and fine-tuning). Time and unstructured patchout drop time columns, which breaks the one output per
label frame, so they are not offered; structured frequency patchout (``freq_patchout`` rows dropped at random in
training, the mean over the remaining rows) is, default 0.

With 7 input channels and the 117-output head (13 classes x 3 tracks x 3): **51,170,549 parameters**, the count
PSELDNets' own ``multi_accdoa.PASST`` gives with ``configs/model/passt.yaml`` (896 scalars, 1,377,024 patch
embedding, 86,016 tokens and position tables, 7 x 7,087,872 blocks, 3,072 final and head LayerNorms, 89,973
``fc``). Parameter names (``scalar.<c>``, ``encoder.{patch_embed.proj, cls_token, dist_token, new_pos_embed,
freq_new_pos_embed, time_new_pos_embed, blocks.<i>.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm,
head.0}``, ``fc``) are PSELDNets', so its checkpoints load after stripping ``net.``.

Other feature rates: the time stride must equal ``frames_per_label`` (one token column per label frame); for the
20-ms stereo features use ``stride: [10, 5]``, ``frames_per_label: 5`` and ``frames: 501``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from seldflow.labels import N_CLASSES
from seldflow.models.cnn14 import ChannelScalars
from seldflow.models.heads import DEFAULT_LAYOUT, output_layout
from seldflow.models.m2d import LAYER_NORM_EPS, Block

# PSELDNets' configs/model/passt.yaml: 10-s chunks of 1001 frames (hop 240 at 24 kHz), 16x16 patches every 10 bins
# and 10 frames, so one time column per 100-ms label frame.
PASST_FRAMES = 1001
PASST_FRAMES_PER_LABEL = 10
# PSELDNets' own count of the reference configuration (multi_accdoa.PASST, configs/model/passt.yaml, 7 input
# channels, 13 classes), and how it was obtained; ``seldflow params`` prints both beside seldflow's count.
REFERENCE_PARAMETERS = 51_170_549
REFERENCE_COUNTING = (
    "trainable parameters (requires_grad) of seldflow's passt built with default arguments (7 channels, 64 mels, "
    "1001 frames, 13 classes x 3 tracks x xyz = 117 outputs) on the meta device, BatchNorm running statistics "
    "excluded; reference_parameters: sum of parameters().numel() of PSELDNets' own multi_accdoa.PASST "
    "(Jinbo-Hu/PSELDNets adb5e39, configs/model/passt.yaml, in_channels 7, num_classes 13) instantiated from the "
    "official classes; both equal the sum of the layer shapes (scalars 896, patch embedding 1,377,024, tokens "
    "and position tables 86,016, 7 blocks x 7,087,872, LayerNorms 3,072, fc 89,973)"
)
# Standard deviation of the truncated-normal initialisation of the ViT's linear layers, tokens and positions.
INIT_STD = 0.02


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """``(frequency, time)`` from one int or a pair."""
    pair = (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"{name} must be a positive int or a (frequency, time) pair, got {value!r}")
    return pair  # type: ignore[return-value]


class PatchEmbed(nn.Module):
    """Overlapping patches: ``Conv2d`` with padding ``(patch - stride) // 2`` -> ``(B, D, F', T')`` patch map."""

    def __init__(self, in_channels: int, embed_dim: int, patch: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        padding = ((patch[0] - stride[0]) // 2, (patch[1] - stride[1]) // 2)
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch, stride=stride, padding=padding)

    def output_size(self, size: int, axis: int) -> int:
        """Patches along ``axis`` (0 frequency, 1 time) for an input of ``size`` bins or frames."""
        conv = self.proj
        return (size + 2 * conv.padding[axis] - conv.kernel_size[axis]) // conv.stride[axis] + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class PaSSTEncoder(nn.Module):
    """``(B, C, n_mels, T)`` -> ``(B, T', embed_dim)``: patch map, positions, ViT blocks, frequency mean, head norm."""

    def __init__(
        self,
        in_channels: int,
        *,
        n_mels: int,
        frames: int,
        patch_size: tuple[int, int],
        stride: tuple[int, int],
        embed_dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float,
        distilled: bool,
        freq_patchout: int,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, embed_dim, patch_size, stride)
        # Position tables sized as the reference sizes them: input size // stride.
        self.grid = (n_mels // stride[0], frames // stride[1])
        rows = self.patch_embed.output_size(n_mels, 0)
        if min(self.grid) < 1 or rows != self.grid[0]:
            raise ValueError(
                f"patch {patch_size} with stride {stride} gives {rows} frequency rows for {n_mels} mel bins but "
                f"{self.grid[0]} frequency positions; choose a patch and stride whose difference is even"
            )
        if not 0 <= freq_patchout < rows:
            raise ValueError(f"freq_patchout {freq_patchout} must leave at least one of the {rows} frequency rows")
        self.freq_patchout = freq_patchout
        self.n_tokens = 2 if distilled else 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if distilled else None
        self.new_pos_embed = nn.Parameter(torch.zeros(1, self.n_tokens, embed_dim))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, self.grid[0], 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, 1, self.grid[1]))
        self.blocks = nn.ModuleList(Block(embed_dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.head = nn.Sequential(nn.LayerNorm(embed_dim))  # ``head.0``; PyTorch's eps, as in the reference
        self._init_weights()

    def _init_weights(self) -> None:
        """The reference's ViT initialisation: truncated normal tokens, positions and linear weights, zero biases."""
        for tensor in (self.cls_token, self.dist_token, self.new_pos_embed, self.freq_new_pos_embed):
            if tensor is not None:
                nn.init.trunc_normal_(tensor, std=INIT_STD)
        nn.init.trunc_normal_(self.time_new_pos_embed, std=INIT_STD)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=INIT_STD)
                nn.init.zeros_(module.bias)

    def _time_positions(self, columns: int) -> torch.Tensor:
        """The time positions of ``columns`` patch columns: the first ones, or a random run while training."""
        available = self.grid[1]
        if columns > available:
            raise ValueError(f"{columns} time patches exceed the {available} time positions (raise model_args frames)")
        offset = int(torch.randint(available - columns + 1, (1,)).item()) if self.training else 0
        return self.time_new_pos_embed[..., offset : offset + columns]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # (B, D, F', T')
        batch, dim, rows, columns = x.shape
        x = x + self._time_positions(columns) + self.freq_new_pos_embed
        if self.training and self.freq_patchout:
            keep = torch.randperm(rows, device=x.device)[: rows - self.freq_patchout].sort().values
            x = x[:, :, keep]
            rows = len(keep)
        tokens = [self.cls_token + self.new_pos_embed[:, :1]]
        if self.dist_token is not None:
            tokens.append(self.dist_token + self.new_pos_embed[:, 1:])
        x = torch.cat([t.expand(batch, -1, -1) for t in tokens] + [x.flatten(2).transpose(1, 2)], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)[:, self.n_tokens :]  # (B, F' * T', D), frequency-major
        x = x.transpose(1, 2).reshape(batch, dim, rows, columns).mean(dim=2).transpose(1, 2)
        return self.head(x)


class PaSST(nn.Module):
    """PSELDNets' PaSST SELD network: ``(B, C, T, n_mels) -> (B, T // frames_per_label, layout size)``."""

    def __init__(
        self,
        in_channels: int,
        *,
        n_mels: int = 64,
        frames: int = PASST_FRAMES,
        patch_size: int | Sequence[int] = 16,
        stride: int | Sequence[int] = 10,
        embed_dim: int = 768,
        depth: int = 7,
        heads: int = 12,
        mlp_ratio: float = 4.0,
        distilled: bool = True,
        freq_patchout: int = 0,
        frames_per_label: int = PASST_FRAMES_PER_LABEL,
        n_classes: int = N_CLASSES,
        output: str = DEFAULT_LAYOUT,
    ) -> None:
        super().__init__()
        if in_channels < 1 or depth < 1 or frames < 1:
            raise ValueError("in_channels, depth and frames must be at least 1")
        patch, strides = _pair(patch_size, "patch_size"), _pair(stride, "stride")
        if strides[1] != frames_per_label:
            raise ValueError(
                f"the time stride ({strides[1]} frames) must equal frames_per_label ({frames_per_label}): PaSST "
                "emits one output per time column"
            )
        self.in_channels = in_channels
        self.n_mels = n_mels
        self.frames_per_label = frames_per_label
        self.n_classes = n_classes
        self.layout = output_layout(output)
        self.scalar = ChannelScalars(in_channels, n_mels)
        self.encoder = PaSSTEncoder(
            in_channels,
            n_mels=n_mels,
            frames=frames,
            patch_size=patch,
            stride=strides,
            embed_dim=embed_dim,
            depth=depth,
            heads=heads,
            mlp_ratio=mlp_ratio,
            distilled=distilled,
            freq_patchout=freq_patchout,
        )
        self.fc = nn.Linear(embed_dim, self.layout.size(n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4 or features.shape[1] != self.in_channels or features.shape[3] != self.n_mels:
            expected = f"(batch, {self.in_channels}, frames, {self.n_mels})"
            raise ValueError(f"expected input {expected}, got {tuple(features.shape)}")
        n_labels = features.shape[2] // self.frames_per_label
        if n_labels < 1:
            raise ValueError(f"{features.shape[2]} frames are shorter than one label frame of {self.frames_per_label}")
        x = self.encoder(self.scalar(features).transpose(2, 3))  # (B, T', D)
        if x.shape[1] < n_labels:
            raise ValueError(f"{x.shape[1]} time patches cannot fill {n_labels} label frames")
        x = self.fc(x[:, :n_labels])
        return self.layout.activate(x, self.n_classes)


__all__ = [
    "PASST_FRAMES",
    "PASST_FRAMES_PER_LABEL",
    "REFERENCE_COUNTING",
    "REFERENCE_PARAMETERS",
    "PaSST",
    "PaSSTEncoder",
]
