"""Procedural source bank: layout, determinism, class character, and reading foreign banks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from seldflow.errors import InputError
from seldflow.labels import CLASS_FOLDERS, N_CLASSES
from seldflow.synthesize.sources import clip_seed, list_bank, make_source_bank, read_source, render_source

SR = 24000


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.wav")}


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bank") / "bank"
    make_source_bank(out, clips_per_class={"train": 2, "test": 1}, min_seconds=0.5, max_seconds=1.0, seed=7)
    return out


def test_bank_layout_format_and_levels(bank: Path) -> None:
    for folder in CLASS_FOLDERS:
        for split, count in (("train", 2), ("test", 1)):
            files = sorted((bank / folder / split).glob("*.wav"))
            assert [f.name for f in files] == [f"{folder}_{i + 1:03d}.wav" for i in range(count)]
            for f in files:
                info = sf.info(f)
                assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
                assert 0.5 * SR <= info.frames <= 1.0 * SR
                audio, _ = sf.read(f)
                assert np.max(np.abs(audio)) == pytest.approx(0.9, abs=1e-3)
    assert not list(bank.parent.glob(".*"))  # no temporary directory left behind


def test_bank_is_deterministic_and_seed_dependent(bank: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    other = tmp_path / "other"
    make_source_bank(again, clips_per_class={"train": 2, "test": 1}, min_seconds=0.5, max_seconds=1.0, seed=7)
    make_source_bank(other, clips_per_class={"train": 2, "test": 1}, min_seconds=0.5, max_seconds=1.0, seed=8)
    assert _digest(again) == _digest(bank)
    differing = [name for name, digest in _digest(other).items() if digest != _digest(bank)[name]]
    assert len(differing) == len(_digest(bank))


def test_clip_does_not_depend_on_bank_size(bank: Path, tmp_path: Path) -> None:
    bigger = tmp_path / "bigger"
    make_source_bank(bigger, clips_per_class={"train": 3}, min_seconds=0.5, max_seconds=1.0, seed=7)
    for folder in CLASS_FOLDERS:
        name = f"{folder}/train/{folder}_002.wav"
        assert (bigger / name).read_bytes() == (bank / name).read_bytes()


def _median_f0(audio: np.ndarray) -> float:
    """Median autocorrelation pitch of the loudest 40 ms frames (an estimator independent of the generator)."""
    frame = int(0.04 * SR)
    frames = librosa.util.frame(audio, frame_length=frame, hop_length=frame // 2).T
    loud = frames[np.sqrt(np.mean(frames**2, axis=1)) > 0.5 * np.sqrt(np.mean(frames**2, axis=1)).max()]
    lags = np.arange(SR // 400, SR // 60)
    pitches = []
    for x in loud:
        ac = np.correlate(x, x, mode="full")[frame - 1 :]
        pitches.append(SR / lags[np.argmax(ac[lags])])
    return float(np.median(pitches))


@pytest.mark.parametrize(("class_index", "low", "high"), [(0, 150.0, 280.0), (1, 80.0, 150.0)])
def test_speech_pitch_matches_voice(class_index: int, low: float, high: float) -> None:
    for clip in range(3):
        rng = np.random.default_rng(clip_seed(3, "train", class_index, clip))
        f0 = _median_f0(render_source(class_index, rng, seconds=1.5))
        assert low <= f0 <= high


def _descriptor(audio: np.ndarray) -> np.ndarray:
    """Log-mel mean and spread, loudness-modulation spectrum (rhythm) and spectral-flatness statistics."""
    mel = np.log10(librosa.feature.melspectrogram(y=audio, sr=SR, n_fft=1024, hop_length=480, n_mels=64) + 1e-6)
    loudness = mel.mean(axis=0)
    rhythm = np.abs(np.fft.rfft(loudness - loudness.mean(), n=128))[1:40]
    flatness = np.log(librosa.feature.spectral_flatness(y=audio, n_fft=1024, hop_length=480)[0] + 1e-9)
    texture = [flatness.mean(), flatness.std(), np.mean(np.abs(np.diff(mel, axis=1)))]
    return np.concatenate([mel.mean(axis=1), mel.std(axis=1), rhythm / (rhythm.sum() + 1e-9), texture])


def test_classes_are_separable_by_a_nearest_centroid_classifier() -> None:
    """Clips of unseen seeds are recognised from class centroids of other clips, so the classes are distinct.

    Chance is 1/13; the crude classifier confuses only a few clips (male and female voices, which differ in
    pitch, are covered by the pitch test above).
    """

    def descriptors(split: str, count: int) -> np.ndarray:
        return np.stack(
            [
                [
                    _descriptor(render_source(c, np.random.default_rng(clip_seed(11, split, c, i)), seconds=2.0))
                    for i in range(count)
                ]
                for c in range(N_CLASSES)
            ]
        )

    train, test = descriptors("train", 4), descriptors("test", 3)
    flat = train.reshape(-1, train.shape[-1])
    mean, std = flat.mean(axis=0), flat.std(axis=0) + 1e-9
    centroids = ((train - mean) / std).mean(axis=1)
    distances = np.linalg.norm(((test - mean) / std)[:, :, None, :] - centroids[None, None], axis=-1)
    accuracy = np.mean(distances.argmin(axis=-1) == np.arange(N_CLASSES)[:, None])
    assert accuracy >= 0.8


def test_list_bank_finds_nested_files_in_every_class(tmp_path: Path) -> None:
    for i, folder in enumerate(CLASS_FOLDERS):
        nested = tmp_path / folder / "test" / "sub" / "deeper"
        nested.mkdir(parents=True)
        sf.write(nested / f"{i}.flac", np.full(100, 0.1), 44100)
        sf.write(tmp_path / folder / "test" / "a.wav", np.full(100, 0.1), SR)
        (tmp_path / folder / "test" / "notes.txt").write_text("not audio")
    files = list_bank(tmp_path, "test")
    assert sorted(files) == list(range(N_CLASSES))
    for i, folder in enumerate(CLASS_FOLDERS):
        assert files[i] == sorted(
            [tmp_path / folder / "test" / "a.wav", tmp_path / folder / "test" / "sub" / "deeper" / f"{i}.flac"]
        )


def test_list_bank_rejects_unknown_and_missing_classes(bank: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no audio files") as missing:
        list_bank(bank, "validation")
    assert missing.value.path == str(bank / CLASS_FOLDERS[0] / "validation")
    (bank / "dogBark").mkdir()
    try:
        with pytest.raises(InputError, match="unknown class folder") as unknown:
            list_bank(bank, "train")
        assert unknown.value.path == str(bank / "dogBark")
    finally:
        (bank / "dogBark").rmdir()
    with pytest.raises(InputError, match="not found"):
        list_bank(tmp_path / "absent", "train")


def test_read_source_resamples_and_takes_first_channel(tmp_path: Path) -> None:
    t = np.arange(48000) / 48000
    left = 0.5 * np.sin(2 * np.pi * 1000 * t)
    path = tmp_path / "stereo48k.wav"
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 48000, subtype="FLOAT")
    mono = read_source(path, SR)
    assert mono.shape == (SR,)
    expected = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(SR) / SR)
    np.testing.assert_allclose(mono[100:-100], expected[100:-100], atol=2e-3)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"RIFF\x00\x00\x00\x00WAVEgarbage", "cannot read audio"), (None, "silent")],
)
def test_read_source_rejects_bad_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.wav"
    if content is None:
        sf.write(path, np.zeros(100), SR)
    else:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        read_source(path, SR)
    assert err.value.path == str(path)
