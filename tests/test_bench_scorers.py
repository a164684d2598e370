"""The scorer rows of ``make bench``: the plain restatements of the official scorers and the rows they give.

Each plain reference is a second implementation of an official scorer, written the way the official code is
(per line, file, frame and class); it is checked against the official numbers where the project holds them (the
parity fixtures of tests/data, computed by the official code) and against seldflow's scorer on generated folders.
The rows themselves are checked for their structure only (no timing asserts).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from ca_sdri_parity_cases import file_run
from ca_sdri_parity_cases import load_fixture as ca_sdri_fixture
from ca_sdri_parity_cases import write_run as write_ca_sdri_run
from dcase2025_parity_cases import fixture as dcase2025_fixture
from dcase2025_parity_cases import make_case, write_case
from doa_mot_parity_cases import make_cases as doa_mot_cases
from doa_mot_parity_cases import parity_runs as doa_mot_runs
from doa_mot_parity_cases import write_cases as write_doa_mot_cases
from seld_parity_cases import parity_runs, write_case_files

from seldflow.bench.frame_scorer import FRAME_CHECKED, plain_frame
from seldflow.bench.label_sets import FILE_FORMATS, REFERENCE_SPLIT, write_label_set
from seldflow.bench.records import BenchReport
from seldflow.bench.report import csv_rows, render_markdown
from seldflow.bench.scorer import plain_dcase2025
from seldflow.bench.scorers import (
    LABEL_METRICS,
    SCORERS,
    THREADS,
    compare_scorer,
    largest_difference,
    library_scores,
    run_scorer,
    scorer_rows,
    write_inputs,
)
from seldflow.bench.segment_scorer import SEGMENT_CHECKED, plain_segment
from seldflow.bench.separation_scorer import official_ca_sdri
from seldflow.bench.tracking_scorer import TRACKING_CHECKED, plain_tracking
from seldflow.metrics import METRICS, get_metric


def official(value: float | None) -> float:
    return math.nan if value is None else value


# --------------------------------------------------------------------------------------------------------------
# Plain references against the official scorers' own numbers
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run", dcase2025_fixture()["runs"], ids=lambda run: f"seed{run['seed']}")
def test_plain_dcase2025_gives_the_official_numbers(tmp_path: Path, run: dict) -> None:
    ref_dir, pred_dir = write_case(tmp_path, make_case(run["seed"]))
    expected = run["results"]["audio/macro"]
    scores = plain_dcase2025(ref_dir, pred_dir)
    for name in ("F", "DOAE", "DistE", "RDE"):
        assert scores[name] == pytest.approx(official(expected[name]), rel=1e-9, abs=1e-12, nan_ok=True), name
    assert scores["classwise_F"] == pytest.approx(expected["classwise"][0], rel=1e-9, abs=1e-12)


SEGMENT_RUNS = [
    run
    for run in parity_runs("dcase2021", "dcase2022", "dcase2023")
    if run["average"] == ("micro" if run["metric"] == "dcase2021" else "macro")
]


@pytest.mark.parametrize("run", SEGMENT_RUNS, ids=lambda run: f"{run['metric']}-seed{run['seed']}")
def test_plain_segment_scorer_gives_the_official_numbers(tmp_path: Path, run: dict) -> None:
    ref_dir, pred_dir = write_case_files(tmp_path, run)
    scores = plain_segment(ref_dir, pred_dir, edition=run["metric"], n_classes=run["n_classes"])
    for name in SEGMENT_CHECKED:
        assert scores[name] == pytest.approx(run["official"][name], abs=1e-9), name


@pytest.mark.parametrize(
    "run", [r for r in parity_runs("dcase2024") if r["average"] == "macro"], ids=lambda r: str(r["seed"])
)
def test_plain_frame_scorer_gives_the_official_numbers(tmp_path: Path, run: dict) -> None:
    ref_dir, pred_dir = write_case_files(tmp_path, run)
    scores = plain_frame(ref_dir, pred_dir, n_classes=run["n_classes"])
    for name in FRAME_CHECKED:
        assert scores[name] == pytest.approx(official(run["official"][name]), abs=1e-9, nan_ok=True), name


@pytest.mark.parametrize("run", doa_mot_runs(), ids=lambda run: f"seed{run['seed']}-pred{int(run['with_predictions'])}")
def test_plain_tracking_scorer_gives_the_official_numbers(tmp_path: Path, run: dict) -> None:
    cases = doa_mot_cases(run["seed"], run["n_files"], with_predictions=run["with_predictions"])
    ref_dir, pred_dir = write_doa_mot_cases(tmp_path, cases)
    scores = plain_tracking(ref_dir, pred_dir)
    for name in TRACKING_CHECKED:
        assert scores[name] == pytest.approx(official(run["official"][name]), rel=1e-12, abs=1e-12, nan_ok=True), name


# --------------------------------------------------------------------------------------------------------------
# Plain references against seldflow on generated folders
# --------------------------------------------------------------------------------------------------------------


def test_official_ca_sdri_gives_the_official_evaluation_s_numbers(tmp_path: Path) -> None:
    fixture = ca_sdri_fixture()
    expected = fixture["file_runs"]["dataset"]
    scores = official_ca_sdri(*write_ca_sdri_run(tmp_path, file_run("dataset", fixture["generator"]["seed"])))
    # float32 means whose terms come in set order (string hashing varies by process): equal to float32 rounding
    assert scores["CA-SDRi"] == pytest.approx(expected["CA-SDRi"], abs=1e-5)
    assert f"Label prediction accuracy: {100 * scores['label_accuracy']:.2f}" in expected["printed"]
    assert scores["n_soundscapes"] == len(expected["soundscapes"]) == 7


@pytest.mark.parametrize("run", ["without_estimates", "prefix_names"])
def test_official_ca_sdri_fails_where_the_official_evaluation_does(tmp_path: Path, run: str) -> None:
    fixture = ca_sdri_fixture()
    error = fixture["file_runs"][run]["error"]
    folders = write_ca_sdri_run(tmp_path, file_run(run, fixture["generator"]["seed"]))
    with pytest.raises(Exception) as raised:
        official_ca_sdri(*folders)
    assert f"{type(raised.value).__name__}: {raised.value}" == error


@pytest.mark.parametrize("metric", sorted(LABEL_METRICS))
def test_plain_reference_and_seldflow_agree_on_generated_clips(tmp_path: Path, metric: str) -> None:
    labels = write_label_set(tmp_path, metric, 40, seed=5, frames=30)
    plain = run_scorer("plain", metric, labels.ref_dir, labels.pred_dir)
    ours = library_scores(metric, labels.ref_dir, labels.pred_dir)
    assert largest_difference(plain, ours, SCORERS[metric].checked) < 1e-9
    # The clips exercise detection and localisation: neither perfect nor empty.
    first = SCORERS[metric].checked[0]
    assert math.isfinite(plain[first]) and plain[first] != 0


def test_plain_ca_sdri_and_seldflow_agree_on_generated_soundscapes(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, "ca-sdri", files=0, frames=0, soundscapes=30, samples=500, seed=2)
    plain = run_scorer("plain", "ca-sdri", *inputs.folders)
    ours = run_scorer("seldflow", "ca-sdri", *inputs.folders)
    assert inputs.kind == "WAV" and inputs.clips == 30 and inputs.files > 30 * 3  # mixture, targets, estimates
    assert largest_difference(plain, ours, SCORERS["ca-sdri"].checked) < SCORERS["ca-sdri"].tolerance
    assert 0 < plain["label_accuracy"] < 1 and plain["CA-SDRi"] > 0


def test_every_registered_metric_and_ca_sdri_have_a_plain_reference() -> None:
    assert set(LABEL_METRICS) == set(METRICS) == set(FILE_FORMATS)
    assert set(SCORERS) == {*METRICS, "ca-sdri"}


def test_largest_difference_treats_nan_alike_and_nan_against_a_number_as_infinite() -> None:
    a = {"F": 0.5, "LE": math.nan}
    assert largest_difference(a, {"F": 0.25, "LE": math.nan}, ("F", "LE")) == 0.25
    assert largest_difference(a, {"F": 0.5, "LE": 3.0}, ("F", "LE")) == math.inf


def test_an_unknown_implementation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="implementation"):
        run_scorer("official", "dcase2025", tmp_path, tmp_path)


# --------------------------------------------------------------------------------------------------------------
# Synthetic label folders
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", sorted(FILE_FORMATS))
def test_label_sets_are_seeded_and_read_strictly(tmp_path: Path, metric: str) -> None:
    first = write_label_set(tmp_path / "a", metric, 6, seed=1, frames=20)
    again = write_label_set(tmp_path / "b", metric, 6, seed=1, frames=20)
    other = write_label_set(tmp_path / "c", metric, 6, seed=2, frames=20)
    names = sorted(path.name for path in (first.ref_dir / REFERENCE_SPLIT).iterdir())
    assert names == sorted(path.name for path in first.pred_dir.iterdir()) and len(names) == 6
    for a, b in ((first.ref_dir / REFERENCE_SPLIT, again.ref_dir / REFERENCE_SPLIT), (first.pred_dir, again.pred_dir)):
        assert [(a / name).read_text() for name in names] == [(b / name).read_text() for name in names]
    assert [(other.pred_dir / name).read_text() for name in names] != [
        (first.pred_dir / name).read_text() for name in names
    ]
    chosen = get_metric(metric)
    references = chosen.read_dir(first.ref_dir, reference=True)  # strict: a bad reference raises
    predictions = chosen.read_dir(first.pred_dir, reference=False)
    assert len(references) == len(predictions) == 6
    lanes = FILE_FORMATS[metric][1]
    for table, _ in predictions.values():
        frames = table[:, 0].astype(int)
        assert np.bincount(frames).max(initial=0) <= lanes  # DOAnet's files hold two directions per frame


def test_label_set_sizes_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no synthetic label format"):
        write_label_set(tmp_path, "ca-sdri", 3, seed=0, frames=10)
    with pytest.raises(ValueError, match="at least one file"):
        write_label_set(tmp_path, "dcase2025", 0, seed=0, frames=10)


# --------------------------------------------------------------------------------------------------------------
# The rows
# --------------------------------------------------------------------------------------------------------------


def test_a_scorer_row_holds_both_times_both_peaks_and_the_conditions(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, "dcase2025", files=8, frames=20, soundscapes=0, samples=0, seed=3)
    comparison, difference = compare_scorer(inputs, repeats=1)
    assert difference < 1e-9
    assert comparison.name == "scorer dcase2025"
    assert comparison.a_seconds > 0 and comparison.b_seconds > 0 and comparison.ratio > 0
    assert comparison.a_peak_mb > 0 and comparison.b_peak_mb > 0
    assert comparison.threads == THREADS and comparison.load_average >= 0
    assert "8 clips" in comparison.work and "16 CSV files" in comparison.work
    assert comparison.check.startswith("max |Δ| of F, DOAE, DistE, RDE = ")
    assert "DCASE2025_seld_baseline" in comparison.a_label
    assert comparison.peak_from == "since the process started, imports of both sides included"

    report = BenchReport(comparisons=[comparison])
    markdown = render_markdown(report)
    assert "| peak MB A / B | threads | load |" in markdown
    metrics = {metric for section, item, metric, *_ in csv_rows(report) if item == "scorer dcase2025"}
    assert metrics == {"a_seconds", "b_seconds", "ratio_a_over_b", "a_peak_rss", "b_peak_rss", "load_average_1min"}
    assert "(since the process started, imports of both sides included)" in markdown  # the peak cell says so
    peak_notes = [note for _, item, metric, _, _, note in csv_rows(report) if metric.endswith("_peak_rss")]
    assert len(peak_notes) == 2 and all(note.endswith("imports of both sides included") for note in peak_notes)


def test_scorer_rows_write_score_and_delete_one_set_per_metric() -> None:
    messages: list[str] = []
    rows = scorer_rows(
        files=3,
        frames=12,
        seed=4,
        soundscapes=2,
        soundscape_samples=200,
        warm_up=2,
        metrics=("dcase2023", "doa-mot", "ca-sdri"),
        log=messages.append,
    )
    assert [row.name for row in rows] == ["scorer dcase2023", "scorer doa-mot", "scorer ca-sdri"]
    # every run scored a two-clip set with both implementations first and restarted its peak there
    warmed = ["after both sides ran 2 clips"] * 2 + ["after both sides ran 2 soundscapes"]
    assert [row.peak_from for row in rows] == warmed
    assert all("3 clips" in row.work for row in rows[:2]) and "2 clips" in rows[2].work and "WAV" in rows[2].work
    assert any("timing on 6 files" in message for message in messages)
    assert not scorer_rows(files=3, frames=12, seed=4, soundscapes=0, metrics=("ca-sdri",))  # no soundscapes, no row
