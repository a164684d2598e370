"""SED-guided label-queried separator of the second-place DCASE2025 Task 4 system (Morocutti et al.).

The separator is the baseline's one-label ResUNet (:class:`seldflow.models.resunet.ResUNet`, one target, an
18-value one-hot query) with a 2048-sample STFT window (hop 160), guided by a second sound event detector, the
"Stage-2 SED" (:mod:`seldflow.models.sed`), which runs on the same mixture inside the separator:

* **Embedding injection** (the reference's "Soundbeam", :class:`EmbeddingInjection`): the detector's hidden
  outputs (13 for M2D: patch embedding and 12 blocks) are mixed with softmax-normalised learnable weights (all
  equal at the start), normalised (BatchNorm + LeakyReLU), bilinearly resized to the U-Net bottleneck and projected
  to its width by a 1x1 convolution, then merged into the bottleneck: ``add`` standardises bottleneck and features
  per channel over (time, frequency) and sums them with two learnable weights (both 1 at the start); ``concat``
  stacks them and maps back with BatchNorm, LeakyReLU and a 1x1 convolution.
* **Time-FiLM** (:class:`TimeFiLM`): the detector's frame logits of the queried class (zero for a silent query) go
  through a per-frame MLP into frame-wise FiLM maps (B, C, T_sed, 1), bilinearly resized to each U-Net level's time
  axis and either added beside the class FiLM bias (``additive``) or used as a sigmoid gate on the normalised,
  class-biased activations (``multiplicative``).
* **DPRNN** (:class:`DualPathRNN`) at the bottleneck, before (``pre``) or after (``post``) the injection.
* **Iterative refinement** (:class:`IterativeGuidedResUNet`): the previous estimate is a fifth input.

The Stage-2 SED is trainable (jointly with the separator) or frozen (``sed.trainable``; frozen it stays in eval mode
and runs without gradients). Injection or Time-FiLM without a detector, a detector that guides nothing, an unknown
merge, mode or position, and ``max_iterations < 1`` are rejected when the network is built (a ConfigError naming
``separator.model_args`` through the registry).

Weights: :func:`load_audiosep` initialises the U-Net from an AudioSep checkpoint (its 1-channel input and output
convolutions tiled to the mixture's channels); :func:`load_guided_pretrained` also loads an M2D checkpoint into the
detector. :func:`guided_parameter_groups` gives the optimiser groups with their learning rates.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seldflow.errors import InputError
from seldflow.models.param_groups import split_weight_decay
from seldflow.models.registry import build_registered
from seldflow.models.resunet import (
    BN_MOMENTUM,
    LEAKY_SLOPE,
    MASK_COMPONENTS,
    LabelEmbedding,
    ResUNet,
    init_xavier,
)
from seldflow.models.sed import SEDS, SEDOutput, SoundEventDetector, sed_parameter_groups
from seldflow.s5.vocabulary import LABELS

CONFIG_SOURCE = "s5"
INJECTION_MERGES = ("add", "concat")
TIME_FILM_MODES = ("additive", "multiplicative")
TIME_FILM_LAYERS = ("shared", "separate")
DPRNN_POSITIONS = ("pre", "post")
# Added to the per-channel standard deviation before dividing, in the ``add`` merge (the reference's value).
STANDARDISE_EPS = 1e-6
# GroupNorm epsilon of the dual-path RNN (the reference's FaSNet value).
DPRNN_NORM_EPS = 1e-8
# The second-place system's STFT: a 2048-sample window (AudioSep's), the baseline's 160-sample hop.
GUIDED_N_FFT = 2048
GUIDED_HOP = 160


# ---------------------------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------------------------


def _choice(name: str, value: str, known: Sequence[str]) -> None:
    if value not in known:
        raise ValueError(f"{name} must be one of {', '.join(known)}, got {value!r}")


@dataclass(frozen=True)
class SEDSettings:
    """The Stage-2 SED: a :data:`seldflow.models.sed.SEDS` name and arguments, trainable or frozen.

    ``train_heads`` also trains its strong and weak heads. Off by default, as in the reference, whose optimiser
    receives only the detector's backbone: the heads keep the weights the detector was fine-tuned with (Time-FiLM
    reads the strong head's logits).
    """

    model: str
    model_args: Mapping[str, Any] = field(default_factory=dict)
    trainable: bool = True
    train_heads: bool = False


@dataclass(frozen=True)
class InjectionSettings:
    merge: str = "add"

    def __post_init__(self) -> None:
        _choice("injection.merge", self.merge, INJECTION_MERGES)


@dataclass(frozen=True)
class TimeFiLMSettings:
    """``layers``: ``shared`` maps the time embedding with the class FiLM's linear layers, ``separate`` with its own.

    The reference builds separate layers (``self.time_film``) but its forward pass uses the class FiLM layers
    (``self.film``) for the time condition, so the published results come from ``shared``, the default here.
    ``binarize`` feeds ``logit > 0`` instead of the logits (an option of the reference, off there).
    """

    mode: str = "additive"
    layers: str = "shared"
    binarize: bool = False

    def __post_init__(self) -> None:
        _choice("time_film.mode", self.mode, TIME_FILM_MODES)
        _choice("time_film.layers", self.layers, TIME_FILM_LAYERS)


@dataclass(frozen=True)
class DPRNNSettings:
    """Dual-path RNN sizes, the reference's defaults: 2 blocks, each BiGRU 2 layers of 256, GRU dropout 0.1."""

    position: str = "post"
    hidden: int = 256
    blocks: int = 2
    rnn_layers: int = 2
    dropout: float = 0.1

    def __post_init__(self) -> None:
        _choice("dprnn.position", self.position, DPRNN_POSITIONS)
        if min(self.hidden, self.blocks, self.rnn_layers) < 1 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dprnn sizes must be positive and dropout in [0, 1), got {self}")


