"""Sound event detector (SED) of the second-place Task 4 system: frame-wise (strong) and clip-wise (weak) outputs.

``SoundEventDetector.forward`` takes a waveform batch [B, N] or [B, C, N] at ``input_rate``, keeps channel
``ref_channel`` (W of the FOA mixture), resamples it to the front end's rate (16 kHz for M2D), computes the log-mel
"image" and encodes it into per-time-step features [B, T', D], which are average-pooled (more steps than frames)
or linearly interpolated (fewer) to the frame grid, ``round(duration * frame_rate)`` frames (250 per 10 s). Two
linear heads read every frame:

* strong: ``Linear(D, C)`` logits, sigmoid per frame -> frame probabilities [B, C, T];
* weak: ``Linear(D, C)`` logits turned into attention weights by a softmax, clamped to [1e-7, 1] as in the
  reference; the clip probability of class c is the weighted mean of its strong probabilities,
  ``p_c = sum_t strong_tc * w_tc / sum_t w_tc``.

Where the softmax runs (``weak_softmax``): ``"time"`` (default) normalises each class's weights over the frames,
attention pooling as the system description puts it; ``"classes"`` normalises each frame's weights over the
classes, which is what the reference code computes (its softmax runs over the last axis of [B, T, C]). Both make
``p_c`` a weighted mean of the strong row; they weigh frames differently.

Training (:func:`sed_loss`): ``0.5 * BCE(weak, multi-hot) + 0.5 * BCE(strong, frame labels)``, the frame labels
rasterised from the generator's on/offsets (:func:`seldflow.s5.vocabulary.frame_labels`).

For a separator's guidance the detector also returns the backbone's hidden outputs as [B, D_h, T', F'] maps
(``hidden=True``): for M2D the patch embedding and the 12 blocks (13 maps, D_h = 768), for the stand-in its stem
and blocks; the strong logits are the separator's Time-FiLM input.

Backbones (registry :data:`SEDS`): ``"m2d"`` - :class:`seldflow.models.m2d.M2DViT` over the 16-kHz M2D front end
(weights from a checkpoint path with :func:`seldflow.models.taggers.load_m2d_weights`); ``"standin"`` - a small
CNN of constant width (:class:`StandinSEDBackbone`) for CPU tests and demos, whose stem plays the patch embedding.
Both give :func:`sed_parameter_groups` their layers, input first, for layer-wise learning-rate decay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seldflow.models.m2d import M2DViT
from seldflow.models.param_groups import layer_decay_groups, split_weight_decay
from seldflow.models.registry import build_registered
from seldflow.models.resample import Resample
from seldflow.s5.tagging import LogMel, reference_channel, select_indices
from seldflow.s5.vocabulary import FRAME_RATE, LABELS, N_SLOTS, SILENCE, class_index, frame_count

CONFIG_SOURCE = "s5"
# The M2D 16-kHz front end (the PretrainedSED checkpoints' runtime): 25-ms windows, 10-ms hop, 80 mels to 8 kHz.
M2D_16K_FRONT_END: dict[str, Any] = {
    "sample_rate": 16_000,
    "n_fft": 400,
    "hop_length": 160,
    "n_mels": 80,
    "fmin": 50.0,
    "fmax": 8_000.0,
}
WEAK_SOFTMAX_AXES = ("time", "classes")
# Floor and ceiling of the attention weights (the reference clamps them before pooling).
ATTENTION_CLAMP = (1e-7, 1.0)
# Decision thresholds of the evaluation sweep.
SWEEP_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class SEDOutput:
    """What the detector returns: strong logits [B, C, T], clip probabilities [B, C], hidden maps (if asked)."""

    strong_logits: torch.Tensor
    weak: torch.Tensor
    hidden: list[torch.Tensor] = field(default_factory=list)

    @property
    def strong(self) -> torch.Tensor:
        """Frame probabilities [B, C, T]."""
        return torch.sigmoid(self.strong_logits)

    def repeat_interleave(self, repeats: int) -> SEDOutput:
        """Every batch item repeated ``repeats`` times in a row (one detector pass serving several queries)."""
        if repeats == 1:
            return self
        return SEDOutput(
            self.strong_logits.repeat_interleave(repeats, dim=0),
            self.weak.repeat_interleave(repeats, dim=0),
            [h.repeat_interleave(repeats, dim=0) for h in self.hidden],
        )


def attention_pool(strong: torch.Tensor, weak_logits: torch.Tensor, over: str = "time") -> torch.Tensor:
    """Clip probabilities [B, C] from frame probabilities and weak-head logits, both [B, T, C] (module docstring)."""
    if over not in WEAK_SOFTMAX_AXES:
        raise ValueError(f"weak_softmax must be one of {', '.join(WEAK_SOFTMAX_AXES)}, got {over!r}")
    weights = torch.softmax(weak_logits, dim=1 if over == "time" else 2).clamp(*ATTENTION_CLAMP)
    return (strong * weights).sum(dim=1) / weights.sum(dim=1)


def fit_frames(features: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, T', D] -> [B, frames, D]: adaptive average pooling when T' > frames, linear interpolation when fewer."""
    steps = features.shape[1]
    if steps == frames:
        return features
    x = features.transpose(1, 2)
    if steps > frames:
        x = F.adaptive_avg_pool1d(x, frames)
    else:
        x = F.interpolate(x, size=frames, mode="linear", align_corners=False)
    return x.transpose(1, 2)


class StandinResBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and ReLU and a residual connection; the width is kept."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(dim)
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(h)))


class StandinSEDBackbone(nn.Module):
    """Log-mel [B, 1, n_mels, T] -> features [B, T', dim * n_mels / patch[0]] and ``depth + 1`` hidden maps.

    A strided "patch" convolution (kernel = stride = ``patch``, (mel, frame)) makes a ``dim``-channel grid as M2D's
    patch embedding does; ``depth`` residual blocks keep it. Every map has the same width, which is what the
    separator's injection weighs and sums; the features stack a time step's frequency cells, as M2D stacks its
    frequency patches.
    """

    def __init__(self, n_mels: int, dim: int = 32, depth: int = 3, patch: Sequence[int] = (8, 4)) -> None:
        super().__init__()
        patch = tuple(int(v) for v in patch)
        if len(patch) != 2 or min(patch) < 1 or n_mels % patch[0]:
            raise ValueError(f"patch {list(patch)} must be two positive sizes, the first dividing n_mels {n_mels}")
        if dim < 1 or depth < 1:
            raise ValueError(f"dim and depth must be positive, got {dim} and {depth}")
        self.stem = nn.Sequential(nn.Conv2d(1, dim, kernel_size=patch, stride=patch), nn.BatchNorm2d(dim))
        self.blocks = nn.ModuleList(StandinResBlock(dim) for _ in range(depth))
        self.hidden_dim = dim
        self.n_hidden = depth + 1
        self.feature_dim = dim * (n_mels // patch[0])

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters by depth, input first: the stem shares the first block's group (as M2D's patch embedding)."""
        groups = [list(block.parameters()) for block in self.blocks]
        groups[0] = [*self.stem.parameters(), *groups[0]]
        return groups

    def forward_hidden(self, lms: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.stem(lms)
        hidden = [x]
        for block in self.blocks:
            x = block(x)
            hidden.append(x)
        batch, chans, rows, steps = x.shape
        features = x.permute(0, 3, 1, 2).reshape(batch, steps, chans * rows)
        return features, [h.transpose(2, 3) for h in hidden]  # maps [B, D, T', F']


class M2DSEDBackbone(M2DViT):
    """The M2D encoder with the interface the detector expects (hidden width and count)."""

    @property
    def hidden_dim(self) -> int:
        return self.embed_dim

    @property
    def n_hidden(self) -> int:
        return len(self.blocks) + 1


class SoundEventDetector(nn.Module):
    """Waveform -> :class:`SEDOutput`; see the module docstring."""

    def __init__(
        self,
        front_end: LogMel,
        backbone: nn.Module,
        n_classes: int = len(LABELS),
        *,
        input_rate: int = 32_000,
        ref_channel: int = 0,
        frame_rate: float = FRAME_RATE,
        head_norm: bool = False,
        weak_softmax: str = "time",
    ) -> None:
        super().__init__()
        if weak_softmax not in WEAK_SOFTMAX_AXES:
            raise ValueError(f"weak_softmax must be one of {', '.join(WEAK_SOFTMAX_AXES)}, got {weak_softmax!r}")
        if frame_rate <= 0:
            raise ValueError(f"frame_rate must be positive, got {frame_rate}")
        self.resample = Resample(input_rate, front_end.sample_rate)
        self.front_end = front_end
        self.backbone = backbone
        self.input_rate = input_rate
        self.ref_channel = ref_channel
        self.frame_rate = frame_rate
        self.weak_softmax = weak_softmax
        self.n_classes = n_classes
        # BatchNorm of the frame features without affine parameters (the reference's ``use_head_norm``).
        self.head_norm = nn.BatchNorm1d(backbone.feature_dim, affine=False) if head_norm else None
        self.strong_head = nn.Linear(backbone.feature_dim, n_classes)
        self.weak_head = nn.Linear(backbone.feature_dim, n_classes)

    @property
    def hidden_dim(self) -> int:
        return self.backbone.hidden_dim

    @property
    def n_hidden(self) -> int:
        return self.backbone.n_hidden

    def frames_for(self, samples: int) -> int:
        """Frames of a clip of ``samples`` input samples (250 for 10 s)."""
        return frame_count(samples / self.input_rate, self.frame_rate)

    def forward(self, wave: torch.Tensor, *, hidden: bool = False) -> SEDOutput:
        frames = self.frames_for(wave.shape[-1])
        lms = self.front_end(self.resample(reference_channel(wave, self.ref_channel)))
        features, maps = self.backbone.forward_hidden(lms)
        x = fit_frames(features, frames)
        if self.head_norm is not None:
            x = self.head_norm(x.transpose(1, 2)).transpose(1, 2)
        strong_logits = self.strong_head(x)
        weak = attention_pool(torch.sigmoid(strong_logits), self.weak_head(x), self.weak_softmax)
        return SEDOutput(strong_logits.transpose(1, 2), weak, maps if hidden else [])

    def heads(self) -> list[nn.Module]:
        return [self.strong_head, self.weak_head]


def sed_loss(
    output: SEDOutput, clip_targets: torch.Tensor, frame_targets: torch.Tensor, weak_weight: float = 0.5
) -> torch.Tensor:
    """``weak_weight * BCE(weak, multi-hot [B, C]) + (1 - weak_weight) * BCE(strong, frame labels [B, C, T])``.

    The strong term uses the logits (the same value as BCE on the sigmoid, without its saturation).
    """
    weak = F.binary_cross_entropy(output.weak.clamp(0.0, 1.0), clip_targets)
    strong = F.binary_cross_entropy_with_logits(output.strong_logits, frame_targets)
    return weak_weight * weak + (1.0 - weak_weight) * strong


def sed_parameter_groups(
    sed: SoundEventDetector, lr: float, layer_decay: float, weight_decay: float = 0.0, name: str = "sed"
) -> list[dict]:
    """The detector's groups: heads at ``lr``, backbone layer ``k`` of ``n`` (input first) at
    ``lr * layer_decay ** (n - k)`` (:func:`seldflow.models.param_groups.layer_decay_groups`). Frozen parameters
    (``requires_grad`` off) are left out."""
    heads = [p for head in sed.heads() for p in head.parameters()]
    groups = split_weight_decay(f"{name}.heads", heads, lr, weight_decay)
    return groups + layer_decay_groups(f"{name}.backbone", sed.backbone.layer_groups(), lr, layer_decay, weight_decay)


def threshold_sweep(
    probabilities: np.ndarray,
    references: Sequence[Sequence[str]],
    thresholds: Sequence[float] = SWEEP_THRESHOLDS,
    labels: Sequence[str] = LABELS,
    max_labels: int = N_SLOTS,
) -> dict[float, float]:
    """Label accuracy (% of clips whose selected class set equals the reference set) per decision threshold.

    ``probabilities`` [N, C] are clip probabilities; each threshold selects classes with the baseline rule
    (:func:`seldflow.s5.tagging.select_indices`: at least one, at most ``max_labels``); "silence" in a reference
    is ignored.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or len(probabilities) != len(references):
        raise ValueError(f"need [N, C] probabilities for {len(references)} references, got {probabilities.shape}")
    truth = [{class_index(label, labels) for label in ref if label != SILENCE} for ref in references]
    sweep = {}
    for threshold in thresholds:
        hits = [
            set(select_indices(row, threshold, 1, max_labels)) == ref
            for row, ref in zip(probabilities, truth, strict=True)
        ]
        sweep[float(threshold)] = 100.0 * float(np.mean(hits)) if hits else 0.0
    return sweep


