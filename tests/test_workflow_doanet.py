"""The DOAnet branch as users run it: a tiny embedded config end to end with an idle rerun, what an Hnet change
reruns, bad input stopped by the check before any training, and the real-dataset DAG."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from doanet_helpers import TINY_RECORDINGS, write_tau_dataset
from helpers import REPO, default_config, planned_jobs, run_snakemake, write_config

# One thread per job: on a busy two-core machine two jobs of two threads each run many times slower.
ONE_THREAD = ["--set-threads", "doanet_train=1", "doanet_infer=1"]
RUN = ["foa_dmot_activity", "foa_mse"]


def tiny_doanet_config() -> dict[str, Any]:
    """The default configuration with its ``doanet`` section shrunk to seconds of work (1-s clips, 4 filters)."""
    config = copy.deepcopy(default_config())
    del config["s5"]
    doanet = config["doanet"]
    doanet["embedded"].update(
        clip_seconds=1.0,
        source_bank={"clips_per_class": {"train": 1, "test": 1}, "min_seconds": 0.5, "max_seconds": 1.0},
        grid={"azimuth_step_deg": 90, "elevations_deg": [0], "distances_m": [1.0], "ir_seconds": 0.05},
        rooms={
            name: {"dims": [4.0, 4.0, 3.0], "rt60": 0.2, "array": [2.0, 2.0, 1.5]}
            for name in ("train1", "valid1", "test1")
        },
        splits={
            "train": {"clips": 4, "rooms": ["train1"], "source_split": "train"},
            "validation": {"clips": 2, "rooms": ["valid1"], "source_split": "test"},
            "test": {"clips": 2, "rooms": ["test1"], "source_split": "test"},
        },
    )
    doanet["features"] = {"n_fft": 512, "win_length": 480, "hop_length": 480, "n_mels": 16}
    doanet["hnet"].update(resolutions=[10], counts=[20, 20, 40], test_counts=[5, 5, 10], epochs=1, batch_size=16)
    doanet["train"].update(
        model_args={"filters": 4, "rnn_size": 8, "fnn_size": 8},
        epochs=1,
        batch_size=2,
        sequence_frames=10,
        device="cpu",
    )
    doanet["run_experiments"] = RUN
    doanet["report"] = {"clips": 2}
    return config


@pytest.mark.slow
def test_tiny_doanet_runs_end_to_end_and_reruns_nothing(tmp_path: Path) -> None:
    config = tiny_doanet_config()
    write_config(tmp_path, config)
    run_snakemake(tmp_path, "doanet_all", *ONE_THREAD)
    results = tmp_path / "results" / "doanet"
    data = results / "embedded" / "data"
    assert len(list((data / "foa_dev").glob("fold1_*.wav"))) == 2 and len(list((data / "mic_dev").glob("*.wav"))) == 8
    for name in RUN:
        metrics = json.loads((results / name / "metrics.json").read_text())
        assert {"LE", "MOTA", "IDS", "LR", "LP", "LF", "clear_mot"} <= set(metrics)
        assert metrics["settings"]["metric"] == "doa-mot" and metrics["settings"]["recordings"] == 2
        assert sorted(path.name for path in (results / name / "predictions").glob("*.csv")) == sorted(
            path.with_suffix(".csv").name for path in (data / "foa_dev").glob("fold1_*.wav")
        )
        for figure in ("doa_tracks.png", "training.png"):
            assert (results / name / "report" / figure).read_bytes().startswith(b"\x89PNG")
        assert (results / name / "model" / "state" / "tensorboard").is_dir()
    summary = (results / "summary.csv").read_text().splitlines()
    assert summary[0] == "rank,experiment,model,MOTA,LE,IDS,LR,LP,LF"
    assert sorted(line.split(",")[1] for line in summary[1:]) == sorted(RUN)
    assert (results / "hnet" / "hnet.pt").is_file()
    assert planned_jobs(run_snakemake(tmp_path, "-n", "doanet_all", *ONE_THREAD)) == {}

    # Hnet's settings retrain Hnet and the dMOT experiment (which reads hnet.pt), never the MSE baseline.
    config["doanet"]["hnet"]["epochs"] = 2
    write_config(tmp_path, config)
    planned = planned_jobs(run_snakemake(tmp_path, "-n", "doanet_all", *ONE_THREAD))
    assert planned["doanet_hnet"] == 1 and planned["doanet_train"] == 1 and planned["doanet_score"] == 1
    assert "doanet_clips" not in planned and "doanet_features" not in planned


@pytest.mark.slow
def test_a_bad_label_file_stops_the_run_in_the_check_before_any_training(tmp_path: Path) -> None:
    root = tmp_path / "tau"
    write_tau_dataset(root, TINY_RECORDINGS)
    bad = root / "metadata_dev" / "fold3_room3_mix002_ov1.csv"
    bad.write_text(bad.read_text() + "5,0,1,20,0\n5,0,2,40,0\n")
    config = tiny_doanet_config()
    config["doanet"]["dataset"] = {"source": "folder", "root": str(root), "download": None}
    write_config(tmp_path, config)
    result = run_snakemake(tmp_path, "doanet_all", *ONE_THREAD, check=False)
    assert result.returncode != 0
    log = (tmp_path / "results" / "doanet" / "logs" / "doanet_check.log").read_text()
    assert str(bad) in log and "field 'frame'" in log and "n_max = 2" in log
    assert not (tmp_path / "results" / "doanet" / "hnet" / "hnet.pt").exists()
    assert not list((tmp_path / "results" / "doanet").glob("*/model/best.pt"))


def test_tau_nigens2020_config_plans_download_to_report(tmp_path: Path) -> None:
    """The real-dataset config (layered over the default one) starts at the Zenodo download and plans every
    parameter set of the paper in both formats."""
    result = run_snakemake(
        tmp_path,
        "-n",
        "doanet_all",
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        str(REPO / "config" / "tau_nigens2020.yaml"),
        # An unroutable API: a dry run must not need it (a real request would fail the run).
        "--config",
        "download={'api_url': 'http://127.0.0.1:9/api'}",
    )
    run = yaml.safe_load((REPO / "config" / "tau_nigens2020.yaml").read_text())["doanet"]["run_experiments"]
    assert planned_jobs(result) == {
        "download": 1,
        "doanet_check": 1,
        "doanet_augment": 2,
        "doanet_features": 8,
        "doanet_hnet": 1,
        "doanet_train": len(run),
        "doanet_infer": len(run),
        "doanet_score": len(run),
        "doanet_report": len(run),
        "doanet_summary": 1,
        "doanet_all": 1,
    }
    assert "resources/tau_nigens2020/.complete" in result.stdout
    assert not (tmp_path / "resources" / "tau_nigens2020").exists()
