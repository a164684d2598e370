"""AudioSet initialisation: the encoders of the SELD zoo from AudioSet-trained checkpoints, as PSELDNets starts them.

``train.pretrained_audioset`` names a file the user has; nothing is downloaded. It is read like the PSELDNets
checkpoints (:func:`seldflow.models.transfer.read_checkpoint`: ``weights_only``, errors naming the file) and
reported the same way (:class:`~seldflow.models.transfer.TransferReport`: loaded, adapted, left fresh, skipped).
Three layouts, one per model family, after PSELDNets' ``load_ckpts`` (``audioset_pretrain=True`` branches of
``src/models/accdoa.py``):

* **PANNs CNN14** (``Cnn14_mAP=0.431.pth``) for the CNN14 family: ``{"model": state dict}`` with ``bn0.*``,
  ``conv_block<1-6>.{conv1,bn1,conv2,bn2}.*``, ``fc1.*``, ``fc_audioset.*`` and the front end
  (``spectrogram_extractor.*``, ``logmel_extractor.*``). ``convs.<key>`` <- ``<key>``; every channel's scalar
  ``scalar.<c>.*`` <- ``bn0.*`` (affine weights and running statistics); the decoder and ``fc`` stay fresh;
  ``fc1``, ``fc_audioset`` and the front end are skipped.
* **HTS-AT** (``HTSAT-fullset-imagenet-768d-32000hz.ckpt``) for ``htsat``: a Lightning file, ``{"state_dict":
  {"sed_model.<key>": ...}}``. ``encoder.<key>`` <- ``sed_model.<key>``; ``scalar.<c>.*`` <- ``sed_model.bn0.*``;
  ``tscam_conv`` stays fresh; the AudioSet ``tscam_conv``, ``head`` and front end are skipped; the stored
  relative-position indices and shift masks are unused (seldflow rebuilds them).
* **PaSST** (``passt-l-kd-ap.47``) for ``passt``: a bare state dict in timm ViT names (a Lightning ``state_dict``
  entry is unwrapped too). ``encoder.<key>`` <- ``<key>`` including ``head.0`` (the LayerNorm PSELDNets keeps);
  ``head.1`` and ``head_dist`` (the 527-class classifiers) are skipped; the scalars (PaSST has no ``bn0``) and ``fc``
  stay fresh. The position tables are fitted to the model's grid: the centred part when the checkpoint has more
  positions (12 frequency rows for 128 mels -> rows 3-8 for 64), bilinear interpolation when it has fewer (99 time
  columns for 998 frames -> 100 for 1001; ``align_corners=False``). PSELDNets interpolates a short frequency table
  to the shape ``(1, rows)``, which cannot fit its ``(rows, 1)`` table; here it is interpolated along the rows.

Single-channel input kernels become ``C``-channel ones by repeating the AudioSet kernel over the ``C`` input
channels and dividing by ``C`` (CNN14's ``conv_block1.conv1``, the HTS-AT and PaSST patch embeddings), so a clip
whose channels are all equal starts with the AudioSet response. A checkpoint without a key the model needs is
one :class:`InputError` naming the file and the key; a tensor whose shape does not fit, too (see
:func:`~seldflow.models.transfer.copy_checked`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seldflow.errors import ConfigError, InputError
from seldflow.models.cnn14 import CNN14SELD
from seldflow.models.htsat import HTSAT
from seldflow.models.passt import PaSST
from seldflow.models.transfer import DERIVED_SUFFIXES, TransferReport, copy_checked, read_checkpoint

# (checkpoint tensor, the model's tensor) -> the value to copy.
Adapter = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_SCALAR = re.compile(r"scalar\.\d+\.(.+)")


def spread_over_channels(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A single-channel kernel ``(out, 1, ...)`` repeated over the model's ``C`` input channels, divided by ``C``."""
    channels = target.shape[1]
    return value.repeat(1, channels, *([1] * (value.ndim - 2))) / channels


