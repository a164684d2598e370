"""Input standardisation fitted on the training features and stored with the model.

Feature channels differ in scale by orders of magnitude: PFOA log-mel channels sit around -3 to -10 (log10 power)
while the mel-projected intensity-vector channel is of order 1e-3, so without rescaling the first convolution all
but ignores the only direct spatial cue. The official baseline trains on 2-channel log-mel of similar scales and
has no scaler; earlier DCASE baselines standardised features per channel and mel bin, which is what this layer
does. Mean and scale are buffers, not parameters: they travel in the checkpoint, are restored on resume, and the
parameter count stays the reference's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# Channels whose spread is below this (e.g. the constant log-mel of PFOA's two zero channels) are only centred.
MIN_STD = 1e-6


class InputNorm(nn.Module):
    """``(x - mean) / std`` per input channel and mel bin; the identity until :meth:`fit` is called."""

    def __init__(self, channels: int, bins: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels, 1, bins))
        self.register_buffer("std", torch.ones(channels, 1, bins))

    def fit(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Set the statistics from ``(channels, bins)`` arrays computed on the training clips."""
        expected = (self.mean.shape[0], self.mean.shape[2])
        if mean.shape != expected or std.shape != expected:
            raise ValueError(f"statistics must have shape {expected}, got {mean.shape} and {std.shape}")
        std = np.where(std < MIN_STD, 1.0, std)
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32).unsqueeze(1))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).unsqueeze(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std


def has_input_norm(model: nn.Module) -> bool:
    """False for architectures that normalise their input themselves (e.g. CNN14's BatchNorm scalars)."""
    return any(isinstance(m, InputNorm) for m in model.modules())


def fit_input_norm(model: nn.Module, mean: np.ndarray, std: np.ndarray) -> bool:
    """Fit every :class:`InputNorm` of ``model``; False when the architecture normalises its input itself."""
    layers = [m for m in model.modules() if isinstance(m, InputNorm)]
    for layer in layers:
        layer.fit(mean, std)
    return bool(layers)
