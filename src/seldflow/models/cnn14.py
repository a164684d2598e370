"""The CNN14 model family of the DCASE2025 stereo seed system: a PSELDNets CNN encoder plus a sequence decoder.

``(B, C, T, 64)`` features are standardised per input channel and mel bin by trainable BatchNorm "scalars"
(one ``BatchNorm2d(64)`` per channel, so no :class:`~seldflow.models.normalization.InputNorm` is needed), then
six double-conv blocks (3x3 conv without bias -> BN -> ReLU, twice, then 2x2 or 1x2 average pooling; widths
64 ... 2048) reduce time by 8 and frequency by 64. The mean over the remaining frequency bins gives a
``(B, T/8, 2048)`` sequence for the decoder (Conformer, BiMamba, axial BiMamba "AC", or ConBiMamba), whose
output is repeated 8 times in time, averaged over groups of 5 STFT frames (100 ms label frames) and mapped by
``Linear(2048 -> 117)`` to multi-ACCDOA with tanh on x, y and ReLU on distance.

Encoder and scalars hold 75,481,664 parameters with 7 input channels. Module names (``scalar.<c>``,
``convs.conv_block<i>.{conv1,bn1,conv2,bn2}``, ``decoder``, ``fc``) match the PSELDNets/seed checkpoints, so
their encoder weights load with ``load_state_dict(strict=False)`` after stripping the ``net.`` prefix.

**50 output frames, not 49.** The reference pools 251 frames to 31 steps, repeats them to 248 frames, crops
to 245 and emits 49 label frames (its loss truncates the 50-frame target). Here the time axis is zero-padded at
the end, after the scalars (where zero is about the per-bin mean), to the next multiple of the time pooling
(251 -> 256): the encoder yields 32 steps, 256 frames after repetition, cropped to 250 -> 50 label frames. The
step-to-frame mapping is the reference's (label frame ``k`` averages the steps covering STFT frames
``[5k, 5k + 5)``), so frames 0-48 line up with the reference's and frame 49 is new; values differ slightly
because the decoder also sees the padded 32nd step. Padding adds no parameter. The final linear layer is
applied before the repetition and averaging, which is the same function (all three are linear and the
averaging weights sum to one) on a 117-wide instead of 2048-wide sequence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seldflow.labels import N_CLASSES
from seldflow.models.conformer import conbimamba, conformer
from seldflow.models.heads import DEFAULT_LAYOUT, output_layout, pool_to_labels
from seldflow.models.mamba import BMamba2DAcBlocks, BMambaBlocks

CNN14_WIDTHS = (64, 128, 256, 512, 1024, 2048)
# (time, frequency) average pooling after each of the six blocks: time / 8, frequency / 64.
CNN14_POOLS = ((2, 2), (2, 2), (2, 2), (1, 2), (1, 2), (1, 2))
# STFT frames (20 ms hop) per 100 ms label frame.
FRAMES_PER_LABEL = 5


class ChannelScalars(nn.ModuleList):
    """One ``BatchNorm2d(n_mels)`` per input channel: per-(channel, mel bin) standardisation over batch and time.

    Trainable and fitted on the fly (running statistics), so the networks using it need no fitted input norm.
    The per-channel modules keep the reference's parameter names; the forward pass normalises all channels in
    one ``batch_norm`` call over ``(B, C * F, T)`` (several times faster than one call per channel) and writes
    the updated running statistics back to each module, so the result is that of applying them one by one.
    """

    def __init__(self, channels: int, n_mels: int) -> None:
        super().__init__(nn.BatchNorm2d(n_mels) for _ in range(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, bins = x.shape
        first = self[0]
        y = x.transpose(2, 3).reshape(batch, channels * bins, frames)
        weight = torch.cat([norm.weight for norm in self])
        bias = torch.cat([norm.bias for norm in self])
        running_mean = torch.cat([norm.running_mean for norm in self])
        running_var = torch.cat([norm.running_var for norm in self])
        y = F.batch_norm(y, running_mean, running_var, weight, bias, self.training, first.momentum or 0.0, first.eps)
        if self.training:
            with torch.no_grad():
                for c, norm in enumerate(self):
                    norm.running_mean.copy_(running_mean[c * bins : (c + 1) * bins])
                    norm.running_var.copy_(running_var[c * bins : (c + 1) * bins])
                    norm.num_batches_tracked.add_(1)
        return y.reshape(batch, channels, bins, frames).transpose(2, 3)


class DoubleConvBlock(nn.Module):
    """(3x3 conv without bias -> BatchNorm -> ReLU) x 2 -> average pooling."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.pool = nn.AvgPool2d(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.pool(x)


