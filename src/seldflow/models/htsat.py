"""HTS-AT (Chen et al., 2022) as used by PSELDNets and the DCASE2025 stereo seed system: a Swin Transformer on
a spectrogram folded into a square image, with a token-semantic convolution head emitting multi-ACCDOA.

Data flow for ``(B, 7, 251, 64)`` PFOA features with the reference settings (spec_size 256, patch 4, embed 96,
depths (2, 2, 6, 2), heads (4, 8, 16, 32), window 8, drop path 0.1):

1. **Clip pairing** (``pair_clips=True``): clip ``i`` of the first half of the batch and clip ``i + B/2`` are
   joined in time, each cut to its first 250 frames (50 label frames x 5), into a 500-frame "10-s" input, as
   PSELDNets' HTSAT does for 5-s clips, so **the batch size must be even**. The pairs attend to each other in
   the Swin windows, so a clip's output depends on its partner. ``pair_clips=False`` runs each clip alone
   (251 frames), which is what the seed's code path does with its 5-s target length; any batch size works.
2. Per-channel BatchNorm scalars (as in :mod:`seldflow.models.cnn14`), so no fitted input norm is needed.
3. Zero-padding to ``spec_size * (spec_size // n_mels) = 1024`` frames, folded into a 256x256 image: four time
   chunks of 256 frames stacked along the frequency axis.
4. Swin encoder: 4x4 patch embedding with LayerNorm -> four stages of (shifted-)window attention blocks with
   learnt relative position biases, patch merging between stages -> LayerNorm; the 8x8 token grid of 768
   channels is unfolded back to (2 frequency rows, 32 time steps of 32 frames).
5. ``tscam_conv``: Conv2d(768 -> 117, kernel (2, 3)) over (frequency, time) -> 32 steps, linearly upsampled to
   1024 frames, split back per clip, averaged over groups of 5 frames -> ``(B, 50, 117)``; tanh on x, y and
   ReLU on distance.

With 7 input channels: 28,083,725 parameters, of which 27,544,472 are in the encoder and the scalars (the
Swin encoder alone: 27,543,576) and 539,253 in ``tscam_conv``. Parameter names (``scalar.<c>``,
``encoder.patch_embed``, ``encoder.layers.<i>.blocks.<j>.{norm1,attn,norm2,mlp}``, ``...downsample``,
``encoder.norm``, ``tscam_conv``) follow the PSELDNets checkpoints, so those load with ``strict=False`` after
stripping the ``net.`` prefix (the relative-position index and shift masks are rebuilt, not stored).

``adapter_ratio > 0`` adds AdapterBit's two adapters to every Swin block (``attn.adapter``, ``mlp.adapter``, the
PSELDNets names; :mod:`seldflow.models.adapters`), zero-initialised, so the output is unchanged until they train.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seldflow.labels import N_CLASSES
from seldflow.models.adapters import Adapter
from seldflow.models.cnn14 import FRAMES_PER_LABEL, ChannelScalars
from seldflow.models.heads import DEFAULT_LAYOUT, output_layout, pool_to_labels
from seldflow.models.mlp import Mlp

# Attention logit added between tokens that a cyclic shift brought into one window from distant regions.
SHIFT_MASK_VALUE = -100.0


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch for a random subset of samples while training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


def split_windows(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(B, H, W, C) -> (B, nWh * nWw, window * window, C)``, windows in row-major order."""
    batch, height, width, channels = x.shape
    x = x.reshape(batch, height // window, window, width // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(batch, -1, window * window, channels)


def merge_windows(windows: torch.Tensor, window: int, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`split_windows`: ``(B, nW, window * window, C) -> (B, H, W, C)``."""
    batch, channels = windows.shape[0], windows.shape[-1]
    x = windows.reshape(batch, height // window, width // window, window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(batch, height, width, channels)


def relative_position_index(window: int) -> torch.Tensor:
    """``(w*w, w*w)`` index into the ``(2w-1)^2`` bias table for every (query, key) pair of a window."""
    rows, cols = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()
    d_row = rows[:, None] - rows[None, :] + window - 1  # in [0, 2w-2]
    d_col = cols[:, None] - cols[None, :] + window - 1
    return d_row * (2 * window - 1) + d_col


def shift_attention_mask(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """``(nW, w*w, w*w)`` additive mask keeping attention inside regions that were contiguous before the shift."""
    labels = torch.zeros(1, height, width, 1)
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, rows in enumerate(bounds):
        for j, cols in enumerate(bounds):
            labels[:, rows, cols] = 3 * i + j
    labels = split_windows(labels, window).squeeze(0).squeeze(-1)  # (nW, w*w)
    different = labels[:, :, None] != labels[:, None, :]
    return torch.zeros(different.shape).masked_fill(different, SHIFT_MASK_VALUE)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ``window x window`` patches with a learnt relative position bias."""

    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"Swin width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        # AdapterBit's spatial adapter (see add_adapters): its output is added to that of ``proj``.
        self.adapter: nn.Module | None = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x``: ``(B, nW, N, C)``; ``mask``: ``(nW, N, N)`` or None."""
        batch, n_windows, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(batch, n_windows, tokens, 3, self.heads, channels // self.heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5)  # each (B, nW, H, N, dh)
        bias = self.relative_position_bias_table[self.relative_position_index]  # (N, N, H)
        bias = bias.permute(2, 0, 1)  # (H, N, N)
        if mask is not None:
            bias = bias + mask[:, None]  # (nW, H, N, N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        out = self.proj(out.transpose(2, 3).reshape(batch, n_windows, tokens, channels))
        return out if self.adapter is None else out + self.adapter(out)


class SwinBlock(nn.Module):
    """Pre-norm (shifted-)window attention and MLP, each with a stochastic-depth residual."""

    def __init__(
        self, dim: int, resolution: tuple[int, int], heads: int, window: int, shift: int, mlp_ratio: float, drop: float
    ) -> None:
        super().__init__()
        self.resolution = resolution
        if min(resolution) <= window:  # the whole map fits in one window: no partition, no shift
            window, shift = min(resolution), 0
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop)
        mask = shift_attention_mask(*resolution, window, shift) if shift else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.resolution
        batch, _, channels = x.shape
        y = self.norm1(x).reshape(batch, height, width, channels)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(split_windows(y, self.window), self.attn_mask)
        y = merge_windows(y, self.window, height, width)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y.reshape(batch, height * width, channels))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> LayerNorm(4C) -> Linear(4C -> 2C, no bias): halves the grid, doubles the width."""

    def __init__(self, dim: int, resolution: tuple[int, int]) -> None:
        super().__init__()
        self.resolution = resolution
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.resolution
        batch, _, channels = x.shape
        x = x.reshape(batch, height, width, channels)
        # Order (even row, even col), (odd, even), (even, odd), (odd, odd) as in Swin's checkpoints.
        x = torch.cat((x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]), dim=-1)
        return self.reduction(self.norm(x.reshape(batch, -1, 4 * channels)))


class SwinStage(nn.Module):
    """``depth`` blocks alternating plain and shifted windows, then optional patch merging."""

    def __init__(
        self,
        dim: int,
        resolution: tuple[int, int],
        depth: int,
        heads: int,
        window: int,
        mlp_ratio: float,
        drops: Sequence[float],
        downsample: bool,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, resolution, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio, drops[i])
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim, resolution) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class PatchEmbed(nn.Module):
    def __init__(self, in_channels: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))  # (B, H*W, C)


