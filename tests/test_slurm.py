"""The SLURM profile: it parses (dry run), and the reduced workflow runs end to end on a real one-node SLURM cluster.

The executor plugin lives in ``.venv/slurm-plugin/`` (see ``slurm_cluster.py``), off the venv's path: once it is
importable every snakemake call queries SLURM, and a stale ``slurm.conf`` would cost every call about 10 s. Only the
commands here see it, through ``PYTHONPATH``. The cluster test needs root (it installs Debian's slurm and munge
packages when missing) and removes its configuration and daemons afterwards, even when it fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import BIN, REPO, planned_jobs, tiny_config, write_config
from slurm_cluster import SLURM_CONF, Cluster, UnavailableError, ensure_plugin, plugin_env, running_cluster
from test_faults import job_process, past_epoch, wait_for

PROFILE = REPO / "profiles" / "slurm"
# Rules that run in the Snakemake process itself (file bookkeeping, no compute): never submitted.
LOCAL_RULES = {"synthetic_split", "feature_index", "all"}
# The tiny workflow's dry-run plan: 10 + 4 clips in shards of 4; feature shards are planned after split_check.
ALL_JOBS = {
    "source_bank": 1,
    "room": 2,
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


@pytest.fixture(scope="module")
def plugin() -> Path:
    try:
        return ensure_plugin()
    except UnavailableError as error:
        pytest.skip(str(error))


@pytest.fixture
def slurm_cluster() -> Iterator[Cluster]:
    """A running one-node cluster; stopped and its configuration removed afterwards, whatever happened."""
    try:
        with running_cluster() as cluster:
            yield cluster
    except UnavailableError as error:
        pytest.skip(str(error))


def run_with_plugin(workdir: Path, *args: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the workflow in ``workdir`` with the SLURM plugin importable; the whole process group dies on timeout.

    Returns the finished process (output in ``workdir/snakemake.log`` too) and its wall time in seconds.
    """
    command = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    log = workdir / "snakemake.log"
    start = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=workdir, env=plugin_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # The SLURM executor can ignore SIGTERM while it waits on jobs; SIGKILL its process group.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            returncode = -signal.SIGKILL
    elapsed = time.monotonic() - start
    output = log.read_text(errors="replace")
    if returncode == -signal.SIGKILL:
        raise AssertionError(f"snakemake {' '.join(args)} ran past {timeout:.0f} s:\n{output[-6000:]}")
    return subprocess.CompletedProcess(command, returncode, output, ""), elapsed


