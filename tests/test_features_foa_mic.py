"""FOA (log-mel + intensity vectors) and MIC (log-mel + GCC-PHAT) features on plane waves from known directions."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import librosa
import numpy as np
import pytest

from seldflow.errors import InputError
from seldflow.feature_kinds import (
    FEATURE_KINDS,
    MIC_PAIRS,
    feature_channels,
    foa_logmel_iv,
    input_channels,
    mic_logmel_gcc,
    mirror_audio,
)
from seldflow.features import extract_split
from seldflow.io import read_audio, write_audio
from seldflow.labels import write_labels

SR = 24000
CLIP = 120000  # 5 s
SHORT = 24000  # 1 s: enough frames for the direction tests, a fifth of the work
N_FFT = WIN = 1024
HOP = 240
N_MELS = 64
FEATURE_PARAMS = {"n_fft": N_FFT, "win_length": WIN, "hop_length": HOP, "n_mels": N_MELS}
SPEED_OF_SOUND = 343.0
TETRA_RADIUS = 0.042
# DCASE tetrahedral capsules M1..M4 as (azimuth, elevation) in degrees; azimuth positive to the left (+y).
TETRA_CAPSULES_DEG = ((45.0, 35.0), (-45.0, -35.0), (135.0, -35.0), (-135.0, 35.0))
EDGE_FRAMES = 3  # frames whose window reaches into the reflect padding (n_fft / 2 = 512 samples > 2 hops)


def unit_vector(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    return np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def source(seed: int, samples: int = SHORT, scale: float = 0.3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-scale, scale, samples)


def foa_plane_wave(signal: np.ndarray, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """ACN/SN3D encoding of a far-field source: W = s, Y = sin a cos e s, Z = sin e s, X = cos a cos e s."""
    x, y, z = unit_vector(azimuth_deg, elevation_deg)
    return np.stack([signal, y * signal, z * signal, x * signal]).astype(np.float32)


def capsule_arrival_times(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Arrival time (s) of a plane wave from the given direction at each capsule, relative to the array centre.

    A capsule displaced towards the source by ``p · u`` hears the wave ``p · u / c`` earlier.
    """
    positions = TETRA_RADIUS * np.stack([unit_vector(az, el) for az, el in TETRA_CAPSULES_DEG])
    return -(positions @ unit_vector(azimuth_deg, elevation_deg)) / SPEED_OF_SOUND


