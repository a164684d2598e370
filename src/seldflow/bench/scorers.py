"""The scorer rows of ``make bench``: each scorer of seldflow against the plain restatement of its official code.

Every row scores the same synthetic folders (thousands of clips) twice, file reading included, because that is
what scoring costs:

* **plain** (A): the official scorer restated as it is written, one line, one file, one frame and one class at a
  time with one Hungarian assignment per frame and class (:mod:`~seldflow.bench.scorer` for DCASE2025,
  :mod:`~seldflow.bench.segment_scorer` for DCASE2021-2023, :mod:`~seldflow.bench.frame_scorer` for DCASE2024,
  :mod:`~seldflow.bench.tracking_scorer` for DOAnet's ``doa-mot``), or for CA-SDRi the Task 4 evaluation's file
  pairing, loading and torch metric one soundscape at a time (:mod:`~seldflow.bench.separation_scorer`);
* **seldflow** (B): the registered metric as ``seldflow score`` runs it (:func:`seldflow.score.score_dirs`), the
  label folders read by the metric's bulk reader (:mod:`seldflow.csv_bulk`) and scored vectorised over all clips and
  frames (DOA-MOT a chunk of recordings at a time, :class:`seldflow.metrics.doa_mot.Tally`); for CA-SDRi
  :func:`seldflow.metrics.ca_sdri.score_ca_sdri`.

Each run happens in a fresh process (:mod:`seldflow.bench.scorer_child`), which times the scoring alone (after its
imports) and reports its peak resident memory and the scores, so the two sides start alike, the memory figures
are comparable, and the numbers of the two are compared. With a warm-up set (a few clips of the same kind) each
run first scores it with both implementations and counts its peak from there, so the peaks compare what scoring
the measured folders holds, not which library code each side maps on its first call.
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
from seldflow.bench.label_sets import write_label_set
from seldflow.bench.memory import child_result
from seldflow.bench.records import Comparison, peak_origin
from seldflow.bench.s5 import write_soundscape_set
from seldflow.bench.scorer import SCORER_CHECKED, plain_dcase2025
from seldflow.bench.segment_scorer import SEGMENT_CHECKED, plain_segment
from seldflow.bench.separation_scorer import SAMPLE_RATE as SOUNDSCAPE_RATE
from seldflow.bench.separation_scorer import official_ca_sdri
from seldflow.bench.tracking_scorer import TRACKING_CHECKED, plain_tracking
from seldflow.metrics.ca_sdri import METRIC_NAME as CA_SDRI
from seldflow.metrics.ca_sdri import score_ca_sdri
from seldflow.metrics.doa_mot import METRIC_NAME as DOA_MOT
from seldflow.score import score_dirs

CHILD_MODULE = "seldflow.bench.scorer_child"
PLAIN, SELDFLOW = "plain", "seldflow"
IMPLEMENTATIONS = (PLAIN, SELDFLOW)
# What both sides of a row run on: one process each, one thread of Python (numpy's work here is elementwise).
THREADS = "1 process each, single-threaded"


def library_scores(metric: str, ref_dir: str | os.PathLike[str], pred_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The registered metric on two folders, as ``seldflow score`` runs it (:func:`seldflow.score.score_dirs`):
    both folders read by the metric's bulk reader and scored, all at once or, for a metric with a tally (DOA-MOT),
    a chunk of clips at a time (every clip of the reference folder has a prediction here)."""
    return score_dirs(Path(ref_dir), Path(pred_dir), metric=metric)


@dataclass(frozen=True)
class ScorerPair:
    """One scorer and the plain restatement of its official code, both taking the same folders: the metrics
    compared between them (and how far apart they may be: CA-SDRi's float32 sums are torch's on one side, numpy's
    on the other), and the official code restated."""

    plain: Callable[..., Mapping[str, Any]]
    seldflow: Callable[..., Mapping[str, Any]]
    checked: tuple[str, ...]
    official: str
    tolerance: float = 1e-9


