"""Each conda env of ``envs/`` installed into a plain virtualenv, and real rule scripts of its rules run there.

test_packaging.py checks statically that every ``envs/*.yaml`` lists what its rules' scripts import. This runs
them: conda channels are not reachable here, so each env's dependency list is translated to pip requirements
(:data:`CONDA_TO_PYPI`, the one place conda names meet PyPI names), installed with ``pip install -c
constraints.txt`` into a fresh ``python -m venv`` (no system site-packages, no seldflow), and the workflow then runs
one or more of the env's rules with their scripts executed by that venv's interpreter. A package an env lacks fails
there with an ImportError in the rule's log.

How a rule runs (tests/env_snakemake.py, tests/env_runner.py): the repository's Snakefile is run by this suite's
snakemake on the tiny configuration of helpers.py, so input, output, params, log, wildcards, resources and threads
are the ones the workflow computes for the job. The one step replaced is the start of the script: instead of
Snakemake's preamble, which would append this venv's site-packages to the script's ``sys.path`` and so mask a
missing package, env_runner.py runs the script in the env's interpreter with ``-I`` and only the search paths the
workflow adds (``src/``, put there by rules/common.smk, and the workflow's own folders). Every job's record is
checked: the env's interpreter ran it, its ``sys.path`` holds no path of this venv and no other site-packages, and
seldflow came from ``src/``.

Inputs a rule needs from upstream rules (audio clips, labels, predictions, features) are written here, small and in
the formats those rules write, and ``--allowed-rules`` keeps Snakemake from re-making them.

Slow (minutes): one venv per env (pip's cache and the wheels pip is configured with make the installs quick; torch
is pinned exactly by the envs and constraints.txt, never an open range), then one short workflow run per env.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import soundfile
import yaml
from archive_helpers import make_zip, payload, tree
from helpers import REPO, rules_with_envs, tiny_config, write_config, write_feature_file
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from zenodo_server import ZenodoServer

from seldflow.download import load_datasets
from seldflow.io import write_audio
from seldflow.labels import CSV_COLUMNS
from seldflow.score import score_dirs, write_metrics
from seldflow.synthesize.sofa import read_sofa

ENVS = REPO / "envs"
HOOK = Path(__file__).with_name("env_snakemake.py")

# conda-forge package -> PyPI distribution, for every conda (non-pip) entry an envs/*.yaml may list. A name missing
# here fails the translation: add it with its PyPI name (same name when the two agree) rather than skip it.
CONDA_TO_PYPI: dict[str, str] = {
    "h5py": "h5py",
    "librosa": "librosa",
    "matplotlib-base": "matplotlib",  # conda-forge's matplotlib without GUI backends; PyPI has one matplotlib
    "netcdf4": "netCDF4",
    "numba": "numba",
    "numpy": "numpy",
    "pandas": "pandas",
    "psutil": "psutil",
    "pyroomacoustics": "pyroomacoustics",
    "scipy": "scipy",
    "threadpoolctl": "threadpoolctl",
    "tqdm": "tqdm",
}
# Conda entries that are the environment rather than packages for it: the interpreter (here the venv's own, checked
# against the spec) and the installer.
NOT_INSTALLED = {"python", "pip"}
# `name`, `name>=1.2`, `name=1.2` (conda's prefix match), `name>=1,<2`: the match specs the envs use.
CONDA_SPEC = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<version>[<>=!~][^\s|]*)?")

# Runs far past these are stuck, not slow: fail instead of stalling the suite.
PIP_TIMEOUT_S = 900
WORKFLOW_TIMEOUT_S = 600

# The benchmark rule's comparison sizes are rule params fixed for `make bench` (20 clips, 5 repeats, CNN14-sized
# decoders: minutes); the same code paths at the smallest sizes. Its training-memory figure has no such knob.

LABEL_HEADER = ",".join(CSV_COLUMNS) + "\n"


# --------------------------------------------------------------------------------------------------------------
# conda dependency lists as pip requirements


def conda_to_pip(spec: str) -> tuple[str, str]:
    """A conda match spec as (lower-case name, pip version specifier): ``numpy>=2`` -> ``("numpy", ">=2")``.

    Conda's single ``=`` is a prefix match (``python=3.11`` is any 3.11.x), pip's ``==3.11.*``. Channel prefixes,
    build strings and ``|`` alternatives have no pip form and are refused.
    """
    match = CONDA_SPEC.fullmatch(spec.strip())
    if match is None:
        raise ValueError(f"conda spec {spec!r} is not 'name' or 'name<op><version>' (channel or build string?)")
    version = match["version"] or ""
    if re.fullmatch(r"=[^=<>!~,]+", version):
        version = f"=={version[1:]}.*"
    SpecifierSet(version)  # a spec pip would not understand fails here, naming it
    return match["name"].lower(), version


def pip_requirements(env: Mapping[str, Any]) -> tuple[SpecifierSet, list[str]]:
    """The env's python version specifier and its dependencies as pip requirements (conda entries through
    :data:`CONDA_TO_PYPI`, then the ``pip:`` sub-list as is)."""
    python = SpecifierSet()
    conda, pip = [], []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            assert set(item) == {"pip"}, f"unknown dependency block {sorted(item)}: only a pip: list is understood"
            pip += item["pip"]
            continue
        name, version = conda_to_pip(item)
        if name == "python":
            python = SpecifierSet(version)
        elif name not in NOT_INSTALLED:
            if name not in CONDA_TO_PYPI:
                raise LookupError(
                    f"conda package {name!r} has no PyPI name in CONDA_TO_PYPI (tests/test_envs.py); add it there"
                )
            conda.append(CONDA_TO_PYPI[name] + version)
    return python, conda + pip


def env_files() -> list[Path]:
    return sorted(ENVS.glob("*.yaml"))


def load_env(name: str) -> dict[str, Any]:
    return yaml.safe_load((ENVS / name).read_text())


@pytest.mark.parametrize("env_file", env_files(), ids=lambda p: p.name)
def test_every_env_translates_to_pip_requirements(env_file: Path) -> None:
    python, requirements = pip_requirements(yaml.safe_load(env_file.read_text()))
    assert python.contains(f"{sys.version_info.major}.{sys.version_info.minor}.0", prereleases=True), (
        f"{env_file.name} asks for python {python}; the venvs are built from this interpreter ({sys.version})"
    )
    for requirement in map(Requirement, requirements):
        if requirement.name == "torch":  # an open range would pull the newest CUDA build: GBs of wheels
            assert [spec.operator for spec in requirement.specifier] == ["=="], f"{env_file.name}: {requirement}"


def test_translation_of_conda_specs() -> None:
    assert conda_to_pip("numpy>=2") == ("numpy", ">=2")
    assert conda_to_pip("python=3.11") == ("python", "==3.11.*")
    assert conda_to_pip("scipy >=1.11,<2") == ("scipy", ">=1.11,<2")
    assert conda_to_pip("NetCDF4") == ("netcdf4", "")
    python, requirements = pip_requirements(
        {"dependencies": ["python=3.11", "pip", "matplotlib-base>=3.8", "netcdf4", {"pip": ["torch==2.13.0"]}]}
    )
    assert python == SpecifierSet("==3.11.*")
    assert requirements == ["matplotlib>=3.8", "netCDF4", "torch==2.13.0"]
    for spec in ("conda-forge::numpy", "numpy 2.0 py311_0"):
        with pytest.raises(ValueError, match="is not 'name'"):
            conda_to_pip(spec)


def test_a_conda_package_without_a_pypi_name_fails_naming_it() -> None:
    with pytest.raises(LookupError, match=r"conda package 'ffmpeg' has no PyPI name in CONDA_TO_PYPI"):
        pip_requirements({"dependencies": ["numpy>=2", "ffmpeg>=6"]})


# --------------------------------------------------------------------------------------------------------------
# A venv per env, the workflow with its scripts run there


def make_venv(folder: Path, requirements: Sequence[str]) -> Path:
    """A plain venv at ``folder`` with ``requirements`` installed under constraints.txt; returns its python.

    No pip inside (this suite's pip installs into it with ``--python``: seconds less per env, and nothing the
    env's conda list does not name). ``--no-compile``: byte-compiling all of torch costs more than the imports do.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    command = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile"]
    command += ["-c", str(REPO / "constraints.txt"), *requirements]
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    assert result.returncode == 0, f"pip install {' '.join(requirements)} failed:\n{result.stderr[-3000:]}"
    return python


class Workflow:
    """The tiny workflow in ``workdir``, its Python rule scripts run by ``python`` (see env_snakemake.py)."""

    def __init__(self, workdir: Path, python: Path, config: dict[str, Any] | None = None) -> None:
        self.workdir, self.python = workdir, python
        self.config = config or tiny_config()
        write_config(workdir, self.config)
        self.records = workdir / "env-jobs"
        self.records.mkdir()

    def run(
        self,
        *targets: str,
        allowed_rules: Sequence[str] = (),
    ) -> dict[str, list[dict[str, Any]]]:
        """Make ``targets``; returns the jobs that ran, per rule: the job (input, output, params...) plus ``ran``,
        what the script's interpreter recorded (executable, prefix, sys.path, where seldflow came from)."""
        environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
        environment.update(
            SELDFLOW_ENV_PYTHON=str(self.python),
            SELDFLOW_ENV_JOBS=str(self.records),
        )
        command = [sys.executable, str(HOOK), "--snakefile", str(REPO / "Snakefile"), "--directory", str(self.workdir)]
        command += ["--cores", "2"]
        if allowed_rules:
            command += ["--allowed-rules", *allowed_rules]
        command += ["--", *targets]
        result = subprocess.run(
            command, cwd=self.workdir, capture_output=True, text=True, env=environment, timeout=WORKFLOW_TIMEOUT_S
        )
        # Snakemake's own report, with the failed jobs' logs (a missing package: the ImportError), is on stderr.
        assert result.returncode == 0, f"snakemake {' '.join(targets)} failed:\n{result.stderr[-6000:]}"
        jobs: dict[str, list[dict[str, Any]]] = {}
        for path in sorted(self.records.glob("*.run.json")):
            job = json.loads(path.with_name(path.name.replace(".run.json", ".json")).read_text())
            job["ran"] = json.loads(path.read_text())
            jobs.setdefault(job["rule"], []).append(job)
        return jobs


def check_jobs_ran_in_the_env(jobs: Mapping[str, list[dict[str, Any]]], env_name: str, venv: Path) -> None:
    """Every job: a rule of this env, its own script, run by the venv's interpreter with nothing of this venv."""
    rules = {rule: (env, script) for rule, env, script in rules_with_envs()}
    own = Path(sys.prefix).resolve()
    for rule, runs in jobs.items():
        env, script = rules[rule]
        assert env.name == env_name, f"rule {rule} uses {env.name}, not {env_name}"
        for job in runs:
            ran = job["ran"]
            assert Path(job["script"]) == script
            assert Path(ran["executable"]) == venv / "bin" / "python" and Path(ran["prefix"]) == venv
            assert not ran["seldflow_installed"], f"seldflow is installed in the {env_name} venv"
            assert ran["seldflow_file"] == str(REPO / "src" / "seldflow" / "__init__.py"), ran["seldflow_file"]
            # What the workflow added to the search path: the repository's src/ and folders, nothing else.
            added = [Path(path).resolve() for path in job["searchpaths"]]
            assert REPO / "src" in added and all(path.is_relative_to(REPO) for path in added), added
            for entry in map(Path, ran["path"]):
                assert not entry.resolve().is_relative_to(own), f"{rule} ran with {entry} of the test venv on its path"
                assert "site-packages" not in entry.parts or entry.is_relative_to(venv), f"{rule}: {entry} on path"


def output(job: Mapping[str, Any], name: str) -> Any:
    """A named output of a job as Snakemake gave it to the script."""
    start, end = job["output"]["names"][name]
    return job["output"]["items"][start] if end is None else job["output"]["items"][start:end]


# --------------------------------------------------------------------------------------------------------------
# Small inputs in the formats the upstream rules write


def write_split(root: Path, split: str, fold: int, n_clips: int, *, seed: int = 0, samples: int = 120_000) -> None:
    """``n_clips`` stereo 24 kHz clips of noise bursts under ``root/stereo_dev/<split>`` and their DCASE2025 label
    files under ``root/metadata_dev/<split>``: one source per clip, 20 frames long, in front (|azimuth| <= 60)."""
    rng = np.random.default_rng(seed)
    (root / "metadata_dev" / split).mkdir(parents=True, exist_ok=True)
    for clip in range(n_clips):
        stem = f"fold{fold}_room1_mix{clip + 1:03d}"
        audio = 0.005 * rng.standard_normal((2, samples)).astype(np.float32)
        start = int(rng.integers(0, 30))
        audio[:, start * 2400 : (start + 20) * 2400] *= 10
        write_audio(root / "stereo_dev" / split / f"{stem}.wav", audio, 24000)
        cls, azimuth, distance = int(rng.integers(0, 13)), int(rng.integers(-60, 61)), int(rng.integers(100, 300))
        rows = [f"{frame},{cls},0,{azimuth},{distance},0\n" for frame in range(start, start + 20)]
        (root / "metadata_dev" / split / f"{stem}.csv").write_text(LABEL_HEADER + "".join(rows))


def write_predictions(references: Path, predictions: Path, azimuth_shift: int) -> None:
    """Predictions that are the references turned by ``azimuth_shift`` degrees: every event found, DOAE the shift."""
    predictions.mkdir(parents=True)
    for path in sorted(references.glob("*.csv")):
        rows = list(csv.reader(path.read_text().splitlines()[1:]))
        shifted = [
            [frame, cls, source, str(int(az) + azimuth_shift), dist, on] for frame, cls, source, az, dist, on in rows
        ]
        (predictions / path.name).write_text(LABEL_HEADER + "".join(",".join(row) + "\n" for row in shifted))


def dataset_root(workflow: Workflow) -> Path:
    return workflow.workdir / workflow.config["dataset"]["root"]


# --------------------------------------------------------------------------------------------------------------
# One case per env: prepare, run its rules, check what the scripts wrote. Each returns the jobs that ran.


# A row of resources/datasets.tsv with one plain zip: fetched, verified and unpacked by one small job.
DOWNLOAD_DATASET = "metu_sparg"


def download_case(workflow: Workflow) -> dict[str, list[dict[str, Any]]]:
    """Rule download of a real datasets.tsv row against a local Zenodo stand-in (tests/zenodo_server.py)."""
    spec = load_datasets(REPO / "resources" / "datasets.tsv")[DOWNLOAD_DATASET]
    members = {f"{DOWNLOAD_DATASET}/{name}.bin": payload(3000, seed=k) for k, name in enumerate(spec.files)}
    archives = {name: make_zip(workflow.workdir / name, members).read_bytes() for name in spec.files}
    with ZenodoServer() as server:
        server.add_record(spec.record_id, archives)
        workflow.config["download"] = {**workflow.config["download"], "api_url": server.api_url, "backoff_s": 0.01}
        write_config(workflow.workdir, workflow.config)
        jobs = workflow.run(f"resources/{DOWNLOAD_DATASET}/.complete")
    marker = json.loads((workflow.workdir / output(jobs["download"][0], "marker")).read_text())
    assert marker["dataset"] == DOWNLOAD_DATASET and marker["record"] == spec.record_id
    assert [f["name"] for f in marker["files"]] == list(spec.files)
    assert tree(workflow.workdir / marker["unpacked"]) == members
    return jobs


def score_case(workflow: Workflow) -> dict[str, list[dict[str, Any]]]:
    """Rules score, summary and report (the score env's three) on labels and predictions written here."""
    [test_split] = workflow.config["dataset"]["test_splits"]
    root = dataset_root(workflow)
    write_split(root, test_split, fold=4, n_clips=3, samples=2400)  # the scorer reads only the labels
    experiment = workflow.workdir / "results" / workflow.config["experiment"]
    write_predictions(root / "metadata_dev" / test_split, experiment / "predictions" / test_split, azimuth_shift=5)
    (experiment / "model").mkdir(parents=True)
    (experiment / "model" / "metrics.csv").write_text("epoch,train_loss,val_loss,val_F\n1,0.9,0.8,0.1\n2,0.7,0.7,0.2\n")
    jobs = workflow.run(
        f"results/{workflow.config['experiment']}/metrics.json",
        f"results/{workflow.config['experiment']}/report/training_curves.png",
        "summary",
        allowed_rules=["score", "summary", "report"],
    )
    metrics = json.loads((workflow.workdir / output(jobs["score"][0], "metrics")).read_text())
    # Every reference event found, each turned by the shift: a perfect F on the classes present, DOAE the shift.
    assert metrics["n_files"] == 3 and metrics["TP"] == metrics["n_ref_events"] > 0
    assert metrics["FP"] == metrics["FN"] == 0
    assert metrics["DOAE"] == pytest.approx(5.0, abs=0.01) and metrics["RDE"] == pytest.approx(0.0)
    assert {f for f, doae in zip(metrics["classwise_F"], metrics["classwise_DOAE"], strict=True) if doae} == {1.0}
    with (workflow.workdir / output(jobs["summary"][0], "table")).open(newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["experiment"] == workflow.config["experiment"]
    assert float(row["F"]) == pytest.approx(metrics["F"], abs=1e-4)  # the table rounds
    report = jobs["report"][0]
    for name in ("curves", "classwise", "tracks"):
        png = (workflow.workdir / output(report, name)).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000, name
    assert "tensorboard" in (workflow.workdir / output(report, "tensorboard")).read_text()
    return jobs


def synthesis_case(workflow: Workflow) -> dict[str, list[dict[str, Any]]]:
    """Rules source_bank (procedural clips) and room (a simulated room as SOFA): the synthesis env's first steps."""
    room = next(iter(workflow.config["synthesis"]["rooms"]["specs"]))
    jobs = workflow.run("source_bank", f"results/synthetic/rooms/{room}_foa.sofa")
    bank = workflow.config["synthesis"]["source_bank"]
    clips = sorted((workflow.workdir / output(jobs["source_bank"][0], "bank")).rglob("*.wav"))
    assert len(clips) == 13 * sum(bank["clips_per_class"].values())
    info = soundfile.info(clips[0])
    assert info.samplerate == workflow.config["dataset"]["sample_rate"]
    assert bank["min_seconds"] - 0.01 <= info.duration <= bank["max_seconds"] + 0.01
    grid = workflow.config["synthesis"]["rooms"]
    sofa = read_sofa(workflow.workdir / output(jobs["room"][0], "sofa"))
    positions = 360 // grid["azimuth_step_deg"] * len(grid["elevations_deg"]) * len(grid["distances_m"])
    assert sofa.irs.shape == (positions, 4, round(grid["ir_seconds"] * sofa.sample_rate))
    assert np.allclose(np.linalg.norm(sofa.positions, axis=1), grid["distances_m"][0], atol=0.01)
    assert np.abs(sofa.irs).max() > 0
    return jobs


def torch_case(workflow: Workflow) -> dict[str, list[dict[str, Any]]]:
    """Checkpoint split_check, rule features (two shards) and feature_index on clips written here, plus rule
    model_table (the zoo's sizes through seldflow.report: the env's pandas and matplotlib)."""
    [split] = workflow.config["dataset"]["train_splits"]
    n_clips = workflow.config["dataset"]["shard_clips"] + 1  # two shards
    write_split(dataset_root(workflow), split, fold=3, n_clips=n_clips)
    kind = workflow.config["features"]["kind"]
    jobs = workflow.run(
        f"results/features/{kind}/{split}.h5",
        "model_table",
        allowed_rules=["split_check", "features", "feature_index", "model_table"],
    )
    assert len(jobs["features"]) == 2
    with h5py.File(workflow.workdir / output(jobs["feature_index"][0], "h5"), "r") as h5:
        names = [name.decode() for name in h5["clips"][()]]
        features = h5["features"][()]
    assert len(names) == 2 * n_clips and sum(name.endswith("_LRswap") for name in names) == n_clips
    assert features.shape == (2 * n_clips, 7, 251, workflow.config["features"]["n_mels"])
    assert np.isfinite(features).all() and features.std() > 0
    with (workflow.workdir / output(jobs["model_table"][0], "table")).open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) >= 2 and all(int(row["parameters"]) > 0 and int(row["macs_per_clip"]) > 0 for row in table)
    return jobs


def benchmark_case(workflow: Workflow) -> dict[str, list[dict[str, Any]]]:
    """Rule benchmark (its env's only rule) over a finished-looking tiny workflow written here: clips, labels,
    predictions, feature files, metrics and one feature job's benchmark file, its comparisons at the tiny
    configuration's sizes (``bench``); the no-op dry run is the env's own snakemake parsing the workflow, which finds it
    unfinished here (a NaN figure whose note holds the dry run's job list)."""
    config, root, results = workflow.config, dataset_root(workflow), workflow.workdir / "results"
    kind, experiment = config["features"]["kind"], config["experiment"]
    for fold, split in enumerate([*config["dataset"]["train_splits"], *config["dataset"]["test_splits"]], start=3):
        write_split(root, split, fold=fold, n_clips=2, seed=fold)
        (results / "features" / kind).mkdir(parents=True, exist_ok=True)
        write_feature_file(results / "features" / kind / f"{split}.h5", n_originals=2, channels=7, bins=8)
    [test_split] = config["dataset"]["test_splits"]
    predictions = results / experiment / "predictions" / test_split
    write_predictions(root / "metadata_dev" / test_split, predictions, azimuth_shift=5)
    write_metrics(results / experiment / "metrics.json", score_dirs(root / "metadata_dev" / test_split, predictions))
    for name in ("training_curves.png", "classwise_f.png", "azimuth_tracks.png", "tensorboard.html"):
        (results / experiment / "report").mkdir(parents=True, exist_ok=True)
        (results / experiment / "report" / name).write_bytes(b"not read by the benchmark")
    timing = results / "benchmarks" / "features" / kind / config["dataset"]["train_splits"][0] / "0000.tsv"
    timing.parent.mkdir(parents=True)
    timing.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n")
    timing.write_text(timing.read_text() + "2.0\t0:00:02\t300\t900\t250\t260\t1\t1\t90\t1.8\n")
    jobs = workflow.run("benchmark", allowed_rules=["benchmark"])

    job = jobs["benchmark"][0]
    markdown = (workflow.workdir / output(job, "markdown")).read_text()
    for heading in ("## Comparisons", "## Throughput", "## Memory", "## Model metrics", "## Stages"):
        assert heading in markdown
    with (workflow.workdir / output(job, "table")).open(newline="") as handle:
        rows = {(row["section"], row["item"], row["metric"]): row for row in csv.DictReader(handle)}
    ratios = [float(row["value"]) for (section, _, metric), row in rows.items() if metric == "ratio_a_over_b"]
    assert len(ratios) >= 3 and all(ratio > 0 for ratio in ratios)
    memory = {item: float(row["value"]) for (section, item, _), row in rows.items() if section == "memory"}
    # psutil in a child of the env's interpreter (training) and the feature jobs, all in children of that interpreter
    assert len([item for item in memory if item.startswith("training epoch")]) == 4
    assert len([item for item in memory if "features, 1 clips" in item]) == 6
    assert all(value > 0 for value in memory.values())
    assert float(rows[("metrics", "DOAE", "value")]["value"]) == pytest.approx(5.0, abs=0.01)
    assert float(rows[("throughput", f"features {config['dataset']['train_splits'][0]}", "value")]["value"]) == 2.0
    dry_run = rows[("throughput", "no-op dry run", "value")]
    assert math.isnan(float(dry_run["value"])) and "This was a dry-run" in dry_run["note"], dry_run["note"]
    assert rows[("environment", "python", "value")]["value"] == ".".join(map(str, sys.version_info[:3]))
    return jobs


CASES: dict[str, Callable[[Workflow], dict[str, list[dict[str, Any]]]]] = {
    "benchmark.yaml": benchmark_case,
    "download.yaml": download_case,
    "score.yaml": score_case,
    "synthesis.yaml": synthesis_case,
    "torch.yaml": torch_case,
}


def test_every_env_has_a_case() -> None:
    assert sorted(CASES) == [path.name for path in env_files()]


@pytest.fixture
def venv_dir(tmp_path: Path) -> Iterator[Path]:
    """Where a test's venv goes; removed afterwards (over a GB with torch, and pytest keeps its last three runs'
    temporary folders). The workflow folder beside it stays for inspection."""
    folder = tmp_path / "venv"
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("env_name", sorted(CASES))
def test_env_runs_its_rule_scripts(env_name: str, tmp_path: Path, venv_dir: Path) -> None:
    _, requirements = pip_requirements(load_env(env_name))
    python = make_venv(venv_dir, requirements)
    workdir = tmp_path / "work"
    workdir.mkdir()
    jobs = CASES[env_name](Workflow(workdir, python))
    assert jobs, f"no rule script ran for {env_name}"
    check_jobs_ran_in_the_env(jobs, env_name, venv_dir)
