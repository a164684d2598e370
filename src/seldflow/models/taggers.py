"""The S5 audio tagger (DCASE2025 Task 4 baseline ``M2dAt``): log-mel front end, backbone, BatchNorm + linear head.

``Tagger.forward`` takes a waveform batch [B, N] or [B, C, N] (only channel ``ref_channel``, W of the FOA mixture,
is used: the tagger ignores spatial cues), computes the log-mel "image", encodes it into per-time-step features
[B, T', D], averages them over time, normalises them with ``BatchNorm1d(D, affine=False)`` and maps them to class
logits with ``Linear(D, n_classes)``. The baseline applies the sigmoid inside and trains with BCE; here the logits
are returned so training can use the numerically safer ``BCEWithLogitsLoss`` (same loss, fused).

Backbones (registry :data:`TAGGERS`):

* ``"m2d"`` - the M2D ViT-Base encoder (:class:`seldflow.models.m2d.M2DViT`, D = 5 x 768 = 3840), weights from an
  M2D checkpoint with :func:`load_m2d_weights`. Too big to train on a CPU.
* ``"standin"`` - a small CNN over the same front end for CPU tests and demos (:class:`StandinCNN`): conv blocks
  that halve the frequency axis and keep the time axis, whose last output stacks channels x remaining mel rows per
  time step, as M2D stacks its frequency patches.

Fine-tuning stages (:func:`trainable_parameters`), the baseline's ``finetuning_layers``: ``"head"`` trains only the
head (the BatchNorm has no affine parameters, so only the Linear; its running statistics still update),
``"2_blocks"`` also the last two transformer blocks and the final LayerNorm (stand-in: its last two conv blocks),
``"all"`` everything. :func:`set_train_mode` puts frozen parts in eval mode. For M2D this equals the baseline,
which calls ``train()`` on the whole model, because the ViT has neither BatchNorm nor active dropout; for the
stand-in it keeps the frozen blocks' BatchNorm statistics fixed, which is what "frozen" must mean there.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seldflow.errors import ConfigError, InputError
from seldflow.models.m2d import M2DViT, n_blocks_of_stage
from seldflow.models.registry import build_registered
from seldflow.s5.tagging import LogMel, reference_channel
from seldflow.s5.vocabulary import LABELS

# The baseline initialises the new head's weights with a truncated normal of this tiny std (so the first
# predictions are the bias alone).
HEAD_INIT_STD = 2e-5
STAGES = ("head", "2_blocks", "all")
# How the stand-in reduces its time steps (see StandinCNN).
POOLINGS = ("mean", "max")
CONFIG_SOURCE = "s5"


class Tagger(nn.Module):
    """Waveform -> class logits [B, n_classes]; see the module docstring."""

    def __init__(self, front_end: LogMel, backbone: nn.Module, n_classes: int = len(LABELS), ref_channel: int = 0):
        super().__init__()
        self.front_end = front_end
        self.backbone = backbone
        self.ref_channel = ref_channel
        self.head_norm = nn.BatchNorm1d(backbone.feature_dim, affine=False)
        self.head = nn.Linear(backbone.feature_dim, n_classes)
        nn.init.trunc_normal_(self.head.weight, std=HEAD_INIT_STD, a=-2 * HEAD_INIT_STD, b=2 * HEAD_INIT_STD)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """Per-time-step backbone features [B, T', D]."""
        return self.backbone(self.front_end(reference_channel(wave, self.ref_channel)))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_norm(self.features(wave).mean(dim=1)))


class StandinBlock(nn.Module):
    """3x3 conv, BatchNorm, ReLU, then average-pool the frequency axis by 2 and the time axis by ``time_pool``."""

    def __init__(self, in_channels: int, out_channels: int, time_pool: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = nn.AvgPool2d(kernel_size=(2, time_pool), ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.bn(self.conv(x))))


