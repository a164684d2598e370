"""Training checkpoints: what they hold, how they are written byte-stably and read back safely.

A checkpoint holds only tensors and plain types (``model_state``, ``model_name``, ``model_args``, ``in_channels``,
``feature_kind``, ``feature_config``, ``task``, ``epoch``, ``val_metrics``), so ``torch.load(weights_only=True)``
reads it, and :func:`seldflow.tasks.build_task` rebuilds the task contract it was trained for.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
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


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint safely (tensors and plain types only) and check it has what inference needs."""
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
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise InputError(path, f"not a seldflow checkpoint: missing {', '.join(missing)}", field=missing[0])
    return dict(checkpoint)


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
