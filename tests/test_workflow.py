"""The workflow as users run it: dry-run, lint, formatting, and a reduced end-to-end run with incremental reruns."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from helpers import BIN, REPO, planned_jobs, run_snakemake, tiny_config, write_config

from seldflow.bench import noop_dry_run
from seldflow.labels import CLASSES, CLIP_SAMPLES, SAMPLE_RATE, read_labels, write_labels


def test_default_dry_run_plans_every_stage(tmp_path: Path) -> None:
    result = run_snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "config.yaml"))
    jobs = planned_jobs(result)
    # 600 training clips in shards of 250 render as 3 jobs, 100 test clips as 1; feature shards are planned once
    # the split_check checkpoint has listed each split's clips.
    assert jobs == {
        "source_bank": 1,
        "room": 5,
        "mixtures": 4,
        "synthetic_split": 2,
        "split_check": 2,
        "feature_index": 2,
        "train": 1,
        "infer": 1,
        "score": 1,
        "report": 1,
        "summary": 1,
        "model_table": 1,
        "all": 1,
    }


def test_lint_is_clean() -> None:
    result = subprocess.run([str(BIN / "snakemake"), "--lint"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefiles_are_formatted() -> None:
    files = [str(REPO / "Snakefile"), *map(str, sorted((REPO / "rules").glob("*.smk")))]
    result = subprocess.run([str(BIN / "snakefmt"), "--check", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.slow
def test_same_config_gives_identical_bytes(tmp_path: Path) -> None:
    """Synthesized audio, labels, rooms and features are byte-identical across runs of one config."""
    digests = []
    for name in ("first", "second"):
        workdir = tmp_path / name
        write_config(workdir, tiny_config())
        run_snakemake(workdir, "results/features/pfoa/dev-train-synth.h5", "results/features/pfoa/dev-test-synth.h5")
        digests.append(
            {**_tree_digest(workdir / "results" / "synthetic"), **_tree_digest(workdir / "results" / "features")}
        )
    assert any(key.endswith(".wav") for key in digests[0])
    assert any(key.endswith(".csv") for key in digests[0])
    assert any(key.endswith(".sofa") for key in digests[0])
    assert digests[0] == digests[1]


@pytest.mark.slow
def test_end_to_end_and_incremental_reruns(tiny_workdir: Path) -> None:
    run_snakemake(tiny_workdir)
    results = tiny_workdir / "results"
    metrics = json.loads((results / "tiny" / "metrics.json").read_text())
    for key in ("F", "DOAE", "RDE", "classwise_F"):
        assert key in metrics
    assert len(metrics["classwise_F"]) == len(CLASSES)
    assert 0.0 <= metrics["F"] <= 1.0

    with h5py.File(results / "features" / "pfoa" / "dev-train-synth.h5") as h5:
        assert h5["features"].shape == (20, 7, 251, 64)  # 10 clips + their LR-swapped twins
        # Native label rows of all 20 clips (clip index + the six CSV columns); targets are built by the method.
        assert h5["label_rows"].shape[1] == 7 and set(h5["label_rows"][:, 0]) <= set(range(20))
        assert h5.attrs["label_format"] == "dcase2025"
        # Three shards of 4, 4 and 2 clips behind one virtual array.
        assert len(h5["features"].virtual_sources()) == 3
    references = sorted(
        (results / "synthetic" / "DCASE2025_SELD_dataset" / "metadata_dev" / "dev-test-synth").glob("*.csv")
    )
    predictions = sorted((results / "tiny" / "predictions" / "dev-test-synth").glob("*.csv"))
    assert [p.name for p in predictions] == [r.name for r in references]
    for prediction in predictions:
        read_labels(prediction)
    for figure in ("training_curves", "classwise_f", "azimuth_tracks"):
        assert (results / "tiny" / "report" / f"{figure}.png").stat().st_size > 1000

    assert planned_jobs(run_snakemake(tiny_workdir, "-n")) == {}
    # The benchmark's figure for that no-op call: measured, not an error.
    assert math.isfinite(noop_dry_run(tiny_workdir, snakefile=REPO / "Snakefile", repeats=1).value)

    config = tiny_config()
    config["train"]["lr"] = 5e-4
    write_config(tiny_workdir, config)
    assert planned_jobs(run_snakemake(tiny_workdir, "-n")) == {
        "train": 1,
        "infer": 1,
        "score": 1,
        "report": 1,
        "summary": 1,
        "all": 1,
    }

    config["features"]["n_mels"] = 32
    write_config(tiny_workdir, config)
    jobs = planned_jobs(run_snakemake(tiny_workdir, "-n"))
    assert jobs == {
        "features": 4,
        "feature_index": 2,
        "train": 1,
        "infer": 1,
        "score": 1,
        "report": 1,
        "summary": 1,
        "all": 1,
    }

    report = tiny_workdir / "report.html"
    config["features"]["n_mels"] = 64
    write_config(tiny_workdir, config)
    run_snakemake(tiny_workdir)
    run_snakemake(tiny_workdir, "--report", str(report))
    assert report.stat().st_size > 10_000


def _folder_dataset(root: Path, split: str, n_clips: int) -> None:
    """A DCASE2025-style tree of noise clips with one event each, as an existing dataset would be laid out."""
    rng = np.random.default_rng(0)
    for k in range(n_clips):
        stem = f"fold3_room1_mix{k + 1:03d}_deg000_start0000"
        audio = 0.1 * rng.standard_normal((CLIP_SAMPLES, 2))
        sf.write(root / "stereo_dev" / split / f"{stem}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
        write_labels(root / "metadata_dev" / split / f"{stem}.csv", [[f, k % 13, 0, 30, 150, 0] for f in range(50)])


def test_folder_dataset_with_bad_files_fails_naming_them_before_feature_work(tmp_path: Path) -> None:
    root = tmp_path / "dataset"
    for split in ("dev-train-x", "dev-test-x"):
        (root / "stereo_dev" / split).mkdir(parents=True)
        _folder_dataset(root, split, 3)
    broken = root / "stereo_dev" / "dev-train-x" / "fold3_room1_mix002_deg000_start0000.wav"
    broken.write_bytes(broken.read_bytes()[:50_000])
    orphan = root / "metadata_dev" / "dev-train-x" / "fold3_room1_mix009_deg000_start0000.csv"
    write_labels(orphan, [])
    config = tiny_config()
    config["dataset"] = {
        "source": "folder",
        "root": str(root),
        "train_splits": ["dev-train-x"],
        "test_splits": ["dev-test-x"],
    }
    del config["synthesis"]
    write_config(tmp_path, config)

    assert planned_jobs(run_snakemake(tmp_path, "-n")) == {
        "split_check": 2, "feature_index": 2, "train": 1, "infer": 1, "score": 1, "report": 1, "summary": 1,
        "model_table": 1, "all": 1,
    }  # fmt: skip
    result = run_snakemake(tmp_path, "results/features/pfoa/dev-train-x.h5", check=False)
    assert result.returncode != 0
    log = (tmp_path / "results" / "logs" / "split_check" / "pfoa" / "dev-train-x.log").read_text()
    assert "2 problem(s)" in log
    assert f"{broken}: 2 channels, 24000 Hz" in log and orphan.name in log
    # Nothing of the feature stage ran or was left behind.
    assert not (tmp_path / "results" / "features" / "pfoa" / "dev-train-x").exists()
    assert not (tmp_path / "results" / "features" / "pfoa" / "dev-train-x.h5").exists()


# Scaled-down versions of every architecture of the zoo: seconds per epoch on the tiny dataset.
WIDTHS = [8, 8, 16, 16, 16, 16]
MAMBA = {"d_state": 8, "headdim": 8, "chunk_size": 16}
SCALED_ZOO = {
    "tiny_conformer": {"model": "cnn14_conformer", "model_args": {"widths": WIDTHS, "layers": 1, "heads": 2}},
    "tiny_bimamba": {"model": "cnn14_bimamba", "model_args": {"widths": WIDTHS, "layers": 1, **MAMBA}},
    "tiny_bimamba_ac": {
        "model": "cnn14_bimamba_ac",
        "model_args": {"widths": WIDTHS, "layers": 2, "mamba_dim": 8, "freq_dim": 4, **MAMBA},
    },
    "tiny_conbimamba": {
        "model": "cnn14_conbimamba",
        "model_args": {"widths": WIDTHS, "layers": 1, "ff_expansion": 2, "conv_kernel": 7, **MAMBA},
    },
    "tiny_conbimamba_ac": {
        "model": "cnn14_conbimamba_ac",
        "model_args": {
            "widths": WIDTHS,
            "layers": 1,
            "ff_expansion": 2,
            "conv_kernel": 7,
            "mamba_dim": 8,
            "freq_dim": 4,
            **MAMBA,
        },
    },
    "tiny_htsat": {
        "model": "htsat",
        "model_args": {"patch_size": 8, "embed_dim": 8, "depths": [2, 2, 2], "heads": [1, 1, 2]},
    },
}


@pytest.mark.slow
def test_every_architecture_trains_an_epoch_on_the_embedded_dataset(tmp_path: Path) -> None:
    config = tiny_config()
    config["experiments"] = SCALED_ZOO
    config["run_experiments"] = list(SCALED_ZOO)
    write_config(tmp_path, config)
    run_snakemake(tmp_path, "results/experiments/summary.csv")

    for name in SCALED_ZOO:
        rows = list(csv.DictReader((tmp_path / "results" / name / "model" / "metrics.csv").open()))
        assert [row["epoch"] for row in rows] == ["1"]
        assert math.isfinite(float(rows[0]["train_loss"]))
        assert 0.0 <= json.loads((tmp_path / "results" / name / "metrics.json").read_text())["F"] <= 1.0
    summary = list(csv.DictReader((tmp_path / "results" / "experiments" / "summary.csv").open()))
    assert {row["experiment"] for row in summary} == {"tiny", *SCALED_ZOO}
    assert [row["rank"] for row in summary] == [str(k) for k in range(1, len(SCALED_ZOO) + 2)]
    scores = [float(row["F"]) for row in summary]
    assert scores == sorted(scores, reverse=True)


def test_real_dataset_config_plans_download_to_score_without_the_network(tmp_path: Path) -> None:
    """The DCASE2025 config's DAG starts at the Zenodo download and ends at the scores and submission CSVs."""
    result = run_snakemake(
        tmp_path,
        "-n",
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        str(REPO / "config" / "dcase2025.yaml"),
        # An unroutable API: a dry run must not need it (a real request would fail the run).
        "--config",
        "download={'api_url': 'http://127.0.0.1:9/api'}",
    )
    jobs = planned_jobs(result)
    assert jobs == {
        "download": 1,
        "split_check": 5,  # 2 train + 2 test + the evaluation split
        "feature_index": 5,
        "train": 1,
        "infer": 3,  # both test splits, scored, and the evaluation set, for submission
        "score": 1,
        "report": 1,
        "summary": 1,
        "model_table": 1,
        "all": 1,
    }
    assert "resources/dcase2025_stereo/.complete" in result.stdout
    assert "results/dcase2025_seldnet/predictions/eval" in result.stdout
    assert not (tmp_path / "resources").exists()


