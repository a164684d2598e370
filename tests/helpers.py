"""Test helpers: repository paths, a tiny workflow configuration and a Snakemake runner."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

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
    config["train"].update(epochs=1, batch_size=8, validation_fraction=0.2, device="cpu")
    config["report"] = {"clips": 2}
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
