"""Label-queried ResUNet separator of the DCASE2025 Task 4 baseline (ResUNet and ResUNetK), for any channel count.

The network follows the baseline's ``ResUNet30`` (itself from the universal source separation ResUNet): a frozen
STFT of every mixture channel, a U-Net of pre-activation residual blocks on the magnitudes, conditioned on the
queried class(es) by bias-only FiLM, and per channel a magnitude mask plus a phase rotation whose results a 1x1
convolution mixes into one mono spectrum per target, turned back into a waveform by the inverse STFT.

With ``n_targets = 1`` (ResUNet) the condition is one 18-value one-hot row and the output one waveform; with
``n_targets = 3`` (ResUNetK) the condition is the three slot rows concatenated (54 values) and the output three
waveforms in one pass. Slots whose query row is all zeros ("silence") output exact zeros.

Shapes: mixture ``(B, C, N)``, condition ``(B, S * n_classes)``, output ``(B, S, N)`` with ``S = n_targets``
(the reference keeps an extra mono "output channel" axis; it is always 1 here and dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Parts of the per-channel mask the network emits for every target: magnitude logit, real and imaginary phase parts.
MASK_COMPONENTS = 3
# BatchNorm momentum of every norm in the reference network (a slow running average: PyTorch's 0.01).
BN_MOMENTUM = 0.01
# Slope of every LeakyReLU (PyTorch's default, which the reference uses throughout).
LEAKY_SLOPE = 0.01
# Floor of the STFT power before its square root: a silent bin then has cos = sin = 0 instead of NaN (reference).
POWER_FLOOR = 1e-10
# Floor of the complex phase mask's modulus when it is normalised to unit length (torchlibrosa's magphase).
PHASE_MASK_FLOOR = 1e-10
DEFAULT_CHANNELS: tuple[int, ...] = (32, 64, 128, 256, 384, 384)


def init_xavier(layer: nn.Conv2d | nn.ConvTranspose2d | nn.Linear) -> None:
    """Xavier-uniform weights and zero bias: the reference's initialisation of its convolutions and FiLM layers."""
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def level_pools(n_levels: int) -> list[tuple[int, int]]:
    """(time, freq) average-pool factor of each encoder level: (2, 2) everywhere but the deepest, which is (1, 2).

    The deepest level keeps time so a 10 s clip still has 63 frames at the bottleneck, as in the reference.
    """
    return [(2, 2)] * (n_levels - 1) + [(1, 2)]


def fit_time(condition: torch.Tensor, frames: int) -> torch.Tensor:
    """A FiLM map (B, C, T_c, 1) bilinearly resized to ``frames`` time steps; a (B, C, 1, 1) bias is returned as is.

    Frame-wise conditions (Time-FiLM, :mod:`seldflow.models.guided`) come on the detector's grid and every level
    has its own time axis; ``align_corners=False`` as the reference.
    """
    if condition.shape[2] in (1, frames):
        return condition
    return F.interpolate(condition, size=(frames, 1), mode="bilinear", align_corners=False)