class SwinEncoder(nn.Module):
    """Swin Transformer on a ``(B, C, spec_size, spec_size)`` image -> ``(B, H', W', C')`` token grid."""

    def __init__(
        self,
        in_channels: int,
        *,
        spec_size: int,
        patch_size: int,
        embed_dim: int,
        depths: Sequence[int],
        heads: Sequence[int],
        window_size: int,
        mlp_ratio: float,
        drop_path: float,
    ) -> None:
        super().__init__()
        if len(depths) != len(heads) or not depths or min(depths) < 1:
            raise ValueError(f"depths {list(depths)} and heads {list(heads)} must be equally long and positive")
        stages = len(depths)
        if spec_size % (patch_size * 2 ** (stages - 1)):
            raise ValueError(f"spec_size {spec_size} is not divisible by patch {patch_size} x 2^{stages - 1}")
        self.patch_embed = PatchEmbed(in_channels, embed_dim, patch_size)
        total = sum(depths)
        rates = [drop_path * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
        grid = spec_size // patch_size
        self.layers = nn.ModuleList()
        for i, (depth, n_heads) in enumerate(zip(depths, heads, strict=True)):
            side = grid // 2**i
            start = sum(depths[:i])
            self.layers.append(
                SwinStage(
                    embed_dim * 2**i,
                    (side, side),
                    depth,
                    n_heads,
                    window_size,
                    mlp_ratio,
                    rates[start : start + depth],
                    downsample=i < stages - 1,
                )
            )
        self.num_features = embed_dim * 2 ** (stages - 1)
        self.grid = grid // 2 ** (stages - 1)
        self.norm = nn.LayerNorm(self.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        return x.reshape(x.shape[0], self.grid, self.grid, self.num_features)


def add_adapters(encoder: SwinEncoder, ratio: float, scale: float) -> None:
    """Give every Swin block of ``encoder`` AdapterBit's two adapters (:mod:`seldflow.models.adapters`): the
    spatial one after the attention's output projection (``attn.adapter``), the MLP one beside the MLP
    (``mlp.adapter``). Zero-initialised, so the encoder's output is unchanged until they train."""
    for stage in encoder.layers:
        for block in stage.blocks:
            dim = block.norm1.normalized_shape[0]
            block.attn.adapter = Adapter(dim, ratio, scale)
            block.mlp.adapter = Adapter(dim, ratio, scale)


class HTSAT(nn.Module):
    """HTS-AT multi-ACCDOA network: ``(B, C, T, n_mels) -> (B, T // 5, tracks * 3 * classes)``."""

    def __init__(
        self,
        in_channels: int,
        *,
        n_mels: int = 64,
        spec_size: int = 256,
        patch_size: int = 4,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        heads: Sequence[int] = (4, 8, 16, 32),
        window_size: int = 8,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.1,
        pair_clips: bool = True,
        frames_per_label: int = FRAMES_PER_LABEL,
        n_classes: int = N_CLASSES,
        output: str = DEFAULT_LAYOUT,
        adapter_ratio: float = 0.0,
        adapter_scale: float = 0.1,
    ) -> None:
        super().__init__()
        if in_channels < 1 or frames_per_label < 1:
            raise ValueError("in_channels and frames_per_label must be at least 1")
        if spec_size % n_mels:
            raise ValueError(f"spec_size {spec_size} must be a multiple of n_mels {n_mels}")
        self.in_channels = in_channels
        self.n_mels = n_mels
        self.spec_size = spec_size
        self.chunks = spec_size // n_mels  # time chunks stacked along the image's frequency axis
        self.capacity = spec_size * self.chunks  # input frames the image holds
        self.pair_clips = pair_clips
        # Batches must hold a multiple of this many clips; inference pads a short last batch (see predict_features).
        self.batch_multiple = 2 if pair_clips else 1
        self.frames_per_label = frames_per_label
        self.n_classes = n_classes
        self.layout = output_layout(output)
        self.scalar = ChannelScalars(in_channels, n_mels)
        self.encoder = SwinEncoder(
            in_channels,
            spec_size=spec_size,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depths=depths,
            heads=heads,
            window_size=window_size,
            mlp_ratio=mlp_ratio,
            drop_path=drop_path,
        )
        if self.encoder.grid % self.chunks:
            raise ValueError(f"the final {self.encoder.grid}-row token grid cannot be split into {self.chunks} chunks")
        self.freq_rows = self.encoder.grid // self.chunks
        self.tscam_conv = nn.Conv2d(
            self.encoder.num_features,
            self.layout.size(n_classes),
            kernel_size=(self.freq_rows, 3),
            padding=(0, 1),
        )
        if adapter_ratio < 0:
            raise ValueError(f"adapter_ratio must be >= 0 (0: no adapters), got {adapter_ratio}")
        if adapter_ratio > 0:  # built last, so the other weights draw the same random numbers as without them
            add_adapters(self.encoder, adapter_ratio, adapter_scale)

    def encoder_parameters(self) -> int:
        """Parameters of the BatchNorm scalars and the Swin encoder (27,544,472 in the reference setup)."""
        return sum(p.numel() for m in (self.scalar, self.encoder) for p in m.parameters())

    def _fold(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, capacity, F) -> (B, C, chunks * F, spec_size)``: time chunk ``k`` fills rows ``[kF, (k+1)F)``."""
        batch, channels = x.shape[:2]
        x = x.reshape(batch, channels, self.chunks, self.spec_size, self.n_mels).transpose(3, 4)
        return x.reshape(batch, channels, self.chunks * self.n_mels, self.spec_size)

    def _unfold(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, G, G, D)`` token grid -> ``(B, D, freq_rows, chunks * G)`` in time order."""
        batch, grid, _, dim = tokens.shape
        x = tokens.reshape(batch, self.chunks, self.freq_rows, grid, dim)
        return x.permute(0, 4, 2, 1, 3).reshape(batch, dim, self.freq_rows, self.chunks * grid)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4 or features.shape[1] != self.in_channels or features.shape[3] != self.n_mels:
            expected = f"(batch, {self.in_channels}, frames, {self.n_mels})"
            raise ValueError(f"expected input {expected}, got {tuple(features.shape)}")
        batch, _, frames, _ = features.shape
        n_labels = frames // self.frames_per_label
        if n_labels < 1:
            raise ValueError(f"{frames} frames are shorter than one label frame of {self.frames_per_label}")
        clip_frames = n_labels * self.frames_per_label
        x = features
        if self.pair_clips:
            if batch % 2:
                raise ValueError(
                    f"HTSAT joins clip pairs (i, i + batch/2) into one input, so the batch size must be even; "
                    f"got {batch} (use an even batch size or model_args pair_clips: false)"
                )
            half = batch // 2
            x = torch.cat((x[:half, :, :clip_frames], x[half:, :, :clip_frames]), dim=2)
        if x.shape[2] > self.capacity:
            raise ValueError(
                f"{x.shape[2]} input frames exceed the {self.capacity} that spec_size {self.spec_size} holds"
            )
        x = self.scalar(x)
        x = F.pad(x, (0, 0, 0, self.capacity - x.shape[2]))
        x = self._unfold(self.encoder(self._fold(x)))  # (B', D, freq_rows, steps)
        x = self.tscam_conv(x).flatten(2)  # (B', 117, steps)
        x = F.interpolate(x, size=self.capacity, mode="linear", align_corners=False).transpose(1, 2)
        if self.pair_clips:
            x = torch.cat((x[:, :clip_frames], x[:, clip_frames : 2 * clip_frames]), dim=0)
        x = pool_to_labels(x, n_labels, self.frames_per_label)
        return self.layout.activate(x, self.n_classes)
