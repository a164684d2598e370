"""AdapterBit's mono mode as a data source (seldflow.mono): labels at the drawn directions, clips fixed by the seed,
config checks naming the key, and the planned DAG of an experiment that trains on a mono split."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from helpers import default_config, planned_jobs, run_snakemake, tiny_config, write_config

from seldflow.config import validate_config
from seldflow.errors import ConfigError
from seldflow.formats import dcase2021
from seldflow.formats.events import EV_AZIMUTH, EV_CLASS, EV_ELEVATION, EV_FRAME, EV_TRACK
from seldflow.mono import mono_clip, render_mono_split
from seldflow.synthesize.sources import make_source_bank

SR = 8000


def _burst(seconds: float, seed: int) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(round(seconds * SR))).astype(np.float32)


def _direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    return np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_labels_follow_the_drawn_direction_and_the_event(seed: int) -> None:
    files = {0: [Path("a.wav")], 4: [Path("b.wav")]}
    source = _burst(0.75, seed)
    foa, events = mono_clip(
        np.random.default_rng(seed), files, lambda path: source, 4, n_samples=2 * SR, sample_rate=SR
    )
    assert foa.shape == (4, 2 * SR)
    # One event of the asked class on track 0, one direction for every frame.
    assert set(events[:, EV_CLASS]) == {4} and set(events[:, EV_TRACK]) == {0}
    assert len(set(events[:, EV_AZIMUTH])) == 1 and len(set(events[:, EV_ELEVATION])) == 1
    # The labelled frames are the 100-ms frames the audio is active in.
    active = np.flatnonzero(foa[0])
    hop = SR // 10
    expected = np.arange(active[0] // hop, active[-1] // hop + 1)
    assert np.array_equal(events[:, EV_FRAME], expected)
    # The sound field's intensity (W times X, Y, Z) points where the labels say.
    intensity = (foa[0][None, :] * foa[[3, 1, 2]]).sum(axis=1)
    label = _direction(events[0, EV_AZIMUTH], events[0, EV_ELEVATION])
    assert np.dot(intensity / np.linalg.norm(intensity), label) == pytest.approx(1.0, abs=1e-6)


def test_a_source_longer_than_the_clip_is_cut_and_labels_every_frame() -> None:
    source = _burst(3.0, 5)
    foa, events = mono_clip(
        np.random.default_rng(0), {0: [Path("a")]}, lambda path: source, 0, n_samples=SR, sample_rate=SR
    )
    assert np.array_equal(events[:, EV_FRAME], np.arange(10))
    assert np.array_equal(foa[0], source[:SR])


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bank") / "sources"
    make_source_bank(root, clips_per_class={"train": 1}, min_seconds=0.3, max_seconds=0.6, seed=3, sample_rate=SR)
    return root


def _render(bank: Path, out: Path, *, seed: int, clips: int = 15) -> int:
    settings = {"fold": 3, "source_split": "train", "clip_seconds": 1.0, "sample_rate": SR}
    return render_mono_split(bank, out, "mono-a", clips=clips, seed=seed, **settings)


def _split_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_split_is_fixed_by_its_seed_and_its_labels_read_back(bank: Path, tmp_path: Path) -> None:
    assert _render(bank, tmp_path / "a", seed=11) == 15
    _render(bank, tmp_path / "b", seed=11)
    _render(bank, tmp_path / "c", seed=12)
    first, again, other = (_split_files(tmp_path / name) for name in "abc")
    assert first == again
    assert first.keys() == other.keys() and first != other
    stems = sorted(Path(name).stem for name in first if name.startswith("foa_dev/mono-a/"))
    assert stems == [f"fold3_mono{k:04d}" for k in range(1, 16)]
    # Every class in turn; each clip's labels read back as one direction matching its audio's intensity.
    classes = []
    for stem in stems:
        events = dcase2021.read_events(tmp_path / "a" / "metadata_dev" / "mono-a" / f"{stem}.csv", n_classes=13)
        audio, rate = sf.read(tmp_path / "a" / "foa_dev" / "mono-a" / f"{stem}.wav", always_2d=True)
        assert rate == SR and audio.shape == (SR, 4)
        intensity = (audio[:, :1] * audio[:, [3, 1, 2]]).sum(axis=0)
        label = _direction(events[0, EV_AZIMUTH], events[0, EV_ELEVATION])
        assert np.dot(intensity / np.linalg.norm(intensity), label) > 0.999
        classes.append(int(events[0, EV_CLASS]))
    assert classes == [k % 13 for k in range(15)]
    # A longer split keeps the clips of the shorter one.
    _render(bank, tmp_path / "d", seed=11, clips=16)
    longer = _split_files(tmp_path / "d")
    assert all(longer[name] == content for name, content in first.items())


def mono_config() -> dict[str, Any]:
    """The tiny config on FOA features with DCASE2021 labels, a mono split and experiment `mono` training on it."""
    config = tiny_config()
    config["features"]["kind"] = "foa"
    config["dataset"].update(label_format="dcase2021", n_classes=13)
    config["train"]["method"] = "maccdoa"
    config["mono"] = {"splits": {"mono-a": {"fold": 3, "clips": 4, "source_split": "train"}}}
    config["experiments"] = {"mono": {"mono_splits": ["mono-a"]}}
    config["run_experiments"] = ["mono"]
    return config


def _also_pretraining(config: dict[str, Any]) -> None:
    # A valid pretraining experiment in every other respect, so that only the mono check can refuse it.
    config["pretraining"] = {**default_config()["pretraining"], "sample_rate": config["dataset"]["sample_rate"]}
    config["experiments"]["mono"]["pretraining_subsets"] = ["train40_ov1_1"]
    config["run_experiments"] = []


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda c: c["experiments"]["mono"].update(mono_splits=["mono-b"]), ["mono-b"]),
        (lambda c: c["features"].update(kind="pfoa"), ["pfoa"]),
        (lambda c: c["dataset"].update(label_format="dcase2024"), ["dcase2024"]),
        (lambda c: c["dataset"].update(n_classes=12), ["13 classes", "12"]),
        (_also_pretraining, ["pretraining subsets"]),
    ],
)
def test_a_mono_experiment_that_cannot_run_is_refused_naming_the_key(mutate, words: list[str]) -> None:
    config = mono_config()
    mutate(config)
    with pytest.raises(ConfigError) as excinfo:
        validate_config(config)
    assert excinfo.value.key == "experiments.mono.mono_splits"
    for word in words:
        assert word in str(excinfo.value)


def test_a_mono_experiment_plans_the_mono_split_as_its_training_data(tmp_path: Path) -> None:
    config = mono_config()
    write_config(tmp_path, copy.deepcopy(config))
    result = run_snakemake(tmp_path, "-n", "results/mono/metrics.json")
    jobs = planned_jobs(result)
    assert jobs["mono_split"] == 1
    assert jobs["train"] == 1
    assert jobs["split_check"] == 2  # the mono split and the test split: the dataset's training split is not read
    text = result.stdout + result.stderr
    assert "results/mono/splits/foa_dev/mono-a" in text
    assert "results/features/foa/mono-a.h5" in text
