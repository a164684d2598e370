"""Running a network: the device to run on and batched inference over feature arrays.

Shared by training (validation mid-run) and inference, which must run a model the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from seldflow.errors import ConfigError


def resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when present; anything else is passed to :class:`torch.device` as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConfigError("config", "device", f"invalid device {device!r} ({exc})") from None


def predict_features(
    model: nn.Module,
    features: np.ndarray,
    batch_size: int,
    device: str | torch.device,
) -> np.ndarray:
    """Run ``model`` in eval mode over ``(N, C, T, F)`` features in batches; returns float32 ``(N, T', outputs)``.

    The model is moved to ``device`` (in place) and its train/eval mode is restored afterwards, so training can
    validate mid-run. ``features`` may also be an h5py dataset: only one batch is read into memory at a time.
    A model that needs batches of a multiple of ``batch_multiple`` clips (HTSAT pairs clips) gets a short batch
    padded with silent clips whose outputs are dropped.
    """
    multiple = int(getattr(model, "batch_multiple", 1))
    device = resolve_device(device) if isinstance(device, str) else device
    model.to(device)
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with torch.inference_mode():
            for start in range(0, len(features), batch_size):
                batch = np.asarray(features[start : start + batch_size], dtype=np.float32)
                padding = -len(batch) % multiple
                padded = np.concatenate([batch, np.zeros((padding, *batch.shape[1:]), dtype=np.float32)])
                output = model(torch.from_numpy(padded).to(device)).float().cpu().numpy()
                outputs.append(output[: len(batch)])
    finally:
        model.train(was_training)
    if not outputs:
        return np.zeros((0, 0, 0), dtype=np.float32)
    return np.concatenate(outputs)
