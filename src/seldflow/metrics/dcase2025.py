"""The official DCASE2025 Task 3 stereo SELD metric, quirks included, with jackknife intervals.

Numbers from this module must be comparable with published DCASE2025 results, so it reproduces the official
scorer's behaviour (``partha2409/DCASE2025_seld_baseline``, ``metrics.py``) rather than an idealised metric:

* evaluation is frame-wise on 100-ms label frames; a clip is scored on frames ``0 .. last_ref_frame - 1``, so the
  last annotated reference frame and everything after it are never scored, and a reference with no events (or
  with events only in frame 0) contributes nothing, not even false positives;
* in each frame, the tracks of a class present in both reference and prediction are paired by the Hungarian
  algorithm on the folded-azimuth difference; a pair with an error strictly above a threshold is a "spatial"
  false positive, which the F-score counts as both a false positive and a false negative;
* DOAE, DistE, RDE and on-screen accuracy average over *all* paired tracks, whatever their errors;
* the macro F-score averages over every class, so a class never present in reference or prediction scores 0,
  while a class with no paired tracks is left out (NaN) of the DOAE / RDE averages;
* a class keeps at most ten tracks per frame (more only with negative source ids, see :func:`official_tracks`):
  an event finding no free track slot overwrites the event in slot 0, as the official ``organize_labels`` does;
* in the audio-visual mode (``req_onscreen``, ``onscreen`` in :func:`score_report`) ``F`` and ``classwise_F``
  also require the on-screen flag to match, while DOAE, RDE and on-screen accuracy do not depend on the mode.

Reference labels are read strictly (:func:`seldflow.labels.read_labels`), because they are the data every number
rests on. Predictions are read as leniently as the official reader reads them (:func:`read_prediction`), so a
file the official scorer scores gets the same numbers here.

Deliberate differences, each where the official scorer crashes or silently loses data:

* a reference clip without a prediction is silently skipped there (losing its false negatives); here that is an
  error unless ``missing`` says to skip it (with a warning) or to score it as an empty prediction;
* a prediction row with a negative frame or a class outside ``0 .. n_classes - 1`` is never looked at there, so a
  file holding one (1-based classes, say) would be scored as if those detections did not exist; here it is an error;
* a prediction whose first line is an event is scored there without that event (the first line is skipped as the
  header, whatever it holds); here it is an error;
* non-finite values (``nan``, ``inf``) either crash the official matching step or turn an average into NaN; here
  they are errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as sps

from seldflow.csv_bulk import Layout, read_numeric_files, whole_numbers
from seldflow.errors import InputError
from seldflow.labels import (
    COL_AZIMUTH,
    COL_CLASS,
    COL_DISTANCE,
    COL_FRAME,
    COL_ONSCREEN,
    COL_SOURCE,
    CSV_COLUMNS,
    MAX_INTEGER,
    N_CLASSES,
    fold_azimuth,
    parse_numbers,
    read_csv_records,
    read_labels,
    read_labels_files,
)
from seldflow.metrics.common import (
    EPS,
    Groups,
    by_clip_chunks,
    check_missing,
    checked_tables,
    common_groups,
    group_frames,
    match_tracks,
    nanmean,
    pair_clips,
    row_keys,
)

# Rows of the per-clip, per-class statistics array (axis -2 of every ``stats`` array below).
TP, FP_SPATIAL, FP, FN, SUM_DOA, SUM_DIST, SUM_RELDIST, SUM_ONSCREEN, MATCHED, N_REF = range(10)
N_STATS = 10

AVERAGES = ("macro", "micro")
SCALAR_METRICS = ("F", "DOAE", "DistE", "RDE", "OnscreenAcc")

# The official scorer keeps at most this many tracks of one class in one frame (``organize_labels``' max_tracks).
MAX_TRACKS = 10
# Columns the official reader parses with int(); azimuth and distance it parses with float().
PREDICTION_INTEGERS = ("frame", "class", "source", "onscreen")


class ClipStats(NamedTuple):
    """Additive statistics per clip, so totals and leave-one-out totals are plain sums."""

    counts: np.ndarray  # (n_clips, N_STATS, n_classes)
    scored_frames: np.ndarray  # (n_clips,) number of frames scored in each clip


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def compute_metrics(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    doa_threshold: float = 20.0,
    dist_threshold: float = math.inf,
    reldist_threshold: float = 1.0,
    req_onscreen: bool = False,
    n_classes: int = N_CLASSES,
    average: str = "macro",
    missing: str = "error",
) -> dict[str, Any]:
    """Official DCASE2025 SELD scores of ``predictions`` against ``references`` (both keyed by clip stem).

    Rows are ``(n, 6)`` arrays in CSV column order (see :mod:`seldflow.labels`). Returns fractions (not percent):
    ``F``, ``DOAE`` (degrees), ``DistE`` (cm), ``RDE``, ``OnscreenAcc``, per-class lists ``classwise_*`` and the
    counts behind them, where ``F = TP / (TP + FP_spatial + (FP + FN) / 2)``. Thresholds are strict: an error
    equal to a threshold still counts as correct. ``req_onscreen`` also requires the on-screen flag to match
    (the official audio-visual mode's F).
    """
    _check_options(average, missing)
    refs, preds = _tables(pair_clips(references, predictions, missing=missing), n_classes)
    stats = _clip_stats(
        refs,
        preds,
        doa_threshold=doa_threshold,
        dist_threshold=dist_threshold,
        reldist_threshold=reldist_threshold,
        req_onscreen=req_onscreen,
        n_classes=n_classes,
    )
    return _report(stats, average)


def jackknife(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    significance_level: float = 0.05,
    average: str = "macro",
    missing: str = "error",
    **thresholds: Any,
) -> dict[str, Any]:
    """Leave-one-clip-out jackknife of every metric, as the official scorer's ``is_jackknife`` option computes it.

    ``thresholds`` are the threshold options of :func:`compute_metrics`. For each metric the result holds
    ``value`` (on all clips), the bias-corrected ``estimate``, ``bias``, ``std_err`` and the two-sided Student-t
    ``interval`` (95 % by default) around the estimate; per-class metrics give lists of the same. Every compared
    clip is left out once, unscored ones included, as the official scorer iterates over its prediction files.
    """
    _check_options(average, missing)
    n_classes = thresholds.get("n_classes", N_CLASSES)
    refs, preds = _tables(pair_clips(references, predictions, missing=missing), n_classes)
    return _jackknife_from_stats(_clip_stats(refs, preds, **thresholds), average, significance_level)


def read_file(path: str | Path, *, n_classes: int = N_CLASSES, reference: bool = True) -> np.ndarray:
    """Read one DCASE2025 CSV for scoring: a reference strictly, a prediction as the official scorer reads it.

    Reference frames are not bounded (any non-negative frame); see :func:`read_prediction` for predictions.
    """
    if reference:
        return read_labels(path, n_frames=None, n_classes=n_classes)
    return read_prediction(path, n_classes=n_classes)


def read_files(paths: Sequence[str | Path], *, n_classes: int = N_CLASSES, reference: bool = True) -> list[np.ndarray]:
    """:func:`read_file` of many files at once (references by :func:`seldflow.labels.read_labels_files`,
    predictions by :func:`read_predictions`): the same tables, or the same error for the first bad file."""
    if reference:
        return read_labels_files(paths, n_frames=None, n_classes=n_classes)
    return read_predictions(paths, n_classes=n_classes)


def read_predictions(paths: Sequence[str | Path], *, n_classes: int = N_CLASSES) -> list[np.ndarray]:
    """:func:`read_prediction` of many files at once: files with the standard header and six plain columns are
    parsed in bulk (:func:`seldflow.csv_bulk.read_numeric_files`) and checked with :func:`_prediction_row`'s rules
    over whole columns; any other file is read by :func:`read_prediction` itself."""
    integers = [CSV_COLUMNS.index(name) for name in PREDICTION_INTEGERS]

    def check(values: np.ndarray, _files: np.ndarray) -> np.ndarray:
        ok = np.isfinite(values).all(axis=1) & whole_numbers(values[:, integers], MAX_INTEGER).all(axis=1)
        cls = values[:, COL_CLASS]
        return ok & (values[:, COL_FRAME] >= 0) & (cls >= 0) & (cls < n_classes)

    return read_numeric_files(
        paths,
        Layout(frozenset({len(CSV_COLUMNS)}), header=",".join(CSV_COLUMNS).encode()),
        check=check,
        convert=lambda values: values,
        slow=lambda path: read_prediction(path, n_classes=n_classes),
    )


def read_prediction(path: str | Path, *, n_classes: int = N_CLASSES) -> np.ndarray:
    """Read a prediction CSV into float64 rows, accepting every value the official scorer scores.

    The official reader skips the first line, splits the others on commas and parses frame, class, source and
    onscreen with ``int()`` and azimuth and distance with ``float()``; nothing else is checked. So that a file it
    scores is scored the same here, a prediction may hold:

    * any header line (its text is not checked), or no line at all (an empty file: no detections);
    * fractional azimuths and distances, kept unrounded;
    * azimuths outside -180..180: the scorer wraps and folds every azimuth before comparing;
    * negative distances: only the difference to the reference distance counts;
    * any integer source id (negative, repeated, 10 or more): ids only choose track slots (:func:`official_tracks`);
    * any integer onscreen flag: a flag other than the reference's 0 or 1 is simply a wrong flag;
    * frames past the reference's end (never scored) and columns after the sixth (ignored).

    Integer columns written as ``3.0`` are accepted too (the official reader would crash on them). Refused, as
    the module docstring explains: an event on the first line, negative frames, classes outside
    ``0 .. n_classes - 1``, fewer than six columns, non-integer frame / class / source / onscreen values and
    non-finite numbers.
    """
    path = Path(path)
    records = read_csv_records(path, "prediction file")
    if records and records[0][0] == 1:  # the official reader skips line 1, blank or not
        _check_header(path, records[0][1])
        records = records[1:]
    rows = [_prediction_row(path, line, record, n_classes) for line, record in records]
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(CSV_COLUMNS))


def _check_header(path: Path, record: list[str]) -> None:
    """Refuse a first line that parses as an event: the official scorer would drop it unscored as the header."""
    if len(record) < len(CSV_COLUMNS):
        return
    try:
        [float(value) for value in record[: len(CSV_COLUMNS)]]
    except ValueError:
        return
    raise InputError(
        path,
        f"the first line must be a header ({','.join(CSV_COLUMNS)}), found an event: the official scorer "
        "skips the first line, so this event would go unscored",
        row=1,
    )


def _prediction_row(path: Path, line: int, record: list[str], n_classes: int) -> list[float]:
    """One prediction row; columns after the sixth are ignored, as by the official reader."""
    if len(record) < len(CSV_COLUMNS):
        raise InputError(path, f"expected at least {len(CSV_COLUMNS)} columns, found {len(record)}", row=line)
    values = parse_numbers(path, line, record[: len(CSV_COLUMNS)], CSV_COLUMNS, integers=PREDICTION_INTEGERS)
    frame, cls = values[COL_FRAME], values[COL_CLASS]
    if frame < 0:
        raise InputError(path, f"negative frame {frame:g} (the official scorer ignores it)", row=line, field="frame")
    if not 0 <= cls < n_classes:
        raise InputError(
            path,
            f"unknown class index {cls:g} (0..{n_classes - 1}; the official scorer ignores it)",
            row=line,
            field="class",
        )
    return values


def score_report(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    n_classes: int = N_CLASSES,
    missing: str = "error",
    average: str = "macro",
    onscreen: bool = False,
    jackknife: bool = False,
    ref_source: str = "references",
    pred_source: str = "predictions",
    **thresholds: Any,
) -> dict[str, Any]:
    """The report of the score stage: :func:`compute_metrics` in the official audio-only or audio-visual mode.

    ``thresholds`` are ``doa_threshold``, ``dist_threshold`` and ``reldist_threshold``. Without ``onscreen`` this
    is the official audio-only mode, and the on-screen accuracy, meaningless for audio-only systems, is left out.
    With ``onscreen`` it is the official audio-visual mode (``lad_req_onscreen``): ``F``, ``classwise_F`` and the
    counts behind them also require the on-screen flag to match, as the official scorer reports them under those
    names, and the report adds ``OnscreenAcc`` plus the audio-only ``F_audio`` and ``classwise_F_audio`` for
    comparison with audio-only systems. DOAE, DistE and RDE are the same in both modes. With ``jackknife`` it adds
    ``intervals``: the jackknife statistics of each scalar metric. ``settings`` records every option used.
    """
    if "req_onscreen" in thresholds:
        raise TypeError("score_report() selects the audio-visual mode with onscreen=True; it takes no req_onscreen")
    _check_options(average, missing)
    clips = pair_clips(references, predictions, missing=missing, ref_source=ref_source, pred_source=pred_source)
    refs, preds = _tables(clips, n_classes, ref_source, pred_source)
    audio_stats = _clip_stats(refs, preds, req_onscreen=False, n_classes=n_classes, **thresholds)
    stats = _clip_stats(refs, preds, req_onscreen=True, n_classes=n_classes, **thresholds) if onscreen else audio_stats
    report = _report(stats, average)
    reported = ["F", "DOAE", "DistE", "RDE"]
    if onscreen:
        audio = _report(audio_stats, average)
        report["F_audio"] = audio["F"]
        report["classwise_F_audio"] = audio["classwise_F"]
        reported.append("OnscreenAcc")
    else:
        for key in ("OnscreenAcc", "classwise_OnscreenAcc"):
            report.pop(key)
    if jackknife:
        spread = _jackknife_from_stats(stats, average)
        report["intervals"] = {name: spread[name] for name in reported}
        if onscreen:
            report["intervals"]["F_audio"] = _jackknife_from_stats(audio_stats, average)["F"]
    report["settings"] = {
        "doa_threshold": thresholds.get("doa_threshold", 20.0),
        "dist_threshold": thresholds.get("dist_threshold", math.inf),
        "reldist_threshold": thresholds.get("reldist_threshold", 1.0),
        "n_classes": n_classes,
        "average": average,
        "missing": missing,
        "onscreen": onscreen,
    }
    return report


def _check_options(average: str, missing: str) -> None:
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    check_missing(missing)


def _tables(
    clips: Sequence[tuple[str, np.ndarray, np.ndarray | None]],
    n_classes: int,
    ref_source: str = "references",
    pred_source: str = "predictions",
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Validated reference and prediction tables of paired clips (a missing prediction is an empty table).

    The track slots the official scorer keeps are applied later, by :func:`_official_groups`.
    """

    def valid(rows: np.ndarray) -> np.ndarray:
        return _valid_rows(rows, n_classes)

    def as_table(source: str) -> Callable[[str, np.ndarray | None], np.ndarray]:
        return lambda name, rows: (
            np.zeros((0, len(CSV_COLUMNS))) if rows is None else _as_table(source, name, rows, n_classes)
        )

    refs = checked_tables([(name, ref) for name, ref, _ in clips], valid, as_table(ref_source))
    preds = checked_tables([(name, pred) for name, _, pred in clips], valid, as_table(pred_source))
    return refs, preds


def _valid_rows(rows: np.ndarray, n_classes: int) -> np.ndarray:
    """Per row, what :func:`_as_table` accepts: finite values, a non-negative integer frame, a class index."""
    frame, cls = rows[:, COL_FRAME], rows[:, COL_CLASS]
    ok = np.isfinite(rows).all(axis=1) & (frame >= 0) & (frame == np.round(frame))
    return ok & (cls >= 0) & (cls < n_classes) & (cls == np.round(cls))


def _official_groups(tables: list[np.ndarray], scored_frames: np.ndarray, span: int, n_classes: int) -> Groups:
    """:func:`seldflow.metrics.common.group_frames` of the tracks the official scorer keeps.

    Only a (frame, class) group of more than :data:`MAX_TRACKS` rows loses rows to the slot filing, so the clips
    holding such a scored group (hardly ever any) are replayed by :func:`official_tracks` and grouped again.
    """
    groups = group_frames(tables, scored_frames, span, n_classes)
    crowded = groups.count > MAX_TRACKS
    if crowded.any():
        clips = set((groups.keys[crowded] // (span * n_classes)).tolist())
        tables = [official_tracks(table) if clip in clips else table for clip, table in enumerate(tables)]
        groups = group_frames(tables, scored_frames, span, n_classes)
    return groups


def official_tracks(table: np.ndarray) -> np.ndarray:
    """The rows the official scorer keeps, in the order it keeps them, of a validated float table.

    The official scorer files the events of each frame and class into track slots: an event takes the slot named
    by its source id when that slot is free and below :data:`MAX_TRACKS` (a negative id makes a slot of its own),
    otherwise the lowest free slot in ``0 .. MAX_TRACKS - 1``; when none is free it overwrites slot 0. Tracks keep
    the order their slots were first filled, which decides Hungarian ties. Up to ``MAX_TRACKS`` events of one class
    in one frame always find a slot, so only more crowded frames change (by dropping events): those are replayed.
    """
    if len(table) <= MAX_TRACKS:
        return table
    classes = table[:, COL_CLASS].astype(np.int64)
    keys = table[:, COL_FRAME].astype(np.int64) * (int(classes.max()) + 1) + classes
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    crowded = np.flatnonzero(counts > MAX_TRACKS)
    if not crowded.size:
        return table
    kept = table.copy()
    keep = np.ones(len(table), dtype=bool)
    for group in crowded:
        _replay_slots(table, np.flatnonzero(inverse == group), kept, keep)
    return kept[keep]


def _replay_slots(table: np.ndarray, rows: np.ndarray, kept: np.ndarray, keep: np.ndarray) -> None:
    """File the ``rows`` of one frame and class into slots; an overwriting row replaces the row in slot 0."""
    slots: dict[int, int] = {}  # slot -> row index holding it
    for row in rows:
        source = int(table[row, COL_SOURCE])
        slot = source
        if source in slots or source >= MAX_TRACKS:
            free = [candidate for candidate in range(MAX_TRACKS) if candidate not in slots]
            slot = free[0] if free else 0
        if slot in slots:
            kept[slots[slot]] = table[row]
            keep[row] = False
        else:
            slots[slot] = row


def _as_table(source: str, name: str, rows: np.ndarray, n_classes: int) -> np.ndarray:
    """Label rows as float64 ``(n, 6)``; frame and class must be integers in range, as they index frames / classes."""
    table = np.asarray(rows, dtype=np.float64)
    if table.size == 0:
        return table.reshape(0, len(CSV_COLUMNS))
    if table.ndim != 2 or table.shape[1] != len(CSV_COLUMNS):
        raise InputError(source, f"clip {name!r}: label rows must have shape (n, 6), got {table.shape}")
    if not np.isfinite(table).all():
        raise InputError(source, f"clip {name!r}: label rows contain NaN or infinite values")
    limits = {COL_FRAME: math.inf, COL_CLASS: n_classes}
    for column, limit in limits.items():
        values = table[:, column]
        bad = np.flatnonzero((values < 0) | (values >= limit) | (values != np.round(values)))
        if bad.size:
            allowed = "a non-negative integer" if math.isinf(limit) else f"an integer in 0..{limit - 1}"
            raise InputError(
                source,
                f"clip {name!r}: array row {bad[0]}: {values[bad[0]]:g} is not {allowed}",
                field=CSV_COLUMNS[column],
            )
    return table


# --------------------------------------------------------------------------------------------------------------
# Frame-wise matching (vectorised over all clips)
# --------------------------------------------------------------------------------------------------------------


@by_clip_chunks
def _clip_stats(
    refs: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    *,
    doa_threshold: float = 20.0,
    dist_threshold: float = math.inf,
    reldist_threshold: float = 1.0,
    req_onscreen: bool = False,
    n_classes: int = N_CLASSES,
) -> ClipStats:
    """Per-clip, per-class counts and error sums of the official frame-wise evaluation."""
    n_clips = len(refs)
    # Official quirk: a clip spans range(max reference frame), so its last annotated frame is never scored.
    scored_frames = np.array([int(r[:, COL_FRAME].max()) if len(r) else 0 for r in refs], dtype=np.int64)
    counts = np.zeros((N_STATS, n_clips * n_classes))
    span = int(scored_frames.max(initial=0))
    if span == 0:
        return ClipStats(_per_clip(counts, n_clips, n_classes), scored_frames)
    ref = _official_groups(refs, scored_frames, span, n_classes)
    pred = _official_groups(preds, scored_frames, span, n_classes)
    bins = n_clips * n_classes

    def add(stat: int, keys: np.ndarray, weights: np.ndarray) -> None:
        counts[stat] += np.bincount(_clip_class_bin(keys, span, n_classes), weights=weights, minlength=bins)

    add(N_REF, ref.keys, ref.count.astype(np.float64))
    both = common_groups(ref, pred)
    add(FN, ref.keys[both.ref_only], ref.count[both.ref_only].astype(np.float64))
    add(FP, pred.keys[both.pred_only], pred.count[both.pred_only].astype(np.float64))
    add(FN, both.keys, np.maximum(both.n_ref - both.n_pred, 0).astype(np.float64))
    add(FP, both.keys, np.maximum(both.n_pred - both.n_ref, 0).astype(np.float64))

    ref_az = fold_azimuth(ref.rows[:, COL_AZIMUTH])
    pred_az = fold_azimuth(pred.rows[:, COL_AZIMUTH])
    pair_ref, pair_pred = match_tracks(lambda r, p: np.abs(ref_az[r] - pred_az[p]), both)
    pair_keys = row_keys(ref, pair_ref)

    doa_err = np.abs(ref_az[pair_ref] - pred_az[pair_pred])
    ref_dist = ref.rows[pair_ref, COL_DISTANCE]
    dist_err = np.abs(ref_dist - pred.rows[pair_pred, COL_DISTANCE])
    reldist_err = dist_err / (ref_dist + EPS)
    onscreen_ok = ref.rows[pair_ref, COL_ONSCREEN] == pred.rows[pair_pred, COL_ONSCREEN]
    wrong = (doa_err > doa_threshold) | (dist_err > dist_threshold) | (reldist_err > reldist_threshold)
    if req_onscreen:
        wrong |= ~onscreen_ok
    add(TP, pair_keys, (~wrong).astype(np.float64))
    add(FP_SPATIAL, pair_keys, wrong.astype(np.float64))
    add(SUM_DOA, pair_keys, doa_err)
    add(SUM_DIST, pair_keys, dist_err)
    add(SUM_RELDIST, pair_keys, reldist_err)
    add(SUM_ONSCREEN, pair_keys, onscreen_ok.astype(np.float64))
    add(MATCHED, pair_keys, np.ones(len(pair_keys)))
    return ClipStats(_per_clip(counts, n_clips, n_classes), scored_frames)


def _per_clip(counts: np.ndarray, n_clips: int, n_classes: int) -> np.ndarray:
    return counts.reshape(N_STATS, n_clips, n_classes).transpose(1, 0, 2).copy()


def _clip_class_bin(keys: np.ndarray, span: int, n_classes: int) -> np.ndarray:
    clip = keys // (span * n_classes)
    return clip * n_classes + keys % n_classes


# --------------------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------------------


def _metric_arrays(counts: np.ndarray, average: str) -> dict[str, np.ndarray]:
    """Metrics from summed statistics ``(..., N_STATS, n_classes)``; vectorised over leading axes for the jackknife."""
    classwise = _classwise(counts)
    if average == "macro":
        overall = {
            "F": classwise["F"].mean(axis=-1),
            **{name: nanmean(classwise[name]) for name in SCALAR_METRICS[1:]},
        }
    else:
        overall = _classwise(counts.sum(axis=-1, keepdims=True))
        overall = {name: value[..., 0] for name, value in overall.items()}
    return {**overall, **{f"classwise_{name}": value for name, value in classwise.items()}}


def _classwise(counts: np.ndarray) -> dict[str, np.ndarray]:
    tp, fp_spatial, fp, fn = (counts[..., k, :] for k in (TP, FP_SPATIAL, FP, FN))
    matched = counts[..., MATCHED, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        f_score = tp / (EPS + tp + fp_spatial + 0.5 * (fp + fn))

        def per_match(stat: int) -> np.ndarray:
            return np.where(matched > 0, counts[..., stat, :] / (matched + EPS), np.nan)

        return {
            "F": f_score,
            "DOAE": per_match(SUM_DOA),
            "DistE": per_match(SUM_DIST),
            "RDE": per_match(SUM_RELDIST),
            "OnscreenAcc": per_match(SUM_ONSCREEN),
        }


def _report(stats: ClipStats, average: str) -> dict[str, Any]:
    totals = stats.counts.sum(axis=0)
    metrics = _metric_arrays(totals, average)
    report: dict[str, Any] = {name: float(metrics[name]) for name in SCALAR_METRICS}
    report.update({name: value.tolist() for name, value in metrics.items() if name.startswith("classwise_")})
    report.update(
        {
            "TP": int(totals[TP].sum()),
            "FP": int(totals[FP].sum()),
            "FP_spatial": int(totals[FP_SPATIAL].sum()),
            "FN": int(totals[FN].sum()),
            "matched": int(totals[MATCHED].sum()),
            "n_ref_events": int(totals[N_REF].sum()),
            "n_files": len(stats.scored_frames),
            "n_scored_files": int((stats.scored_frames > 0).sum()),
            "n_scored_frames": int(stats.scored_frames.sum()),
            "average": average,
        }
    )
    return report


def _jackknife_from_stats(stats: ClipStats, average: str, significance_level: float = 0.05) -> dict[str, Any]:
    """Jackknife from per-clip statistics: leaving a clip out is subtracting its counts, so this is O(n_clips)."""
    if not 0 < significance_level < 1:
        raise ValueError(f"significance_level must be in (0, 1), got {significance_level}")
    totals = stats.counts.sum(axis=0)
    full = _metric_arrays(totals, average)
    partial = _metric_arrays(totals[None] - stats.counts, average)
    n = len(stats.counts)
    t_value = float(sps.t.ppf(1 - significance_level / 2, n - 1)) if n > 1 else math.nan
    result: dict[str, Any] = {}
    for name, value in full.items():
        estimate, bias, std_err = _jackknife_estimate(value, partial[name])
        interval = np.stack([estimate - t_value * std_err, estimate + t_value * std_err], axis=-1)
        result[name] = {
            "value": value.tolist(),
            "estimate": estimate.tolist(),
            "bias": bias.tolist(),
            "std_err": std_err.tolist(),
            "interval": interval.tolist(),
        }
    result["n_files"] = n
    result["significance_level"] = significance_level
    return result


def _jackknife_estimate(value: np.ndarray, partial: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bias-corrected estimate, bias and standard error from ``n`` leave-one-out values (axis 0 of ``partial``)."""
    n = partial.shape[0]
    mean = partial.mean(axis=0)
    bias = (n - 1) * (mean - value)
    std_err = np.sqrt((n - 1) * np.mean((partial - mean) ** 2, axis=0))
    return value - bias, bias, std_err
