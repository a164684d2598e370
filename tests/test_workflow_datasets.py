"""Dataset adapters in the workflow: STARSS23 recordings made into stereo and FOA splits, trained on and scored."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from helpers import REPO, planned_jobs, run_snakemake, tiny_config, write_config
from scipy import signal
from test_starss import Source, make_tree
from test_synthesize_measured import _write_tau as write_tau_fixture

from seldflow.labels import read_labels
from seldflow.synthesize import make_source_bank

STARSS_SOURCES = (
    Source("dev-train-sony", "fold3_room22_mix001", 30.0, 0.0, 12.0, cls=1),
    Source("dev-train-tau", "fold3_room4_mix001", -120.0, 20.0, 11.0, cls=6),
    Source("dev-test-sony", "fold4_room23_mix001", 60.0, -10.0, 10.5, cls=8),
)


def _starss_config(tree: Path, kind: str, starss: dict, train: list[str], test: list[str]) -> dict:
    config = tiny_config()
    del config["synthesis"]
    config["dataset"] = {
        "source": "folder",
        "root": "results/starss/STARSS23_windows",
        "train_splits": train,
        "test_splits": test,
    }
    config["features"]["kind"] = kind
    config["starss"] = {"root": str(tree), **starss}
    return config


@pytest.mark.slow
def test_starss23_foa_windows_train_and_score_with_foa_features(tmp_path: Path) -> None:
    tree = tmp_path / "STARSS23"
    make_tree(tree, STARSS_SOURCES, kind="foa")
    splits = ["dev-train-sony", "dev-train-tau", "dev-test-sony"]
    write_config(tmp_path, _starss_config(tree, "foa", {"window_splits": splits}, splits[:2], splits[2:]))
    run_snakemake(tmp_path)
    metrics = json.loads((tmp_path / "results" / "tiny" / "metrics.json").read_text())
    assert 0.0 <= metrics["F"] <= 1.0
    windows = tmp_path / "results" / "starss" / "STARSS23_windows"
    # 12 s -> 3 windows (the last zero-padded), 11 s -> 3, 10.5 s -> 3.
    assert len(list((windows / "foa_dev" / "dev-train-sony").glob("*.wav"))) == 3
    with h5py.File(tmp_path / "results" / "features" / "foa" / "dev-train-sony.h5") as h5:
        assert h5["features"].shape == (6, 7, 251, 64)  # 3 windows + LR-swap twins; FOA logmelIV at the hop of 480
    rows = read_labels(windows / "metadata_dev" / "dev-test-sony" / "fold4_room23_mix001_start0000.csv")
    assert set(rows[:, 3]) == {60}  # FOA keeps the full azimuth: no stereo folding


@pytest.mark.slow
def test_starss23_stereo_splits_made_the_dcase2025_way_train_and_score(tmp_path: Path) -> None:
    tree = tmp_path / "STARSS23"
    make_tree(tree, STARSS_SOURCES, kind="foa")
    starss = {
        "stereo_splits": {
            "dev-train-starss": {"clips": 6, "splits": ["dev-train-sony", "dev-train-tau"]},
            "dev-test-starss": {"clips": 3, "splits": ["dev-test-sony"]},
        }
    }
    config = _starss_config(tree, "pfoa", starss, ["dev-train-starss"], ["dev-test-starss"])
    config["dataset"]["root"] = "results/starss/DCASE2025_SELD_dataset"
    write_config(tmp_path, config)
    jobs = planned_jobs(run_snakemake(tmp_path, "-n"))
    assert jobs["starss_stereo"] == 2
    run_snakemake(tmp_path)
    stereo = tmp_path / "results" / "starss" / "DCASE2025_SELD_dataset"
    clips = sorted((stereo / "stereo_dev" / "dev-train-starss").glob("*.wav"))
    assert len(clips) == 6 and all("_deg" in clip.stem and "_start" in clip.stem for clip in clips)
    for csv_path in (stereo / "metadata_dev" / "dev-test-starss").glob("*.csv"):
        assert (abs(read_labels(csv_path)[:, 3]) <= 90).all()  # stereo labels are folded to the front
    assert (tmp_path / "results" / "tiny" / "metrics.json").is_file()


def test_dcase2025_config_with_starss_stereo_clips_plans_both_downloads(tmp_path: Path) -> None:
    overlay = tmp_path / "extra.yaml"
    overlay.write_text(
        "dataset: {train_splits: [dev-train-sony, dev-train-tau, dev-train-starss]}\n"
        "starss: {download: starss23, root: resources/starss23/data,\n"
        "         stereo_splits: {dev-train-starss: {clips: 10000, splits: [dev-train-sony, dev-train-tau]}}}\n"
    )
    result = run_snakemake(
        tmp_path,
        "-n",
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        str(REPO / "config" / "dcase2025.yaml"),
        str(overlay),
    )
    jobs = planned_jobs(result)
    assert jobs["download"] == 2 and jobs["starss_stereo"] == 1 and jobs["split_check"] == 6
    assert "resources/starss23/.complete" in result.stdout


def _fsd50k_like_bank(root: Path) -> Path:
    """A foreground bank in the FSD50K/SpatialScaper layout: class folders, nested FSD50K sub-classes, 44.1 kHz
    files of several lengths (mono and stereo), made from the procedural sources."""
    make_source_bank(
        root / "rendered", clips_per_class={"train": 2, "test": 1}, min_seconds=0.6, max_seconds=1.5, seed=5
    )
    bank = root / "FSD50K_DCASE"
    for wav in sorted((root / "rendered").rglob("*.wav")):
        folder, split = wav.parent.parent.name, wav.parent.name
        audio, _ = sf.read(wav)
        resampled = signal.resample_poly(audio, 441, 240)
        out = bank / folder / split / f"{folder}_subclass" / f"{100000 + int(wav.stem[-3:])}.wav"
        out.parent.mkdir(parents=True, exist_ok=True)
        channels = np.stack([resampled, 0.5 * resampled], axis=1) if "001" in wav.name else resampled
        sf.write(out, channels, 44100, subtype="PCM_16")
    return bank


@pytest.mark.slow
def test_real_format_bank_and_converted_tau_room_render_and_score(tmp_path: Path) -> None:
    """FSD50K-like folders + TAU-SRIR DB rooms converted by the workflow's own rule, rendered and scored."""
    bank = _fsd50k_like_bank(tmp_path / "bank")
    # The TAU database as the download rule leaves it: unpacked under data/, marker written last.
    write_tau_fixture(tmp_path / "resources" / "tau_srir" / "data" / "TAU-SRIR_DB")
    (tmp_path / "resources" / "tau_srir" / ".complete").write_text("{}")
    config = tiny_config()
    synthesis = config["synthesis"]
    synthesis["source_bank"]["path"] = str(bank)
    synthesis["rooms"]["specs"] = {}
    synthesis["rooms"]["measured"] = {room: {"source": "tau", "room": room} for room in ("gym", "tb103")}
    synthesis["splits"]["dev-train-synth"]["rooms"] = ["gym"]
    synthesis["splits"]["dev-test-synth"]["rooms"] = ["tb103"]
    write_config(tmp_path, config)
    jobs = planned_jobs(run_snakemake(tmp_path, "-n"))
    assert jobs["measured_room"] == 2 and "source_bank" not in jobs and "room" not in jobs and "download" not in jobs
    run_snakemake(tmp_path)
    assert (tmp_path / "results" / "synthetic" / "rooms" / "gym_foa.sofa").is_file()
    metrics = json.loads((tmp_path / "results" / "tiny" / "metrics.json").read_text())
    assert 0.0 <= metrics["F"] <= 1.0
    labels = tmp_path / "results" / "synthetic" / "DCASE2025_SELD_dataset" / "metadata_dev" / "dev-test-synth"
    rows = np.concatenate([read_labels(path) for path in sorted(labels.glob("*.csv"))])
    assert len(rows) > 0 and set(rows[:, 1]) <= set(range(13))
