"""Feature extraction, plain versus seldflow's: per-channel librosa references of the PFOA, FOA and MIC kinds and
the timed comparison, one core each.

The ``naive_*`` functions are deliberately the plain way a per-file script computes the features (one
``librosa.stft`` per channel, the filterbank rebuilt per clip, NumPy for the rest); they check
:mod:`seldflow.feature_kinds` numerically and give the speed-up :func:`compare_features` reports. The comparison
pins both sides to the same number of threads (torch's and the BLAS pools NumPy calls), so its figure is clips per
second per core, not which side grabbed more cores.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import librosa
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from seldflow.bench.records import Comparison
from seldflow.bench.timing import median_times
from seldflow.feature_kinds import (
    DB_AMIN,
    FOA_IV_CHANNELS,
    MIC_PAIRS,
    PFOA_IV_CHANNELS,
    PFOA_IV_EPS,
    PFOA_LOG_FLOOR,
    check_channels,
    feature_kind,
    foa_logmel_iv,
    mic_logmel_gcc,
    pfoa,
)


def _stfts(channels: Sequence[np.ndarray], *, n_fft: int, win_length: int, hop_length: int) -> list[np.ndarray]:
    """One ``librosa.stft`` per channel (periodic Hann, centred, reflect padding), each (freq, T)."""
    return [
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
    ]


def _log_mels(specs: Sequence[np.ndarray], mel: np.ndarray, floor: float, scale: float) -> list[np.ndarray]:
    """``scale · log10(max(mel power, floor))`` per channel, each (T, n_mels)."""
    return [scale * np.log10(np.maximum(mel @ (np.abs(spec) ** 2), floor)).T for spec in specs]


def _intensity(specs: Sequence[np.ndarray], mel: np.ndarray, channels: Sequence[int]) -> list[np.ndarray]:
    """Unit-normalised active intensity Re(W · conj(c)) of the ``channels``, mel-projected, each (T, n_mels)."""
    components = [np.real(specs[0] * np.conj(specs[c])) for c in channels]
    norm = np.sqrt(sum(c**2 for c in components)) + PFOA_IV_EPS
    return [(mel @ (component / norm)).T for component in components]


def _gcc_phat(specs: Sequence[np.ndarray], n_fft: int, n_lags: int) -> list[np.ndarray]:
    """GCC-PHAT of every microphone pair, one pair and one inverse FFT at a time, each (T, n_lags)."""
    out = []
    for i, j in MIC_PAIRS:
        cross = specs[i] * np.conj(specs[j])
        magnitude = np.abs(cross)
        phat = cross / np.where(magnitude > 0, magnitude, 1.0)
        correlation = np.fft.irfft(phat, n=n_fft, axis=0)
        out.append(np.roll(correlation, n_lags // 2, axis=0)[:n_lags].T)
    return out


def _settings(function: Callable[..., np.ndarray], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` over the keyword defaults of seldflow's ``function``: the plain versions take the same settings,
    whose defaults have one owner (:mod:`seldflow.feature_kinds`)."""
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise TypeError(f"{function.__name__} takes no setting {unknown[0]!r}")
    return {**defaults, **params}


