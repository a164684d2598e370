"""The spectral arithmetic under the feature kinds, arranged for the CPU's caches: STFT blocks, per-bin kernels and a
banded mel filterbank.

Why not one ``torch.stft`` over all channels and whole-array torch arithmetic (what the feature kinds did first): on
one core, ``torch.stft`` of four 5-s channels at a 240-sample hop took 12.8 ms, where the same frames went through
``torch.fft.rfft`` in blocks of :data:`FRAME_BLOCK` frames in 2.5 ms (a block of every channel's spectra stays in
the core's cache); the per-bin products (power, intensity, phase transform) on strided real and imaginary views of
a complex tensor ran at a tenth of the speed of a compiled loop over the interleaved numbers; and the dense
``(513, 64)`` mel matrix is 97% zeros. So: the FFT stays torch's (MKL), the per-bin products are small numba
kernels (numba is there already as librosa's own dependency; NumPy and torch have no fused form of them), and the
mel projection multiplies only the bands of bins each group of filters covers (:class:`MelBands`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import librosa
import numpy as np
import torch
from numba import njit

# Frames per STFT block: four channels of 1,024-point spectra (about 0.5 MB of complex64) fit the per-core cache.
FRAME_BLOCK = 32
# Filter groups of the banded mel projection: 16 groups of 4 of 64 HTK filters multiply 2,504 of the 32,832 matrix
# entries of a 1,024-point spectrum (8 groups: 4,504); fewer, wider products are not faster (0.64 ms against 0.77
# for a FOA clip's seven channels on one core, the dense product 2.4 ms).
MEL_GROUPS = 16


@functools.lru_cache(maxsize=8)
def hann_window(n_fft: int, win_length: int) -> np.ndarray:
    """Periodic Hann window of ``win_length`` centred in ``n_fft`` points, as ``torch.stft`` and ``librosa.stft``
    pad a shorter window."""
    if not 1 <= win_length <= n_fft:
        raise ValueError(f"the window must fit the FFT: need 1 <= win_length ({win_length}) <= n_fft ({n_fft})")
    window = np.zeros(n_fft, dtype=np.float32)
    left = (n_fft - win_length) // 2
    window[left : left + win_length] = librosa.filters.get_window("hann", win_length, fftbins=True)
    window.flags.writeable = False
    return window


def frame_count(samples: int, hop_length: int) -> int:
    """Frames of a centred STFT (``n_fft // 2`` reflected samples on each side): ``1 + samples // hop_length``."""
    return 1 + samples // hop_length


def stft_blocks(
    audio: np.ndarray, *, n_fft: int, win_length: int, hop_length: int, block: int = FRAME_BLOCK
) -> Iterator[tuple[int, np.ndarray]]:
    """The centred STFT of float32 ``(channels, samples)`` a block of frames at a time: ``(first frame, spectra)``
    with spectra complex64 ``(channels, frames in block, n_fft // 2 + 1)``, frame-major, numbers as ``torch.stft``
    with a periodic Hann window and reflect padding gives them."""
    half = n_fft // 2
    if audio.shape[-1] <= half:
        raise ValueError(f"a clip of {audio.shape[-1]} samples is too short for reflect padding of {half} samples")
    padded = torch.from_numpy(np.pad(audio, ((0, 0), (half, half)), mode="reflect"))
    frames = padded.unfold(-1, n_fft, hop_length)  # (channels, T, n_fft), a view
    window = torch.from_numpy(hann_window(n_fft, win_length).copy())
    for start in range(0, frames.shape[1], block):
        # torch rather than NumPy for the window product: a third of the time on these strided frame views
        yield start, torch.fft.rfft(frames[:, start : start + block] * window, dim=-1).numpy()


@dataclass(frozen=True)
class MelBands:
    """A mel filterbank ``(freq, n_mels)`` kept as groups of consecutive filters, each with the band of bins its
    filters cover; :meth:`project` equals ``rows @ matrix`` but multiplies only those bands."""

    matrix: np.ndarray  # (freq, n_mels) float32, the full filterbank
    groups: tuple[tuple[int, int, int, int, np.ndarray], ...]  # (first mel, end mel, first bin, end bin, weights)

    @classmethod
    def of(cls, matrix: np.ndarray, groups: int = MEL_GROUPS) -> MelBands:
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        n_mels = matrix.shape[1]
        bounds = np.linspace(0, n_mels, min(groups, n_mels) + 1).astype(int)
        parts = []
        for first, end in itertools.pairwise(bounds):
            used = np.flatnonzero(matrix[:, first:end].any(axis=1))
            low, high = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 0)
            parts.append((int(first), int(end), low, high, np.ascontiguousarray(matrix[low:high, first:end])))
        return cls(matrix=matrix, groups=tuple(parts))

    @property
    def n_mels(self) -> int:
        return self.matrix.shape[1]

    def project(self, rows: np.ndarray) -> np.ndarray:
        """``rows (..., freq) @ matrix`` as float32 ``(..., n_mels)``."""
        flat = rows.reshape(-1, rows.shape[-1])
        out = np.empty((*rows.shape[:-1], self.n_mels), dtype=np.float32)
        result = out.reshape(flat.shape[0], self.n_mels)  # a view: out is C-contiguous
        for first, end, low, high, weights in self.groups:
            if high > low:
                np.matmul(flat[:, low:high], weights, out=result[:, first:end])
            else:
                result[:, first:end] = 0.0
        return out


