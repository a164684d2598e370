"""The scorer rows of ``make bench``: each registered metric against the plain restatement of its official code.

Every row scores the same synthetic folders (:mod:`seldflow.bench.label_sets`, thousands of clips, one reference
and one prediction CSV each) twice, file reading included, because that is what scoring costs:

* **plain** (A): the official scorer restated as it is written, one line, one file, one frame and one class at a
  time with one Hungarian assignment per frame and class (:mod:`~seldflow.bench.scorer` for DCASE2025,
  :mod:`~seldflow.bench.segment_scorer` for DCASE2021-2023, :mod:`~seldflow.bench.frame_scorer` for DCASE2024,
  :mod:`~seldflow.bench.tracking_scorer` for DOAnet's ``doa-mot``);
* **seldflow** (B): the registered metric as ``seldflow score`` runs it, the folders read by the metric's bulk
  reader (:mod:`seldflow.csv_bulk`) and scored vectorised over all clips and frames.

Each run happens in a fresh process (:mod:`seldflow.bench.scorer_child`), which times the scoring alone (after its
imports) and reports its peak resident memory and the scores, so the two sides start alike, the memory figures
are comparable, and the numbers of the two are compared to the last digits.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from seldflow.bench.frame_scorer import FRAME_CHECKED, plain_frame
from seldflow.bench.label_sets import LabelSet, write_label_set
from seldflow.bench.memory import child_result
from seldflow.bench.records import Comparison
from seldflow.bench.scorer import SCORER_CHECKED, plain_dcase2025
from seldflow.bench.segment_scorer import SEGMENT_CHECKED, plain_segment
from seldflow.bench.tracking_scorer import TRACKING_CHECKED, plain_tracking
from seldflow.metrics import get_metric
from seldflow.metrics.doa_mot import METRIC_NAME as DOA_MOT

CHILD_MODULE = "seldflow.bench.scorer_child"
PLAIN, SELDFLOW = "plain", "seldflow"
IMPLEMENTATIONS = (PLAIN, SELDFLOW)
# What both sides of a row run on: one process each, one thread of Python (numpy's work here is elementwise).
THREADS = "1 process each, single-threaded"


@dataclass(frozen=True)
class PlainScorer:
    """The plain restatement of one metric's official scorer: ``score(ref_dir, pred_dir)`` -> metrics, the scalar
    metrics compared with seldflow's, and the official code it restates."""

    score: Callable[[Path, Path], Mapping[str, float]]
    checked: tuple[str, ...]
    official: str


PLAIN_SCORERS: dict[str, PlainScorer] = {
    "dcase2021": PlainScorer(
        partial(plain_segment, edition="dcase2021", n_classes=12), SEGMENT_CHECKED, "sharathadavanne/seld-dcase2021"
    ),
    "dcase2022": PlainScorer(
        partial(plain_segment, edition="dcase2022", n_classes=13), SEGMENT_CHECKED, "sharathadavanne/seld-dcase2022"
    ),
    "dcase2023": PlainScorer(
        partial(plain_segment, edition="dcase2023", n_classes=13), SEGMENT_CHECKED, "sharathadavanne/seld-dcase2023"
    ),
    "dcase2024": PlainScorer(plain_frame, FRAME_CHECKED, "partha2409/DCASE2024_seld_baseline"),
    "dcase2025": PlainScorer(plain_dcase2025, SCORER_CHECKED, "partha2409/DCASE2025_seld_baseline"),
    DOA_MOT: PlainScorer(plain_tracking, TRACKING_CHECKED, "sharathadavanne/doa-net"),
}