def test_slurm_profile_dry_run(plugin: Path, tiny_workdir: Path) -> None:
    """The profile parses, and the jobs get its partition and the GPU request (train and infer)."""
    result, _ = run_with_plugin(tiny_workdir, "--profile", str(PROFILE), "-n", timeout=120)
    assert result.returncode == 0, result.stdout[-6000:]
    assert planned_jobs(result) == ALL_JOBS
    jobs = dict(re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", result.stdout, re.MULTILINE))
    assert set(jobs) == set(ALL_JOBS) - {"split_check"}  # the dry run prints it as "checkpoint split_check:"
    for rule, resources in jobs.items():
        assert "slurm_partition=debug" in resources, (rule, resources)
        gpu = rule in ("train", "infer")
        assert ("gpu=1" in resources and "gpu_model=fake" in resources) == gpu, (rule, resources)


@pytest.mark.slow
def test_workflow_on_a_slurm_cluster_resumes_a_killed_training_job(
    plugin: Path, slurm_cluster: Cluster, tmp_path: Path
) -> None:
    """The reduced workflow, every job submitted with sbatch; the train job asks SLURM for the (fake) GPU. Its
    training process SIGKILLed inside the SLURM job mid-run fails the job, and the rerun resumes training and
    finishes the workflow. (One workflow for both checks: on SLURM each job costs seconds of polling.)"""
    config = tiny_config()
    config["train"]["epochs"] = 3
    write_config(tmp_path, config)
    # --cores caps every job's threads (and sets the train rule's) to what the one test node has.
    args = ["--profile", str(PROFILE), "--cores", str(slurm_cluster.cpus), "--verbose"]
    killed = _kill_training_mid_run(tmp_path, [*args, "results/tiny/model/best.pt"])
    assert not (tmp_path / "results" / "tiny" / "model" / "best.pt").exists()

    result, elapsed = run_with_plugin(tmp_path, *args, timeout=420)
    details = f"{result.stdout[-8000:]}\n{slurm_cluster.logs()}"
    assert result.returncode == 0, details
    log = (tmp_path / "results" / "tiny" / "logs" / "train.log").read_text()
    assert re.search(r"resuming after epoch [12] ", log), log[-3000:]
    metrics = json.loads((tmp_path / "results" / "tiny" / "metrics.json").read_text())
    assert 0.0 <= metrics["F"] <= 1.0

    # Every job but the local ones went through sbatch (over both runs); the train job's call asks for the
    # profile's GPU type ...
    calls = {
        match[1]: match[0]
        for match in re.finditer(
            r"^sbatch call: .* --comment rule_(\w+?)(?:_wildcards_\S+)? .*$", killed + result.stdout, re.MULTILINE
        )
    }
    assert set(calls) == (set(ALL_JOBS) | {"features"}) - LOCAL_RULES, details
    assert "--gpus=fake:1" in calls["train"] and " -p debug " in calls["train"], calls["train"]
    assert "--gpus=fake:1" in calls["infer"], calls["infer"]
    assert "--gpus" not in calls["features"], calls["features"]
    # ... and SLURM ran the resumed training as a job holding that GPU.
    train_job = re.search(
        r"^Job \d+ has been submitted with SLURM jobid (\d+) \(log: \S*/rule_train/", result.stdout, re.MULTILINE
    )
    assert train_job, details
    job = Cluster.show_job(train_job[1])
    assert "JobState=COMPLETED" in job, job
    assert re.search(r"TresPerJob=gres[:/]gpu:fake[:=]1\b", job), job  # 'gres:gpu:fake:1' in SLURM 22.05
    print(f"workflow on SLURM (the rerun): {elapsed:.0f} s")


def _kill_training_mid_run(workdir: Path, args: list[str]) -> str:
    """Run snakemake with ``args`` on SLURM until the training has finished epoch 1, SIGKILL the training process
    inside its job, and return the failed run's output."""
    command = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    state = workdir / "results" / "tiny" / "model" / "state" / "last.pt"
    with (workdir / "killed.log").open("w") as out:
        runner = subprocess.Popen(
            command, cwd=workdir, env=plugin_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            process = wait_for(lambda: past_epoch(state, 1) and job_process(workdir, "train.py"), "epoch 1 on SLURM")
            os.kill(process.pid, signal.SIGKILL)
            returncode = runner.wait(timeout=300)
        finally:
            if runner.poll() is None:
                os.killpg(runner.pid, signal.SIGKILL)
    output = (workdir / "killed.log").read_text(errors="replace")
    assert returncode != 0, output[-6000:]
    return output


def test_nothing_of_the_cluster_is_left_behind(tiny_workdir: Path) -> None:
    """After the cluster test nothing is left that slows snakemake down: a stale slurm.conf naming this project's
    controller makes every later snakemake call with the plugin wait ~10 s for a controller that is gone.

    Checked by what is left (the file), not by timing the calls: a verdict from wall-clock time would depend on
    the load of the machine running the suite. The durations are printed for whoever reads the log.
    """
    assert not (SLURM_CONF.exists() and "seldflow" in SLURM_CONF.read_text()), f"{SLURM_CONF} left behind"
    start = time.monotonic()
    result = subprocess.run([str(BIN / "snakemake"), "-n"], cwd=REPO, capture_output=True, text=True, timeout=300)
    plain = time.monotonic() - start
    assert result.returncode == 0, result.stdout + result.stderr
    if SLURM_CONF.exists():
        pytest.skip(f"{SLURM_CONF} of another SLURM setup exists; the plugin's behaviour there is not this test's")
    try:
        ensure_plugin()
    except UnavailableError as error:
        pytest.skip(str(error))
    result, with_plugin = run_with_plugin(tiny_workdir, "--profile", str(PROFILE), "-n", timeout=300)
    assert result.returncode == 0, result.stdout[-6000:]
    print(f"snakemake -n: {plain:.1f} s; with the plugin and profiles/slurm: {with_plugin:.1f} s")