class StandinCNN(nn.Module):
    """Log-mel [B, 1, n_mels, T] -> [B, T, channels[-1] * n_mels / 2**len(channels)].

    Frequency rows are stacked into the feature vector rather than averaged so that tones of different pitch stay
    distinguishable after the time average (a frequency average would make the CNN pitch-blind). ``time_pool`` > 1
    also pools time in every block, which widens the blocks' view from a few frames to the rhythm of beeps, steps
    and strikes. ``pooling="max"`` returns one time step, the maximum over time: a short event then weighs as much
    as a long one, where the tagger's own time average would dilute it by its duration.
    """

    def __init__(self, n_mels: int, channels: tuple[int, ...], time_pool: int, pooling: str) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or n_mels % 2 ** len(channels):
            raise ValueError(f"n_mels {n_mels} must be divisible by 2**{len(channels)} (one halving per block)")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r} is not one of {', '.join(POOLINGS)}")
        widths = (1, *channels)
        self.blocks = nn.ModuleList(StandinBlock(a, b, int(time_pool)) for a, b in itertools.pairwise(widths))
        self.feature_dim = channels[-1] * (n_mels // 2 ** len(channels))
        self.pooling = pooling

    def stage_modules(self, stage: str) -> list[nn.Module]:
        """``"<n>_blocks"`` trains the last n conv blocks (the stand-in has no final norm), ``"all"`` everything."""
        if stage == "all":
            return [self]
        n_blocks = n_blocks_of_stage(stage, len(self.blocks))
        return list(self.blocks[len(self.blocks) - n_blocks :])

    def forward(self, lms: torch.Tensor) -> torch.Tensor:
        x = lms
        for block in self.blocks:
            x = block(x)
        batch, chans, rows, frames = x.shape
        features = x.permute(0, 3, 1, 2).reshape(batch, frames, chans * rows)
        return features.amax(dim=1, keepdim=True) if self.pooling == "max" else features


def m2d_tagger(
    n_classes: int = len(LABELS),
    ref_channel: int = 0,
    front_end: Mapping[str, Any] | None = None,
    unit_frames: int = 1001,
    patch_size: int = 16,
    embed_dim: int = 768,
    depth: int = 12,
    num_heads: int = 12,
    mlp_ratio: float = 4.0,
) -> Tagger:
    """M2D tagger; ``front_end`` holds :class:`LogMel` arguments (defaults: the baseline's 32-kHz front end)."""
    mel = LogMel(**dict(front_end or {}))
    backbone = M2DViT(mel.n_mels, unit_frames, patch_size, embed_dim, depth, num_heads, mlp_ratio)
    return Tagger(mel, backbone, n_classes, ref_channel)


def standin_tagger(
    n_classes: int = len(LABELS),
    ref_channel: int = 0,
    front_end: Mapping[str, Any] | None = None,
    channels: tuple[int, ...] | list[int] = (16, 32, 64),
    time_pool: int = 2,
    pooling: str = "max",
) -> Tagger:
    """CPU stand-in tagger: same front end and head as :func:`m2d_tagger`, :class:`StandinCNN` backbone.

    The defaults are the demo's design, kept here rather than in ``config.yaml`` because a dataset config layered
    over it could not remove stand-in keys that the M2D tagger does not take.
    """
    mel = LogMel(**dict(front_end or {}))
    return Tagger(mel, StandinCNN(mel.n_mels, tuple(channels), time_pool, pooling), n_classes, ref_channel)


TAGGERS: dict[str, Callable[..., Tagger]] = {"m2d": m2d_tagger, "standin": standin_tagger}


def build_tagger(name: str, **model_args: Any) -> Tagger:
    """Instantiate the registered tagger ``name`` (config ``tagger.model``) with ``tagger.model_args``."""
    return build_registered(TAGGERS, name, source=CONFIG_SOURCE, section="tagger.", what="tagger", **model_args)


def stage_modules(tagger: Tagger, stage: str) -> list[nn.Module]:
    """Modules trained in ``stage``: the backbone's part (see its ``stage_modules``) plus the head."""
    try:
        backbone_part = tagger.backbone.stage_modules(stage)
    except ValueError as exc:
        raise ConfigError(CONFIG_SOURCE, "tagger.stage", str(exc)) from None
    return [*backbone_part, tagger.head_norm, tagger.head]


def trainable_parameters(tagger: Tagger, stage: str) -> list[nn.Parameter]:
    """Freeze everything outside ``stage`` (``requires_grad``) and return the parameters left trainable."""
    tagger.requires_grad_(False)
    for module in stage_modules(tagger, stage):
        module.requires_grad_(True)
    return [p for p in tagger.parameters() if p.requires_grad]


def set_train_mode(tagger: Tagger, stage: str) -> None:
    """Train mode for the parts ``stage`` trains, eval mode for the frozen rest (see the module docstring)."""
    tagger.eval()
    for module in stage_modules(tagger, stage):
        module.train()


def count_trainable(tagger: nn.Module) -> int:
    return sum(p.numel() for p in tagger.parameters() if p.requires_grad)


def parameter_counts(name: str = "m2d", stages: tuple[str, ...] = STAGES, **model_args: Any) -> dict[str, int]:
    """Backbone and head sizes and the trainable count of each stage, built on the ``meta`` device (no storage).

    Keys ``backbone``, ``head`` and ``trainable_<stage>``. For the default M2D ViT-Base: backbone 85.49 M (position
    table and class token included), head 69,138 (3840 x 18 + 18); ``"2_blocks"`` trains 14.18 M more than
    ``"head"``.
    """
    with torch.device("meta"):
        tagger = build_tagger(name, **model_args)
    counts = {
        "backbone": sum(p.numel() for p in tagger.backbone.parameters()),
        "head": sum(p.numel() for p in tagger.head.parameters()),
    }
    for stage in stages:
        trainable_parameters(tagger, stage)
        counts[f"trainable_{stage}"] = count_trainable(tagger)
    return counts


# Key prefixes of M2D checkpoints: EVAR fine-tuning wraps the encoder as ``module.ar.runtime.backbone``; DDP adds
# ``module.``; the portable runtime keeps the encoder under ``backbone.``; the PretrainedSED checkpoints (the
# second-place system's SED) keep the runtime under ``model.`` or ``model.m2d.``.
M2D_KEY_PREFIXES = ("module.ar.runtime.backbone.", "module.", "model.m2d.backbone.", "model.backbone.", "backbone.")
# An EVAR fine-tuned checkpoint's head BatchNorm statistics; the baseline's PortableM2D copies them into its
# head_norm (the 527-class AudioSet head itself is replaced by the new 18-class Linear).
EVAR_HEAD_NORM = {"running_mean": "module.head.norm.running_mean", "running_var": "module.head.norm.running_var"}
NORM_STATS_KEY = "norm_stats"


def _read_checkpoint(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise InputError(path, "M2D checkpoint file not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a bad file; all mean "unreadable"
        raise InputError(path, f"cannot read as a PyTorch checkpoint: {exc}") from None
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("model"), Mapping):
        checkpoint = checkpoint["model"]
    if not isinstance(checkpoint, Mapping):
        raise InputError(path, f"expected a state dict (mapping of names to tensors), got {type(checkpoint).__name__}")
    return checkpoint


def _strip_prefix(key: str) -> str:
    if key.startswith("module.head."):
        return key
    for prefix in M2D_KEY_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _fit_pos_embed(stored: torch.Tensor, backbone: M2DViT) -> torch.Tensor:
    """Crop a checkpoint's position table made for a longer unit (same frequency grid) to the backbone's unit."""
    want = backbone.pos_embed.shape
    n_freq, n_time = backbone.grid
    stored_time = (stored.shape[1] - 1) // n_freq if stored.dim() == 3 else -1
    if stored.shape == want or stored.dim() != 3 or stored.shape[2] != want[2] or stored_time <= n_time:
        return stored
    if 1 + n_freq * stored_time != stored.shape[1]:
        return stored
    grid = stored[:, 1:, :].reshape(1, n_freq, stored_time, -1)[:, :, :n_time, :].reshape(1, n_freq * n_time, -1)
    return torch.cat([stored[:, :1, :], grid], dim=1)


def load_m2d_weights(tagger: nn.Module, path: str | PathLike[str]) -> dict[str, Any]:
    """Copy an M2D encoder checkpoint (e.g. ``.../m2d_as_vit_base-80x1001p16x16p32k-..._enconly/weights_ep*.pth``).

    Accepted layouts: a bare encoder state dict (``cls_token``, ``pos_embed``, ``patch_embed.proj.weight``,
    ``blocks.<i>.attn.qkv.weight``, ``norm.weight``, ``norm_stats``, ...), optionally under ``"model"`` and with
    one of :data:`M2D_KEY_PREFIXES`. Keys the encoder does not have (decoder, offline predictor, AudioSet head) are
    ignored. ``norm_stats`` ([mean, std]), when present, replaces the front end's normalisation statistics; an EVAR
    head's BatchNorm statistics, when present, initialise ``head_norm`` (when the network has one: any module with
    an M2D ``backbone`` and a ``front_end`` loads, the S5 sound event detector too). A position table for a longer
    unit is cropped in time, as M2D's runtime does. Returns a summary: loaded key count, ignored keys, the statistics
    used. Errors name the file: missing, unreadable, not a state dict, missing keys, shape mismatch.
    """
    path = Path(path)
    backbone = tagger.backbone
    if not isinstance(backbone, M2DViT):
        raise ValueError(f"load_m2d_weights needs an M2D tagger, got backbone {type(backbone).__name__}")
    raw = _read_checkpoint(path)
    stored = {_strip_prefix(str(k)): v for k, v in raw.items()}
    wanted = backbone.state_dict()
    missing = [k for k in wanted if k not in stored]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise InputError(
            path, f"not an M2D encoder checkpoint: {len(missing)} keys missing ({shown})", field=missing[0]
        )
    selected = {k: stored[k] for k in wanted}
    selected["pos_embed"] = _fit_pos_embed(selected["pos_embed"], backbone)
    for key, value in selected.items():
        if not isinstance(value, torch.Tensor) or value.shape != wanted[key].shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise InputError(path, f"shape {shape} does not fit the model's {tuple(wanted[key].shape)}", field=key)
    backbone.load_state_dict(selected)
    used = {*selected, NORM_STATS_KEY, *EVAR_HEAD_NORM.values()}
    summary: dict[str, Any] = {"loaded": len(selected), "ignored": sorted(set(stored) - used)}
    summary["norm_stats"] = _load_norm_stats(path, stored.get(NORM_STATS_KEY), tagger.front_end)
    head_norm = getattr(tagger, "head_norm", None)
    summary["head_norm"] = head_norm is not None and _load_head_norm(path, raw, head_norm)
    return summary


def _load_norm_stats(path: Path, stats: Any, front_end: LogMel) -> tuple[float, float]:
    if stats is not None:
        if not isinstance(stats, torch.Tensor) or stats.numel() != 2 or float(stats.flatten()[1]) <= 0:
            raise InputError(path, "norm_stats must be [mean, std] with std > 0", field=NORM_STATS_KEY)
        with torch.no_grad():
            front_end.norm_mean.fill_(float(stats.flatten()[0]))
            front_end.norm_std.fill_(float(stats.flatten()[1]))
    return float(front_end.norm_mean), float(front_end.norm_std)


def _load_head_norm(path: Path, raw: Mapping[str, Any], head_norm: nn.BatchNorm1d) -> bool:
    if not all(key in raw for key in EVAR_HEAD_NORM.values()):
        return False
    for name, key in EVAR_HEAD_NORM.items():
        target = getattr(head_norm, name)
        if raw[key].shape != target.shape:
            raise InputError(path, f"shape {tuple(raw[key].shape)} does not fit {tuple(target.shape)}", field=key)
        with torch.no_grad():
            target.copy_(raw[key])
    return True