@pytest.mark.parametrize(
    ("config", "expected", "download"),
    [
        ("dcase2021.yaml", {"split_check": 3, "feature_index": 3, "infer": 1}, "dcase2021_task3"),
        ("starss23_foa.yaml", {"starss_windows": 4, "split_check": 4, "feature_index": 4, "infer": 2}, "starss23"),
    ],
)
def test_foa_dataset_configs_plan_download_to_score(
    tmp_path: Path, config: str, expected: dict[str, int], download: str
) -> None:
    """The DCASE2021 and STARSS23 FOA configs: download, (windows,) split checks, features, training, scoring."""
    result = run_snakemake(
        tmp_path,
        "-n",
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        str(REPO / "config" / config),
        "--config",
        "download={'api_url': 'http://127.0.0.1:9/api'}",
    )
    jobs = planned_jobs(result)
    assert {key: jobs.get(key) for key in expected} == expected
    assert jobs["download"] == jobs["train"] == jobs["score"] == 1
    assert f"resources/{download}/.complete" in result.stdout
    assert not (tmp_path / "resources").exists()


def test_pseldnets_adapterbit_recipes_plan_one_training_each(tmp_path: Path) -> None:
    """config/pseldnets_adapterbit.yaml over the FOA demo: full fine-tuning with augmix, the pretraining augmix
    and AdapterBit, each trained and scored once; their augment and adapter settings pass the start-up checks."""
    result = run_snakemake(
        tmp_path,
        "-n",
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        str(REPO / "config" / "foa_demo.yaml"),
        str(REPO / "config" / "pseldnets_adapterbit.yaml"),
    )
    jobs = planned_jobs(result)
    assert jobs["train"] == jobs["score"] == 3
    for experiment in ("foa_htsat_finetune", "foa_htsat_augmix", "foa_htsat_adapterbit"):
        assert f"results/{experiment}/model/best.pt" in result.stdout
