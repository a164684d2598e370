"""seldflow.spectral: each piece against an independent computation (torch.stft, the dense filterbank, NumPy)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from seldflow.spectral import (
    MelBands,
    frame_count,
    htk_mel_bands,
    log_floor,
    phase_transform,
    power_rows,
    spectral_rows,
    stft_blocks,
    unit_intensity_rows,
)

SR = 24000


def _noise(channels: int, samples: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((channels, samples)) * 0.1).astype(np.float32)


def _torch_reference(audio: np.ndarray, n_fft: int, win_length: int, hop_length: int) -> np.ndarray:
    """torch.stft with a periodic Hann window and reflect padding, frame-major ``(channels, T, freq)``."""
    spec = torch.stft(
        torch.from_numpy(audio).double(),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=torch.hann_window(win_length, periodic=True, dtype=torch.float64),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    return spec.transpose(1, 2).numpy()


@pytest.mark.parametrize(("n_fft", "win_length", "hop_length", "block"), [(1024, 960, 480, 32), (512, 512, 240, 7)])
def test_stft_blocks_tile_the_torch_stft(n_fft: int, win_length: int, hop_length: int, block: int) -> None:
    audio = _noise(3, 12345)
    expected = _torch_reference(audio, n_fft, win_length, hop_length)
    starts, pieces = zip(
        *stft_blocks(audio, n_fft=n_fft, win_length=win_length, hop_length=hop_length, block=block), strict=True
    )
    assert list(starts) == list(range(0, expected.shape[1], block))
    got = np.concatenate(pieces, axis=1)
    assert got.shape == expected.shape == (3, frame_count(12345, hop_length), n_fft // 2 + 1)
    assert got.dtype == np.complex64
    np.testing.assert_allclose(got, expected, atol=2e-4 * np.abs(expected).max(), rtol=0)


def test_stft_of_a_clip_shorter_than_the_padding_is_an_error() -> None:
    with pytest.raises(ValueError, match="too short"):
        list(stft_blocks(_noise(1, 100), n_fft=1024, win_length=1024, hop_length=240))


@pytest.mark.parametrize("groups", [1, 3, 8, 64])
def test_banded_projection_equals_the_dense_product(groups: int) -> None:
    dense = htk_mel_bands(SR, 1024, 64, 20.0, 12000.0).matrix
    bands = MelBands.of(dense, groups)
    rows = np.random.default_rng(1).random((2, 37, dense.shape[0]), dtype=np.float32)
    np.testing.assert_allclose(bands.project(rows), rows @ dense, rtol=1e-5, atol=1e-6)
    # the groups cover every filter once, and more groups multiply fewer entries
    assert bands.groups[0][0] == 0 and bands.groups[-1][1] == 64
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bands.groups))
    assert _entries(bands) < _entries(MelBands.of(dense, 1)) if groups > 1 else _entries(bands) <= dense.size


def _entries(bands: MelBands) -> int:
    """Matrix entries the banded projection multiplies."""
    return sum((high - low) * (end - first) for first, end, low, high, _ in bands.groups)


def test_a_filter_without_bins_projects_to_zero() -> None:
    matrix = np.zeros((10, 4), dtype=np.float32)
    matrix[2:5, 0] = 1.0  # filters 2 and 3 cover no bin (too narrow for the FFT's resolution)
    bands = MelBands.of(matrix, 2)
    rows = np.ones((3, 10), dtype=np.float32)
    np.testing.assert_array_equal(bands.project(rows), rows @ matrix)


def test_kernels_match_numpy_on_a_block() -> None:
    spec = np.fft.rfft(_noise(4, 6 * 64).reshape(4, 6, 64), axis=-1).astype(np.complex64)
    spec[:, 0, 3] = 0  # a silent bin in every channel
    spec[2, 1, 5] = 0  # and one in a single channel
    view = spec.view(np.float32)

    power = np.zeros((4, 6, 33), dtype=np.float32)
    power_rows(view, power)
    np.testing.assert_allclose(power, np.abs(spec) ** 2, rtol=1e-5)

    components = np.array([1, 3, 2])
    intensity = np.zeros((3, 6, 33), dtype=np.float32)
    unit_intensity_rows(view, components, np.float32(1e-8), intensity)
    raw = np.real(spec[0] * np.conj(spec[components]))
    expected = raw / (np.sqrt((raw**2).sum(axis=0)) + 1e-8)
    np.testing.assert_allclose(intensity, expected, rtol=1e-5, atol=1e-6)
    assert not intensity[:, 0, 3].any()

    pairs = np.array([[0, 1], [2, 3]])
    phat = phase_transform(view, pairs).view(np.complex64)
    cross = spec[pairs[:, 0]] * np.conj(spec[pairs[:, 1]])
    magnitude = np.abs(cross)
    np.testing.assert_allclose(phat, cross / np.where(magnitude > 0, magnitude, 1), atol=1e-6)
    assert phat[1, 1, 5] == 0 and phat[0, 0, 3] == 0


def test_spectral_rows_gcc_keeps_the_central_lags_in_order() -> None:
    audio = _noise(2, 4800)
    identity = MelBands.of(np.eye(129, dtype=np.float32))  # projection leaves the per-bin power as it is
    rows = spectral_rows(audio, identity, n_fft=256, win_length=256, hop_length=100, gcc_pairs=((0, 1),), gcc_lags=9)
    spec = _torch_reference(audio, 256, 256, 100)
    cross = spec[0] * np.conj(spec[1])
    full = np.fft.irfft(cross / np.abs(cross), n=256, axis=-1)  # lag L at index L mod 256
    expected = np.concatenate((full[:, -4:], full[:, :5]), axis=-1)  # lags -4 .. 4
    assert rows.gcc.shape == (1, frame_count(4800, 100), 9) and rows.intensity.shape[0] == 0
    np.testing.assert_allclose(rows.gcc[0], expected, atol=2e-5)
    np.testing.assert_allclose(rows.power, np.abs(spec) ** 2, rtol=2e-3, atol=1e-6 * (np.abs(spec) ** 2).max())


def test_log_floor_uses_the_exact_float32_floor() -> None:
    values = np.array([0.0, 1e-12, 1.0, 100.0], dtype=np.float32)
    out = log_floor(values, floor=1e-10, scale=10.0)
    assert out is values
    np.testing.assert_array_equal(out, np.array([-100.0, -100.0, 0.0, 20.0], dtype=np.float32))