def library_scores(metric: str, ref_dir: str | os.PathLike[str], pred_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The registered metric on two folders, as ``seldflow score`` runs it: both read by the metric's folder
    reader, then scored (every clip of the reference folder has a prediction here)."""
    chosen = get_metric(metric)
    references = {stem: table for stem, (table, _) in chosen.read_dir(ref_dir, reference=True).items()}
    predictions = {stem: table for stem, (table, _) in chosen.read_dir(pred_dir, reference=False).items()}
    return chosen.score(references, predictions)


def run_scorer(
    implementation: str, metric: str, ref_dir: str | os.PathLike[str], pred_dir: str | os.PathLike[str]
) -> Mapping[str, Any]:
    """Scores of ``metric`` on the folders by ``implementation`` (:data:`IMPLEMENTATIONS`)."""
    if implementation == PLAIN:
        return PLAIN_SCORERS[metric].score(Path(ref_dir), Path(pred_dir))
    if implementation == SELDFLOW:
        return library_scores(metric, ref_dir, pred_dir)
    raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")


def largest_difference(a: Mapping[str, Any], b: Mapping[str, Any], names: Sequence[str]) -> float:
    """Largest absolute difference of the metrics ``names`` (NaN against NaN counts as equal, NaN against a number
    as infinitely far)."""
    worst = 0.0
    for name in names:
        x, y = float(a[name]), float(b[name])
        if math.isnan(x) and math.isnan(y):
            continue
        worst = max(worst, abs(x - y) if math.isfinite(x) and math.isfinite(y) else math.inf)
    return worst


def scorer_in_child(implementation: str, labels: LabelSet) -> dict[str, Any]:
    """One timed run in a fresh process: ``seconds`` of scoring, ``peak_rss_mb`` and the checked ``scores``."""
    args = [implementation, labels.metric, str(labels.ref_dir), str(labels.pred_dir)]
    return child_result(CHILD_MODULE, args)


def compare_metric_scorer(labels: LabelSet, *, repeats: int = 1) -> tuple[Comparison, float]:
    """Time the plain reference (A) against seldflow (B) on ``labels``, each run in its own process, taking
    turns; returns the comparison (medians of ``repeats`` runs, the largest peak memory of each side) and the
    largest difference of the checked metrics."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    plain = PLAIN_SCORERS[labels.metric]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in IMPLEMENTATIONS}
    for _ in range(repeats):
        for implementation in IMPLEMENTATIONS:
            runs[implementation].append(scorer_in_child(implementation, labels))
    a, b = runs[PLAIN], runs[SELDFLOW]
    difference = largest_difference(a[0]["scores"], b[0]["scores"], plain.checked)
    shown = ", ".join(f"{name} {b[0]['scores'][name]:.4g}" for name in plain.checked[:2])
    comparison = Comparison(
        name=f"scorer {labels.metric}",
        work=f"{labels.metric} of {labels.n_files:,} clips: reading {2 * labels.n_files:,} CSV files and scoring",
        a_label=f"plain restatement of {plain.official} (per line, file, frame and class)",
        a_seconds=statistics.median(run["seconds"] for run in a),
        b_label=f"seldflow score --metric {labels.metric} (bulk CSV reading, vectorised)",
        b_seconds=statistics.median(run["seconds"] for run in b),
        meaning="speed-up of seldflow over the official scorer's algorithm (>1: seldflow faster)",
        check=f"max |Δ| of {', '.join(plain.checked)} = {difference:.1e} ({shown})",
        a_peak_mb=max(run["peak_rss_mb"] for run in a),
        b_peak_mb=max(run["peak_rss_mb"] for run in b),
        threads=THREADS,
        load_average=load,
    )
    return comparison, difference


def scorer_rows(
    *,
    files: int,
    frames: int,
    seed: int,
    repeats: int = 1,
    metrics: Sequence[str] = tuple(PLAIN_SCORERS),
    log: Callable[[str], None] = lambda message: None,
) -> list[Comparison]:
    """One row per metric: ``files`` synthetic clips of ``frames`` label frames written to a scratch folder
    (deleted afterwards), scored by both sides ``repeats`` times."""
    rows = []
    for metric in metrics:
        with tempfile.TemporaryDirectory(prefix=f"seldflow-{metric}-") as scratch:
            log(f"scorer {metric}: writing {files} clips")
            labels = write_label_set(scratch, metric, files, seed=seed, frames=frames)
            log(f"scorer {metric}: timing")
            rows.append(compare_metric_scorer(labels, repeats=repeats)[0])
    return rows