def _label_pair(plain: Callable[..., Mapping[str, Any]], metric: str, checked: tuple[str, ...], official: str):
    return ScorerPair(plain, partial(library_scores, metric), checked, official)


SCORERS: dict[str, ScorerPair] = {
    "dcase2021": _label_pair(
        partial(plain_segment, edition="dcase2021", n_classes=12),
        "dcase2021",
        SEGMENT_CHECKED,
        "sharathadavanne/seld-dcase2021",
    ),
    "dcase2022": _label_pair(
        partial(plain_segment, edition="dcase2022", n_classes=13),
        "dcase2022",
        SEGMENT_CHECKED,
        "sharathadavanne/seld-dcase2022",
    ),
    "dcase2023": _label_pair(
        partial(plain_segment, edition="dcase2023", n_classes=13),
        "dcase2023",
        SEGMENT_CHECKED,
        "sharathadavanne/seld-dcase2023",
    ),
    "dcase2024": _label_pair(plain_frame, "dcase2024", FRAME_CHECKED, "partha2409/DCASE2024_seld_baseline"),
    "dcase2025": _label_pair(plain_dcase2025, "dcase2025", SCORER_CHECKED, "partha2409/DCASE2025_seld_baseline"),
    DOA_MOT: _label_pair(plain_tracking, DOA_MOT, TRACKING_CHECKED, "sharathadavanne/doa-net"),
    CA_SDRI: ScorerPair(
        official_ca_sdri, score_ca_sdri, ("CA-SDRi", "label_accuracy"), "nttcslab/dcase2025_task4_baseline", 1e-4
    ),
}
# The label metrics: every metric of the registry.
LABEL_METRICS = tuple(name for name in SCORERS if name != CA_SDRI)


@dataclass(frozen=True)
class ScorerInput:
    """The folders one row scores (in the scorers' argument order), how many clips and files they hold."""

    metric: str
    folders: tuple[Path, ...]
    clips: int
    files: int
    kind: str  # what the files are, for the row's text: "CSV" or "WAV"


def run_scorer(implementation: str, metric: str, *folders: str | os.PathLike[str]) -> Mapping[str, Any]:
    """Scores of ``metric`` on ``folders`` by ``implementation`` (:data:`IMPLEMENTATIONS`)."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    pair = SCORERS[metric]
    return (pair.plain if implementation == PLAIN else pair.seldflow)(*folders)


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


def scorer_in_child(implementation: str, inputs: ScorerInput, warm_up: ScorerInput | None = None) -> dict[str, Any]:
    """One timed run in a fresh process, after both implementations scored ``warm_up`` when given: ``seconds`` of
    scoring, ``peak_rss_mb``, ``peak_after_warm_up`` and the checked ``scores``."""
    warm = ["--warm-up", *map(str, warm_up.folders)] if warm_up else []
    return child_result(CHILD_MODULE, [implementation, inputs.metric, *map(str, inputs.folders), *warm])


def compare_scorer(
    inputs: ScorerInput, *, repeats: int = 1, warm_up: ScorerInput | None = None
) -> tuple[Comparison, float]:
    """Time the plain reference (A) against seldflow (B) on ``inputs``, each run in its own process, taking
    turns (each first scoring ``warm_up`` with both, when given); returns the comparison (medians of ``repeats``
    runs, the largest peak memory of each side) and the largest difference of the checked metrics."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    pair = SCORERS[inputs.metric]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in IMPLEMENTATIONS}
    for _ in range(repeats):
        for implementation in IMPLEMENTATIONS:
            runs[implementation].append(scorer_in_child(implementation, inputs, warm_up))
    a, b = runs[PLAIN], runs[SELDFLOW]
    difference = largest_difference(a[0]["scores"], b[0]["scores"], pair.checked)
    shown = ", ".join(f"{name} {b[0]['scores'][name]:.4g}" for name in pair.checked[:2])
    comparison = Comparison(
        name=f"scorer {inputs.metric}",
        work=f"{inputs.metric} of {inputs.clips:,} clips: reading {inputs.files:,} {inputs.kind} files and scoring",
        a_label=f"plain restatement of {pair.official} (per file and frame, as written)",
        a_seconds=statistics.median(run["seconds"] for run in a),
        b_label=f"seldflow score --metric {inputs.metric}",
        b_seconds=statistics.median(run["seconds"] for run in b),
        meaning="speed-up of seldflow over the official scorer's algorithm (>1: seldflow faster)",
        check=f"max |Δ| of {', '.join(pair.checked)} = {difference:.1e} ({shown})",
        a_peak_mb=max(run["peak_rss_mb"] for run in a),
        b_peak_mb=max(run["peak_rss_mb"] for run in b),
        peak_from=_peak_from(warm_up, [*a, *b]),
        threads=THREADS,
        load_average=load,
    )
    return comparison, difference


