"""The plain-loop DCASE2021/2023 segment metric of ``make bench``: equal to the official scorer's numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from seld_parity_cases import make_cases, parity_runs, write_case_files

from seldflow.bench.segment_scorer import SEGMENT_CHECKED, naive_segment_metrics, plain_segment

RUNS = [run for run in parity_runs("dcase2021", "dcase2023") if run["average"] == {"dcase2021": "micro"}.get(
    run["metric"], "macro")]  # fmt: skip


@pytest.mark.parametrize("run", RUNS, ids=lambda run: f"{run['metric']}-seed{run['seed']}")
def test_loop_equals_the_official_scorer(run: dict) -> None:
    cases = make_cases(run["metric"], run["seed"], n_classes=run["n_classes"])
    references = {name: ref for name, (ref, _) in cases.items()}
    predictions = {name: pred for name, (_, pred) in cases.items()}
    scores = naive_segment_metrics(references, predictions, edition=run["metric"], n_classes=run["n_classes"])
    for key in SEGMENT_CHECKED:
        assert scores[key] == pytest.approx(run["official"][key], abs=1e-9), key


def test_loop_on_tables_equals_the_loop_on_files(tmp_path: Path) -> None:
    """The table entry point and the folder entry point run the same loop (references in a split folder)."""
    run = RUNS[0]
    ref_dir, pred_dir = write_case_files(tmp_path, run)
    cases = make_cases(run["metric"], run["seed"], n_classes=run["n_classes"])
    tables = naive_segment_metrics(
        {name: ref for name, (ref, _) in cases.items()},
        {name: pred for name, (_, pred) in cases.items()},
        edition=run["metric"],
        n_classes=run["n_classes"],
    )
    files = plain_segment(ref_dir, pred_dir, edition=run["metric"], n_classes=run["n_classes"])
    for key in SEGMENT_CHECKED:
        assert tables[key] == pytest.approx(files[key], abs=1e-12), key