def _settings(cls: type, name: str, values: Mapping[str, Any] | bool | None) -> Any:
    """A settings dataclass from a config mapping; ``None``/``False`` is off, ``True`` or ``{}`` the defaults."""
    if values is None or values is False:
        return None
    if values is True:
        values = {}
    if not isinstance(values, Mapping):
        raise ValueError(f"{name} must be a mapping of settings or null, got {values!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {name} setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return cls(**values)


# ---------------------------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------------------------


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Each channel of (B, C, T, F) to zero mean and unit (unbiased) standard deviation over (T, F)."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = x.std(dim=(2, 3), keepdim=True) + STANDARDISE_EPS
    return (x - mean) / std


class EmbeddingInjection(nn.Module):
    """The detector's hidden maps merged into the U-Net bottleneck (module docstring)."""

    def __init__(
        self, n_layers: int, dim: int, channels: int, merge: str = "add", bn_momentum: float = BN_MOMENTUM
    ) -> None:
        super().__init__()
        _choice("injection.merge", merge, INJECTION_MERGES)
        self.merge = merge
        # Softmax-normalised in use, so equal raw values give every layer the weight 1 / n_layers.
        self.layer_weights = nn.Parameter(torch.full((n_layers,), 1.0 / n_layers))
        self.feature_norm = nn.BatchNorm2d(dim, momentum=bn_momentum)
        self.project = nn.Conv2d(dim, channels, kernel_size=1)
        if merge == "add":
            self.bottleneck_weight = nn.Parameter(torch.tensor(1.0))
            self.feature_weight = nn.Parameter(torch.tensor(1.0))
        else:
            self.merge_norm = nn.BatchNorm2d(2 * channels, momentum=bn_momentum)
            self.merge_conv = nn.Conv2d(2 * channels, channels, kernel_size=1)
            init_xavier(self.merge_conv)

    def mixing_weights(self) -> torch.Tensor:
        """The layers' weights in the sum: softmax of the learnable values (they sum to 1)."""
        return torch.softmax(self.layer_weights, dim=0)

    def features(self, hidden: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Hidden maps, each (B, D, T', F') -> injected features (B, channels, *size)."""
        if len(hidden) != self.layer_weights.numel():
            raise ValueError(f"{len(hidden)} hidden maps for {self.layer_weights.numel()} injection weights")
        mixed = torch.einsum("l,lbdtf->bdtf", self.mixing_weights(), torch.stack(list(hidden)))
        x = F.leaky_relu(self.feature_norm(mixed), LEAKY_SLOPE)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.project(x)

    def forward(self, bottleneck: torch.Tensor, hidden: Sequence[torch.Tensor]) -> torch.Tensor:
        features = self.features(hidden, (bottleneck.shape[2], bottleneck.shape[3]))
        if self.merge == "add":
            return self.bottleneck_weight * standardise(bottleneck) + self.feature_weight * standardise(features)
        stacked = torch.cat((bottleneck, features), dim=1)
        return self.merge_conv(F.leaky_relu(self.merge_norm(stacked), LEAKY_SLOPE))


class TimeFiLM(nn.Module):
    """Frame-wise FiLM maps from the detector's logits of the queried class (module docstring).

    Silent queries (all-zero rows) get a zero row, as in the reference, and their maps are set to exactly zero:
    no time conditioning. (The reference's maps of a silent query are those of a zero logit row; either way a
    silent slot's output is zeroed by its source mask, so nothing downstream differs.)
    """

    def __init__(self, condition_size: int, widths: Sequence[int], settings: TimeFiLMSettings) -> None:
        super().__init__()
        self.settings = settings
        # The per-frame MLP: Linear(1 -> E) + LN + ReLU + Linear(E -> E) + LN + ReLU, the label MLP's shape.
        self.embedding = LabelEmbedding(1, condition_size)
        self.film: nn.ModuleList | None = None
        if settings.layers == "separate":
            self.film = nn.ModuleList(nn.Linear(condition_size, width) for width in widths)
            for layer in self.film:
                init_xavier(layer)

    def query_rows(self, frame_logits: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """(B, C, T) logits and (B, C) one-hot queries -> (B, T): the queried class's row, zero for silence."""
        rows = frame_logits[torch.arange(len(condition), device=condition.device), condition.argmax(dim=1)]
        if self.settings.binarize:
            rows = (rows > 0).to(frame_logits.dtype)
        silent = condition.abs().sum(dim=1) == 0
        return rows.masked_fill(silent[:, None], 0.0)

    def maps(
        self, frame_logits: torch.Tensor, condition: torch.Tensor, class_film: Sequence[nn.Module]
    ) -> list[torch.Tensor]:
        """One (B, width, T, 1) map per FiLM layer (the separator's :attr:`film` order), on the detector's grid."""
        embedded = self.embedding(self.query_rows(frame_logits, condition)[:, :, None])  # (B, T, E)
        layers = self.film if self.film is not None else class_film
        keep = (condition.abs().sum(dim=1) != 0).to(embedded.dtype)[:, None, None, None]
        return [layer(embedded).transpose(1, 2)[..., None] * keep for layer in layers]


class PathRNN(nn.Module):
    """A bidirectional GRU along one axis of a sequence batch, projected back to the input width."""

    def __init__(self, channels: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.rnn = nn.GRU(
            channels,
            hidden,
            num_layers=layers,
            dropout=dropout if layers > 1 else 0.0,
            batch_first=True,
            bidirectional=True,
        )
        self.proj = nn.Linear(2 * hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.rnn(x)[0])


class DualPathRNN(nn.Module):
    """(B, C, T, F) -> (B, C, T, F): blocks of a BiGRU along time then one along frequency, each projected back to C,
    group-normalised (one group) and added to its input; then PReLU and a 1x1 convolution (the reference's FaSNet
    DPRNN). Its dropout is the GRUs' between their stacked layers."""

    def __init__(
        self, channels: int, hidden: int = 256, blocks: int = 2, rnn_layers: int = 2, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.time_rnns = nn.ModuleList(PathRNN(channels, hidden, rnn_layers, dropout) for _ in range(blocks))
        self.freq_rnns = nn.ModuleList(PathRNN(channels, hidden, rnn_layers, dropout) for _ in range(blocks))
        self.time_norms = nn.ModuleList(nn.GroupNorm(1, channels, eps=DPRNN_NORM_EPS) for _ in range(blocks))
        self.freq_norms = nn.ModuleList(nn.GroupNorm(1, channels, eps=DPRNN_NORM_EPS) for _ in range(blocks))
        self.output = nn.Sequential(nn.PReLU(), nn.Conv2d(channels, channels, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, bins = x.shape
        paths = zip(self.time_rnns, self.time_norms, self.freq_rnns, self.freq_norms, strict=True)
        for time_rnn, time_norm, freq_rnn, freq_norm in paths:
            along_time = x.permute(0, 3, 2, 1).reshape(batch * bins, frames, channels)
            out = time_rnn(along_time).reshape(batch, bins, frames, channels).permute(0, 3, 2, 1)
            x = x + time_norm(out)
            along_freq = x.permute(0, 2, 3, 1).reshape(batch * frames, bins, channels)
            out = freq_rnn(along_freq).reshape(batch, frames, bins, channels).permute(0, 3, 1, 2)
            x = x + freq_norm(out)
        return self.output(x)


@dataclass
class Guidance:
    """What conditions one query's U-Net passes: FiLM biases and gates per level, the detector's hidden maps."""

    biases: list[list[torch.Tensor]]
    gates: list[list[torch.Tensor]] | None
    hidden: list[torch.Tensor]


# ---------------------------------------------------------------------------------------------------------------
# Separators
# ---------------------------------------------------------------------------------------------------------------


class GuidedResUNet(ResUNet):
    """One-label ResUNet with the options of the module docstring; without any it is a 2048/160 ResUNet.

    ``sed``, ``injection``, ``time_film`` and ``dprnn`` are config mappings (:class:`SEDSettings`,
    :class:`InjectionSettings`, :class:`TimeFiLMSettings`, :class:`DPRNNSettings`); ``None`` switches an option
    off, ``{}`` (or ``True``) switches it on with its defaults. ``feedback`` adds the iterative wrapper's fifth
    input (see :class:`IterativeGuidedResUNet`). Other keyword arguments are :class:`ResUNet`'s.
    """

    def __init__(
        self,
        in_channels: int = 4,
        n_classes: int = len(LABELS),
        *,
        sed: Mapping[str, Any] | None = None,
        injection: Mapping[str, Any] | bool | None = None,
        time_film: Mapping[str, Any] | bool | None = None,
        dprnn: Mapping[str, Any] | bool | None = None,
        feedback: bool = False,
        n_fft: int = GUIDED_N_FFT,
        hop: int = GUIDED_HOP,
        bn_momentum: float = BN_MOMENTUM,
        **resunet_args: Any,
    ) -> None:
        sed_settings = _sed_settings(sed)
        injection_settings = _settings(InjectionSettings, "injection", injection)
        time_film_settings = _settings(TimeFiLMSettings, "time_film", time_film)
        dprnn_settings = _settings(DPRNNSettings, "dprnn", dprnn)
        guided = injection_settings is not None or time_film_settings is not None
        if guided and sed_settings is None:
            raise ValueError("injection and time_film need a Stage-2 SED: set sed (model, model_args)")
        if sed_settings is not None and not guided:
            raise ValueError("the Stage-2 SED guides only through injection or time_film: enable one or drop sed")
        super().__init__(in_channels, n_classes, 1, n_fft=n_fft, hop=hop, bn_momentum=bn_momentum, **resunet_args)
        self.sed_settings = sed_settings
        self.sed: SoundEventDetector | None = None
        if sed_settings is not None:
            self.sed = build_registered(
                SEDS,
                sed_settings.model,
                source=CONFIG_SOURCE,
                section="separator.model_args.sed.",
                what="sound event detector",
                **dict(sed_settings.model_args),
            )
            self.sed.requires_grad_(sed_settings.trainable)
            if not sed_settings.train_heads:
                for head in self.sed.heads():
                    head.requires_grad_(False)
        width = self.bottleneck.block.bn2.num_features
        self.injection = None
        if injection_settings is not None:
            assert self.sed is not None
            self.injection = EmbeddingInjection(
                self.sed.n_hidden, self.sed.hidden_dim, width, injection_settings.merge, bn_momentum
            )
        condition_size = self.label_embedding[0].out_features
        self.time_film = None
        if time_film_settings is not None:
            self.time_film = TimeFiLM(condition_size, self._norm_widths(), time_film_settings)
        self.dprnn_position = None if dprnn_settings is None else dprnn_settings.position
        self.dprnn = None
        if dprnn_settings is not None:
            self.dprnn = DualPathRNN(
                width, dprnn_settings.hidden, dprnn_settings.blocks, dprnn_settings.rnn_layers, dprnn_settings.dropout
            )
        self.has_feedback = feedback
        if feedback:
            self._add_feedback_input(bn_momentum)

    def _add_feedback_input(self, bn_momentum: float) -> None:
        """A fifth ``pre_conv`` input with zero weights and its own bin BatchNorm: with a zero weight the
        feedback cannot change the output, so the first pass is the non-iterative network's (made last so that the
        other weights are drawn exactly as without feedback)."""
        self.bn0_fb = nn.BatchNorm2d(self.bn0.num_features, momentum=bn_momentum)
        old = self.pre_conv
        self.pre_conv = nn.Conv2d(old.in_channels + 1, old.out_channels, kernel_size=1)
        with torch.no_grad():
            self.pre_conv.weight.copy_(torch.cat((old.weight, torch.zeros_like(old.weight[:, :1])), dim=1))
            self.pre_conv.bias.copy_(old.bias)

    def train(self, mode: bool = True) -> GuidedResUNet:
        """A frozen Stage-2 SED stays in eval mode (its BatchNorm statistics fixed) whatever the separator's mode."""
        super().train(mode)
        if self.sed is not None and self.sed_settings is not None and not self.sed_settings.trainable:
            self.sed.eval()
        return self

    def run_sed(self, mixture: torch.Tensor) -> SEDOutput:
        """The Stage-2 SED on the mixture, with hidden maps when injecting; without gradients when frozen."""
        assert self.sed is not None and self.sed_settings is not None
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.sed_settings.trainable):
            return self.sed(mixture, hidden=self.injection is not None)

    def guide(self, mixture: torch.Tensor, condition: torch.Tensor, repeats: int = 1) -> Guidance:
        """Conditions of the U-Net for ``condition`` (B * repeats, n_classes) queries of ``mixture`` (B, C, N):
        the detector runs once per mixture, its outputs repeated for that mixture's ``repeats`` queries."""
        biases = self.film_biases(condition)
        if self.sed is None:
            return Guidance(biases, None, [])
        detected = self.run_sed(mixture).repeat_interleave(repeats)
        gates = None
        if self.time_film is not None:
            maps = self.group_by_level(self.time_film.maps(detected.strong_logits, condition, self.film))
            if self.time_film.settings.mode == "additive":
                biases = [[b + m for b, m in zip(bs, ms, strict=True)] for bs, ms in zip(biases, maps, strict=True)]
            else:
                gates = maps
        return Guidance(biases, gates, detected.hidden)

    def _centre(self, x: torch.Tensor, hidden: Sequence[torch.Tensor]) -> torch.Tensor:
        """The bottleneck's extras: DPRNN before or after the injection."""
        if self.dprnn is not None and self.dprnn_position == "pre":
            x = self.dprnn(x)
        if self.injection is not None:
            x = self.injection(x, hidden)
        if self.dprnn is not None and self.dprnn_position == "post":
            x = self.dprnn(x)
        return x

    def run_pass(
        self,
        spectra: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        length: int,
        guidance: Guidance,
        source_mask: torch.Tensor,
        feedback: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One U-Net pass: mixture spectra (:meth:`FrozenSTFT.analyse`), optional feedback (B, 1, N) -> (B, 1, N)."""
        magnitude, cos_in, sin_in = spectra
        extra = None
        if self.has_feedback:
            if feedback is None:
                feedback = magnitude.new_zeros(magnitude.shape[0], 1, length)
            extra = self.normalise_bins(self.stft.analyse(feedback)[0], self.bn0_fb)
        centre = partial(self._centre, hidden=guidance.hidden)
        logits = self._mask_logits(magnitude, guidance.biases, gates=guidance.gates, centre=centre, extra=extra)
        return self._masks_to_waves(logits, magnitude, cos_in, sin_in, length) * source_mask[:, :, None]

    def forward(
        self,
        mixture: torch.Tensor,
        condition: torch.Tensor,
        source_mask: torch.Tensor | None = None,
        *,
        guidance: Guidance | None = None,
    ) -> torch.Tensor:
        """Separate: mixture (B, C, N), one-hot query (B, n_classes) -> (B, 1, N); silent queries give zeros."""
        if source_mask is None:
            source_mask = self.slot_mask(condition)
        if guidance is None:
            guidance = self.guide(mixture, condition)
        return self.run_pass(self.stft.analyse(mixture), mixture.shape[-1], guidance, source_mask)

    def _separate_repeated(
        self, mixture: torch.Tensor, condition: torch.Tensor, source_mask: torch.Tensor, slots: int
    ) -> torch.Tensor:
        guidance = self.guide(mixture, condition, repeats=slots)
        return self(mixture.repeat_interleave(slots, dim=0), condition, source_mask, guidance=guidance)


class IterativeGuidedResUNet(GuidedResUNet):
    """:class:`GuidedResUNet` with iterative refinement: pass k sees pass k-1's estimate as a fifth input.

    The feedback is the previous mono estimate (zeros for the first pass), as a magnitude spectrogram with its own
    bin BatchNorm; masks and phases still apply to the mixture channels. Its ``pre_conv`` weights start at zero,
    so the first pass equals the non-iterative network at initialisation.

    Training: every forward pass draws ``n_iter`` uniformly from 1..``max_iterations`` (or takes the given one);
    the first ``n_iter - 1`` passes run without gradients and their estimates are fed back detached; the output,
    and so the loss, is the last pass's. The draw comes from ``iteration_seed`` and a counter kept as a buffer, so
    it is reproducible, resumes with a checkpoint and is the same on every distributed rank. Evaluation runs
    ``inference_iterations`` passes (default ``max_iterations``).
    """

    def __init__(
        self,
        in_channels: int = 4,
        n_classes: int = len(LABELS),
        *,
        max_iterations: int = 3,
        inference_iterations: int | None = None,
        iteration_seed: int = 0,
        **args: Any,
    ) -> None:
        if int(max_iterations) != max_iterations or max_iterations < 1:
            raise ValueError(f"max_iterations must be an integer of at least 1, got {max_iterations!r}")
        if inference_iterations is not None and (
            int(inference_iterations) != inference_iterations or inference_iterations < 1
        ):
            raise ValueError(f"inference_iterations must be an integer of at least 1, got {inference_iterations!r}")
        super().__init__(in_channels, n_classes, feedback=True, **args)
        self.max_iterations = int(max_iterations)
        self.inference_iterations = int(inference_iterations or max_iterations)
        self.iteration_seed = int(iteration_seed)
        self.register_buffer("iteration_draws", torch.zeros((), dtype=torch.long))

    def draw_iterations(self) -> int:
        """The next training pass count, uniform in 1..max_iterations, from (seed, draw counter)."""
        rng = np.random.default_rng([self.iteration_seed, int(self.iteration_draws)])
        self.iteration_draws += 1
        return int(rng.integers(1, self.max_iterations + 1))

    def forward(
        self,
        mixture: torch.Tensor,
        condition: torch.Tensor,
        source_mask: torch.Tensor | None = None,
        *,
        guidance: Guidance | None = None,
        n_iter: int | None = None,
    ) -> torch.Tensor:
        if n_iter is None:
            n_iter = self.draw_iterations() if self.training else self.inference_iterations
        if n_iter < 1:
            raise ValueError(f"n_iter must be at least 1, got {n_iter}")
        if source_mask is None:
            source_mask = self.slot_mask(condition)
        if guidance is None:
            guidance = self.guide(mixture, condition)
        spectra = self.stft.analyse(mixture)
        length = mixture.shape[-1]
        feedback = None
        for _ in range(n_iter - 1):
            with torch.no_grad():
                feedback = self.run_pass(spectra, length, guidance, source_mask, feedback).detach()
        return self.run_pass(spectra, length, guidance, source_mask, feedback)


def _sed_settings(values: Mapping[str, Any] | None) -> SEDSettings | None:
    if values is None:
        return None
    if not isinstance(values, Mapping) or "model" not in values:
        raise ValueError(f"sed must be a mapping with a model name (and model_args), got {values!r}")
    return _settings(SEDSettings, "sed", values)


# ---------------------------------------------------------------------------------------------------------------
# Pretrained weights
# ---------------------------------------------------------------------------------------------------------------

# Prefix of the separator in an AudioSep checkpoint's state dict (its Lightning module's ``ss_model``).
AUDIOSEP_PREFIX = "ss_model."
# Key patterns of our U-Net -> AudioSep's ``ResUNet30`` names (levels numbered from 1 there).
_AUDIOSEP_LEVEL_KEYS: tuple[tuple[str, str], ...] = (
    (r"encoder\.(\d+)\.block\.(.+)", "base.encoder_block{level}.conv_block1.{rest}"),
    (r"(bottleneck)\.block\.(.+)", "base.conv_block7a.conv_block1.{rest}"),
    (r"decoder\.(\d+)\.up\.(.+)", "base.decoder_block{level}.conv1.{rest}"),
    (r"decoder\.(\d+)\.bn1\.(.+)", "base.decoder_block{level}.bn1.{rest}"),
    (r"decoder\.(\d+)\.spare_bn\.(.+)", "base.decoder_block{level}.bn2.{rest}"),
    (r"decoder\.(\d+)\.block\.(.+)", "base.decoder_block{level}.conv_block2.{rest}"),
    (r"(bn0|pre_conv|after_conv)\.(.+)", "base.{name}.{rest}"),
)


def audiosep_film_names(model: ResUNet) -> list[str]:
    """AudioSep's name of every FiLM layer, in :attr:`ResUNet.film` order (its modules joined by ``->``)."""
    names = []
    for index, _level in enumerate(model.encoder, start=1):
        names += [f"encoder_block{index}->conv_block1->beta{k}" for k in (1, 2)]
    names += [f"conv_block7a->conv_block1->beta{k}" for k in (1, 2)]
    for index, level in enumerate(model.decoder, start=1):
        names.append(f"decoder_block{index}->beta1")
        if level.spare_bn is not None:
            names.append(f"decoder_block{index}->beta2")
        names += [f"decoder_block{index}->conv_block2->beta{k}" for k in (1, 2)]
    return names


def audiosep_key_map(model: ResUNet) -> dict[str, str]:
    """Our state-dict key -> AudioSep's, for every U-Net tensor AudioSep has (the fresh parts and any guided
    extras have none)."""
    film_names = audiosep_film_names(model)
    mapping = {}
    for key in model.state_dict():
        film = re.fullmatch(r"film\.(\d+)\.(weight|bias)", key)
        if film:
            mapping[key] = f"film.{film_names[int(film.group(1))]}.{film.group(2)}"
            continue
        for pattern, template in _AUDIOSEP_LEVEL_KEYS:
            match = re.fullmatch(pattern, key)
            if match:
                first, rest = match.groups()
                level = int(first) + 1 if first.isdigit() else 0
                mapping[key] = template.format(level=level, name=first, rest=rest)
                break
    return mapping


def tile_audiosep_state(model: ResUNet, audiosep: Mapping[str, torch.Tensor], where: str = "AudioSep state") -> dict:
    """Our U-Net's tensors from an AudioSep state dict (keys with or without ``ss_model.``).

    AudioSep is mono in and out: its ``pre_conv`` weight (W, 1, 1, 1) is tiled over the C mixture channels and
    divided by C (a mixture of identical channels then gives AudioSep's response), followed by a zero weight for a
    feedback input; its ``after_conv`` (3 mask components) is tiled over targets and channels. ``out_conv`` and
    the label MLP stay fresh. A missing key or a shape that does not fit is an :class:`InputError` naming ``where``.
    """
    stored = {k.removeprefix(AUDIOSEP_PREFIX): v for k, v in audiosep.items()}
    ours = model.state_dict()
    channels = model.in_channels
    out: dict[str, torch.Tensor] = {}
    for key, theirs in audiosep_key_map(model).items():
        if theirs not in stored:
            if key.endswith("num_batches_tracked"):
                continue
            raise InputError(where, "not an AudioSep ResUNet checkpoint: key missing", field=AUDIOSEP_PREFIX + theirs)
        value = stored[theirs]
        if key == "pre_conv.weight":
            tiled = value.repeat(1, channels, 1, 1) / channels
            extra = ours[key].shape[1] - channels  # the feedback input, if any
            value = torch.cat((tiled, torch.zeros_like(value).repeat(1, extra, 1, 1)), dim=1)
        elif key in ("after_conv.weight", "after_conv.bias"):
            repeats = ours[key].shape[0] // max(value.shape[0], 1)
            if value.shape[0] != MASK_COMPONENTS or repeats * MASK_COMPONENTS != ours[key].shape[0]:
                raise InputError(
                    where, f"after_conv of shape {tuple(value.shape)} is not mono AudioSep's", field=theirs
                )
            value = value.repeat(repeats, *([1] * (value.ndim - 1)))
        if value.shape != ours[key].shape:
            raise InputError(
                where, f"shape {tuple(value.shape)} does not fit the model's {tuple(ours[key].shape)}", field=theirs
            )
        out[key] = value
    return out


def _read_state(path: Path) -> Mapping[str, torch.Tensor]:
    """A checkpoint's state dict (under ``state_dict`` for a Lightning checkpoint such as AudioSep's).

    Read with ``weights_only=True``: tensors and plain containers only, never arbitrary pickled objects. A
    checkpoint that pickles other objects beside its weights is refused with a message saying how to convert it.
    """
    if not path.is_file():
        raise InputError(path, "checkpoint file not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a bad file; all mean "unreadable"
        raise InputError(
            path,
            f"cannot read as a weights-only PyTorch checkpoint ({exc}); if it pickles objects beside its weights, "
            "save its state_dict alone with torch.save and give that file",
        ) from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise InputError(path, "expected a state dict (mapping of names to tensors)")
    return state


def load_audiosep(model: ResUNet, path: str | PathLike[str]) -> dict[str, Any]:
    """Initialise the U-Net from an AudioSep checkpoint (``audiosep_base_4M_steps.ckpt``); returns a summary.

    Left as built (``fresh`` in the summary): the channel mixer ``out_conv`` (AudioSep is mono), the label MLP
    (AudioSep is queried by text embeddings) and every guided extra.
    """
    path = Path(path)
    state = tile_audiosep_state(model, _read_state(path), str(path))
    model.load_state_dict(state, strict=False)
    fresh = sorted({key.split(".")[0] for key in model.state_dict() if key not in state})
    return {"loaded": len(state), "fresh": fresh}


def load_guided_pretrained(
    model: GuidedResUNet,
    *,
    audiosep_checkpoint: str | PathLike[str] | None = None,
    sed_checkpoint: str | PathLike[str] | None = None,
) -> dict[str, Any]:
    """External weights of a guided separator: AudioSep into the U-Net, an M2D encoder into the Stage-2 SED."""
    from seldflow.models.taggers import load_m2d_weights

    summary: dict[str, Any] = {}
    if audiosep_checkpoint is not None:
        summary["audiosep"] = load_audiosep(model, audiosep_checkpoint)
    if sed_checkpoint is not None:
        if model.sed is None:
            raise ValueError("a Stage-2 SED checkpoint was given for a separator without a Stage-2 SED")
        summary["sed"] = load_m2d_weights(model.sed, sed_checkpoint)
    return summary


# ---------------------------------------------------------------------------------------------------------------
# Optimiser groups
# ---------------------------------------------------------------------------------------------------------------

# The U-Net parts an AudioSep checkpoint initialises (and the reference trains at the reduced rate).
PRETRAINED_PARTS = ("encoder", "bottleneck", "decoder", "film")


def guided_parameter_groups(
    model: GuidedResUNet,
    *,
    lr: float = 1e-3,
    pretrained_factor: float = 0.2,
    lr_dprnn: float = 5e-4,
    lr_sed: float = 4e-4,
    sed_layer_decay: float = 0.9,
    weight_decay: float = 0.0,
) -> list[dict]:
    """The reference's optimiser groups (every trainable parameter in exactly one):

    * ``pretrained``: U-Net levels and class FiLM layers, at ``lr * pretrained_factor`` (whether or not AudioSep
      initialised them, as in the reference);
    * ``dprnn`` at ``lr_dprnn``;
    * ``sed``: the trainable Stage-2 SED, its heads (when trained) at ``lr_sed`` and its backbone with layer decay
      ``sed_layer_decay`` from ``lr_sed`` (:func:`seldflow.models.sed.sed_parameter_groups`);
    * ``new``: everything else (input and output convolutions and norms, label and time MLPs, separate Time-FiLM
      layers, injection) at ``lr``.

    Each is split into weights with ``weight_decay`` and vectors without (0 in the reference).
    """
    taken: set[int] = set()

    def params_of(*modules: nn.Module | None) -> list[nn.Parameter]:
        found = [p for m in modules if m is not None for p in m.parameters()]
        taken.update(id(p) for p in found)
        return found

    groups = split_weight_decay(
        "pretrained",
        params_of(*(getattr(model, part) for part in PRETRAINED_PARTS)),
        lr * pretrained_factor,
        weight_decay,
    )
    groups += split_weight_decay("dprnn", params_of(model.dprnn), lr_dprnn, weight_decay)
    if model.sed is not None:
        params_of(model.sed)
        groups += sed_parameter_groups(model.sed, lr_sed, sed_layer_decay, weight_decay, name="sed")
    rest = [p for p in model.parameters() if id(p) not in taken]
    return groups + split_weight_decay("new", rest, lr, weight_decay)
