"""Checkpoint transfer: PSELDNets pretrained weights for fine-tuning, released stereo models for inference.

A pretraining experiment's own checkpoint initialises its fine-tunings through :func:`load_pretrained` (every
tensor of the same name and shape, the output head re-initialised on request when the vocabularies differ).
Two kinds of foreign checkpoint are read, always with ``torch.load(map_location="cpu", weights_only=True)`` (tensors
and plain types only; numpy scalars, which the seed's training loop stores as metrics, are the one extra type
allowed) and never downloaded: the caller gives a path.

**PSELDNets checkpoints** (``mACCDOA-CNN14-Conformer-0.582.ckpt``, ``mACCDOA-HTSAT-0.567.ckpt``) are PyTorch
Lightning files, ``{"state_dict": {"net.<module>...": tensor}, ...}`` (``net._orig_mod.`` when the network was
compiled); a bare state dict is accepted too. :func:`load_pseldnet` copies into a freshly built seldflow model what
the DCASE2025 stereo seed system copies (``CRNN.load_ckpts`` / ``HTSAT.load_ckpts``, non-AudioSet branch):

* CNN14 family: only the BatchNorm scalars (``scalar.*``) and the encoder (``convs.*``). The reference loads before
  its decoder and ``fc`` exist, so those start from random initialisation; so do they here.
* HTSAT: every model key except ``fc.*``, ``head.*``, ``tscam_conv.*`` and keys containing ``lora`` or
  ``adapter`` (the 117-output ``tscam_conv`` is new).
* PaSST (``mACCDOA-PaSST-0.562.ckpt``): every model key except ``fc.*`` (PSELDNets' ``PASST.load_ckpts``); the
  HTSAT rule selects exactly these, as PaSST has no top-level ``head``, ``tscam_conv``, LoRA or adapter keys.

Module names of :mod:`seldflow.models.cnn14`, :mod:`seldflow.models.htsat` and :mod:`seldflow.models.passt` are
the PSELDNets names, so no key renaming is needed; the checkpoint's derived buffers (``attn.relative_position_index``,
``attn_mask``), which seldflow rebuilds instead of storing, are reported as unused. AudioSet checkpoints (PANNs,
HTS-AT, PaSST) are read by :mod:`seldflow.models.audioset` with the same report.

**Released stereo checkpoints** of the seed system (``pretrained_ckpts/<EXP>/best_model.pth``, written by its
``main.py`` as ``{"seld_model": model.state_dict(), "opt": ..., "epoch": ..., "best_f_score": ...}``) hold the whole
``ConvConformer_Multi`` or ``HTSAT_multi`` model. :func:`load_released_stereo` maps their keys onto the seldflow
zoo model (detected from the keys unless named) and infers the model arguments from the tensor shapes;
:func:`convert_released_checkpoint` writes the result as a seldflow checkpoint that ``seldflow.infer`` (the
``infer`` rule, ``seldflow predict``) reads like a trained one. Key mapping, reference -> seldflow:

* ``decoder.decoder.<rest>`` -> ``decoder.<rest>`` (the seed wraps every decoder in a ``Decoder`` module);
  ``scalar.*``, ``convs.*``, ``fc.*``, ``encoder.*``, ``tscam_conv.*`` and the BiMamba / BiMamba-AC decoder
  internals keep their names.
* Conformer blocks (``decoder.layers.<i>.sequential.<j>.module``; ConBiMamba: ``decoder.layers.<i>.<j>.module``)
  -> ``decoder.blocks.<i>.<part>`` with ``j`` = 0 ``ff_in``, 1 ``mixer``, 2 ``conv``, 3 ``ff_out``, 4 ``norm``:

  - feed-forward ``sequential.{0,1,4}`` -> ``net.{0,1,4}`` (LayerNorm, Linear, Linear);
  - attention ``layer_norm`` -> ``norm``, ``attention.{query,key,value,pos,out}_proj`` ->
    ``{query,key,value,position,out}``, ``attention.u_bias`` -> ``content_bias``, ``attention.v_bias`` ->
    ``position_bias``; ``positional_encoding.pe`` (a fixed sinusoid table) is dropped; a BiMamba mixer keeps its
    inner names;
  - convolution ``sequential.0`` -> ``norm``, ``sequential.2.conv`` -> ``pointwise_in`` (kernel-1 ``Conv1d`` weight
    ``(2d, d, 1)`` squeezed to the ``Linear`` weight ``(2d, d)``), ``sequential.4.conv`` -> ``depthwise``,
    ``sequential.5`` -> ``batch_norm``, ``sequential.7.conv`` -> ``pointwise_out`` (squeezed).

Numerical caveats for released CNN14 models (see :mod:`seldflow.models.cnn14` and :mod:`seldflow.models.conformer`):
seldflow emits 50 label frames where the reference emits 49, and its relative-position attention scales and
indexes positions differently, so a released CNN14-Conformer gives close but not identical outputs; HTSAT and the
Mamba decoders use the same functions as the reference.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from seldflow.errors import ConfigError, InputError
from seldflow.io import atomic_file
from seldflow.models.cnn14 import CNN14SELD
from seldflow.models.htsat import HTSAT
from seldflow.models.passt import PaSST

# Prefixes PyTorch Lightning (``net.``), torch.compile (``_orig_mod.``) and DataParallel (``module.``) put in front
# of the network's own names.
_PSELDNET_PREFIXES = ("net.", "_orig_mod.")
_RELEASED_PREFIXES = ("module.", "_orig_mod.")
_HTSAT_EXCLUDED_PREFIXES = ("fc.", "head.", "tscam_conv.")
_HTSAT_EXCLUDED_WORDS = ("lora", "adapter")
_CNN14_COPIED_PREFIXES = ("scalar.", "convs.")
# Buffers the references store but seldflow recomputes (and does not keep in its state dicts).
DERIVED_SUFFIXES = ("relative_position_index", "attn_mask", "positional_encoding.pe")


@dataclass
class TransferReport:
    """What :func:`load_pseldnet` did with each tensor.

    ``loaded``: model keys copied from the checkpoint. ``skipped``: checkpoint keys deliberately not copied (the
    reference's exclusion rules: decoder and ``fc`` for CNN14, ``fc``/``head``/``tscam_conv``/LoRA/adapter keys for
    HTSAT). ``missing``: model keys the rules would copy but the checkpoint lacks (they keep their initialisation).
    ``unused``: checkpoint keys that name nothing in the model (e.g. derived buffers seldflow rebuilds).
    ``initialised``: model keys left at their fresh initialisation on purpose (decoder, ``fc``, ``tscam_conv``).
    ``adapted``: loaded model keys whose values were transformed on the way (AudioSet initialisation: input patch
    weights spread over the input channels, position tables cut or interpolated; see
    :mod:`seldflow.models.audioset`). ``source`` names the kind of checkpoint in the summary.
    """

    path: str
    model: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    initialised: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    loaded_values: int = 0
    source: str = "pretrained"

    def summary(self) -> str:
        """A few readable lines for the training log."""
        lines = [
            f"{self.source} {self.path} -> {self.model}: loaded {len(self.loaded)} tensors "
            f"({self.loaded_values:,} values, {len(self.adapted)} adapted); {len(self.initialised)} model tensors "
            f"keep their fresh initialisation; {len(self.skipped)} checkpoint tensors skipped by rule; "
            f"{len(self.unused)} unused; {len(self.missing)} missing"
        ]
        for title, keys in (
            ("adapted", self.adapted),
            ("initialised", self.initialised),
            ("skipped", self.skipped),
            ("unused", self.unused),
            ("missing", self.missing),
        ):
            if keys:
                lines.append(f"  {title}: {_abbreviate(keys)}")
        return "\n".join(lines)


def _abbreviate(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown if len(keys) <= limit else f"{shown}, ... ({len(keys) - limit} more)"


# ---------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------


def _numpy_scalar_globals() -> list[Any]:
    """The numpy types a pickled numpy scalar needs (``best_f_score`` and friends in the seed's checkpoints)."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    dtypes = {type(np.dtype(kind)) for kind in ("f8", "f4", "i8", "i4", "b")}
    return [scalar, np.dtype, *dtypes]


def read_checkpoint(path: str | PathLike[str]) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            if "numpy" not in str(exc):
                raise
            with torch.serialization.safe_globals(_numpy_scalar_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and runtime errors all mean "not a readable checkpoint"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputError(path, f"cannot read checkpoint ({type(exc).__name__}: {message})") from None


def _strip_prefixes(key: str, prefixes: tuple[str, ...]) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def _tensor_dict(path: Path, state: Any, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(state, Mapping) or not state:
        raise InputError(path, f"not a {what} checkpoint (no state dict of tensors)")
    bad = [key for key, value in state.items() if not isinstance(key, str) or not isinstance(value, torch.Tensor)]
    if bad:
        raise InputError(path, f"not a {what} checkpoint: entry {bad[0]!r} of the state dict is not a tensor")
    return dict(state)


def pseldnet_state_dict(path: str | PathLike[str]) -> dict[str, torch.Tensor]:
    """The network weights of a PSELDNets checkpoint, ``net.`` / ``_orig_mod.`` prefixes removed."""
    path = Path(path)
    checkpoint = read_checkpoint(path)
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping):
        checkpoint = checkpoint["state_dict"]
    state = _tensor_dict(path, checkpoint, "PSELDNets")
    stripped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = _strip_prefixes(key, _PSELDNET_PREFIXES)
        if name in stripped:
            raise InputError(path, f"two checkpoint keys map to {name!r}", field=key)
        stripped[name] = value
    return stripped


# ---------------------------------------------------------------------------------------------------------------
# PSELDNets -> fine-tuning
# ---------------------------------------------------------------------------------------------------------------


def _copied_by_rule(model: nn.Module, key: str) -> bool:
    if isinstance(model, CNN14SELD):
        return key.startswith(_CNN14_COPIED_PREFIXES)
    return not key.startswith(_HTSAT_EXCLUDED_PREFIXES) and not any(word in key for word in _HTSAT_EXCLUDED_WORDS)


def load_pseldnet(model: nn.Module, path: str | PathLike[str]) -> TransferReport:
    """Copy a PSELDNets checkpoint into ``model`` (in place) as the seed system does; see the module docstring.

    A tensor whose shape differs from the model's is an :class:`InputError` naming the file, the key and both
    shapes (nothing is copied then); so is a checkpoint from which not a single tensor would load.
    """
    if not isinstance(model, CNN14SELD | HTSAT | PaSST):
        raise ConfigError(
            "train",
            "pretrained",
            f"PSELDNets weights fit the CNN14 family, htsat and passt, not {type(model).__name__}",
        )
    path = Path(path)
    state = pseldnet_state_dict(path)
    own = model.state_dict()
    report = TransferReport(str(path), type(model).__name__)
    updates: dict[str, torch.Tensor] = {}
    for key in own:
        if not _copied_by_rule(model, key):
            report.initialised.append(key)
        elif key not in state:
            report.missing.append(key)
        else:
            updates[key] = state[key]
    for key in state:
        if key in own and key not in updates and not _copied_by_rule(model, key):
            report.skipped.append(key)
        elif key not in own:
            (report.skipped if not _copied_by_rule(model, key) else report.unused).append(key)
    copy_checked(model, path, updates, report)
    return report


def copy_checked(model: nn.Module, path: Path, updates: Mapping[str, torch.Tensor], report: TransferReport) -> None:
    """Copy ``updates`` (model key -> tensor) into ``model`` after checking every shape; record them in ``report``.

    Nothing is copied when a shape differs (an :class:`InputError` naming the file, the key and both shapes) or
    when there is nothing to copy (the file does not fit the model).
    """
    own = model.state_dict()
    for key, source in updates.items():
        target = own[key]
        if source.shape != target.shape:
            raise InputError(
                path,
                f"shape mismatch for {key!r}: checkpoint {tuple(source.shape)}, model {tuple(target.shape)} "
                "(was the model built with the checkpoint's widths, depths and input channels?)",
                field=key,
            )
    if not updates:
        raise InputError(path, f"no tensor of this checkpoint fits {type(model).__name__} (wrong file or model?)")
    with torch.no_grad():
        for key, value in updates.items():
            own[key].copy_(value)
    report.loaded = list(updates)
    report.loaded_values = sum(value.numel() for value in updates.values())


# ---------------------------------------------------------------------------------------------------------------
# seldflow checkpoints (a pretraining experiment's best.pt) -> fine-tuning
# ---------------------------------------------------------------------------------------------------------------


def is_seldflow_checkpoint(checkpoint: Any) -> bool:
    """Whether a loaded checkpoint is one :mod:`seldflow.checkpoints` wrote (model state plus its task)."""
    return isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("model_state"), Mapping)


def load_pretrained(
    model: nn.Module, path: str | PathLike[str], *, model_name: str, n_classes: int, reinit_head: bool = False
) -> TransferReport:
    """Initialise ``model`` (a fresh ``model_name`` network for ``n_classes`` classes) from the checkpoint at ``path``.

    A seldflow checkpoint (a pretraining experiment's ``best.pt``) is copied whole: every tensor of the same name
    and shape loads. When its task has another class count, the tensors whose shapes follow the class count (the
    output head) are re-initialised if ``reinit_head``, and otherwise nothing is loaded and a :class:`ConfigError`
    names ``train.reinit_head`` and both counts; adapters (absent from a checkpoint trained without them) keep
    their initialisation. Any other file is a PSELDNets checkpoint (:func:`load_pseldnet`, the reference's rules).
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    if not is_seldflow_checkpoint(checkpoint):
        return load_pseldnet(model, path)
    source_model = checkpoint.get("model_name")
    if source_model != model_name:
        message = f"a {source_model} checkpoint cannot initialise a {model_name} model"
        raise InputError(path, message, field="model_name")
    source_classes = int((checkpoint.get("task") or {}).get("n_classes") or 0)
    if source_classes != n_classes and not reinit_head:
        raise ConfigError(
            "train",
            "reinit_head",
            f"{path} was trained on {source_classes} classes, the dataset has {n_classes}: set reinit_head: true "
            "to re-initialise the output head",
        )
    state = _tensor_dict(path, checkpoint["model_state"], "seldflow")
    own = model.state_dict()
    report = TransferReport(str(path), type(model).__name__, source="seldflow checkpoint")
    updates: dict[str, torch.Tensor] = {}
    for key, target in own.items():
        if key not in state:
            (report.initialised if any(word in key for word in _HTSAT_EXCLUDED_WORDS) else report.missing).append(key)
        elif _sized_by_classes(state[key].shape, target.shape, source_classes, n_classes):
            report.initialised.append(key)  # the output head: re-initialised
        else:
            updates[key] = state[key]
    report.unused = [key for key in state if key not in own]
    copy_checked(model, path, updates, report)
    return report


def _sized_by_classes(source: torch.Size, target: torch.Size, source_classes: int, n_classes: int) -> bool:
    """Whether two shapes differ in one dimension only, in proportion to the class counts (a head's outputs); any
    other difference stays a shape mismatch for :func:`copy_checked` to refuse."""
    if source_classes == n_classes or len(source) != len(target):
        return False
    differing = [i for i, (a, b) in enumerate(zip(source, target, strict=True)) if a != b]
    return len(differing) == 1 and source[differing[0]] * n_classes == target[differing[0]] * source_classes


# ---------------------------------------------------------------------------------------------------------------
# Released stereo checkpoints -> inference
# ---------------------------------------------------------------------------------------------------------------


class ReleasedCheckpoint(NamedTuple):
    """A released stereo model in seldflow terms: rebuild with ``build_model(model_name, in_channels, **args)``."""

    model_name: str
    model_args: dict[str, Any]
    state_dict: dict[str, torch.Tensor]

    @property
    def in_channels(self) -> int:
        return sum(1 for key in self.state_dict if re.fullmatch(r"scalar\.\d+\.weight", key))


_FF_PARTS = {"0": "0", "1": "1", "4": "4"}
_ATTENTION_NAMES = {
    "layer_norm": "norm",
    "attention.query_proj": "query",
    "attention.key_proj": "key",
    "attention.value_proj": "value",
    "attention.pos_proj": "position",
    "attention.out_proj": "out",
    "attention.u_bias": "content_bias",
    "attention.v_bias": "position_bias",
}
_CONV_PARTS = {
    "0": "norm",
    "2.conv": "pointwise_in",
    "4.conv": "depthwise",
    "5": "batch_norm",
    "7.conv": "pointwise_out",
}
_BLOCK_PARTS = {"0": "ff_in", "1": "mixer", "2": "conv", "3": "ff_out", "4": "norm"}
_CONFORMER_BLOCK = re.compile(r"decoder\.layers\.(\d+)\.(?:sequential\.)?([0-4])\.(.+)")


def _split_last(rest: str, table: Mapping[str, str]) -> str | None:
    """``"<module>.<param>"`` with ``<module>`` looked up in ``table``; None when it is not there."""
    module, _, param = rest.rpartition(".")
    return f"{table[module]}.{param}" if module in table else None


def _map_block_key(part: str, rest: str) -> str | None:
    """A Conformer-block key's name inside seldflow's block; None for tensors seldflow does not store."""
    if part == "4":
        return rest
    if not rest.startswith("module."):
        return None
    rest = rest[len("module.") :]
    if part in ("0", "3"):
        mapped = _split_last(rest.removeprefix("sequential."), _FF_PARTS)
        return None if mapped is None else f"net.{mapped}"
    if part == "1":
        if rest.startswith("positional_encoding."):
            return None
        if rest in _ATTENTION_NAMES:  # the u / v bias parameters
            return _ATTENTION_NAMES[rest]
        return _split_last(rest, _ATTENTION_NAMES) or rest  # a BiMamba mixer keeps its names
    return _split_last(rest.removeprefix("sequential."), _CONV_PARTS)


def map_released_key(key: str, model_name: str) -> str | None:
    """The seldflow name of a released-checkpoint key (prefixes already stripped); None when it is dropped."""
    if key.endswith(DERIVED_SUFFIXES):
        return None
    if key.startswith("decoder.decoder."):
        key = "decoder." + key[len("decoder.decoder.") :]
    if model_name in ("cnn14_conformer", "cnn14_conbimamba", "cnn14_conbimamba_ac"):
        match = _CONFORMER_BLOCK.fullmatch(key)
        if match:
            layer, part, rest = match.groups()
            inner = _map_block_key(part, rest)
            return None if inner is None else f"decoder.blocks.{layer}.{_BLOCK_PARTS[part]}.{inner}"
    return key


def detect_released_model(state: Mapping[str, torch.Tensor]) -> str:
    """The zoo model a released state dict belongs to, from its key names."""
    keys = list(state)
    if any(key.startswith("tscam_conv.") for key in keys):
        return "htsat"
    if not any(key.startswith("convs.conv_block") for key in keys):
        return ""
    decoder = [key.removeprefix("decoder.decoder.") for key in keys if key.startswith("decoder.decoder.")]
    conformer_like = [key for key in decoder if re.match(r"layers\.\d+\.(sequential\.)?[0-4]\.", key)]
    axial = any("fc_in" in key or "input_adapter" in key or "fusion" in key for key in decoder)
    if conformer_like:
        if any(".attention." in key for key in conformer_like):
            return "cnn14_conformer"
        return "cnn14_conbimamba_ac" if axial else "cnn14_conbimamba"
    return "cnn14_bimamba_ac" if axial else "cnn14_bimamba"


def _mamba_args(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """``d_state``, ``d_conv``, ``expand``, ``headdim`` of the first Mamba-2 in ``state`` (``{}`` if none)."""
    for key, value in state.items():
        if key.endswith("mamba2_for.A_log"):
            prefix = key[: -len("A_log")]
            d_inner = int(state[prefix + "norm.weight"].shape[0])
            conv = state[prefix + "conv1d.weight"]
            return {
                "d_conv": int(conv.shape[-1]),
                "d_state": (int(conv.shape[0]) - d_inner) // 2,
                "headdim": d_inner // int(value.shape[0]),
                "expand": d_inner // int(state[prefix + "in_proj.weight"].shape[1]),
            }
    return {}


def _indices(state: Mapping[str, torch.Tensor], pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for key in state if (m := re.match(pattern, key))})


def infer_released_args(
    model_name: str, state: Mapping[str, torch.Tensor], buffers: Mapping[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """Model arguments read from tensor shapes (seldflow names); defaults fill what shapes do not tell.

    ``buffers`` may hold the reference's derived HTSAT buffers (``attn_mask``), which give ``spec_size``.
    """
    n_mels = int(state["scalar.0.weight"].shape[0])
    args: dict[str, Any] = {"n_mels": n_mels}
    if model_name == "htsat":
        patch = state["encoder.patch_embed.proj.weight"]
        embed_dim = int(patch.shape[0])
        stages = _indices(state, r"encoder\.layers\.(\d+)\.")
        table = state["encoder.layers.0.blocks.0.attn.relative_position_bias_table"]
        hidden = state["encoder.layers.0.blocks.0.mlp.fc1.weight"]
        args.update(
            embed_dim=embed_dim,
            patch_size=int(patch.shape[-1]),
            depths=[len(_indices(state, rf"encoder\.layers\.{i}\.blocks\.(\d+)\.")) for i in stages],
            heads=[
                int(state[f"encoder.layers.{i}.blocks.0.attn.relative_position_bias_table"].shape[1]) for i in stages
            ],
            window_size=(math.isqrt(int(table.shape[0])) + 1) // 2,
            mlp_ratio=int(hidden.shape[0]) / embed_dim,
            spec_size=n_mels
            * _htsat_chunks(buffers or {}, int(state["tscam_conv.weight"].shape[2]), len(stages), n_mels),
            pair_clips=False,  # the seed runs HTSAT on single 5-s clips
        )
        return args
    args["widths"] = [int(state[f"convs.conv_block{i}.conv1.weight"].shape[0]) for i in range(1, 7)]
    width = args["widths"][-1]
    layers = _indices(state, r"decoder\.(?:blocks|layers|mamba_layers)\.(\d+)\.")
    if layers:
        args["layers"] = len(layers)
    if model_name in ("cnn14_conformer", "cnn14_conbimamba", "cnn14_conbimamba_ac"):
        args["ff_expansion"] = int(state["decoder.blocks.0.ff_in.net.1.weight"].shape[0]) // width
        args["conv_kernel"] = int(state["decoder.blocks.0.conv.depthwise.weight"].shape[-1])
    if model_name == "cnn14_conformer":
        args["heads"] = int(state["decoder.blocks.0.mixer.content_bias"].shape[0])
    args.update(_mamba_args(state))
    for key, value in state.items():  # axial (AC) decoders: widths of the 2-D map and of the 1-D Mamba
        if key.endswith("input_adapter.0.weight"):
            args["freq_dim"] = int(value.shape[0])
        if key.endswith("bi_mamba_h1.fc_in.weight"):
            args["mamba_dim"] = int(value.shape[0])
    return args


def _htsat_chunks(buffers: Mapping[str, torch.Tensor], freq_rows: int, stages: int, n_mels: int) -> int:
    """Time chunks folded into the HTSAT image: final token-grid rows / ``tscam_conv`` kernel height."""
    for key, mask in buffers.items():  # a shifted-window mask (nW, w*w, w*w) gives its stage's token grid
        match = re.fullmatch(r"encoder\.layers\.(\d+)\.blocks\.\d+\.attn_mask", key)
        if match and mask.ndim == 3:
            side = math.isqrt(int(mask.shape[0])) * math.isqrt(int(mask.shape[1]))
            return side // 2 ** (stages - 1 - int(match.group(1))) // freq_rows
    return 256 // n_mels  # the reference's spec_size 256


def released_state_dict(path: str | PathLike[str]) -> dict[str, torch.Tensor]:
    """The model weights of a released stereo checkpoint (``seld_model`` / ``state_dict`` / ``model`` / bare)."""
    path = Path(path)
    checkpoint = read_checkpoint(path)
    if isinstance(checkpoint, Mapping):
        for entry in ("seld_model", "state_dict", "model_state_dict", "model"):
            if isinstance(checkpoint.get(entry), Mapping):
                checkpoint = checkpoint[entry]
                break
    state = _tensor_dict(path, checkpoint, "released stereo SELD")
    return {_strip_prefixes(key, _RELEASED_PREFIXES): value for key, value in state.items()}


def load_released_stereo(
    path: str | PathLike[str], model_name: str | None = None, model_args: Mapping[str, Any] | None = None
) -> ReleasedCheckpoint:
    """Map a released stereo checkpoint onto a seldflow zoo model; see the module docstring for the key mapping.

    ``model_name`` is detected from the keys when not given; ``model_args`` override the arguments inferred from
    the tensor shapes. The returned state dict loads strictly into ``build_model(model_name, in_channels, **args)``
    (checked here: a key or shape that does not fit is an :class:`InputError` naming the file).
    """
    from seldflow.models import MODELS, build_model  # the registry imports this module's neighbours

    path = Path(path)
    raw = {}
    for key, value in released_state_dict(path).items():
        raw[_strip_prefixes(key, _PSELDNET_PREFIXES)] = value
    name = model_name or detect_released_model(raw)
    if name not in MODELS or name == "seldnet":
        detail = f"model {name!r}" if name else "the model (no CNN14 or HTSAT keys)"
        raise InputError(path, f"cannot map {detail} onto a seldflow zoo model; pass model_name")
    mapped: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        new = map_released_key(key, name)
        if new is None:
            continue
        if new in mapped:
            raise InputError(path, f"two checkpoint keys map to {new!r}", field=key)
        mapped[new] = value
    try:
        args = {**infer_released_args(name, mapped, raw), **(model_args or {})}
    except (KeyError, IndexError, ZeroDivisionError) as exc:
        raise InputError(path, f"not a released {name} checkpoint (cannot read the shapes: missing {exc})") from None
    in_channels = sum(1 for key in mapped if re.fullmatch(r"scalar\.\d+\.weight", key))
    with torch.device("meta"):
        model = build_model(name, in_channels, **args)
    own = model.state_dict()
    for key, target in own.items():
        value = mapped.get(key)
        if value is not None and value.ndim == target.ndim + 1 and value.shape[-1] == 1:
            mapped[key] = value = value.squeeze(-1)  # kernel-1 Conv1d -> Linear
        if value is not None and value.shape != target.shape:
            raise InputError(
                path, f"shape mismatch for {key!r}: checkpoint {tuple(value.shape)}, model {tuple(target.shape)}"
            )
    missing = [key for key in own if key not in mapped]
    unexpected = [key for key in mapped if key not in own]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing {_abbreviate(missing, 4)}")
        if unexpected:
            problems.append(f"unexpected {_abbreviate(unexpected, 4)}")
        raise InputError(path, f"weights do not fit {name!r} with {args}: {'; '.join(problems)}")
    return ReleasedCheckpoint(name, args, {key: mapped[key] for key in own})


def convert_released_checkpoint(
    src: str | PathLike[str],
    dst: str | PathLike[str],
    model_name: str | None = None,
    *,
    model_args: Mapping[str, Any] | None = None,
    feature_kind: str = "pfoa",
    feature_config: Mapping[str, Any] | None = None,
) -> Path:
    """Write released stereo checkpoint ``src`` as a seldflow checkpoint ``dst`` for ``seldflow.infer``.

    The seed's features are seldflow's ``pfoa`` defaults (24 kHz, 1024/960/480 STFT, 64 mels), so
    ``feature_config`` may stay empty. The payload has the keys :func:`seldflow.infer.load_checkpoint` needs plus
    ``epoch`` (the seed's, when stored), ``val_metrics`` (empty) and ``converted_from``.
    """
    src, dst = Path(src), Path(dst)
    released = load_released_stereo(src, model_name, model_args)
    checkpoint = read_checkpoint(src)
    epoch = checkpoint.get("epoch") if isinstance(checkpoint, Mapping) else None
    payload = {
        "model_state": released.state_dict,
        "model_name": released.model_name,
        "model_args": dict(released.model_args),
        "in_channels": released.in_channels,
        "feature_kind": feature_kind,
        "feature_config": dict(feature_config or {}),
        "epoch": int(epoch) if isinstance(epoch, int | np.integer) else 0,
        "val_metrics": {},
        "converted_from": str(src),
    }
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(dst) as tmp:
        torch.save(payload, tmp)
    return dst


__all__ = [
    "ReleasedCheckpoint",
    "TransferReport",
    "convert_released_checkpoint",
    "copy_checked",
    "detect_released_model",
    "infer_released_args",
    "load_pseldnet",
    "load_released_stereo",
    "map_released_key",
    "pseldnet_state_dict",
    "read_checkpoint",
    "released_state_dict",
]