def m2d_sed(
    n_classes: int = len(LABELS),
    input_rate: int = 32_000,
    ref_channel: int = 0,
    front_end: Mapping[str, Any] | None = None,
    unit_frames: int = 1001,
    patch_size: int = 16,
    embed_dim: int = 768,
    depth: int = 12,
    num_heads: int = 12,
    mlp_ratio: float = 4.0,
    frame_rate: float = FRAME_RATE,
    head_norm: bool = False,
    weak_softmax: str = "time",
) -> SoundEventDetector:
    """M2D detector; ``front_end`` holds :class:`LogMel` arguments (default: the 16-kHz M2D front end)."""
    mel = LogMel(**dict(front_end or M2D_16K_FRONT_END))
    backbone = M2DSEDBackbone(mel.n_mels, unit_frames, patch_size, embed_dim, depth, num_heads, mlp_ratio)
    return SoundEventDetector(
        mel,
        backbone,
        n_classes,
        input_rate=input_rate,
        ref_channel=ref_channel,
        frame_rate=frame_rate,
        head_norm=head_norm,
        weak_softmax=weak_softmax,
    )


def standin_sed(
    n_classes: int = len(LABELS),
    input_rate: int = 32_000,
    ref_channel: int = 0,
    front_end: Mapping[str, Any] | None = None,
    dim: int = 32,
    depth: int = 3,
    patch: Sequence[int] = (8, 4),
    frame_rate: float = FRAME_RATE,
    head_norm: bool = False,
    weak_softmax: str = "time",
) -> SoundEventDetector:
    """CPU stand-in detector: same front end, heads and outputs as :func:`m2d_sed`, a small CNN backbone."""
    mel = LogMel(**dict(front_end or M2D_16K_FRONT_END))
    return SoundEventDetector(
        mel,
        StandinSEDBackbone(mel.n_mels, dim, depth, patch),
        n_classes,
        input_rate=input_rate,
        ref_channel=ref_channel,
        frame_rate=frame_rate,
        head_norm=head_norm,
        weak_softmax=weak_softmax,
    )


SEDS: dict[str, Callable[..., SoundEventDetector]] = {"m2d": m2d_sed, "standin": standin_sed}


def build_sed(name: str, *, section: str = "sed.", **model_args: Any) -> SoundEventDetector:
    """Instantiate the registered detector ``name``; errors name ``<section>model`` / ``<section>model_args``."""
    return build_registered(
        SEDS, name, source=CONFIG_SOURCE, section=section, what="sound event detector", **model_args
    )
