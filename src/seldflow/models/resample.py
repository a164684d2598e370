"""Band-limited resampling of waveform batches in torch, for networks whose front end runs at another rate.

The second-place Task 4 system feeds its sound event detector channel 0 of the 32-kHz mixture resampled to 16 kHz
(a Kaiser-windowed sinc interpolator). The workflow's environments carry no torchaudio, so this module implements
the interpolator itself: it runs inside the network (on its device, in its graph) instead of in data loading.

Rates are reduced by their greatest common divisor to ``orig`` input and ``new`` output samples per period. Output
sample ``q * new + j`` sits at input time ``q * orig + j * orig / new``; it is the sum of the input samples around it
weighted by a low-pass kernel ``c * sinc(c * t) * kaiser(t)``, ``c = rolloff * min(1, new / orig)`` (the cutoff as a
fraction of the input Nyquist frequency), truncated after ``zeros`` zero crossings each side. Each of the ``new``
phases is one output channel of a strided convolution, so the cost is that of one ``conv1d``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Zero crossings of the sinc kept on each side, the cutoff below the lower Nyquist frequency and the Kaiser window's
# shape: the settings of torchaudio's "sinc_interp_kaiser" method, which the reference system's resampling uses.
SINC_ZEROS = 6
ROLLOFF = 0.99
KAISER_BETA = 14.769656459379492


def sinc_kernels(orig: int, new: int, zeros: int, rolloff: float, beta: float) -> tuple[np.ndarray, int]:
    """float64 [new, orig + 2 * width + 1] kernels (one row per output phase) and the padding ``width``.

    Row ``j``, column ``i`` weighs input sample ``q * orig + i - width`` for output sample ``q * new + j``.
    """
    cutoff = rolloff * min(1.0, new / orig)
    half = zeros / cutoff  # kernel half-length in input samples
    width = math.ceil(half)
    taps = np.arange(orig + 2 * width + 1) - width
    t = (np.arange(new)[:, None] * orig / new) - taps[None, :]
    inside = np.abs(t) <= half
    window = np.where(inside, np.i0(beta * np.sqrt(np.clip(1.0 - (t / half) ** 2, 0.0, None))) / np.i0(beta), 0.0)
    return cutoff * np.sinc(cutoff * t) * window, width


class Resample(nn.Module):
    """(..., N) waveforms at ``orig_rate`` -> (..., ceil(N * new_rate / orig_rate)) at ``new_rate``.

    Equal rates make it the identity. The kernels are a non-persistent buffer: checkpoints do not carry them.
    """

    def __init__(
        self,
        orig_rate: int,
        new_rate: int,
        *,
        zeros: int = SINC_ZEROS,
        rolloff: float = ROLLOFF,
        beta: float = KAISER_BETA,
    ) -> None:
        super().__init__()
        if orig_rate < 1 or new_rate < 1:
            raise ValueError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
        divisor = math.gcd(int(orig_rate), int(new_rate))
        self.orig, self.new = int(orig_rate) // divisor, int(new_rate) // divisor
        self.orig_rate, self.new_rate = int(orig_rate), int(new_rate)
        kernels, self.width = sinc_kernels(self.orig, self.new, zeros, rolloff, beta)
        self.register_buffer("kernels", torch.from_numpy(kernels).float()[:, None, :], persistent=False)

    def output_length(self, length: int) -> int:
        return -(-length * self.new // self.orig)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if self.orig == self.new:
            return wave
        shape, length = wave.shape[:-1], wave.shape[-1]
        flat = F.pad(wave.reshape(-1, 1, length), (self.width, self.width + self.orig))
        phases = F.conv1d(flat, self.kernels.to(wave.dtype), stride=self.orig)  # [B', new, ceil(N / orig)]
        out = phases.transpose(1, 2).reshape(flat.shape[0], -1)[:, : self.output_length(length)]
        return out.reshape(*shape, -1)
