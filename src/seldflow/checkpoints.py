"""Training checkpoints: what they hold, how they are written byte-stably and read back safely.

A checkpoint holds only tensors and plain types (``model_state``, ``model_name``, ``model_args``, ``in_channels``,
``feature_kind``, ``feature_config``, ``task``, ``epoch``, ``val_metrics``), so ``torch.load(weights_only=True)``
reads it, and :func:`seldflow.tasks.build_task` rebuilds the task contract it was trained for.

Inference also accepts the released stereo checkpoints of the DCASE2025 seed system (PSELD-Mamba and friends,
``best_model.pth``): :func:`load_inference_checkpoint` converts them in memory with
:func:`seldflow.models.transfer.load_released_stereo`, so they need no conversion step before ``seldflow predict``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seldflow.errors import InputError
from seldflow.io import atomic_file
from seldflow.models import build_model
from seldflow.tasks import Task, build_task

CHECKPOINT_KEYS = ("model_state", "model_name", "model_args", "in_channels", "feature_kind")


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` atomically with bytes that depend on its contents only.

    ``torch.save`` names the archive's root folder after the file it writes to, so saving to a temporary file
    would put the random temporary name into the bytes; serialising to memory first keeps the name fixed.
    """
    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    with atomic_file(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_checkpoint(path: Path, required: Sequence[str] = CHECKPOINT_KEYS) -> dict[str, Any]:
    """Read a training checkpoint safely (tensors and plain types only) and check it has the ``required`` keys.

    The default keys are what SELD inference needs; other stages (the S5 tagger and separator) name their own.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (pickle, zip, runtime) for a damaged file
        # Only the type: PyTorch's own message advises loading with weights_only=False, i.e. running untrusted code.
        raise InputError(
            path, f"cannot read checkpoint: damaged or not a seldflow checkpoint ({type(exc).__name__})"
        ) from None
    if not isinstance(checkpoint, Mapping):
        raise InputError(path, "not a seldflow checkpoint (expected a dictionary)")
    missing = [key for key in required if key not in checkpoint]
    if missing:
        raise InputError(path, f"not a seldflow checkpoint: missing {', '.join(missing)}", field=missing[0])
    return dict(checkpoint)


def released_model_name(path: Path) -> str:
    """The zoo model a released stereo checkpoint holds, detected from its keys; ``""`` when it is not one."""
    from seldflow.models.transfer import detect_released_model, released_state_dict  # the transfer machinery

    try:
        state = released_state_dict(path)
    except InputError:
        return ""
    return detect_released_model(state)


def released_checkpoint(path: Path, model_name: str | None = None) -> dict[str, Any]:
    """A released stereo checkpoint as the payload of a seldflow checkpoint, built in memory.

    The seed system trains on seldflow's default ``pfoa`` features (24 kHz, 64 mel bins, 5-s clips) and emits the
    stereo DCASE2025 multi-ACCDOA, so the feature settings stay empty and no task is stored (the default task).
    """
    from seldflow.models.transfer import load_released_stereo

    released = load_released_stereo(path, model_name)
    return {
        "model_state": released.state_dict,
        "model_name": released.model_name,
        "model_args": dict(released.model_args),
        "in_channels": released.in_channels,
        "feature_kind": "pfoa",
        "feature_config": {},
        "epoch": 0,
        "val_metrics": {},
        "converted_from": str(path),
    }


def load_inference_checkpoint(path: Path) -> dict[str, Any]:
    """A seldflow checkpoint, or a released stereo checkpoint converted in memory (see the module docstring).

    A file that is neither fails with the seldflow reader's error, which names the file and what is missing.
    """
    path = Path(path)
    try:
        return load_checkpoint(path)
    except InputError:
        name = released_model_name(path) if path.is_file() else ""
        if not name:
            raise
    return released_checkpoint(path, name)


def model_from_checkpoint(path: Path, checkpoint: Mapping[str, Any]) -> nn.Module:
    """Rebuild the registered network recorded in ``checkpoint`` and load its weights."""
    model = build_model(checkpoint["model_name"], int(checkpoint["in_channels"]), **checkpoint["model_args"])
    try:
        model.load_state_dict(checkpoint["model_state"])
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit model {checkpoint['model_name']!r} ({exc})") from None
    return model


def checkpoint_task(path: Path, checkpoint: Mapping[str, Any]) -> Task:
    """The task a checkpoint was trained for (stereo DCASE2025 SELD for checkpoints that predate tasks)."""
    try:
        return build_task(checkpoint.get("task"))
    except Exception as exc:
        raise InputError(path, f"unusable task description ({exc})", field="task") from None