def fit_positions(axis: int) -> Adapter:
    """Fit a ``(1, D, rows, columns)`` position table along ``axis`` (2 rows, 3 columns) to the model's length:
    the centred part of a longer table, a bilinear interpolation (``align_corners=False``) of a shorter one."""

    def fit(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if value.ndim != 4 or target.ndim != 4:
            return value  # the shape check reports it
        have, want = value.shape[axis], target.shape[axis]
        if have >= want:
            return value.narrow(axis, (have - want) // 2, want)
        size = tuple(want if dim == axis else value.shape[dim] for dim in (2, 3))
        return F.interpolate(value.float(), size=size, mode="bilinear", align_corners=False)

    return fit


def _under(prefix: str) -> Callable[[str], str | None]:
    """Model keys below ``prefix`` come from the checkpoint key without it; other keys stay fresh."""
    return lambda key: key[len(prefix) :] if key.startswith(prefix) else None


def _scalars_from_bn0(inner: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """Every channel's ``scalar.<c>.<p>`` from the checkpoint's input BatchNorm ``bn0.<p>``; other keys by ``inner``."""

    def source(key: str) -> str | None:
        match = _SCALAR.fullmatch(key)
        return f"bn0.{match.group(1)}" if match else inner(key)

    return source


@dataclass(frozen=True)
class AudioSetLayout:
    """An AudioSet checkpoint family: where its state dict sits, and which checkpoint key feeds each model key.

    ``entry``: the top-level key holding the state dict (``None``: the file is the state dict); ``prefix``: stripped
    from the checkpoint's keys; ``source``: model key -> checkpoint key, ``None`` for a key left fresh;
    ``adapters``: model key -> how the checkpoint tensor becomes the model's.
    """

    name: str
    entry: str | None
    prefix: str
    source: Callable[[str], str | None]
    adapters: Mapping[str, Adapter] = field(default_factory=dict)

    def state_dict(self, path: Path, checkpoint: Any) -> dict[str, torch.Tensor]:
        """The checkpoint's tensors with ``prefix`` removed; errors name the file and the missing entry."""
        if self.entry is not None:
            if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get(self.entry), Mapping):
                raise InputError(
                    path, f"not a {self.name} checkpoint: no {self.entry!r} entry holding the weights", field=self.entry
                )
            checkpoint = checkpoint[self.entry]
        elif isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping):
            checkpoint = checkpoint["state_dict"]
        if not isinstance(checkpoint, Mapping):
            raise InputError(path, f"not a {self.name} checkpoint (no state dict of tensors)")
        tensors = {key: value for key, value in checkpoint.items() if isinstance(value, torch.Tensor)}
        return {key.removeprefix(self.prefix): value for key, value in tensors.items() if isinstance(key, str)}


AUDIOSET_LAYOUTS: dict[type[nn.Module], AudioSetLayout] = {
    CNN14SELD: AudioSetLayout(
        "PANNs CNN14",
        entry="model",
        prefix="",
        source=_scalars_from_bn0(_under("convs.")),
        adapters={"convs.conv_block1.conv1.weight": spread_over_channels},
    ),
    HTSAT: AudioSetLayout(
        "HTS-AT AudioSet",
        entry="state_dict",
        prefix="sed_model.",
        source=_scalars_from_bn0(_under("encoder.")),
        adapters={"encoder.patch_embed.proj.weight": spread_over_channels},
    ),
    PaSST: AudioSetLayout(
        "PaSST AudioSet",
        entry=None,
        prefix="",
        source=_under("encoder."),
        adapters={
            "encoder.patch_embed.proj.weight": spread_over_channels,
            "encoder.freq_new_pos_embed": fit_positions(2),
            "encoder.time_new_pos_embed": fit_positions(3),
        },
    ),
}


def audioset_layout(model: nn.Module) -> AudioSetLayout:
    """The AudioSet layout that initialises ``model``; a :class:`ConfigError` for a model without one."""
    for family, layout in AUDIOSET_LAYOUTS.items():
        if isinstance(model, family):
            return layout
    raise ConfigError(
        "train",
        "pretrained_audioset",
        f"AudioSet weights fit the CNN14 family (PANNs), htsat (HTS-AT) and passt (PaSST), not {type(model).__name__}",
    )


def check_audioset_model(model_name: str, *, source: str = "config", key: str = "train.pretrained_audioset") -> None:
    """Refuse, before any job runs, AudioSet initialisation of a ``train.model`` that has no AudioSet layout."""
    from seldflow.models import build_model  # the registry imports this module's neighbours

    with torch.device("meta"):
        model = build_model(model_name, 7)
    try:
        audioset_layout(model)
    except ConfigError as exc:
        raise ConfigError(source, key, exc.message) from None


def load_audioset(model: nn.Module, path: str | PathLike[str]) -> TransferReport:
    """Initialise ``model`` (in place) from the AudioSet checkpoint ``path`` of its family; see the module docstring."""
    layout = audioset_layout(model)
    path = Path(path)
    state = layout.state_dict(path, read_checkpoint(path))
    report = TransferReport(str(path), type(model).__name__, source="AudioSet")
    own = model.state_dict()
    updates: dict[str, torch.Tensor] = {}
    wanted: set[str] = set()
    for key, target in own.items():
        name = layout.source(key)
        if name is None:
            report.initialised.append(key)
            continue
        if name not in state:
            absent = [k for k in own if (n := layout.source(k)) is not None and n not in state]
            raise InputError(
                path,
                f"not a {layout.name} checkpoint: {layout.prefix + name!r} is missing "
                f"({len(absent)} of the tensors {type(model).__name__} needs are)",
                field=layout.prefix + name,
            )
        wanted.add(name)
        adapter = layout.adapters.get(key)
        updates[key] = state[name] if adapter is None else adapter(state[name], target)
        if adapter is not None:
            report.adapted.append(key)
    for name in state:
        if name not in wanted:
            (report.unused if name.endswith(DERIVED_SUFFIXES) else report.skipped).append(layout.prefix + name)
    copy_checked(model, path, updates, report)
    return report


__all__ = [
    "AUDIOSET_LAYOUTS",
    "AudioSetLayout",
    "audioset_layout",
    "check_audioset_model",
    "fit_positions",
    "load_audioset",
    "spread_over_channels",
]
