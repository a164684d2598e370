"""The S5 tagger's log-mel front end and the rule that turns its class probabilities into separator queries.

Front end (:class:`LogMel`), as the DCASE2025 Task 4 baseline's M2D runtime computes it (nnAudio
``MelSpectrogram``): power spectrogram of a centred, reflect-padded STFT with a periodic Hann window, a Slaney mel
filterbank with Slaney area normalisation (librosa's default, which nnAudio reproduces with ``htk=False, norm=1``),
``log(x + eps)`` with ``eps`` the float32 machine epsilon, then ``(x - mean) / std`` with the pre-training
dataset's statistics (default ``[-7.1, 4.2]``; an M2D checkpoint may carry its own, see
:func:`seldflow.models.taggers.load_m2d_weights`). Every number is a constructor argument so a CPU demo can run at
8 kHz with ``fmax = sr / 2``.

Selection (:func:`select_labels`), the baseline's ``_get_top_prob`` with ``pthre = 0.5`` and ``nevent_range =
[1, 3]``: keep the classes whose probability reaches the threshold (``>=``); if fewer than ``min_labels`` do, take
the ``min_labels`` most probable instead; keep at most the ``max_labels`` most probable. The baseline returns a
multi-hot vector and reads the labels off it in class-index order, so the labels come back in class-index order
(not by probability), padded with :data:`~seldflow.s5.vocabulary.SILENCE` to the separator's slot count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from seldflow.s5.vocabulary import LABELS, N_SLOTS, pad_labels

# The baseline's M2D "32k" front end (portable_m2d.get_to_melspec) and its default normalisation statistics.
M2D_SAMPLE_RATE = 32_000
M2D_N_FFT = 800
M2D_HOP = 320
M2D_N_MELS = 80
M2D_FMIN = 50.0
M2D_FMAX = 16_000.0
M2D_NORM_MEAN = -7.1
M2D_NORM_STD = 4.2
# The runtime adds torch.finfo().eps (float32) before the log; named here so the floor is not a magic number.
LOG_EPS = float(torch.finfo(torch.float32).eps)

# Slaney mel scale constants: linear (3 mels per 200 Hz) below 1 kHz, logarithmic (27 mels per factor 6.4) above.
_SLANEY_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_LOG_STEP = np.log(6.4) / 27.0


def hz_to_slaney_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney (Auditory Toolbox) mel value of a frequency; the scale nnAudio and librosa use by default."""
    hz = np.asarray(hz, dtype=np.float64)
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_LINEAR_HZ_PER_MEL
    log_part = break_mel + np.log(np.maximum(hz, _SLANEY_BREAK_HZ) / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP
    return np.where(hz >= _SLANEY_BREAK_HZ, log_part, hz / _SLANEY_LINEAR_HZ_PER_MEL)


def slaney_mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_slaney_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_LINEAR_HZ_PER_MEL
    log_part = _SLANEY_BREAK_HZ * np.exp(_SLANEY_LOG_STEP * (np.maximum(mel, break_mel) - break_mel))
    return np.where(mel >= break_mel, log_part, mel * _SLANEY_LINEAR_HZ_PER_MEL)


def slaney_mel_filterbank(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """float32 [n_mels, n_fft // 2 + 1]: triangular mel filters, each scaled to unit area (``2 / bandwidth``).

    Hand-written (rather than imported from librosa) because the library may only use numpy/torch at run time; it
    follows librosa's ``filters.mel(htk=False, norm="slaney")``, which is what nnAudio's ``MelSpectrogram`` builds.
    """
    if not 0.0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={fmin}, fmax={fmax}, sr={sample_rate}")
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges_hz = slaney_mel_to_hz(np.linspace(hz_to_slaney_mel(fmin), hz_to_slaney_mel(fmax), n_mels + 2))
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (fft_hz[None, :] - lower) / (centre - lower)
    falling = (upper - fft_hz[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= 2.0 / (upper - lower)
    return weights.astype(np.float32)


class LogMel(nn.Module):
    """Waveform [B, N] -> normalised log-mel [B, 1, n_mels, 1 + N // hop] (the M2D input "image")."""

    def __init__(
        self,
        sample_rate: int = M2D_SAMPLE_RATE,
        n_fft: int = M2D_N_FFT,
        win_length: int | None = None,
        hop_length: int = M2D_HOP,
        n_mels: int = M2D_N_MELS,
        fmin: float = M2D_FMIN,
        fmax: float | None = M2D_FMAX,
        norm_mean: float = M2D_NORM_MEAN,
        norm_std: float = M2D_NORM_STD,
        eps: float = LOG_EPS,
    ) -> None:
        super().__init__()
        win_length = n_fft if win_length is None else win_length
        if not 0 < win_length <= n_fft or hop_length <= 0 or norm_std <= 0:
            raise ValueError(
                f"bad STFT/normalisation: n_fft={n_fft}, win={win_length}, hop={hop_length}, std={norm_std}"
            )
        self.sample_rate, self.n_fft, self.win_length, self.hop_length = sample_rate, n_fft, win_length, hop_length
        self.n_mels, self.eps = n_mels, eps
        fmax = sample_rate / 2 if fmax is None else fmax
        filterbank = slaney_mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
        self.register_buffer("filterbank", torch.from_numpy(filterbank), persistent=False)
        self.register_buffer("window", torch.hann_window(win_length, periodic=True), persistent=False)
        # Buffers, not constants: an M2D checkpoint may carry its own statistics (``norm_stats``).
        self.register_buffer("norm_mean", torch.tensor(float(norm_mean)))
        self.register_buffer("norm_std", torch.tensor(float(norm_std)))

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Un-normalised log-mel power [B, n_mels, T]."""
        spec = torch.stft(
            wave,
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        return torch.log(torch.matmul(self.filterbank, power) + self.eps)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return ((self.log_mel(wave) - self.norm_mean) / self.norm_std).unsqueeze(1)


def reference_channel(wave: torch.Tensor, ref_channel: int = 0) -> torch.Tensor:
    """[B, N] from [B, C, N] (channel ``ref_channel``, the FOA W channel by default) or [B, N] unchanged."""
    if wave.dim() == 3:
        return wave[:, ref_channel, :]
    if wave.dim() != 2:
        raise ValueError(f"expected a waveform batch [B, N] or [B, C, N], got shape {tuple(wave.shape)}")
    return wave


def select_indices(
    probs: np.ndarray, threshold: float = 0.5, min_labels: int = 1, max_labels: int = N_SLOTS
) -> list[int]:
    """Class indices chosen by the baseline rule (see the module docstring), in class-index order."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1:
        raise ValueError(f"expected one probability vector [C], got shape {probs.shape}")
    # Stable sort on -p: ties go to the lower class index. The baseline's torch.argsort makes no promise on ties;
    # a fixed rule keeps the selection deterministic.
    by_probability = np.argsort(-probs, kind="stable")
    above = [int(i) for i in by_probability if probs[i] >= threshold]
    chosen = by_probability[:min_labels].tolist() if len(above) < min_labels else above[:max_labels]
    return sorted(int(i) for i in chosen)


def select_labels(
    probs: np.ndarray,
    labels: Sequence[str] = LABELS,
    threshold: float = 0.5,
    max_labels: int = N_SLOTS,
    min_labels: int = 1,
    n_slots: int = N_SLOTS,
) -> tuple[str, ...]:
    """Labels for one clip from its class probabilities [C], class-index order, padded with silence to ``n_slots``."""
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} probabilities for {len(labels)} classes")
    chosen = select_indices(probs, threshold=threshold, min_labels=min_labels, max_labels=max_labels)
    return pad_labels([labels[i] for i in chosen], n_slots)


def select_labels_batch(
    probs: np.ndarray,
    labels: Sequence[str] = LABELS,
    threshold: float = 0.5,
    max_labels: int = N_SLOTS,
    min_labels: int = 1,
    n_slots: int = N_SLOTS,
) -> list[tuple[str, ...]]:
    """:func:`select_labels` for every row of a [B, C] probability matrix."""
    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise ValueError(f"expected probabilities [B, C], got shape {probs.shape}")
    return [select_labels(row, labels, threshold, max_labels, min_labels, n_slots) for row in probs]