def _peak_from(warm_up: ScorerInput | None, runs: Sequence[Mapping[str, Any]]) -> str:
    """Where the row's peaks count from: after the warm-up set, when every run could restart its peak there."""
    if warm_up is None or not all(run["peak_after_warm_up"] for run in runs):
        return peak_origin(None)
    return peak_origin(f"{warm_up.clips} {'soundscapes' if warm_up.kind == 'WAV' else 'clips'}")


def write_inputs(folder: Path, metric: str, *, files: int, frames: int, soundscapes: int, samples: int, seed: int):
    """The synthetic folders of ``metric``'s row in ``folder``: ``files`` label clips of ``frames`` frames, or for
    CA-SDRi ``soundscapes`` soundscapes of ``samples`` samples."""
    if metric == CA_SDRI:
        folders = write_soundscape_set(folder, soundscapes, seed=seed, samples=samples, sample_rate=SOUNDSCAPE_RATE)
        n_files = sum(1 for path in folders for _ in os.scandir(path))
        return ScorerInput(metric, folders, soundscapes, n_files, "WAV")
    labels = write_label_set(folder, metric, files, seed=seed, frames=frames)
    return ScorerInput(metric, (labels.ref_dir, labels.pred_dir), files, 2 * files, "CSV")


def scorer_rows(
    *,
    files: int,
    frames: int,
    seed: int,
    soundscapes: int = 0,
    soundscape_samples: int = 4000,
    repeats: int = 1,
    warm_up: int = 0,
    metrics: Sequence[str] = tuple(SCORERS),
    log: Callable[[str], None] = lambda message: None,
) -> list[Comparison]:
    """One row per metric, on folders written to a scratch folder (deleted afterwards) and scored by both sides
    ``repeats`` times: ``files`` label clips of ``frames`` frames; ``soundscapes`` S5 soundscapes of
    ``soundscape_samples`` samples for CA-SDRi (no CA-SDRi row when 0). With ``warm_up`` > 0 every run first scores
    a set of that many clips (soundscapes) with both implementations, and its peak counts from there."""
    rows = []
    for metric in metrics:
        if metric == CA_SDRI and soundscapes < 1:
            continue
        with tempfile.TemporaryDirectory(prefix=f"seldflow-{metric}-") as scratch:
            log(f"scorer {metric}: writing its folders")
            sizes = {"frames": frames, "samples": soundscape_samples, "seed": seed}
            inputs = write_inputs(Path(scratch) / "measured", metric, files=files, soundscapes=soundscapes, **sizes)
            warm = None
            if warm_up:
                warm = write_inputs(Path(scratch) / "warm-up", metric, files=warm_up, soundscapes=warm_up, **sizes)
            log(f"scorer {metric}: timing on {inputs.files} files")
            rows.append(compare_scorer(inputs, repeats=repeats, warm_up=warm)[0])
    return rows
