"""The benchmark rule run as ``make bench`` runs it: a real ``snakemake`` on a tiny finished workflow, to completion.

Slow (the tiny workflow, then every timed comparison at its reference size). It guards the training-memory figure,
whose child processes once re-ran the rule's script and were respawned forever, and the report's shape.
"""

from __future__ import annotations

import csv
import math
import subprocess
from pathlib import Path

import pytest
from helpers import REPO, SNAKEMAKE, run_snakemake, tiny_config, write_config

from seldflow.bench.feature_jobs import SIDE_LABELS
from seldflow.bench.scorers import SCORERS

# Far beyond a normal run on two shared cores; a hang fails the test instead of stalling the suite.
BENCHMARK_TIMEOUT_S = 1800


def benchmark_rows(table: Path) -> dict[tuple[str, str, str], float]:
    """(section, item, metric) -> value of the numeric rows of ``benchmark.csv``."""
    with table.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["section"] != "environment"]
    return {(row["section"], row["item"], row["metric"]): float(row["value"]) for row in rows}


@pytest.mark.slow
def test_benchmark_rule_finishes_and_writes_every_figure(tmp_path: Path) -> None:
    # SELD only (tiny_config has no `s5` section): the S5 rows are tested on their own (tests/test_bench_s5.py).
    config = tiny_config()
    workdir = tmp_path
    write_config(workdir, config)
    run_snakemake(workdir)
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    command += ["--cores", "2", "--forcerun", "benchmark", "--", "benchmark"]  # as `make bench` calls it
    try:
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=BENCHMARK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log = workdir / "results" / "logs" / "benchmark.log"
        pytest.fail(f"the benchmark rule did not finish:\n{log.read_text()[-3000:] if log.exists() else ''}")
    assert result.returncode == 0, result.stdout + result.stderr

    folder = workdir / "results" / "benchmark"
    markdown = (folder / "benchmark.md").read_text()
    for heading in ("## Comparisons", "## Throughput", "## Memory", "## Model metrics", "## Stages"):
        assert heading in markdown
    values = benchmark_rows(folder / "benchmark.csv")
    scorers = [f"scorer {metric}" for metric in SCORERS]
    for comparison in ("PFOA features", "FOA features", "MIC features", *scorers, "decoders (CPU fwd+bwd)"):
        assert values[("comparison", comparison, "ratio_a_over_b")] > 0
    for comparison in scorers:  # both sides' peak memory and the load they ran under
        assert values[("comparison", comparison, "a_peak_rss")] > 0
        assert values[("comparison", comparison, "b_peak_rss")] > 0
        assert values[("comparison", comparison, "load_average_1min")] >= 0
    assert not [item for _, item, _ in values if item in ("S5 generator", "CA-SDRi scorer")]  # no S5 section
    memory = {item: value for (section, item, _), value in values.items() if section == "memory"}
    assert len([item for item in memory if item.startswith("training epoch")]) == 4, memory
    jobs = [f"{kind} features, 1 clips, {side}" for kind in ("pfoa", "foa", "mic") for side in SIDE_LABELS.values()]
    assert sorted(item for item in memory if "features, 1 clips" in item) == sorted(jobs), memory
    assert all(value > 0 for value in memory.values()), memory
    for kind in ("PFOA", "FOA", "MIC"):  # the feature rows carry the jobs' peaks
        assert values[("comparison", f"{kind} features", "a_peak_rss")] > 0
    for row in (
        "training side by side, GOMP_SPINCOUNT=1000 (the workflow's)",
        "input pipeline: streamed clip store vs model step",
    ):
        assert values[("comparison", row, "ratio_a_over_b")] > 0
    assert math.isfinite(values[("throughput", "no-op dry run", "value")])
    assert ("throughput", "features dev-train-synth", "value") in values
    assert 0.0 <= values[("metrics", "F", "value")] <= 1.0
    assert any(section == "stage" and item.startswith("train") for section, item, _ in values)

    # The HTML report of the finished workflow, without --cores (no rule may need workflow.cores).
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    report = subprocess.run([*command, "--report", "report.html"], cwd=workdir, capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert (workdir / "report.html").stat().st_size > 100_000