def film(normed: torch.Tensor, bias: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
    """``normed + bias``, or ``sigmoid(gate) * (normed + bias)`` with a gate; both fitted to ``normed``'s time axis.

    The bias is the class FiLM bias (B, C, 1, 1), plus an additive Time-FiLM map (B, C, T, 1) when one is used;
    the gate holds the logits of a multiplicative Time-FiLM map.
    """
    frames = normed.shape[2]
    out = normed + fit_time(bias, frames)
    return out if gate is None else torch.sigmoid(fit_time(gate, frames)) * out


class ResidualBlock(nn.Module):
    """Two pre-activation 3x3 convolutions (BN -> +FiLM bias -> LeakyReLU -> conv) with a residual connection.

    The shortcut is a 1x1 convolution (with bias) when the width changes, the identity otherwise; the convolutions
    themselves carry no bias since a BatchNorm follows each.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=BN_MOMENTUM)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None
        for layer in (self.conv1, self.conv2, self.shortcut):
            if layer is not None:
                init_xavier(layer)

    @property
    def norm_widths(self) -> tuple[int, ...]:
        """Width of each FiLM bias this block takes, in the order :meth:`forward` consumes them."""
        return (self.bn1.num_features, self.bn2.num_features)

    def forward(
        self, x: torch.Tensor, biases: Sequence[torch.Tensor], gates: Sequence[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``gates`` (one per norm, or None) are multiplicative Time-FiLM logits; see :func:`film`."""
        gates = gates or (None, None)
        h = self.conv1(F.leaky_relu(film(self.bn1(x), biases[0], gates[0]), LEAKY_SLOPE))
        h = self.conv2(F.leaky_relu(film(self.bn2(h), biases[1], gates[1]), LEAKY_SLOPE))
        return (x if self.shortcut is None else self.shortcut(x)) + h


class EncoderLevel(nn.Module):
    """A residual block followed by average pooling; returns the pooled map and the full-resolution skip."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int]) -> None:
        super().__init__()
        self.block = ResidualBlock(in_channels, out_channels)
        self.pool = pool

    @property
    def norm_widths(self) -> tuple[int, ...]:
        return self.block.norm_widths

    def forward(
        self, x: torch.Tensor, biases: Sequence[torch.Tensor], gates: Sequence[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.block(x, biases, gates)
        return F.avg_pool2d(skip, kernel_size=self.pool), skip


class DecoderLevel(nn.Module):
    """BN -> +FiLM bias -> LeakyReLU -> transposed conv (upsampling), concat with the skip, then a residual block.

    ``spare_norm`` adds the second BatchNorm (and so a second FiLM bias) that the reference decoder builds but never
    uses in its forward pass: together 0.82 M of the reference's 26.72 M trainable parameters. They are kept by
    default so parameter counts and state dicts line up with the reference; they receive no gradient (distributed
    training needs ``find_unused_parameters``, as the reference's trainer sets).
    """

    def __init__(self, in_channels: int, out_channels: int, upsample: tuple[int, int], spare_norm: bool) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=BN_MOMENTUM)
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=upsample, stride=upsample, bias=False)
        init_xavier(self.up)
        self.spare_bn = nn.BatchNorm2d(in_channels, momentum=BN_MOMENTUM) if spare_norm else None
        self.block = ResidualBlock(2 * out_channels, out_channels)

    @property
    def norm_widths(self) -> tuple[int, ...]:
        spare = () if self.spare_bn is None else (self.spare_bn.num_features,)
        return (self.bn1.num_features, *spare, *self.block.norm_widths)

    def forward(
        self,
        x: torch.Tensor,
        skip: torch.Tensor,
        biases: Sequence[torch.Tensor],
        gates: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        h = self.up(F.leaky_relu(film(self.bn1(x), biases[0], gates[0] if gates else None), LEAKY_SLOPE))
        return self.block(torch.cat((h, skip), dim=1), biases[-2:], gates[-2:] if gates else None)


class FrozenSTFT(nn.Module):
    """Centred, reflect-padded STFT with a periodic Hann window and its inverse; no trainable parameters.

    torch.stft/istft compute the same frames as the reference's torchlibrosa convolution STFT; the window is a
    non-persistent buffer so checkpoints do not carry it.
    """

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop = hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def analyse(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, N) -> magnitude, cos and sin of the phase, each (B, C, T, F)."""
        batch, channels, length = wave.shape
        spec = torch.stft(
            wave.reshape(batch * channels, length),
            self.n_fft,
            self.hop,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        spec = spec.transpose(1, 2).reshape(batch, channels, spec.shape[2], spec.shape[1])
        magnitude = (spec.real.square() + spec.imag.square()).clamp_min(POWER_FLOOR).sqrt()
        return magnitude, spec.real / magnitude, spec.imag / magnitude

    def synthesise(self, real: torch.Tensor, imag: torch.Tensor, length: int) -> torch.Tensor:
        """(B', T, F) real and imaginary parts -> (B', length) waveforms."""
        spec = torch.complex(real, imag).transpose(1, 2)
        return torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True, length=length)


class LabelEmbedding(nn.Sequential):
    """Query vector -> condition: two Linear + LayerNorm + ReLU layers (the reference's label MLP)."""

    def __init__(self, label_len: int, condition_size: int) -> None:
        super().__init__(
            nn.Linear(label_len, condition_size),
            nn.LayerNorm(condition_size),
            nn.ReLU(),
            nn.Linear(condition_size, condition_size),
            nn.LayerNorm(condition_size),
            nn.ReLU(),
        )


class ResUNet(nn.Module):
    """Label-queried ResUNet separator: ``n_targets = 1`` is the baseline's ResUNet, ``3`` its ResUNetK.

    ``channels`` lists the encoder widths; each entry adds one level, pooled (2, 2) except the deepest (1, 2), so
    the time axis is padded to a multiple of ``2 ** (len(channels) - 1)`` and ``n_fft // 2`` must be divisible by
    ``2 ** len(channels)``. The bottleneck block keeps the deepest width and the decoder mirrors the encoder.
    With the defaults and 4 input channels it has the reference's trainable parameters (see
    :mod:`seldflow.models.separators`).
    """

    def __init__(
        self,
        in_channels: int = 4,
        n_classes: int = 18,
        n_targets: int = 1,
        *,
        n_fft: int = 1024,
        hop: int = 160,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        condition_size: int = 512,
        spare_norms: bool = True,
        bn_momentum: float = BN_MOMENTUM,
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        _check_geometry(in_channels, n_classes, n_targets, n_fft, hop, channels, condition_size)
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.n_targets = n_targets
        pools = level_pools(len(channels))
        self.time_multiple = 2 ** sum(1 for time_pool, _ in pools if time_pool > 1)
        self.stft = FrozenSTFT(n_fft, hop)
        self.bn0 = nn.BatchNorm2d(n_fft // 2 + 1, momentum=BN_MOMENTUM)
        self.pre_conv = nn.Conv2d(in_channels, channels[0], kernel_size=1)
        widths_in = (channels[0], *channels[:-1])
        self.encoder = nn.ModuleList(EncoderLevel(i, o, p) for i, o, p in zip(widths_in, channels, pools, strict=True))
        self.bottleneck = EncoderLevel(channels[-1], channels[-1], (1, 1))
        decoder_in = (channels[-1], *reversed(channels[1:]))
        self.decoder = nn.ModuleList(
            DecoderLevel(i, o, p, spare_norms)
            for i, o, p in zip(decoder_in, reversed(channels), reversed(pools), strict=True)
        )
        self.after_conv = nn.Conv2d(channels[0], in_channels * MASK_COMPONENTS * n_targets, kernel_size=1)
        # Mixes the masked channels' real (and, with the same weights, imaginary) parts into one mono spectrum.
        self.out_conv = nn.Conv2d(in_channels, 1, kernel_size=1)
        for layer in (self.pre_conv, self.after_conv):
            init_xavier(layer)
        self.label_embedding = LabelEmbedding(n_classes * n_targets, condition_size)
        self.film = nn.ModuleList(nn.Linear(condition_size, width) for width in self._norm_widths())
        for layer in self.film:
            init_xavier(layer)
        self._set_bn_momentum(bn_momentum)

    def _set_bn_momentum(self, momentum: float) -> None:
        """Every BatchNorm's running-average momentum: the reference's slow 0.01 suits days of training; a short
        run (the CPU demo) needs a faster one, or evaluation would normalise with statistics of early weights."""
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = momentum

    def _levels(self) -> list[nn.Module]:
        """The FiLM-conditioned levels in the order :meth:`forward` runs them (and the FiLM biases are laid out)."""
        return [*self.encoder, self.bottleneck, *self.decoder]

    def _norm_widths(self) -> list[int]:
        return [width for level in self._levels() for width in level.norm_widths]

    def group_by_level(self, flat: Sequence[torch.Tensor]) -> list[list[torch.Tensor]]:
        """One tensor per FiLM layer (the :attr:`film` order) -> per level, the tensors of its norms."""
        grouped: list[list[torch.Tensor]] = []
        start = 0
        for level in self._levels():
            count = len(level.norm_widths)
            grouped.append(list(flat[start : start + count]))
            start += count
        return grouped

    def film_biases(self, condition: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per level, its FiLM biases (B, C, 1, 1) computed from the embedded query ``condition`` (B, L)."""
        embedded = self.label_embedding(condition)
        return self.group_by_level([layer(embedded)[:, :, None, None] for layer in self.film])

    def slot_mask(self, condition: torch.Tensor) -> torch.Tensor:
        """(B, S) float: 1 where the slot's query row has any non-zero entry, 0 for silence (reference rule)."""
        rows = condition.detach().reshape(condition.shape[0], self.n_targets, self.n_classes)
        return (rows.abs().sum(dim=2) != 0).to(condition.dtype)

    def forward(
        self, mixture: torch.Tensor, condition: torch.Tensor, source_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Separate: mixture (B, C, N), condition (B, S * n_classes) -> (B, S, N), silent slots exactly zero.

        ``source_mask`` (B, S) defaults to :meth:`slot_mask` of the condition.
        """
        if source_mask is None:
            source_mask = self.slot_mask(condition)
        magnitude, cos_in, sin_in = self.stft.analyse(mixture)
        logits = self._mask_logits(magnitude, self.film_biases(condition))
        waves = self._masks_to_waves(logits, magnitude, cos_in, sin_in, mixture.shape[-1])
        return waves * source_mask[:, :, None]

    @staticmethod
    def normalise_bins(magnitude: torch.Tensor, norm: nn.BatchNorm2d) -> torch.Tensor:
        """BatchNorm over frequency bins: bins are the normalised channels, statistics over batch, time, channel."""
        return norm(magnitude.transpose(1, 3)).transpose(1, 3)

    def _mask_logits(
        self,
        magnitude: torch.Tensor,
        biases: list[list[torch.Tensor]],
        *,
        gates: list[list[torch.Tensor]] | None = None,
        centre: Callable[[torch.Tensor], torch.Tensor] | None = None,
        extra: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Magnitudes (B, C, T, F) -> mask logits (B, S * C * K, T, F) from the conditioned U-Net.

        Hooks for the guided variants (:mod:`seldflow.models.guided`): ``gates`` per level (multiplicative
        Time-FiLM), ``centre`` transforms the bottleneck output (embedding injection, DPRNN), ``extra`` (B, E, T, F)
        already normalised inputs stacked after the mixture channels (iterative feedback).
        """
        frames = magnitude.shape[2]
        x = self.normalise_bins(magnitude, self.bn0)
        if extra is not None:
            x = torch.cat((x, extra), dim=1)
        x = F.pad(x, (0, 0, 0, -frames % self.time_multiple))
        x = self.pre_conv(x[..., :-1])  # drop the Nyquist bin so frequency halves evenly
        depth = len(self.encoder)
        gates = gates or [None] * len(biases)
        skips = []
        for level, level_biases, level_gates in zip(self.encoder, biases[:depth], gates[:depth], strict=True):
            x, skip = level(x, level_biases, level_gates)
            skips.append(skip)
        x, _ = self.bottleneck(x, biases[depth], gates[depth])
        if centre is not None:
            x = centre(x)
        decoding = zip(self.decoder, reversed(skips), biases[depth + 1 :], gates[depth + 1 :], strict=True)
        for level, skip, level_biases, level_gates in decoding:
            x = level(x, skip, level_biases, level_gates)
        x = self.after_conv(x)
        # Zero logits for the dropped Nyquist bin (its phase mask 0 + 0j then zeroes it), padding frames cut off.
        return F.pad(x, (0, 1))[:, :, :frames]

    def _masks_to_waves(
        self, logits: torch.Tensor, magnitude: torch.Tensor, cos_in: torch.Tensor, sin_in: torch.Tensor, length: int
    ) -> torch.Tensor:
        """Apply per channel |Y| = |X| sigmoid(m), angle Y = angle X + angle(tanh(r) + j tanh(i)); mix; inverse STFT."""
        batch, _, frames, bins = logits.shape
        parts = logits.reshape(batch, self.n_targets, self.in_channels, MASK_COMPONENTS, frames, bins)
        mask_mag = torch.sigmoid(parts[:, :, :, 0])
        mask_real, mask_imag = torch.tanh(parts[:, :, :, 1]), torch.tanh(parts[:, :, :, 2])
        modulus = (mask_real.square() + mask_imag.square()).sqrt().clamp_min(PHASE_MASK_FLOOR)
        mask_cos, mask_sin = mask_real / modulus, mask_imag / modulus
        cos_in, sin_in = cos_in[:, None], sin_in[:, None]
        # ReLU as the reference: a no-op for these non-negative factors, kept so a changed mask keeps its guard.
        out_mag = F.relu(magnitude[:, None] * mask_mag)
        real = out_mag * (cos_in * mask_cos - sin_in * mask_sin)
        imag = out_mag * (sin_in * mask_cos + cos_in * mask_sin)
        shape = (batch * self.n_targets, self.in_channels, frames, bins)
        real = self.out_conv(real.reshape(shape))[:, 0]
        imag = self.out_conv(imag.reshape(shape))[:, 0]
        return self.stft.synthesise(real, imag, length).reshape(batch, self.n_targets, length)

    def separate(
        self, mixture: torch.Tensor, queries: torch.Tensor, source_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One estimate per query slot: mixture (B, C, N), queries (B, S, n_classes) one-hot rows -> (B, S, N).

        ResUNetK (``n_targets == S``) answers all slots in one pass. The single-target ResUNet repeats each mixture
        S times and answers the S queries as one batch (the reference's multi-predict inference); run it in eval
        mode, since in training mode BatchNorm would see the repeated mixtures as one batch. ``source_mask``
        (B, S) defaults to the non-zero query rows; silent slots are exactly zero.
        """
        batch, slots, n_classes = queries.shape
        if n_classes != self.n_classes:
            raise ValueError(f"queries have {n_classes} classes, the separator {self.n_classes}")
        if source_mask is None:
            source_mask = (queries.abs().sum(dim=2) != 0).to(queries.dtype)
        if self.n_targets == slots:
            return self(mixture, queries.reshape(batch, slots * n_classes), source_mask)
        if self.n_targets != 1:
            raise ValueError(f"{slots} query slots for a separator with {self.n_targets} targets")
        out = self._separate_repeated(
            mixture, queries.reshape(batch * slots, n_classes), source_mask.reshape(batch * slots, 1), slots
        )
        return out.reshape(batch, slots, mixture.shape[-1])

    def _separate_repeated(
        self, mixture: torch.Tensor, condition: torch.Tensor, source_mask: torch.Tensor, slots: int
    ) -> torch.Tensor:
        """Answer ``slots`` consecutive condition rows per mixture: (B * slots, 1, N). Guided variants override it
        to run their detector once per mixture instead of once per query."""
        return self(mixture.repeat_interleave(slots, dim=0), condition, source_mask)


def _check_geometry(
    in_channels: int,
    n_classes: int,
    n_targets: int,
    n_fft: int,
    hop: int,
    channels: tuple[int, ...],
    condition_size: int,
) -> None:
    """Reject sizes the U-Net cannot run with, naming the argument (a ValueError becomes a ConfigError upstream)."""
    for name, value in (
        ("in_channels", in_channels),
        ("n_classes", n_classes),
        ("n_targets", n_targets),
        ("hop", hop),
        ("condition_size", condition_size),
    ):
        if value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    if not channels or min(channels) < 1:
        raise ValueError(f"channels must be a non-empty list of positive widths, got {list(channels)}")
    freq_factor = 2 ** len(channels)
    if n_fft < 2 or (n_fft // 2) % freq_factor:
        raise ValueError(
            f"n_fft // 2 = {n_fft // 2} must be divisible by 2 ** len(channels) = {freq_factor} "
            f"(each of the {len(channels)} levels halves frequency)"
        )
