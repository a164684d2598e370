"""Features: PFOA and baseline log-mel against independent computations, and the split HDF5 writer."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import librosa
import numpy as np
import pytest

from seldflow.errors import InputError
from seldflow.feature_kinds import FEATURE_KINDS, feature_channels, logmel, pfoa
from seldflow.features import extract_split
from seldflow.io import read_audio, write_audio
from seldflow.labels import write_labels
from seldflow.shards import content_digest
from seldflow.tasks import build_task

SR = 24000
N_FFT, WIN, HOP, N_MELS = 1024, 960, 480, 64
CLIP = 120000
FEATURE_PARAMS = {"n_fft": N_FFT, "win_length": WIN, "hop_length": HOP, "n_mels": N_MELS}


def noise(seed: int, scale: float = 0.5, samples: int = CLIP) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-scale, scale, (2, samples)).astype(np.float32)


def htk_slaney_mel(n_mels: int = N_MELS, fmin: float = 20.0, fmax: float = 12000.0) -> np.ndarray:
    """Triangular HTK-mel filters with Slaney area normalisation, ``(freq, n_mels)``, built from the definition."""
    hz_to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    mel_to_hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0.0, SR / 2, N_FFT // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    triangles = np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return (triangles * (2.0 / (hi - lo))).T


def numpy_stft(signal: np.ndarray) -> np.ndarray:
    """Centred STFT ``(channels, T, freq)``: reflect padding, periodic Hann of WIN samples centred in N_FFT."""
    padded = np.pad(signal, ((0, 0), (N_FFT // 2, N_FFT // 2)), mode="reflect")
    n_frames = 1 + (padded.shape[1] - N_FFT) // HOP
    window = np.zeros(N_FFT)
    offset = (N_FFT - WIN) // 2
    window[offset : offset + WIN] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)
    frames = padded[:, np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]]
    return np.fft.rfft(frames * window, axis=-1)


def numpy_pfoa(stereo: np.ndarray) -> np.ndarray:
    """PFOA in float64 numpy, written from the description of the seed system's features."""
    x = stereo.astype(np.float64) / np.max(np.abs(stereo))
    silent = np.zeros_like(x[0])
    foa = np.stack([(x[0] + x[1]) / 2, (x[0] - x[1]) / 2, silent, silent])  # ACN W, Y, Z, X
    spec = numpy_stft(foa)
    mel = htk_slaney_mel()
    log_mel = np.log10(np.maximum(np.abs(spec) ** 2 @ mel, 1e-10))
    intensity = np.real(spec[0] * np.conj(spec[1:]))  # array channels 1, 2, 3
    intensity /= np.sqrt(np.sum(intensity**2, axis=0)) + 1e-8
    return np.concatenate([log_mel, (intensity @ mel)[[0, 2, 1]]])  # stacked as channels 1, 3, 2


# ---------------------------------------------------------------------------------------------------------------
# PFOA


def test_pfoa_matches_independent_numpy_computation() -> None:
    stereo = noise(0, scale=0.3)
    ours, expected = pfoa(stereo), numpy_pfoa(stereo)
    assert ours.dtype == np.float32
    assert ours.shape == expected.shape == (7, 251, 64)
    assert np.max(np.abs(ours[:4] - expected[:4])) < 1e-4
    # Unit normalisation amplifies float32 rounding in the few bins where Re(W conj(Y)) is almost zero.
    assert np.max(np.abs(ours[4:] - expected[4:])) < 1e-3


def test_pfoa_is_level_independent_and_silent_channels_are_constant() -> None:
    stereo = noise(1)
    loud, quiet = pfoa(stereo), pfoa(stereo * 0.01)
    np.testing.assert_allclose(quiet, loud, atol=1e-4)
    np.testing.assert_array_equal(loud[2:4], -10.0)  # log10 of the 1e-10 floor
    np.testing.assert_array_equal(loud[5:], 0.0)


def test_pfoa_of_silence_is_finite() -> None:
    features = pfoa(np.zeros((2, CLIP), dtype=np.float32))
    np.testing.assert_array_equal(features[:4], -10.0)
    np.testing.assert_array_equal(features[4:], 0.0)


def test_source_panned_left_gives_positive_intensity_and_level_ratio() -> None:
    source = noise(2, scale=0.5)[0]
    gain_left, gain_right = 1.0, 0.5
    features = pfoa(np.stack([gain_left * source, gain_right * source]))
    # W = 0.75 s and Y = 0.25 s: Y is W scaled by (gl - gr) / (gl + gr) in every bin, so the log10 power
    # difference is twice the log10 of that ratio, and W·Y* is real and positive, so the unit IV is +1 per bin.
    ratio = (gain_left - gain_right) / (gain_left + gain_right)
    np.testing.assert_allclose(features[1] - features[0], 2 * np.log10(ratio), atol=1e-4)
    band_weights = np.broadcast_to(htk_slaney_mel().sum(axis=0), features[4].shape)
    np.testing.assert_allclose(features[4], band_weights, atol=1e-4)  # weights are about 0.04
    assert np.all(features[4] > 0)


