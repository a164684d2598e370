"""PFOA features, plain versus seldflow's: a per-channel librosa reference and the timed comparison.

:func:`naive_pfoa` is deliberately the plain way a per-file script would compute the features; it checks
:func:`seldflow.feature_kinds.pfoa` numerically and gives the speed-up :func:`compare_pfoa` reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import librosa
import numpy as np

from seldflow.bench.records import Comparison
from seldflow.bench.timing import median_times
from seldflow.feature_kinds import PFOA_IV_CHANNELS, PFOA_IV_EPS, PFOA_LOG_FLOOR, pfoa


def naive_pfoa(
    stereo: np.ndarray,
    *,
    sample_rate: int = 24000,
    n_fft: int = 1024,
    win_length: int = 960,
    hop_length: int = 480,
    n_mels: int = 64,
    fmin: float = 20.0,
    fmax: float = 12000.0,
) -> np.ndarray:
    """PFOA features the plain way: one ``librosa.stft`` per pseudo-FOA channel, NumPy for the rest.

    Same recipe and parameters as :func:`seldflow.feature_kinds.pfoa` (peak normalisation, W = (L+R)/2, Y = (L-R)/2,
    silent Z and X, periodic Hann window with reflect-padded centred frames, HTK/Slaney mel filters, log10 with a
    1e-10 floor, unit-normalised active intensity Re(W · conj(c)) mel-projected), but with no caching or batching:
    the filterbank is rebuilt and each channel transformed separately, as a per-file script would.
    """
    audio = np.asarray(stereo, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] != 2:
        raise ValueError(f"expected stereo audio of shape (2, samples), got {audio.shape}")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio / peak
    left, right = audio
    silent = np.zeros_like(left)
    channels = [(left + right) / 2, (left - right) / 2, silent, silent]  # ACN W, Y, Z, X
    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=True, norm="slaney")
    specs = [
        librosa.stft(
            channel,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window="hann",
            center=True,
            pad_mode="reflect",
        )
        for channel in channels
    ]  # each (freq, T)
    out = []
    for spec in specs:
        power = np.abs(spec) ** 2
        out.append(np.log10(np.maximum(mel @ power, PFOA_LOG_FLOOR)).T)
    reference = specs[0]
    components = [np.real(reference * np.conj(specs[c])) for c in PFOA_IV_CHANNELS]
    norm = np.sqrt(sum(c**2 for c in components)) + PFOA_IV_EPS
    for component in components:
        out.append((mel @ (component / norm)).T)
    return np.stack(out).astype(np.float32)


def compare_pfoa(
    clips: Sequence[np.ndarray], *, repeats: int = 3, warmup: int = 1, **params: Any
) -> tuple[Comparison, float]:
    """Time :func:`naive_pfoa` against :func:`seldflow.feature_kinds.pfoa` over ``clips`` (in memory, one at a time).

    Returns the comparison (seconds per clip; ratio = naive / seldflow, the speed-up of seldflow) and the largest
    absolute difference between the two implementations' features over all clips.
    """
    if not clips:
        raise ValueError("compare_pfoa needs at least one clip")
    diffs = np.array([np.abs(naive_pfoa(c, **params) - pfoa(c, **params)).max(axis=(1, 2)) for c in clips])
    max_diff = float(diffs.max())
    log_mel_diff, intensity_diff = float(diffs[:, :4].max()), float(diffs[:, 4:].max())

    def run(function: Callable[..., np.ndarray]) -> Callable[[], None]:
        def call() -> None:
            for clip in clips:
                function(clip, **params)

        return call

    timed = median_times({"naive": run(naive_pfoa), "seldflow": run(pfoa)}, repeats=repeats, warmup=warmup)
    comparison = Comparison(
        name="PFOA features",
        work=f"PFOA features (7×T×64) of one 5-s test clip, averaged over {len(clips)} clips in memory",
        a_label="plain librosa (naive_pfoa)",
        a_seconds=timed["naive"] / len(clips),
        b_label="seldflow.feature_kinds.pfoa",
        b_seconds=timed["seldflow"] / len(clips),
        meaning="speed-up of seldflow's pfoa over the plain librosa version (>1: seldflow faster)",
        check=f"max |naive - pfoa| = {max_diff:.1e} (log10-mel {log_mel_diff:.1e}, intensity {intensity_diff:.1e})",
    )
    return comparison, max_diff