@functools.lru_cache(maxsize=8)
def htk_mel_bands(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> MelBands:
    """HTK-scale mel filters with Slaney area normalisation (the filters of the seed system's torchaudio
    ``MelScale``), cached: every clip reuses them."""
    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=True, norm="slaney")
    return MelBands.of(mel.T)


@dataclass(frozen=True)
class SpectralRows:
    """What the feature kinds take from a clip's STFT, frame-major: ``mels (channels + components, T, n_mels)``, the
    mel-projected power of every channel followed by the mel-projected unit intensity components asked for, and the
    central GCC-PHAT lags ``(pairs, T, lags)`` when asked for."""

    mels: np.ndarray
    channels: int
    gcc: np.ndarray | None

    @property
    def power(self) -> np.ndarray:
        return self.mels[: self.channels]

    @property
    def intensity(self) -> np.ndarray:
        return self.mels[self.channels :]


def spectral_rows(
    audio: np.ndarray,
    bands: MelBands,
    *,
    n_fft: int,
    win_length: int,
    hop_length: int,
    intensity_of: tuple[int, ...] = (),
    intensity_eps: float = 0.0,
    gcc_pairs: tuple[tuple[int, int], ...] = (),
    gcc_lags: int = 0,
) -> SpectralRows:
    """Power and unit intensity (of channels ``intensity_of`` against channel 0) projected on ``bands``, and
    GCC-PHAT (``gcc_lags`` lags around 0 of each pair in ``gcc_pairs``, lag ``k - gcc_lags // 2`` at index ``k``), of
    float32 ``(channels, samples)``.

    One STFT block at a time, so each block's spectra are used while they are in cache, and projected per block:
    the per-bin rows of a whole clip (7.2 MB for FOA's seven 501-frame rows of 513 bins) are never held, a block's
    (0.46 MB) is.
    """
    channels, samples = audio.shape
    frames, bins = frame_count(samples, hop_length), n_fft // 2 + 1
    components = np.asarray(intensity_of, dtype=np.int64)
    mels = np.empty((channels + components.size, frames, bands.n_mels), dtype=np.float32)
    pairs = np.asarray(gcc_pairs, dtype=np.int64).reshape(-1, 2)
    gcc = np.empty((len(pairs), frames, gcc_lags), dtype=np.float32) if len(pairs) else None
    half = gcc_lags // 2
    for start, spec in stft_blocks(audio, n_fft=n_fft, win_length=win_length, hop_length=hop_length):
        interleaved = spec.view(np.float32)
        stop = start + spec.shape[1]
        rows = np.empty((mels.shape[0], spec.shape[1], bins), dtype=np.float32)
        power_rows(interleaved, rows[:channels])
        if components.size:
            unit_intensity_rows(interleaved, components, np.float32(intensity_eps), rows[channels:])
        mels[:, start:stop] = bands.project(rows)
        if gcc is not None:
            # lag L at index L mod n_fft of the inverse transform; only the kept lags are copied out
            phat = phase_transform(interleaved, pairs).view(np.complex64)
            correlation = torch.fft.irfft(torch.from_numpy(phat), n=n_fft, dim=-1).numpy()
            gcc[:, start:stop, :half] = correlation[..., n_fft - half :]
            gcc[:, start:stop, half:] = correlation[..., : gcc_lags - half]
    return SpectralRows(mels=mels, channels=channels, gcc=gcc)