def feature_settings(kind: str, **params: Any) -> dict[str, Any]:
    """Every setting a feature job of ``kind`` needs (sample rate, STFT, mel bands): ``params`` over the defaults
    of seldflow's function for ``kind``."""
    settings = _settings(feature_kind(kind).function, params)
    return {key: settings[key] for key in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels")}


def _stft_settings(settings: dict[str, Any]) -> dict[str, int]:
    return {key: settings[key] for key in ("n_fft", "win_length", "hop_length")}


def _mel_of(settings: dict[str, Any]) -> np.ndarray:
    """The HTK-scale, Slaney-normalised filterbank (n_mels, freq), rebuilt per clip as a plain script does."""
    return librosa.filters.mel(
        sr=settings["sample_rate"],
        n_fft=settings["n_fft"],
        n_mels=settings["n_mels"],
        fmin=settings["fmin"],
        fmax=settings["fmax"],
        htk=True,
        norm="slaney",
    )


def naive_pfoa(stereo: np.ndarray, **params: Any) -> np.ndarray:
    """PFOA features the plain way (:func:`seldflow.feature_kinds.pfoa`'s recipe and settings: peak normalisation,
    W = (L+R)/2, Y = (L-R)/2, silent Z and X, log10 mel power with a 1e-10 floor, mel-projected unit intensity)."""
    settings = _settings(pfoa, params)
    audio = check_channels(stereo, 2, "stereo")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio / peak
    left, right = audio
    silent = np.zeros_like(left)
    specs = _stfts([(left + right) / 2, (left - right) / 2, silent, silent], **_stft_settings(settings))
    mel = _mel_of(settings)
    out = _log_mels(specs, mel, PFOA_LOG_FLOOR, 1.0) + _intensity(specs, mel, PFOA_IV_CHANNELS)
    return np.stack(out).astype(np.float32)


def naive_foa_logmel_iv(foa: np.ndarray, **params: Any) -> np.ndarray:
    """FOA ``logmelIV`` the plain way (:func:`seldflow.feature_kinds.foa_logmel_iv`'s recipe and settings: dB mel
    power of W, Y, Z, X with an absolute 1e-10 floor, then the mel-projected unit intensity of Y, Z, X)."""
    settings = _settings(foa_logmel_iv, params)
    specs = _stfts(list(check_channels(foa, 4, "FOA")), **_stft_settings(settings))
    mel = _mel_of(settings)
    out = _log_mels(specs, mel, DB_AMIN, 10.0) + _intensity(specs, mel, FOA_IV_CHANNELS)
    return np.stack(out).astype(np.float32)


def naive_mic_logmel_gcc(mic: np.ndarray, **params: Any) -> np.ndarray:
    """MIC log-mel and GCC-PHAT the plain way (:func:`seldflow.feature_kinds.mic_logmel_gcc`'s recipe and
    settings: dB mel power of the four microphones, then GCC-PHAT of the six pairs over the central ``n_mels``
    lags)."""
    settings = _settings(mic_logmel_gcc, params)
    specs = _stfts(list(check_channels(mic, 4, "microphone-array")), **_stft_settings(settings))
    out = _log_mels(specs, _mel_of(settings), DB_AMIN, 10.0) + _gcc_phat(specs, settings["n_fft"], settings["n_mels"])
    return np.stack(out).astype(np.float32)


def four_channel(stereo: np.ndarray) -> np.ndarray:
    """A 4-channel clip for the FOA and MIC rows made from a stereo test clip: L, R, (L+R)/2, (L-R)/2 (the
    features' cost does not depend on what the channels hold, and no extra audio has to be rendered)."""
    left, right = check_channels(stereo, 2, "stereo")
    return np.stack([left, right, (left + right) / 2, (left - right) / 2])


NAIVE_FEATURES: dict[str, Callable[..., np.ndarray]] = {
    "pfoa": naive_pfoa,
    "foa": naive_foa_logmel_iv,
    "mic": naive_mic_logmel_gcc,
}


@contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Run with ``threads`` torch threads and BLAS/OpenMP pools of that size; the former settings come back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def compare_features(
    kind: str, clips: Sequence[np.ndarray], *, repeats: int = 3, warmup: int = 1, threads: int = 1, **params: Any
) -> tuple[Comparison, float]:
    """Time the plain reference of ``kind`` against seldflow's feature function over ``clips`` (in memory, one at
    a time), both on ``threads`` threads.

    Returns the comparison (seconds per clip; ratio = plain / seldflow, the speed-up of seldflow per core when
    ``threads`` is 1) and the largest absolute difference between the two implementations' features.
    """
    if kind not in NAIVE_FEATURES:
        raise ValueError(f"no plain reference for feature kind {kind!r}; expected one of {', '.join(NAIVE_FEATURES)}")
    if not clips:
        raise ValueError("compare_features needs at least one clip")
    naive, fast = NAIVE_FEATURES[kind], feature_kind(kind).function
    with thread_limit(threads):
        max_diff = max(float(np.abs(naive(c, **params) - fast(c, **params)).max()) for c in clips)

        def run(function: Callable[..., np.ndarray]) -> Callable[[], None]:
            def call() -> None:
                for clip in clips:
                    function(clip, **params)

            return call

        timed = median_times({"naive": run(naive), "seldflow": run(fast)}, repeats=repeats, warmup=warmup)
    per_core = "per core" if threads == 1 else f"on {threads} threads each"
    channels = feature_kind(kind).output_channels
    comparison = Comparison(
        name=f"{kind.upper()} features",
        work=f"{kind} features ({channels}×T×F) of one clip, {per_core}, averaged over {len(clips)} clips in memory",
        a_label=f"plain librosa per channel ({naive.__name__})",
        a_seconds=timed["naive"] / len(clips),
        b_label=f"seldflow.feature_kinds.{fast.__name__}",
        b_seconds=timed["seldflow"] / len(clips),
        meaning=f"clips/s {per_core}: speed-up of seldflow over the plain per-channel version (>1: seldflow faster)",
        check=f"max |plain - seldflow| = {max_diff:.1e}",
    )
    return comparison, max_diff