class CNN14Encoder(nn.Module):
    """Six double-conv blocks (PSELDNets' "CNN14" encoder): ``(B, C, T, F) -> (B, widths[-1], T/8, F/64)``."""

    def __init__(self, in_channels: int, widths: Sequence[int] = CNN14_WIDTHS) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != len(CNN14_POOLS) or min(widths) < 1:
            raise ValueError(f"widths must be {len(CNN14_POOLS)} positive channel counts, got {list(widths)}")
        self.n_blocks = len(widths)
        channels = in_channels
        for i, (width, pool) in enumerate(zip(widths, CNN14_POOLS, strict=True)):
            self.add_module(f"conv_block{i + 1}", DoubleConvBlock(channels, width, pool))
            channels = width
        self.out_channels = channels
        self.time_pool = math.prod(t for t, _ in CNN14_POOLS)
        self.freq_pool = math.prod(f for _, f in CNN14_POOLS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.n_blocks):
            x = getattr(self, f"conv_block{i + 1}")(x)
        return x


class CNN14SELD(nn.Module):
    """Scalars -> CNN14 encoder -> frequency mean -> ``decoder`` -> ``Linear`` -> 8x repetition -> label frames.

    ``decoder`` maps ``(B, T', widths[-1]) -> (B, T', widths[-1])``. Output: ``(B, T // 5, tracks * 3 * classes)``.
    """

    def __init__(
        self,
        in_channels: int,
        decoder: nn.Module,
        *,
        n_mels: int = 64,
        widths: Sequence[int] = CNN14_WIDTHS,
        frames_per_label: int = FRAMES_PER_LABEL,
        n_classes: int = N_CLASSES,
        output: str = DEFAULT_LAYOUT,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        if frames_per_label < 1:
            raise ValueError(f"frames_per_label must be at least 1, got {frames_per_label}")
        self.in_channels = in_channels
        self.n_mels = n_mels
        self.frames_per_label = frames_per_label
        self.n_classes = n_classes
        self.layout = output_layout(output)
        self.scalar = ChannelScalars(in_channels, n_mels)
        self.convs = CNN14Encoder(in_channels, widths)
        if n_mels < self.convs.freq_pool:
            raise ValueError(f"{n_mels} mel bins cannot be pooled by {self.convs.freq_pool} in frequency")
        self.decoder = decoder
        self.fc = nn.Linear(self.convs.out_channels, self.layout.size(n_classes))

    def encoder_parameters(self) -> int:
        """Parameters of the BatchNorm scalars and the CNN encoder (75,481,664 in the reference setup)."""
        return sum(p.numel() for m in (self.scalar, self.convs) for p in m.parameters())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4 or features.shape[1] != self.in_channels or features.shape[3] != self.n_mels:
            expected = f"(batch, {self.in_channels}, frames, {self.n_mels})"
            raise ValueError(f"expected input {expected}, got {tuple(features.shape)}")
        frames = features.shape[2]
        n_labels = frames // self.frames_per_label
        if n_labels < 1:
            raise ValueError(f"{frames} frames are shorter than one label frame of {self.frames_per_label}")
        x = self.scalar(features)
        time_pool = self.convs.time_pool
        x = F.pad(x, (0, 0, 0, -frames % time_pool))  # zero frames at the end: 251 -> 256
        x = self.convs(x.contiguous(memory_format=torch.channels_last))  # (B, W, T', F')
        x = x.mean(dim=3).transpose(1, 2)  # (B, T', W)
        x = self.fc(self.decoder(x))  # (B, T', 117)
        x = x.repeat_interleave(time_pool, dim=1)  # back to the STFT frame rate
        x = pool_to_labels(x, n_labels, self.frames_per_label)
        return self.layout.activate(x, self.n_classes)


def _width(widths: Sequence[int]) -> int:
    if not widths:
        raise ValueError("widths must not be empty")
    return int(widths[-1])


def cnn14_conformer(
    in_channels: int,
    *,
    widths: Sequence[int] = CNN14_WIDTHS,
    layers: int = 2,
    heads: int = 8,
    ff_expansion: int = 2,
    conv_kernel: int = 7,
    dropout: float = 0.05,
    **common: Any,
) -> CNN14SELD:
    """CNN14-Conformer (210,078,389 parameters with 7 input channels and the defaults)."""
    decoder = conformer(
        _width(widths), layers, heads=heads, ff_expansion=ff_expansion, conv_kernel=conv_kernel, dropout=dropout
    )
    return CNN14SELD(in_channels, decoder, widths=widths, **common)


def _mamba_args(
    d_state: int, d_conv: int, expand: int, headdim: int, chunk_size: int, dropout: float, options: Any
) -> dict[str, Any]:
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"mamba_options must be a mapping, got {options!r}")
    args = {
        "d_state": d_state,
        "d_conv": d_conv,
        "expand": expand,
        "headdim": headdim,
        "chunk_size": chunk_size,
        "dropout": dropout,
    }
    return {**args, **(options or {})}