def tetra_plane_wave(signal: np.ndarray, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Free-field omni capsules: the source delayed by each capsule's fractional arrival time (frequency domain)."""
    spectrum = np.fft.rfft(signal)
    freqs = np.fft.rfftfreq(len(signal), 1.0 / SR)
    delays = capsule_arrival_times(azimuth_deg, elevation_deg)
    shifted = spectrum[None, :] * np.exp(-2j * np.pi * freqs[None, :] * delays[:, None])
    return np.fft.irfft(shifted, n=len(signal)).astype(np.float32)


def direction_of(iv: np.ndarray) -> tuple[float, float]:
    """Azimuth and elevation (degrees) of intensity channels stacked as ACN Y, Z, X, summed over frames and bands."""
    y, z, x = (float(channel.sum(dtype=np.float64)) for channel in iv)
    return float(np.rad2deg(np.arctan2(y, x))), float(np.rad2deg(np.arctan2(z, np.hypot(x, y))))


def angle_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(np.rad2deg(np.arccos(np.clip(unit_vector(*a) @ unit_vector(*b), -1.0, 1.0))))


# Front, sides, rear, elevated and below the horizon, including the capsule directions of M1 and M4.
DIRECTIONS = [(0, 0), (90, 0), (-90, 0), (180, 0), (150, 30), (-120, -30), (30, 60), (-160, 45), (100, 10)]


# ---------------------------------------------------------------------------------------------------------------
# Kinds and shapes


def test_kinds_shapes_and_channel_counts() -> None:
    assert {"foa", "mic"} <= set(FEATURE_KINDS)
    assert FEATURE_KINDS["foa"].function is foa_logmel_iv and FEATURE_KINDS["mic"].function is mic_logmel_gcc
    assert (feature_channels("foa"), input_channels("foa")) == (7, 4)
    assert (feature_channels("mic"), input_channels("mic")) == (10, 4)
    assert input_channels("pfoa") == input_channels("logmel") == 2
    with pytest.raises(ValueError, match="unknown feature kind"):
        input_channels("salsa")

    clip = tetra_plane_wave(source(0, CLIP), 30.0, 10.0)
    foa, mic = foa_logmel_iv(clip), mic_logmel_gcc(clip)
    assert foa.shape == (7, 501, 64) and mic.shape == (10, 501, 64)  # hop 240: 1 + 120000 // 240 frames
    assert foa.dtype == mic.dtype == np.float32
    assert np.all(np.isfinite(foa)) and np.all(np.isfinite(mic))


def test_wrong_channel_counts_are_rejected() -> None:
    stereo = np.zeros((2, SHORT), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\(4, samples\)"):
        foa_logmel_iv(stereo)
    with pytest.raises(ValueError, match=r"\(4, samples\)"):
        mic_logmel_gcc(stereo)
    with pytest.raises(ValueError, match=r"\(2, samples\)"):
        mirror_audio(np.zeros((4, SHORT), dtype=np.float32), "pfoa")
    with pytest.raises(ValueError, match="n_mels"):
        mic_logmel_gcc(np.zeros((4, SHORT), dtype=np.float32), n_fft=32, win_length=32, n_mels=64)


# ---------------------------------------------------------------------------------------------------------------
# FOA: log-mel in dB and intensity vectors


@pytest.mark.parametrize(("azimuth", "elevation"), DIRECTIONS)
def test_foa_intensity_points_at_the_plane_wave_direction(azimuth: float, elevation: float) -> None:
    features = foa_logmel_iv(foa_plane_wave(source(1), azimuth, elevation))
    estimate = direction_of(features[4:])
    assert angle_between(estimate, (azimuth, elevation)) < 0.5, estimate
    # Every band of every frame carries the same unit direction scaled by the band's filter area.
    x, y, z = unit_vector(azimuth, elevation)
    band_area = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=20.0, fmax=12000.0, htk=True).sum(axis=1)
    expected = np.array([y, z, x])[:, None, None] * band_area[None, None, :]
    np.testing.assert_allclose(features[4:], np.broadcast_to(expected, features[4:].shape), atol=2e-4)


def test_foa_log_mel_is_10_log10_of_mel_power() -> None:
    clip = foa_plane_wave(source(2), 120.0, -30.0)
    padded = np.pad(clip.astype(np.float64), ((0, 0), (N_FFT // 2, N_FFT // 2)), mode="reflect")
    n_frames = 1 + (padded.shape[1] - N_FFT) // HOP
    frames = padded[:, np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    mel = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=20.0, fmax=12000.0, htk=True, norm="slaney")
    expected = 10.0 * np.log10(np.maximum(power @ mel.T, 1e-10))
    features = foa_logmel_iv(clip)
    assert features.shape[1] == n_frames == 101
    np.testing.assert_allclose(features[:4], expected, atol=2e-3)
    # Each component is W scaled by its gain g: exactly 20 log10 |g| dB below W in every band.
    x, y, z = unit_vector(120.0, -30.0)
    for channel, gain in ((1, y), (2, z), (3, x)):
        np.testing.assert_allclose(features[channel] - features[0], 20 * np.log10(abs(gain)), atol=2e-3)


def test_foa_levels_shift_in_db_and_silence_is_finite() -> None:
    clip = foa_plane_wave(source(3), -60.0, 20.0)
    loud, quiet = foa_logmel_iv(clip), foa_logmel_iv(clip * 0.1)
    np.testing.assert_allclose(quiet[:4], loud[:4] - 20.0, atol=2e-3)  # no normalisation: level is kept
    np.testing.assert_allclose(quiet[4:], loud[4:], atol=1e-4)  # directions do not depend on level
    silence = foa_logmel_iv(np.zeros((4, SHORT), dtype=np.float32))
    np.testing.assert_array_equal(silence[:4], -100.0)  # 10 log10 of the 1e-10 floor
    np.testing.assert_array_equal(silence[4:], 0.0)


def test_foa_mirror_negates_azimuth_only() -> None:
    signal = source(4)
    twin = mirror_audio(foa_plane_wave(signal, 150.0, 30.0), "foa")
    np.testing.assert_array_equal(twin, foa_plane_wave(signal, -150.0, 30.0))
    features = foa_logmel_iv(twin)
    assert angle_between(direction_of(features[4:]), (-150.0, 30.0)) < 0.5


# ---------------------------------------------------------------------------------------------------------------
# MIC: GCC-PHAT lags


def gcc_lag_index(lag: int, n_lags: int = N_MELS) -> int:
    """Index of ``lag`` along the GCC axis: lags run from -n_lags // 2 (index 0) upwards."""
    return lag + n_lags // 2


def test_gcc_sign_and_lag_ordering_on_integer_delays() -> None:
    signal = source(5)
    # Arrival times in samples: M2 hears the source 3 samples after M1, M3 hears it 4 samples before M1.
    arrival = (0, 3, -4, 0)  # pair lags -3, 4, 0, 7, 3, -4
    clip = np.stack([np.roll(signal, delay) for delay in arrival]).astype(np.float32)
    n_lags = 16  # lags -8 .. 7
    gcc = mic_logmel_gcc(clip, n_mels=n_lags)[4:, EDGE_FRAMES:-EDGE_FRAMES]
    for channel, (i, j) in enumerate(MIC_PAIRS):
        lag = arrival[i] - arrival[j]  # arrival at the pair's first microphone minus at its second
        peaks = gcc[channel].argmax(axis=-1)
        np.testing.assert_array_equal(peaks, gcc_lag_index(lag, n_lags), err_msg=f"pair {(i, j)}")
        assert gcc[channel, :, gcc_lag_index(lag, n_lags)].min() > 0.9  # a pure delay: PHAT peak of about 1
    assert gcc_lag_index(-8, n_lags) == 0 and gcc_lag_index(7, n_lags) == n_lags - 1


@pytest.mark.parametrize(("azimuth", "elevation"), DIRECTIONS)
def test_gcc_peaks_at_the_tetrahedral_tdoa(azimuth: float, elevation: float) -> None:
    arrival = capsule_arrival_times(azimuth, elevation) * SR
    features = mic_logmel_gcc(tetra_plane_wave(source(6), azimuth, elevation))
    gcc = features[4:, EDGE_FRAMES:-EDGE_FRAMES]
    for channel, (i, j) in enumerate(MIC_PAIRS):
        tdoa = arrival[i] - arrival[j]
        assert abs(abs(tdoa - np.floor(tdoa)) - 0.5) > 0.05, "ambiguous direction for a nearest-lag test"
        nearest = int(np.rint(tdoa))
        assert abs(nearest) <= 5  # capsules are 6.9 cm apart: at most 4.8 samples at 24 kHz
        assert gcc[channel].mean(axis=0).argmax() == gcc_lag_index(nearest), f"pair {(i, j)}, tdoa {tdoa:.2f}"
        np.testing.assert_array_equal(gcc[channel].argmax(axis=-1), gcc_lag_index(nearest))
    # A plane wave reaches every capsule at the same level: the four log-mels agree (away from the padded edges).
    log_mel = features[:4, EDGE_FRAMES:-EDGE_FRAMES]
    assert np.max(np.abs(log_mel[1:] - log_mel[0])) < 0.5


def test_mic_mirror_is_the_half_turn_about_the_front_axis() -> None:
    signal = source(7)
    twin = mirror_audio(tetra_plane_wave(signal, 100.0, 10.0), "mic")
    # Exchanging M1/M2 and M3/M4 records the scene turned 180 degrees about x: azimuth and elevation negated.
    np.testing.assert_allclose(twin, tetra_plane_wave(signal, -100.0, -10.0), atol=1e-6)


def test_mic_silence_is_finite() -> None:
    features = mic_logmel_gcc(np.zeros((4, SHORT), dtype=np.float32))
    np.testing.assert_array_equal(features[:4], -100.0)
    np.testing.assert_array_equal(features[4:], 0.0)


# ---------------------------------------------------------------------------------------------------------------
# Split extraction on 4-channel folders

# (frame, class, source, azimuth, distance, onscreen)
LABELS = {
    "fold3_room1_mix001": (np.array([[0, 3, 0, 40, 150, 1], [12, 7, 1, -80, 95, 0]]), (40.0, 10.0)),
    "fold3_room1_mix002": (np.array([[49, 12, 0, -75, 310, 0]]), (-75.0, -20.0)),
}


def make_split(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    audio_dir, meta_dir = tmp_path / f"{kind}_dev", tmp_path / "metadata_dev"
    encode = foa_plane_wave if kind == "foa" else tetra_plane_wave
    for seed, (stem, (rows, direction)) in enumerate(LABELS.items()):
        write_audio(audio_dir / f"{stem}.wav", encode(source(seed, CLIP), *direction), SR)
        write_labels(meta_dir / f"{stem}.csv", rows)
    return audio_dir, meta_dir


@pytest.mark.parametrize(("kind", "function", "channels"), [("foa", foa_logmel_iv, 7), ("mic", mic_logmel_gcc, 10)])
def test_extract_split_on_four_channel_folders(tmp_path: Path, kind: str, function, channels: int) -> None:
    audio_dir, meta_dir = make_split(tmp_path, kind)
    out = tmp_path / f"{kind}.h5"
    extract_split(audio_dir, out, metadata_dir=meta_dir, kind=kind, lr_swap=True, **FEATURE_PARAMS)
    with h5py.File(out, "r") as h5:
        names = [name.decode() for name in h5["clips"][:]]
        assert names == [
            "fold3_room1_mix001",
            "fold3_room1_mix001_LRswap",
            "fold3_room1_mix002",
            "fold3_room1_mix002_LRswap",
        ]
        assert h5["features"].shape == (4, channels, 501, 64) and h5["features"].chunks == (1, channels, 501, 64)
        assert (h5.attrs["kind"], h5.attrs["channels"], h5.attrs["label_frames"]) == (kind, channels, 50)
        config = json.loads(h5.attrs["config"])
        assert config == {**FEATURE_PARAMS, "kind": kind, "lr_swap": True, "sample_rate": SR, "clip_samples": CLIP}

        clip = read_audio(audio_dir / "fold3_room1_mix001.wav", sample_rate=SR, channels=4, frames=CLIP)
        np.testing.assert_array_equal(h5["features"][0], function(clip))
        np.testing.assert_array_equal(h5["features"][1], function(mirror_audio(clip, kind)))
        rows = LABELS["fold3_room1_mix001"][0]
        label_rows = h5["label_rows"][()]
        np.testing.assert_array_equal(label_rows[label_rows[:, 0] == 0, 1:], rows)
        mirrored = rows.copy()
        mirrored[:, 3] *= -1
        np.testing.assert_array_equal(label_rows[label_rows[:, 0] == 1, 1:], mirrored)
        if kind == "foa":  # the stored features point at the encoded direction, and the twin at its mirror image
            assert angle_between(direction_of(h5["features"][2, 4:]), (-75.0, -20.0)) < 1.0
            assert angle_between(direction_of(h5["features"][3, 4:]), (75.0, -20.0)) < 1.0
        else:  # pair (0, 1) of the twin is pair (1, 0) of the original: the correlation reversed in lag
            original, twin = h5["features"][2, 4], h5["features"][3, 4]
            np.testing.assert_allclose(twin[:, 1:], original[:, :0:-1], atol=1e-5)


@pytest.mark.parametrize("kind", ["foa", "mic"])
def test_extract_split_names_a_clip_with_the_wrong_channel_count(tmp_path: Path, kind: str) -> None:
    audio_dir, meta_dir = make_split(tmp_path, kind)
    stereo = audio_dir / "fold3_room1_mix002.wav"
    write_audio(stereo, np.stack([source(9, CLIP)] * 2), SR)
    out = tmp_path / "out" / f"{kind}.h5"
    with pytest.raises(InputError, match="has 2 channels, expected 4") as err:
        extract_split(audio_dir, out, metadata_dir=meta_dir, kind=kind, lr_swap=False, **FEATURE_PARAMS)
    assert err.value.path == str(stereo) and err.value.field == "channels"
    assert list(out.parent.iterdir()) == []  # nothing half-written


def test_stereo_kinds_reject_four_channel_clips(tmp_path: Path) -> None:
    audio_dir, _ = make_split(tmp_path, "foa")
    with pytest.raises(InputError, match="has 4 channels, expected 2"):
        extract_split(audio_dir, tmp_path / "pfoa.h5", metadata_dir=None, kind="pfoa", lr_swap=False, **FEATURE_PARAMS)