def log_floor(mel_power: np.ndarray, *, floor: float, scale: float) -> np.ndarray:
    """``scale · log10(max(mel_power, floor))`` in place (float32), with torch's log10 as the reference systems:
    NumPy's float32 log10 is an ulp off in places (log10 of the float32 1e-10 floor is -10.000001, not -10)."""
    values = torch.from_numpy(mel_power)
    values.clamp_(min=floor).log10_().mul_(scale)
    return mel_power


# The kernels take complex64 spectra as float32 views, real and imaginary parts interleaved along the last axis:
# numba compiles complex arithmetic (a complex division above all) into scalar code, the real-valued loops vectorise.
# NumPy's error model: a float division is not checked for a zero divisor (Python's model raises, and the check
# keeps the loop from vectorising: the intensity's division took 0.6 of its 0.8 ms a clip); no divisor here is 0.
_kernel = njit(cache=True, error_model="numpy")


@_kernel
def power_rows(spec: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``|X|²`` of a block (interleaved ``(channels, frames, 2·freq)``) into ``out (channels, frames, freq)``."""
    channels, frames, width = spec.shape
    for c in range(channels):
        for t in range(frames):
            row = out[c, t]
            for k in range(width // 2):
                re, im = spec[c, t, 2 * k], spec[c, t, 2 * k + 1]
                row[k] = re * re + im * im


@_kernel
def unit_intensity_rows(
    spec: np.ndarray, components: np.ndarray, eps: float, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Active intensity ``Re(X_0 · conj(X_c))`` of each channel ``c`` in ``components``, divided per bin by the
    length of the vector they form plus ``eps``, into ``out (components, frames, freq)``."""
    _, frames, width = spec.shape
    bins = width // 2
    norm = np.empty(bins, dtype=np.float32)
    for t in range(frames):
        norm[:] = 0.0
        for j in range(components.shape[0]):
            row = out[j, t]
            c = components[j]
            for k in range(bins):
                value = spec[0, t, 2 * k] * spec[c, t, 2 * k] + spec[0, t, 2 * k + 1] * spec[c, t, 2 * k + 1]
                row[k] = value
                norm[k] += value * value
        for k in range(bins):
            norm[k] = np.sqrt(norm[k]) + eps
        for j in range(components.shape[0]):
            row = out[j, t]
            for k in range(bins):
                row[k] = row[k] / norm[k]


@_kernel
def phase_transform(spec: np.ndarray, pairs: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``X_i · conj(X_j) / |X_i · conj(X_j)|`` of every pair ``(i, j)`` of a block, interleaved ``(pairs, frames,
    2·freq)``, as the product of the two unit phasors (the same number; each channel normalised once, not each
    pair); a bin where either spectrum is zero gives 0."""
    channels, frames, width = spec.shape
    unit = np.empty_like(spec)
    for c in range(channels):
        for t in range(frames):
            for k in range(width // 2):
                re, im = spec[c, t, 2 * k], spec[c, t, 2 * k + 1]
                magnitude = np.sqrt(re * re + im * im)
                inverse = np.float32(1.0) / magnitude if magnitude > 0 else np.float32(0.0)
                unit[c, t, 2 * k] = re * inverse
                unit[c, t, 2 * k + 1] = im * inverse
    out = np.empty((pairs.shape[0], frames, width), dtype=spec.dtype)
    for p in range(pairs.shape[0]):
        i, j = pairs[p, 0], pairs[p, 1]
        for t in range(frames):
            for k in range(width // 2):
                ri, ii = unit[i, t, 2 * k], unit[i, t, 2 * k + 1]
                rj, ij = unit[j, t, 2 * k], unit[j, t, 2 * k + 1]
                out[p, t, 2 * k] = ri * rj + ii * ij
                out[p, t, 2 * k + 1] = ii * rj - ri * ij
    return out