def cnn14_bimamba(
    in_channels: int,
    *,
    widths: Sequence[int] = CNN14_WIDTHS,
    layers: int = 2,
    d_state: int = 64,
    d_conv: int = 4,
    expand: int = 2,
    headdim: int = 64,
    chunk_size: int = 64,
    dropout: float = 0.05,
    mamba_options: dict[str, Any] | None = None,
    **common: Any,
) -> CNN14SELD:
    """CNN14-BiMamba (178,113,205 parameters); ``mamba_options`` go to ``BMambaBlocks`` (e.g. ``backend``)."""
    args = _mamba_args(d_state, d_conv, expand, headdim, chunk_size, dropout, mamba_options)
    return CNN14SELD(in_channels, BMambaBlocks(_width(widths), layers, **args), widths=widths, **common)


def cnn14_bimamba_ac(
    in_channels: int,
    *,
    widths: Sequence[int] = CNN14_WIDTHS,
    layers: int = 2,
    d_state: int = 64,
    d_conv: int = 4,
    expand: int = 2,
    headdim: int = 32,
    chunk_size: int = 64,
    dropout: float = 0.05,
    mamba_dim: int = 32,
    freq_dim: int = 64,
    mamba_options: dict[str, Any] | None = None,
    **common: Any,
) -> CNN14SELD:
    """CNN14-BiMamba-AC (76,083,414 parameters): axial 2-D BiMamba on a ``(T, freq_dim)`` map of the sequence."""
    args = _mamba_args(d_state, d_conv, expand, headdim, chunk_size, dropout, mamba_options)
    decoder = BMamba2DAcBlocks(_width(widths), layers, mamba_dim=mamba_dim, freq_dim=freq_dim, **args)
    return CNN14SELD(in_channels, decoder, widths=widths, **common)


def cnn14_conbimamba(
    in_channels: int,
    *,
    widths: Sequence[int] = CNN14_WIDTHS,
    layers: int = 2,
    ff_expansion: int = 4,
    conv_kernel: int = 31,
    ff_dropout: float = 0.1,
    conv_dropout: float = 0.1,
    d_state: int = 64,
    d_conv: int = 4,
    expand: int = 2,
    headdim: int = 32,
    chunk_size: int = 64,
    dropout: float = 0.05,
    mamba_options: dict[str, Any] | None = None,
    **common: Any,
) -> CNN14SELD:
    """CNN14-ConBiMamba (338,247,349 parameters): Conformer blocks with a 1-layer BiMamba instead of MHSA."""
    decoder = conbimamba(
        _width(widths),
        layers,
        ff_expansion=ff_expansion,
        conv_kernel=conv_kernel,
        ff_dropout=ff_dropout,
        conv_dropout=conv_dropout,
        **_mamba_args(d_state, d_conv, expand, headdim, chunk_size, dropout, mamba_options),
    )
    return CNN14SELD(in_channels, decoder, widths=widths, **common)


def cnn14_conbimamba_ac(
    in_channels: int,
    *,
    widths: Sequence[int] = CNN14_WIDTHS,
    layers: int = 2,
    ff_expansion: int = 4,
    conv_kernel: int = 31,
    ff_dropout: float = 0.1,
    conv_dropout: float = 0.1,
    d_state: int = 64,
    d_conv: int = 4,
    expand: int = 2,
    headdim: int = 32,
    chunk_size: int = 64,
    dropout: float = 0.05,
    mamba_dim: int = 32,
    freq_dim: int = 64,
    mamba_options: dict[str, Any] | None = None,
    **common: Any,
) -> CNN14SELD:
    """CNN14-ConBiMambaAC (235,819,543 parameters): Conformer blocks with a 1-layer axial 2-D BiMamba mixer."""
    decoder = conbimamba(
        _width(widths),
        layers,
        axial=True,
        ff_expansion=ff_expansion,
        conv_kernel=conv_kernel,
        ff_dropout=ff_dropout,
        conv_dropout=conv_dropout,
        mamba_dim=mamba_dim,
        freq_dim=freq_dim,
        **_mamba_args(d_state, d_conv, expand, headdim, chunk_size, dropout, mamba_options),
    )
    return CNN14SELD(in_channels, decoder, widths=widths, **common)
