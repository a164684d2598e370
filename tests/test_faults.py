"""Faults: a feature shard or a training job killed with SIGKILL mid-run, then the workflow run again.

The rerun must redo only the killed shard (the others are finished files Snakemake keeps), and a killed training
job must resume from its last epoch state and end with exactly the model of an uninterrupted run.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import torch
from helpers import REPO, SNAKEMAKE, planned_jobs, run_snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow

TIMEOUT_S = 300


def start_snakemake(workdir: Path, *args: str) -> subprocess.Popen[str]:
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    return subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def job_process(workdir: Path, script: str) -> psutil.Process | None:
    """The Python process running ``workflow/scripts/<script>`` for the workflow in ``workdir``, if any."""
    for process in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = process.info["cmdline"] or []
        if process.info["cwd"] == str(workdir) and any(part.endswith(f".{script}") for part in cmdline):
            return process
    return None


def past_epoch(state: Path, epoch: int) -> bool:
    """Whether a training state file records at least ``epoch`` finished epochs."""
    try:
        return state.is_file() and torch.load(state, weights_only=False)["epoch"] >= epoch
    except (OSError, RuntimeError, EOFError, KeyError):
        return False  # being replaced right now


def wait_for(condition: Callable[[], object], what: str) -> object:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def kill_job_when(workdir: Path, script: str, ready: Callable[[], bool], runner: subprocess.Popen[str]) -> str:
    """SIGKILL the job running ``script`` once ``ready()``; return the (failed) run's output."""
    wait_for(lambda: ready() and job_process(workdir, script), f"{script} to reach the kill point")
    process = job_process(workdir, script)
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    output, _ = runner.communicate(timeout=TIMEOUT_S)
    assert runner.returncode != 0, output
    return output


def test_killed_feature_shard_is_the_only_one_redone(tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    write_config(workdir, tiny_config())
    shards = workdir / "results" / "features" / "pfoa" / "dev-train-synth"
    target = "results/features/pfoa/dev-train-synth.h5"
    # One core: shards run one after another; --keep-going: the other shards finish after the kill.
    runner = start_snakemake(workdir, "--cores", "1", "--keep-going", target)
    output = kill_job_when(workdir, "features.py", lambda: any(shards.glob(".shard-0001.h5.*.tmp")), runner)
    assert "Error in rule features" in output
    finished = {path.name: path.stat().st_mtime_ns for path in shards.glob("shard-*.h5")}
    assert sorted(finished) == ["shard-0000.h5", "shard-0002.h5"]
    # SIGKILL leaves the killed writer's temporary file, but never a shard that looks finished.
    assert [path.name.split(".")[1] for path in shards.glob(".*.tmp")] == ["shard-0001"]

    assert planned_jobs(run_snakemake(workdir, "-n", target)) == {"features": 1, "feature_index": 1}
    run_snakemake(workdir, target)
    assert {name: (shards / name).stat().st_mtime_ns for name in finished} == finished
    assert (shards / "shard-0001.h5").is_file()
    assert not list(shards.glob(".*.tmp")), "the rerun cleans what the killed job left"


def _train_config(epochs: int) -> dict:
    config = tiny_config()
    config["train"]["epochs"] = epochs
    return config


def test_killed_training_resumes_and_ends_with_the_uninterrupted_model(tmp_path: Path) -> None:
    epochs = 4
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    write_config(reference, _train_config(epochs))
    checkpoint = "results/tiny/model/best.pt"
    # The data stages once, before either training (so the kill lands in training); the interrupted run starts
    # from a copy of the finished workdir (modification times kept: Snakemake sees nothing to redo).
    run_snakemake(reference, "results/features/pfoa/dev-train-synth.h5")
    shutil.copytree(reference, interrupted, symlinks=True)
    run_snakemake(reference, checkpoint)

    state = interrupted / "results" / "tiny" / "model" / "state" / "last.pt"
    runner = start_snakemake(interrupted, "--cores", "2", checkpoint)
    kill_job_when(interrupted, "train.py", lambda: past_epoch(state, 1), runner)
    killed_at = torch.load(state, weights_only=False)["epoch"]
    assert 1 <= killed_at < epochs
    assert not (interrupted / checkpoint).exists()

    run_snakemake(interrupted, checkpoint)
    log = (interrupted / "results" / "tiny" / "logs" / "train.log").read_text()
    assert f"resuming after epoch {killed_at}" in log
    expected = torch.load(reference / checkpoint, weights_only=True)
    resumed = torch.load(interrupted / checkpoint, weights_only=True)
    assert resumed["epoch"] == expected["epoch"]
    assert expected["model_state"].keys() == resumed["model_state"].keys()
    for name, tensor in expected["model_state"].items():
        assert torch.equal(tensor, resumed["model_state"][name]), name
    # The per-epoch history matches too, apart from the wall-clock column.
    assert _history(interrupted) == _history(reference)


def _history(workdir: Path) -> list[dict[str, str]]:
    with (workdir / "results" / "tiny" / "model" / "metrics.csv").open() as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]
