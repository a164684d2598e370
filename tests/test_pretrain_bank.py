"""Pretraining sound bank: the vocabulary read from any FSD50K-style tree, the procedural bank's size, layout,
subclass rates and determinism, and its classes told apart by a plain spectral classifier."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from seldflow.errors import InputError
from seldflow.pretrain.bank import (
    PROCEDURAL_CLASSES,
    SUBCLASS_RATES,
    make_pretrain_bank,
    read_bank,
    render_procedural,
)

SR = 16000


def write_tone(path: Path, seconds: float = 0.2, sample_rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), sample_rate)


def test_vocabulary_is_the_sorted_class_folders_with_their_subclasses(tmp_path: Path) -> None:
    write_tone(tmp_path / "Dog" / "Bark" / "1.wav")
    write_tone(tmp_path / "Dog" / "Bark" / "2.flac")
    write_tone(tmp_path / "Dog" / "Growl" / "deeper" / "3.wav")  # deeper nesting stays in its subclass
    write_tone(tmp_path / "Cat" / "7.wav")  # a file right in the class folder: the class's own subclass
    write_tone(tmp_path / "Alarm" / "Beep" / "4.ogg")
    (tmp_path / "Alarm" / "Beep" / "notes.txt").write_text("not audio")
    write_tone(tmp_path / ".hidden" / "x" / "5.wav")
    write_tone(tmp_path / "Cat" / ".cache" / "6.wav")
    bank = read_bank(tmp_path)
    assert bank.labels == ("Alarm", "Cat", "Dog")
    dog = bank.classes[2]
    assert list(dog.subclasses) == ["Bark", "Growl"]
    assert [p.name for p in dog.subclasses["Bark"]] == ["1.wav", "2.flac"]
    assert [p.name for p in dog.subclasses["Growl"]] == ["3.wav"]
    assert {name: [p.name for p in files] for name, files in bank.classes[1].subclasses.items()} == {"Cat": ["7.wav"]}
    assert [p.name for p in bank.classes[0].files] == ["4.ogg"]


def test_a_class_folder_without_audio_is_one_error_naming_it(tmp_path: Path) -> None:
    write_tone(tmp_path / "Dog" / "Bark" / "1.wav")
    (tmp_path / "Silence" / "Nothing").mkdir(parents=True)
    (tmp_path / "Silence" / "Nothing" / "readme.txt").write_text("no audio here")
    with pytest.raises(InputError, match=r"Silence.*no audio files") as error:
        read_bank(tmp_path)
    assert error.value.path == str(tmp_path / "Silence")


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_no_bank_or_no_classes_is_an_error(tmp_path: Path, make: str) -> None:
    path = tmp_path / "bank"
    if make == "empty":
        path.mkdir()
    with pytest.raises(InputError, match="not found" if make == "missing" else "no class folders"):
        read_bank(path)


def test_the_embedded_vocabulary_is_larger_than_any_downstream_set() -> None:
    assert len(PROCEDURAL_CLASSES) >= 40
    assert len(set(PROCEDURAL_CLASSES)) == len(PROCEDURAL_CLASSES)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.wav"))
    }


def test_procedural_bank_layout_and_same_seed_same_bytes(tmp_path: Path) -> None:
    settings = {
        "clips_per_subclass": {"train": 2, "test": 1},
        "min_seconds": 0.2,
        "max_seconds": 0.4,
        "sample_rate": SR,
    }
    make_pretrain_bank(tmp_path / "a", seed=3, classes=3, **settings)
    make_pretrain_bank(tmp_path / "b", seed=3, classes=3, **settings)
    make_pretrain_bank(tmp_path / "c", seed=4, classes=3, **settings)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    train = read_bank(tmp_path / "a" / "train")
    assert train.labels == tuple(sorted(list(PROCEDURAL_CLASSES)[:3]))
    for sound_class in train.classes:
        assert len(sound_class.subclasses) == len(SUBCLASS_RATES)
        assert all(len(files) == 2 for files in sound_class.subclasses.values())
        info = sf.info(str(sound_class.files[0]))
        assert info.samplerate == SR and info.channels == 1 and 0.2 <= info.duration <= 0.4
    assert all(len(c.files) == len(SUBCLASS_RATES) for c in read_bank(tmp_path / "a" / "test").classes)


def _mean_hz(audio: np.ndarray, sample_rate: int) -> float:
    """Mean frequency of a pure tone: half its zero crossings per second (the whistle has a single partial)."""
    crossings = np.count_nonzero(np.diff(np.signbit(audio)))
    return crossings / 2 / (audio.size / sample_rate)


def test_subclasses_play_the_class_pattern_at_their_rate() -> None:
    """A whistle's pitch scales by the subclass rate: the fast subclass sits 1.25 / 0.8 above the slow one."""
    slow = render_procedural("whistle", 0, np.random.default_rng(1), seconds=2.0, sample_rate=SR)
    fast = render_procedural("whistle", 2, np.random.default_rng(1), seconds=2.0, sample_rate=SR)
    assert slow.size == fast.size == 2 * SR
    ratio = _mean_hz(fast, SR) / _mean_hz(slow, SR)
    assert ratio == pytest.approx(SUBCLASS_RATES[2] / SUBCLASS_RATES[0], rel=0.01)
    assert np.max(np.abs(fast)) == pytest.approx(0.9, abs=1e-3)


def _features(audio: np.ndarray) -> np.ndarray:
    """Mean and spread over time of a 32-band log spectrogram, and how much the frame level jumps."""
    _, _, spec = signal.stft(audio, fs=SR, nperseg=512)
    edges = np.geomspace(1, spec.shape[0], 33).astype(int)
    bands = np.stack([np.mean(np.abs(spec[a : max(b, a + 1)]) ** 2, axis=0) for a, b in itertools.pairwise(edges)])
    log = 10 * np.log10(bands + 1e-10)
    log -= log.max()
    level = log.max(axis=0)
    return np.concatenate([log.mean(axis=1), log.std(axis=1), [np.std(np.diff(level))]])


def test_procedural_classes_are_told_apart_by_a_nearest_centroid_classifier() -> None:
    """Leave-one-out nearest class centroid on summary spectra, two clips per subclass: far above chance (1/43)."""
    names = list(PROCEDURAL_CLASSES)
    features, targets = [], []
    for index, name in enumerate(names):
        for subclass in range(len(SUBCLASS_RATES)):
            for clip in range(2):
                rng = np.random.default_rng([index, subclass, clip])
                audio = render_procedural(name, subclass, rng, seconds=1.0, sample_rate=SR)
                features.append(_features(audio))
                targets.append(index)
    x = np.asarray(features)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
    y = np.asarray(targets)
    correct = 0
    for i in range(len(x)):
        others = np.arange(len(x)) != i
        centroids = np.stack([x[others & (y == c)].mean(axis=0) for c in range(len(names))])
        correct += int(np.argmin(((centroids - x[i]) ** 2).sum(axis=1)) == y[i])
    assert correct / len(x) >= 0.7
