"""The S5 branch as users run it: a tiny embedded config end to end, an idle rerun, and the real-dataset DAG."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import REPO, default_config, planned_jobs, run_snakemake, write_config
from s5_helpers import EMBEDDED, RATE, SEPARATOR_ARGS, TAGGER_ARGS

from seldflow.s5.train import load_s5_checkpoint
from seldflow.s5.vocabulary import LABELS

EXPERIMENT = "s5_tiny"
# One epoch of 8 mixtures in batches of 4 for every network.
STEP = {"epochs": 1, "epoch_length": 8, "batch_size": 4, "lr": 1.0e-3, "device": "cpu"}
# One thread per job: on a busy two-core machine two jobs of two threads each run many times slower.
ONE_THREAD = ["--set-threads", "s5_tagger=1", "s5_sed=1", "s5_separator=1", "s5_infer=1"]
# The stand-in detector at 8 kHz: 8 mel bands, one (8, 4) patch row, width 4.
SED_ARGS = {"front_end": {"sample_rate": RATE, "n_fft": 128, "hop_length": 64, "n_mels": 8, "fmax": None}, "dim": 4}


def tiny_s5_config() -> dict[str, Any]:
    """The default configuration with its ``s5`` section shrunk to seconds of work (1-s soundscapes at 8 kHz)."""
    config = copy.deepcopy(default_config())
    s5 = config["s5"]
    s5["experiment"] = EXPERIMENT
    s5["dataset"]["shard_soundscapes"] = 4
    s5["generator"] = {"sample_rate": 8000, "duration": 1.0}
    s5["embedded"] = {**EMBEDDED, "max_seconds": 1.0}
    # The front end's rate comes from s5.generator; the tagger's arguments must not state it a second time.
    front_end = {key: value for key, value in TAGGER_ARGS["front_end"].items() if key != "sample_rate"}
    s5["tagger"] = {
        "model": "standin",
        "model_args": {**TAGGER_ARGS, "front_end": front_end},
        "weights": None,
        "threshold": 0.5,
        # Step 2 trains the whole stand-in (the demo's choice), not the reference's last two blocks.
        "stages": {"head": "head", "blocks": "all"},
        "head": STEP,
        "blocks": STEP,
    }
    s5["separator"] = {"model": "resunetk", "model_args": SEPARATOR_ARGS, **STEP}
    s5["sed"] = {**s5["sed"], **STEP, "model_args": SED_ARGS, "warmup_steps": 1}
    # The experiments keep their options; the guided ones train one step of warm-up like the detector.
    s5["experiments"]["baseline_budget"] = {}
    s5["experiments"]["guided_full"]["warmup_steps"] = 1
    s5["experiments"]["guided_dprnn"]["model_args"]["dprnn"]["hidden"] = 4
    s5["report"] = {"soundscapes": 2}
    return config


@pytest.mark.slow
def test_tiny_s5_config_runs_end_to_end_and_reruns_nothing(tmp_path: Path) -> None:
    write_config(tmp_path, tiny_s5_config())
    run_snakemake(tmp_path, "s5_all", *ONE_THREAD)
    # s5_all is the baseline system alone: no guided separator trained.
    assert not (tmp_path / "results" / "s5" / "guided_full").exists()
    run_snakemake(tmp_path, "s5_experiments", *ONE_THREAD)
    results = tmp_path / "results" / "s5" / EXPERIMENT
    metrics = json.loads((results / "metrics.json").read_text())
    assert {"CA-SDRi", "label_accuracy", "tagger", "sed", "oracle"} <= set(metrics)
    assert metrics["CA-SDRi"] == metrics["tagger"]["CA-SDRi"]
    assert metrics["oracle"]["label_accuracy"] == 1.0
    assert metrics["oracle"]["n_soundscapes"] == metrics["tagger"]["n_soundscapes"] == 6
    for name in ("sdri_per_class.png", "tagger_confusion.png", "spectrograms.png"):
        assert (results / "report" / name).read_bytes().startswith(b"\x89PNG")
    assert "oracle" in (results / "report" / "summary.md").read_text()
    # Every estimate is named <soundscape>_<Label>.wav with a known class, beside the tagger's choices.
    estimates = sorted((results / "estimates" / "tagger").glob("*.wav"))
    assert estimates and all(path.stem.rsplit("_", 1)[1] in LABELS for path in estimates)
    assert (results / "estimates" / "tagger" / "tags.csv").is_file()
    for step in ("tagger/head", "tagger/blocks", "sed", "separator"):
        assert (results / step / "best.pt").is_file() and (results / step / "metrics.csv").is_file()
    # s5.tagger.stages reached the training: step 2 trained the first conv block, which step 1 left alone.
    head, blocks = (load_s5_checkpoint(results / "tagger" / step / "best.pt") for step in ("head", "blocks"))
    assert (head["stage"], blocks["stage"]) == ("head", "all")
    first_conv = "backbone.blocks.0.conv.weight"
    assert not torch.equal(head["model_state"][first_conv], blocks["model_state"][first_conv])
    # The full guided system (s5.run_experiments) is scored in the three label columns too.
    guided = json.loads((tmp_path / "results" / "s5" / "guided_full" / "metrics.json").read_text())
    assert guided["oracle"]["label_accuracy"] == 1.0 and guided["sed"]["n_soundscapes"] == 6
    assert (tmp_path / "results" / "s5" / "guided_full" / "separator" / "best.pt").is_file()
    assert planned_jobs(run_snakemake(tmp_path, "-n", "s5_all", "s5_experiments", *ONE_THREAD)) == {}


def test_the_summary_target_plans_every_table_run(tmp_path: Path) -> None:
    """The default table: 9 experiments trained once each (3 iterative ones scored with 1-4 passes: 6 + 12 runs),
    every run inferred in 3 label columns and scored, the detectors trained once."""
    write_config(tmp_path, default_config())
    result = run_snakemake(tmp_path, "-n", "results/s5/summary.csv")
    assert planned_jobs(result) == {
        "s5_bank": 1,
        "s5_plan": 1,
        "s5_synthesis": 2,
        "s5_gather": 1,
        "s5_tagger": 2,
        "s5_sed": 1,
        "s5_separator": 9,
        "s5_infer": 18 * 3,
        "s5_score": 18,
        "s5_summary": 1,
    }
    # The iterative runs share their experiment's separator; the main (demo) experiment is not in the table.
    assert "results/s5/guided_iter3-inf4/estimates/sed" in result.stdout
    assert "results/s5/s5_demo/separator/best.pt" not in result.stdout


def test_a_guided_option_without_a_stage_two_sed_fails_before_any_job(tmp_path: Path) -> None:
    config = default_config()
    config["s5"]["experiments"]["broken"] = {"extends": "guided_full", "model_args": {"sed": None}}
    write_config(tmp_path, config)
    result = run_snakemake(tmp_path, "-n", "results/s5/summary.csv", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert output.count("config key 'experiments.broken.model_args'") == 1
    assert "need a Stage-2 SED" in output and "Job stats" not in output


def test_task4_config_plans_download_to_report(tmp_path: Path) -> None:
    """The DCASE2025 Task 4 config (layered over the default one) starts at the Zenodo download."""
    # The M2D checkpoint is a file the user provides (never downloaded); a dry run only needs it to exist.
    weights = tmp_path / "resources" / "m2d" / "m2d_as_vit_base_as_ft_enconly.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")
    result = run_snakemake(
        tmp_path,
        "-n",
        "s5_all",
        "s5_experiments",
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        str(REPO / "config" / "dcase2025_task4.yaml"),
        # An unroutable API: a dry run must not need it (a real request would fail the run).
        "--config",
        "download={'api_url': 'http://127.0.0.1:9/api'}",
    )
    # The baseline (main) experiment and the full guided system, each scored with tagger, SED and oracle labels.
    assert planned_jobs(result) == {
        "download": 1,
        "s5_tagger": 2,
        "s5_sed": 1,
        "s5_separator": 2,
        "s5_infer": 6,
        "s5_score": 2,
        "s5_report": 1,
        "s5_all": 1,
        "s5_experiments": 1,
    }
    assert "resources/dcase2025_task4/.complete" in result.stdout
    assert not (tmp_path / "resources" / "dcase2025_task4").exists()


def _dag_edges(dot: str) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """Job id -> rule, and (producer, consumer) job pairs, of a ``--dag dot`` graph."""
    rules = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)', dot, re.MULTILINE))
    return rules, set(re.findall(r"^\s*(\d+) -> (\d+)", dot, re.MULTILINE))


@pytest.mark.slow
def test_added_bank_is_cleaned_before_synthesis_and_training(tmp_path: Path) -> None:
    """An added bank (a real WAV folder) plans one s5_cleaning job, which every generator of its splits waits for
    (the test plan and shards, both tagger steps and the separator), and the job runs; the default config plans
    none."""
    ears = tmp_path / "ears" / "p001"
    ears.mkdir(parents=True)
    sf.write(ears / "a.wav", np.full(1600, 0.5), 16000)
    config = tiny_s5_config()
    write_config(tmp_path, config)
    assert "s5_cleaning" not in planned_jobs(run_snakemake(tmp_path, "-n", "s5_all"))
    bank = {"name": "ears", "path": str(tmp_path / "ears"), "layout": "single_class", "label": "Speech"}
    config["s5"]["added_banks"] = [{**bank, "splits": ["train", "test"]}]
    write_config(tmp_path, config)
    rules, edges = _dag_edges(run_snakemake(tmp_path, "--dag", "dot", "s5_all").stdout)
    (cleaning,) = [job for job, rule in rules.items() if rule == "s5_cleaning"]
    consumers = sorted(rules[consumer] for producer, consumer in edges if producer == cleaning)
    shards = sum(rule == "s5_synthesis" for rule in rules.values())
    assert shards == 2  # 6 test soundscapes, 4 per shard
    # s5_all trains the detector (its "sed" label column) and the main separator.
    trained = ["s5_sed", "s5_separator"]
    assert consumers == ["s5_plan", *trained, *["s5_synthesis"] * shards, "s5_tagger", "s5_tagger"]
    assert not [producer for producer, consumer in edges if consumer == cleaning]  # only the user's folder
    run_snakemake(tmp_path, "results/s5/added/ears")
    cleaned = tmp_path / "results" / "s5" / "added"
    assert (cleaned / "ears.csv").read_text().splitlines()[1] == "p001/a.wav,kept,Speech/00000_a.wav"
    assert (
        sf.info(str(cleaned / "ears" / "Speech" / "00000_a.wav")).samplerate == config["s5"]["generator"]["sample_rate"]
    )
