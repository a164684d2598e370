"""Test helpers: repository paths, a tiny workflow configuration, a Snakemake runner, small feature files."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import yaml

from seldflow.models import build_model
from seldflow.tasks import build_task

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")


def default_config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def tiny_config() -> dict[str, Any]:
    """The default configuration shrunk to seconds of work: 2 small rooms, a handful of clips, one epoch."""
    config = copy.deepcopy(default_config())
    config["experiment"] = "tiny"
    config["seed"] = 7
    synthesis = config["synthesis"]
    synthesis["source_bank"].update(clips_per_class={"train": 2, "test": 1}, min_seconds=0.5, max_seconds=1.5)
    synthesis["rooms"].update(azimuth_step_deg=45, elevations_deg=[0], distances_m=[1.0], ir_seconds=0.1)
    synthesis["rooms"]["specs"] = {
        "ra": {"dims": [4.0, 4.5, 3.0], "rt60": 0.2, "array": [2.0, 2.2, 1.5]},
        "rb": {"dims": [5.0, 4.0, 3.0], "rt60": 0.25, "array": [2.4, 2.0, 1.4]},
    }
    synthesis["splits"] = {
        "dev-train-synth": {"fold": 3, "clips": 10, "rooms": ["ra"], "source_split": "train"},
        "dev-test-synth": {"fold": 4, "clips": 4, "rooms": ["rb"], "source_split": "test"},
    }
    # Shards of 4 clips: the training split runs as 3 synthesis and 3 feature jobs, the last one shorter.
    config["dataset"]["shard_clips"] = 4
    config["train"].update(epochs=1, batch_size=8, validation_fraction=0.2, device="cpu")
    config["report"] = {"clips": 2}
    # The benchmark's comparisons at toy sizes: scorer rows on a few clips per metric (10,000 by default), a narrow
    # decoder, one timed run each.
    config["bench"] = {
        "repeats": 1,
        "feature_clips": 2,
        "feature_jobs": [1],
        "concurrency_steps": 1,
        "decoder": {"d_model": 64, "length": 8, "batch": 2, "repeats": 1},
        "scorers": {"files": 20, "frames": 30, "repeats": 1, "soundscapes": 6, "soundscape_samples": 400},
    }
    # SELD only: the S5 branch has its own tiny configurations (tests/test_workflow_s5.py); with its demo section
    # here, rules that gather every branch (the benchmark) would first train the S5 demo.
    del config["s5"]
    # Nor the pretraining data (tests/test_pretrain_workflow.py), whose benchmark row the tiny runs would pay for.
    del config["pretraining"]
    return config


def write_config(workdir: Path, config: dict[str, Any]) -> Path:
    path = workdir / "config" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the repository's workflow in ``workdir`` (which holds config/config.yaml) as a real subprocess."""
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2", *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


# Rules and their conda envs, read from rules/*.smk (test_packaging.py checks the envs, test_envs.py runs them).
RULE = re.compile(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|[ \t]*\n)*)", re.MULTILINE)


def directive(block: str, name: str) -> str | None:
    """The quoted value of a rule's one-line ``name:`` directive (on the next line, as snakefmt writes it)."""
    match = re.search(rf"^\s+{name}:\n\s+\"([^\"]+)\"", block, re.MULTILINE)
    return match.group(1) if match else None


def rules_with_envs() -> list[tuple[str, Path, Path | None]]:
    """(rule, env file, script file) of every rule and checkpoint in rules/*.smk."""
    found = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for match in RULE.finditer(smk.read_text()):
            conda, script = directive(match.group(2), "conda"), directive(match.group(2), "script")
            assert conda, f"rule {match.group(1)} in {smk.name} has no conda: env"
            found.append(
                (
                    match.group(1),
                    (smk.parent / conda).resolve(),
                    (smk.parent / script).resolve() if script else None,
                )
            )
    return found


def planned_jobs(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a (dry) run; empty when nothing is to be done."""
    text = result.stdout + result.stderr
    if "Job stats:" not in text:
        return {}
    table = text.split("Job stats:", 1)[1]
    counts: dict[str, int] = {}
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not match or match.group(1) == "total":
            break
        counts[match.group(1)] = int(match.group(2))
    return counts


# Small HDF5 feature files and models for the train / infer tests.
TINY_MODEL = {"n_mels": 16, "conv_channels": 4, "f_pool": (2, 2, 2), "rnn_size": 8, "fc_size": 8, "mhsa_heads": 2}


def write_feature_file(
    path: Path,
    *,
    n_originals: int,
    channels: int = 3,
    bins: int = 16,
    lr_swap: bool = True,
    labelled: bool = True,
    seed: int = 0,
    kind: str = "pfoa",
) -> list[str]:
    """A small HDF5 file in the feature stage's layout, with random features and random label rows.

    Returns the clip names (originals, each followed by its ``_LRswap`` twin when ``lr_swap``).
    """
    rng = np.random.default_rng(seed)
    names, tables = [], []
    for clip in range(n_originals):
        rows = [
            [frame, cls, 0, int(rng.integers(-90, 91)), int(rng.integers(80, 300)), 0]
            for frame in range(50)
            for cls in rng.choice(13, size=int(rng.integers(0, 3)), replace=False)
        ]
        rows = np.array(rows, dtype=np.int64).reshape(-1, 6)
        versions = [(f"fold3_room1_mix{clip:03d}", rows)]
        if lr_swap:
            mirrored = rows.copy()
            mirrored[:, 3] *= -1
            versions.append((f"fold3_room1_mix{clip:03d}_LRswap", mirrored))
        for name, version in versions:
            tables.append(np.column_stack([np.full(len(version), len(names), dtype=np.int64), version]))
            names.append(name)
    with h5py.File(path, "w") as h5:
        h5.attrs["kind"] = kind
        h5.attrs["sample_rate"] = 24000
        h5.attrs["label_frames"] = 50
        h5.attrs["channels"] = channels
        h5.attrs["config"] = json.dumps({"kind": kind, "n_mels": bins})
        h5.create_dataset("clips", data=np.array(names, dtype=object), dtype=h5py.string_dtype())
        features = rng.standard_normal((len(names), channels, 251, bins), dtype=np.float32)
        h5.create_dataset("features", data=features, chunks=(1, channels, 251, bins))
        if labelled:
            h5.attrs["label_format"] = "dcase2025"
            h5.create_dataset("label_rows", data=np.concatenate(tables))
    return names


def stereo_target(rows: np.ndarray | list, n_frames: int = 50) -> np.ndarray:
    """The DCASE2025 multi-ACCDOA (ADPIT) target of DCASE2025 CSV rows, as training builds it."""
    return build_task(None).targets(np.asarray(rows, dtype=np.int64).reshape(-1, 6), n_frames)


# ---------------------------------------------------------------------------------------------------------------
# Stereo multi-ACCDOA decoding
# ---------------------------------------------------------------------------------------------------------------


def constant_model(active: bool, channels: int = 3) -> torch.nn.Module:
    """A model whose output ignores the input: class 3 on track 1 at 45 degrees and 2.5 m, or nothing."""
    model = build_model("seldnet", channels, **TINY_MODEL)
    bias = torch.zeros(3, 3, 13)
    if active:
        bias[1, 0, 3] = bias[1, 1, 3] = math.atanh(0.6)  # x = y = 0.6: norm 0.85, 45 degrees
        bias[1, 2, 3] = 2.5
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(bias.flatten())
    return model