def test_lr_swap_flips_only_the_intensity_sign() -> None:
    stereo = np.stack([noise(3)[0], 0.4 * noise(3)[0] + 0.2 * noise(4)[0]])
    original, swapped = pfoa(stereo), pfoa(stereo[::-1])
    assert np.mean(original[4]) > 0  # the louder left channel dominates
    np.testing.assert_allclose(swapped[4], -original[4], atol=1e-5)
    np.testing.assert_allclose(swapped[[0, 1, 2, 3, 5, 6]], original[[0, 1, 2, 3, 5, 6]], atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Baseline log-mel


def test_logmel_matches_librosa_melspectrogram_and_power_to_db() -> None:
    stereo = noise(5, scale=0.2)
    mel_power = np.stack(
        [
            librosa.feature.melspectrogram(
                y=channel, sr=SR, n_fft=N_FFT, hop_length=HOP, win_length=WIN, n_mels=N_MELS, pad_mode="constant"
            )
            for channel in stereo
        ]
    )
    expected = librosa.power_to_db(mel_power).transpose(0, 2, 1)
    ours = logmel(stereo)
    assert ours.dtype == np.float32
    assert ours.shape == (2, 251, 64)
    np.testing.assert_allclose(ours, expected, atol=1e-3)


def test_logmel_floor_is_80_db_below_the_louder_channel() -> None:
    stereo = noise(6)
    stereo[1] *= 1e-6  # the right channel is 120 dB down: all of it hits the shared floor
    features = logmel(stereo)
    np.testing.assert_allclose(features[1], features[0].max() - 80.0, atol=1e-4)


def test_feature_kinds_and_channels() -> None:
    stereo = noise(7)
    assert set(FEATURE_KINDS) == {"pfoa", "logmel", "foa", "mic"}
    for kind, channels in (("pfoa", 7), ("logmel", 2)):
        assert feature_channels(kind) == channels
        assert FEATURE_KINDS[kind].function(stereo).shape == (channels, 251, 64)
    with pytest.raises(ValueError, match="unknown feature kind"):
        feature_channels("mfcc")


def test_feature_functions_reject_non_stereo() -> None:
    with pytest.raises(ValueError, match=r"\(2, samples\)"):
        pfoa(np.zeros((4, CLIP), dtype=np.float32))


# ---------------------------------------------------------------------------------------------------------------
# Split extraction


# (frame, class, source, azimuth, distance, onscreen)
LABELS = {
    "clip_a": np.array([[0, 3, 0, 40, 150, 1], [0, 3, 1, -20, 200, 0], [12, 7, 2, 90, 95, 0]]),
    "clip_b": np.zeros((0, 6), dtype=np.int64),
    "clip_c": np.array([[49, 12, 0, -75, 310, 1]]),
}


@pytest.fixture
def split(tmp_path: Path) -> tuple[Path, Path]:
    audio_dir, meta_dir = tmp_path / "audio", tmp_path / "meta"
    for seed, (stem, rows) in enumerate(LABELS.items()):
        left = noise(seed)[0]
        write_audio(audio_dir / f"{stem}.wav", np.stack([left, 0.5 * left]), SR)
        write_labels(meta_dir / f"{stem}.csv", rows)
    return audio_dir, meta_dir


def run(audio_dir: Path, out: Path, meta_dir: Path | None, **overrides: object) -> None:
    options = {"kind": "pfoa", "lr_swap": True, **FEATURE_PARAMS, **overrides}
    extract_split(audio_dir, out, metadata_dir=meta_dir, **options)


def test_extract_split_layout(split: tuple[Path, Path], tmp_path: Path) -> None:
    audio_dir, meta_dir = split
    out = tmp_path / "features.h5"
    run(audio_dir, out, meta_dir)
    with h5py.File(out, "r") as h5:
        names = [name.decode() for name in h5["clips"][:]]
        assert names == ["clip_a", "clip_a_LRswap", "clip_b", "clip_b_LRswap", "clip_c", "clip_c_LRswap"]
        assert h5["clips"].dtype == h5py.string_dtype()
        features, label_rows = h5["features"], h5["label_rows"][()]
        assert features.shape == (6, 7, 251, 64) and features.dtype == np.float32
        assert features.chunks == (1, 7, 251, 64) and features.compression is None
        assert label_rows.dtype == np.int64 and label_rows.shape[1] == 7  # clip index + the six CSV columns
        assert dict(h5.attrs) == {
            "kind": "pfoa",
            "sample_rate": SR,
            "label_frames": 50,
            "label_format": "dcase2025",
            "channels": 7,
            "config": h5.attrs["config"],
            "digest": content_digest(h5),
        }
        config = json.loads(h5.attrs["config"])
        assert config == {**FEATURE_PARAMS, "kind": "pfoa", "lr_swap": True, "sample_rate": SR, "clip_samples": CLIP}
        assert list(config) == sorted(config)

        stereo = read_audio(audio_dir / "clip_a.wav", sample_rate=SR, channels=2, frames=CLIP)
        np.testing.assert_array_equal(features[0], pfoa(stereo))
        np.testing.assert_array_equal(features[1], pfoa(stereo[::-1]))
        assert np.mean(features[0, 4]) > 0 > np.mean(features[1, 4])  # the clips are panned left

        task = build_task(None)
        labels = np.stack([task.targets(label_rows[label_rows[:, 0] == k, 1:], 50) for k in range(6)])
        np.testing.assert_array_equal(label_rows[label_rows[:, 0] == 0, 1:], LABELS["clip_a"])
        mirrored = labels[0].copy()
        mirrored[:, :, 2] *= -1  # y = sin(azimuth)
        np.testing.assert_allclose(labels[1], mirrored, atol=1e-7)
        assert labels[1, 0, 1, 2, 3] < 0 < labels[0, 0, 1, 2, 3]  # first of two class-3 events, azimuth 40
        assert labels[2].max() == labels[3].max() == 0.0
        assert labels[4, 49, 0, 3, 12] == pytest.approx(3.1)  # 310 cm

        expected_rows = [
            [0, 0, 3, 0, 40, 150, 1],
            [0, 0, 3, 1, -20, 200, 0],
            [0, 12, 7, 2, 90, 95, 0],
            [1, 0, 3, 0, -40, 150, 1],
            [1, 0, 3, 1, 20, 200, 0],
            [1, 12, 7, 2, -90, 95, 0],
            [4, 49, 12, 0, -75, 310, 1],
            [5, 49, 12, 0, 75, 310, 1],
        ]
        assert h5["label_rows"].dtype == np.int64
        np.testing.assert_array_equal(h5["label_rows"][:], expected_rows)


def test_extract_split_without_metadata_or_swap(split: tuple[Path, Path], tmp_path: Path) -> None:
    audio_dir, _ = split
    out = tmp_path / "features.h5"
    run(audio_dir, out, None, kind="logmel", lr_swap=False)
    with h5py.File(out, "r") as h5:
        assert set(h5) == {"clips", "features"}
        assert [name.decode() for name in h5["clips"][:]] == ["clip_a", "clip_b", "clip_c"]
        assert h5["features"].shape == (3, 2, 251, 64)
        assert h5.attrs["channels"] == 2 and h5.attrs["kind"] == "logmel"
        stereo = read_audio(audio_dir / "clip_c.wav", sample_rate=SR)
        np.testing.assert_array_equal(h5["features"][2], logmel(stereo))


def test_extract_split_is_byte_identical_and_parameter_sensitive(split: tuple[Path, Path], tmp_path: Path) -> None:
    audio_dir, meta_dir = split
    first, second, other = tmp_path / "first.h5", tmp_path / "second.h5", tmp_path / "other.h5"
    run(audio_dir, first, meta_dir)
    run(audio_dir, second, meta_dir)
    assert first.read_bytes() == second.read_bytes()
    run(audio_dir, other, meta_dir, n_mels=32)
    assert other.read_bytes() != first.read_bytes()
    with h5py.File(other, "r") as h5:
        assert h5["features"].shape == (6, 7, 251, 32)
        assert json.loads(h5.attrs["config"])["n_mels"] == 32


def test_missing_label_file_is_named_and_leaves_no_output(split: tuple[Path, Path], tmp_path: Path) -> None:
    audio_dir, meta_dir = split
    (meta_dir / "clip_b.csv").unlink()
    out = tmp_path / "out" / "features.h5"
    with pytest.raises(InputError) as err:
        run(audio_dir, out, meta_dir)
    assert err.value.path == str(meta_dir / "clip_b.csv")
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_label_file_without_clip_is_an_error(split: tuple[Path, Path], tmp_path: Path) -> None:
    audio_dir, meta_dir = split
    write_labels(meta_dir / "stray.csv", LABELS["clip_c"])
    with pytest.raises(InputError, match=r"stray\.csv"):
        run(audio_dir, tmp_path / "features.h5", meta_dir)


def test_bad_clip_midway_leaves_no_output(split: tuple[Path, Path], tmp_path: Path) -> None:
    audio_dir, meta_dir = split
    write_audio(audio_dir / "clip_b.wav", noise(9)[:, : CLIP - 1], SR)
    out = tmp_path / "out" / "features.h5"
    with pytest.raises(InputError) as err:
        run(audio_dir, out, meta_dir)
    assert err.value.path == str(audio_dir / "clip_b.wav") and err.value.field == "length"
    assert list(out.parent.iterdir()) == []


def test_empty_audio_folder_and_twin_name_collision(tmp_path: Path) -> None:
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    with pytest.raises(InputError, match=r"no \*\.wav"):
        run(audio_dir, tmp_path / "features.h5", None)
    for stem in ("x", "x_LRswap"):
        write_audio(audio_dir / f"{stem}.wav", noise(0), SR)
    with pytest.raises(InputError, match="collide"):
        run(audio_dir, tmp_path / "features.h5", None)
    run(audio_dir, tmp_path / "features.h5", None, lr_swap=False)  # without twins the names are fine
