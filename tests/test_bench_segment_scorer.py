"""The plain-loop DCASE2021/2023 segment metric of ``make bench``: equal to the official scorer's numbers."""

from __future__ import annotations

import pytest
from seld_parity_cases import make_cases, parity_runs

from seldflow.bench.segment_scorer import SEGMENT_CHECKED, compare_segment_scorer, naive_segment_metrics

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


def test_comparison_reports_agreement_and_both_times() -> None:
    cases = make_cases("dcase2023", 5, n_files=3)
    references = {name: ref for name, (ref, _) in cases.items()}
    predictions = {name: pred for name, (_, pred) in cases.items()}
    comparison, diff = compare_segment_scorer(references, predictions, repeats=1, warmup=0)
    assert diff < 1e-9
    assert comparison.a_seconds > 0 and comparison.b_seconds > 0
    assert comparison.name == "scorer_dcase2023"
