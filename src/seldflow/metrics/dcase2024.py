"""The official DCASE2024 Task 3 SELD metric: frame-based, distance-aware detection and localization.

Reproduces ``SELDMetrics`` (not the segment-level class) of ``partha2409/DCASE2024_seld_baseline`` @0b07887
(``SELD_evaluation_metrics.py``, driven by ``cls_compute_seld_results.py`` with the baseline's ``parameters.py``:
``segment_based_metrics=False``, ``evaluate_distance=True``, ``lad_doa_thresh=20``, ``lad_dist_thresh=inf``,
``lad_reldist_thresh=1``, ``average='macro'``, 13 classes). Conventions, all reproduced:

* Files are ``frame,class,track,azimuth,elevation,distance`` with the distance in cm; the official driver converts
  the reference's to metres (``cm2m=True``), so distance errors are in metres.
* Frame-wise, not 1-s segments: a file is scored on frames ``0 .. L - 1`` with ``L`` the largest frame index of
  the reference, so its last annotated frame and every later prediction are ignored (an empty reference, which
  crashes the official loader, scores nothing here).
* Per frame and class present in both: Hungarian pairing on the angle between unit vectors, each normalised by
  ``sqrt(x² + y² + z² + 1e-10)`` as the official code does, so even identical directions are about 0.00081°
  apart. Per pair: DOA error (degrees), distance error ``|d_ref - d_pred|`` and relative distance error
  ``|d_ref - d_pred| / (d_ref + eps)``. A pair with DOA error > ``doa_threshold`` (20°) or distance error >
  ``dist_threshold`` (∞) or relative error > ``reldist_threshold`` (1.0) is a spatial FP (strict ``>``: an
  error equal to a threshold passes); the others are TPs. Unpaired predictions are FPs, unpaired references FNs.
* DOA, distance and relative distance errors average over *all* pairs, whatever their errors (``DE_TP``).
* ``F = TP / (TP + FP_spatial + (FP + FN) / 2)``; ``LR = DE_TP / (DE_TP + DE_FN)``; ``ER`` from frame-wise
  substitutions, deletions and insertions with spatial FPs counted as FPs; it is reported but not part of SELD.
* ``SELD = nanmean(1 - F, LE / 180, RDE)``. Macro: computed per class (a class without pairs has LE = RDE = NaN,
  so its SELD is ``1 - F``), then averaged over *all* classes; F and LR are plain means over all classes (absent
  classes count as 0), LE, DE and RDE means over the classes with pairs. Micro pools the counts first.
* The official driver iterates prediction files only; ``missing`` handles references without a prediction as in
  :mod:`seldflow.metrics.dcase2021`.

The official scorer reads a prediction's distance without converting it from cm (its baseline writes metres in a
Cartesian format); predictions here follow the DCASE2024 polar format, distance in cm, read as the reference is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from seldflow.errors import InputError
from seldflow.formats.dcase2021 import (
    EV_AZIMUTH,
    EV_CLASS,
    EV_DISTANCE,
    EV_ELEVATION,
    EV_FRAME,
    EVENT_COLUMNS,
    empty_events,
    read_events,
    read_events_files,
)
from seldflow.metrics.common import (
    EPS,
    by_clip_chunks,
    checked_tables,
    common_groups,
    group_frames,
    match_tracks,
    nanmean,
    normalised,
    pair_clips,
    row_keys,
    unit_vectors,
)

N_CLASSES = 13
AVERAGES = ("macro", "micro")

# Rows of the per-clip, per-class statistics array.
TP, FP_SPATIAL, FP, FN, SUM_DOA, SUM_DIST, SUM_RELDIST, DE_TP, DE_FN, N_REF = range(10)
N_STATS = 10


class ClipCounts(NamedTuple):
    """Additive statistics per clip: per-class counts and error sums, and frame-wise S, D, I."""

    counts: np.ndarray  # (n_clips, N_STATS, n_classes)
    errors: np.ndarray  # (n_clips, 3): substitutions, deletions, insertions
    scored_frames: np.ndarray  # (n_clips,)


def compute_metrics(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    n_classes: int = N_CLASSES,
    average: str = "macro",
    doa_threshold: float = 20.0,
    dist_threshold: float = math.inf,
    reldist_threshold: float = 1.0,
    missing: str = "error",
    ref_source: str = "references",
    pred_source: str = "predictions",
) -> dict[str, Any]:
    """Official DCASE2024 scores of ``predictions`` against ``references`` (``(n, 6)`` event tables by clip name).

    Returns ``ER``, ``F``, ``LR`` and ``RDE`` as fractions, ``LE`` in degrees, ``DE`` in metres, ``SELD``, a
    ``classwise`` section and the counts behind them. ``dist_threshold`` is in metres.
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    clips = pair_clips(references, predictions, missing=missing, ref_source=ref_source, pred_source=pred_source)
    refs = checked_tables(
        [(name, ref) for name, ref, _ in clips],
        lambda rows: _valid_rows(rows, n_classes),
        lambda name, rows: _as_table(ref_source, name, rows, n_classes),
    )
    preds = checked_tables(
        [(name, pred) for name, _, pred in clips],
        lambda rows: _valid_rows(rows, n_classes),
        lambda name, rows: _as_table(pred_source, name, rows, n_classes),
    )
    counts = clip_counts(
        refs,
        preds,
        n_classes=n_classes,
        doa_threshold=doa_threshold,
        dist_threshold=dist_threshold,
        reldist_threshold=reldist_threshold,
    )
    report = _report(counts, average)
    report["settings"] = {
        "n_classes": n_classes,
        "average": average,
        "doa_threshold": doa_threshold,
        "dist_threshold": dist_threshold,
        "reldist_threshold": reldist_threshold,
        "missing": missing,
    }
    return report


def read_file(path: str | Path, *, n_classes: int = N_CLASSES, reference: bool = True) -> np.ndarray:
    """Read one DCASE2024 label file (six columns, distance in cm, returned in metres)."""
    return read_events(path, n_classes=n_classes, with_distance=True, reference=reference)


def read_files(paths: Sequence[str | Path], *, n_classes: int = N_CLASSES, reference: bool = True) -> list[np.ndarray]:
    """:func:`read_file` of many files at once (:func:`seldflow.formats.dcase2021.read_events_files`)."""
    return read_events_files(paths, n_classes=n_classes, with_distance=True, reference=reference)


@by_clip_chunks
def clip_counts(
    refs: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    *,
    n_classes: int = N_CLASSES,
    doa_threshold: float = 20.0,
    dist_threshold: float = math.inf,
    reldist_threshold: float = 1.0,
) -> ClipCounts:
    """Per-clip, per-class counts of the official frame-wise evaluation, vectorised over all clips."""
    n_clips = len(refs)
    # Official quirk: a clip spans range(largest reference frame), so its last annotated frame is never scored.
    scored_frames = np.array([int(r[:, EV_FRAME].max()) if len(r) else 0 for r in refs], dtype=np.int64)
    counts = np.zeros((N_STATS, n_clips * n_classes))
    errors = np.zeros((n_clips, 3))
    span = int(scored_frames.max(initial=0))
    if span == 0:
        return ClipCounts(_per_clip(counts, n_clips, n_classes), errors, scored_frames)
    ref = group_frames(refs, scored_frames, span, n_classes)
    pred = group_frames(preds, scored_frames, span, n_classes)
    both = common_groups(ref, pred)
    ref_dirs, pred_dirs = unit_vectors(ref.rows), unit_vectors(pred.rows)

    def cost(r: np.ndarray, p: np.ndarray) -> np.ndarray:
        return _angle(ref_dirs[r], pred_dirs[p])

    pair_ref, pair_pred = match_tracks(cost, both)
    pair_keys = row_keys(ref, pair_ref)
    doa_err = cost(pair_ref, pair_pred)
    ref_dist = ref.rows[pair_ref, EV_DISTANCE]
    dist_err = np.abs(ref_dist - pred.rows[pair_pred, EV_DISTANCE])
    reldist_err = dist_err / (ref_dist + EPS)
    wrong = (doa_err > doa_threshold) | (dist_err > dist_threshold) | (reldist_err > reldist_threshold)

    # Per (clip, frame, class) group: ref-only, pred-only and common groups, and the pairs' contributions.
    keys = np.concatenate([ref.keys[both.ref_only], pred.keys[both.pred_only], both.keys, pair_keys])
    zeros = np.zeros(len(keys))
    ref_only_n = ref.count[both.ref_only].astype(np.float64)
    pred_only_n = pred.count[both.pred_only].astype(np.float64)
    n_ref, n_pred = both.n_ref.astype(np.float64), both.n_pred.astype(np.float64)
    n_pairs = len(pair_keys)
    parts = [len(ref_only_n), len(pred_only_n), len(both.keys), n_pairs]

    def stacked(ref_only: Any = 0.0, pred_only: Any = 0.0, common: Any = 0.0, pairs: Any = 0.0) -> np.ndarray:
        values = zeros.copy()
        bounds = np.cumsum([0, *parts])
        for k, part in enumerate((ref_only, pred_only, common, pairs)):
            values[bounds[k] : bounds[k + 1]] = part
        return values

    stats = {
        N_REF: stacked(ref_only=ref_only_n, common=n_ref),
        FN: stacked(ref_only=ref_only_n, common=np.maximum(n_ref - n_pred, 0.0)),
        FP: stacked(pred_only=pred_only_n, common=np.maximum(n_pred - n_ref, 0.0)),
        TP: stacked(pairs=(~wrong).astype(np.float64)),
        FP_SPATIAL: stacked(pairs=wrong.astype(np.float64)),
        SUM_DOA: stacked(pairs=doa_err),
        SUM_DIST: stacked(pairs=dist_err),
        SUM_RELDIST: stacked(pairs=reldist_err),
        DE_TP: stacked(pairs=np.ones(n_pairs)),
    }
    stats[DE_FN] = stats[FN]
    clip_frame = keys // n_classes
    clip = clip_frame // span
    bins = clip * n_classes + keys % n_classes
    for stat, values in stats.items():
        counts[stat] = np.bincount(bins, weights=values, minlength=n_clips * n_classes)
    errors[:] = _error_counts(clip_frame, clip, stats[FP] + stats[FP_SPATIAL], stats[FN], n_clips)
    return ClipCounts(_per_clip(counts, n_clips, n_classes), errors, scored_frames)


def _per_clip(counts: np.ndarray, n_clips: int, n_classes: int) -> np.ndarray:
    return counts.reshape(N_STATS, n_clips, n_classes).transpose(1, 0, 2).copy()


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between direction vectors, each normalised with the official ``+1e-10`` under the root."""
    return np.arccos(np.clip((normalised(a) * normalised(b)).sum(axis=-1), -1.0, 1.0)) * 180.0 / np.pi


def _error_counts(frame: np.ndarray, clip: np.ndarray, fp: np.ndarray, fn: np.ndarray, n_clips: int) -> np.ndarray:
    """Substitutions, deletions and insertions per clip from each frame's FPs (spatial ones included) and FNs."""
    frames, inverse = np.unique(frame, return_inverse=True)
    fp = np.bincount(inverse, weights=fp, minlength=len(frames))
    fn = np.bincount(inverse, weights=fn, minlength=len(frames))
    frame_clip = np.zeros(len(frames), dtype=np.int64)
    frame_clip[inverse] = clip
    per_frame = np.stack([np.minimum(fp, fn), np.maximum(0.0, fn - fp), np.maximum(0.0, fp - fn)], axis=1)
    return np.stack([np.bincount(frame_clip, weights=col, minlength=n_clips) for col in per_frame.T], axis=1)


def _valid_rows(rows: np.ndarray, n_classes: int) -> np.ndarray:
    """Per row, what :func:`_as_table` accepts: an integer frame from 0, a class index, finite angles and distance."""
    frame, cls = rows[:, EV_FRAME], rows[:, EV_CLASS]
    ok = (frame >= 0) & (frame == np.round(frame)) & (cls >= 0) & (cls < n_classes) & (cls == np.round(cls))
    ok &= np.isfinite(rows[:, EV_AZIMUTH]) & np.isfinite(rows[:, EV_ELEVATION]) & np.isfinite(rows[:, EV_DISTANCE])
    return ok


def _as_table(source: str, name: str, rows: np.ndarray | None, n_classes: int) -> np.ndarray:
    """An ``(n, 6)`` float64 event table: integer frame and class in range, finite angles and distance."""
    if rows is None:
        return empty_events()
    table = np.asarray(rows, dtype=np.float64)
    if table.size == 0:
        return empty_events()
    if table.ndim != 2 or table.shape[1] != len(EVENT_COLUMNS):
        raise InputError(source, f"clip {name!r}: event tables must have shape (n, 6), got {table.shape}")
    frames = table[:, EV_FRAME]
    checks = (
        (EV_FRAME, (frames >= 0) & (frames == np.round(frames)), "a frame"),
        (EV_CLASS, np.isin(table[:, EV_CLASS], np.arange(n_classes)), f"a class index in 0..{n_classes - 1}"),
        (EV_AZIMUTH, np.isfinite(table[:, EV_AZIMUTH]), "a finite azimuth"),
        (EV_ELEVATION, np.isfinite(table[:, EV_ELEVATION]), "a finite elevation"),
        (EV_DISTANCE, np.isfinite(table[:, EV_DISTANCE]), "a finite distance (DCASE2024 needs distances)"),
    )
    for column, ok, allowed in checks:
        bad = np.flatnonzero(~ok)
        if bad.size:
            value = table[bad[0], column]
            raise InputError(
                source, f"clip {name!r}: array row {bad[0]}: {value:g} is not {allowed}", field=EVENT_COLUMNS[column]
            )
    return table


# --------------------------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------------------------


def scores(counts: np.ndarray, errors: np.ndarray, average: str) -> dict[str, Any]:
    """ER, F, LE, DE, RDE, LR and SELD (and per-class values) from summed counts ``(N_STATS, C)`` and S, D, I."""
    er = float(errors.sum() / (counts[N_REF].sum() + EPS))
    classwise = _class_scores(counts)
    if average == "macro":
        overall = {
            "F": float(classwise["F"].mean()),
            **{name: float(nanmean(classwise[name])) for name in ("LE", "DE", "RDE")},
            "LR": float(classwise["LR"].mean()),
            "SELD": float(classwise["SELD"].mean()),
        }
    else:
        pooled = _class_scores(counts.sum(axis=1, keepdims=True))
        overall = {name: float(values[0]) for name, values in pooled.items()}
    return {"ER": er, **overall, "classwise": {name: values.tolist() for name, values in classwise.items()}}


def _class_scores(counts: np.ndarray) -> dict[str, np.ndarray]:
    tp, fp_spatial, fp, fn = counts[TP], counts[FP_SPATIAL], counts[FP], counts[FN]
    de_tp = counts[DE_TP]
    f_score = tp / (EPS + tp + fp_spatial + 0.5 * (fp + fn))
    with np.errstate(invalid="ignore", divide="ignore"):

        def per_pair(stat: int) -> np.ndarray:
            return np.where(de_tp > 0, counts[stat] / (de_tp + EPS), np.nan)

        le, de, rde = per_pair(SUM_DOA), per_pair(SUM_DIST), per_pair(SUM_RELDIST)
    lr = de_tp / (EPS + de_tp + counts[DE_FN])
    seld = nanmean(np.stack([1.0 - f_score, le / 180.0, rde]), axis=0)
    return {"F": f_score, "LE": le, "DE": de, "RDE": rde, "LR": lr, "SELD": seld}


def _report(counts: ClipCounts, average: str) -> dict[str, Any]:
    totals = counts.counts.sum(axis=0)
    errors = counts.errors.sum(axis=0)
    report = scores(totals, errors, average)
    named = {"TP": TP, "FP": FP, "FP_spatial": FP_SPATIAL, "FN": FN, "N_ref": N_REF}
    report["classwise"].update({name: totals[stat].astype(int).tolist() for name, stat in named.items()})
    report.update({name: int(totals[stat].sum()) for name, stat in named.items()})
    report.update(
        {
            "S": int(errors[0]),
            "D": int(errors[1]),
            "I": int(errors[2]),
            "DE_TP": int(totals[DE_TP].sum()),
            "DE_FN": int(totals[DE_FN].sum()),
            "n_files": len(counts.scored_frames),
            "n_scored_frames": int(counts.scored_frames.sum()),
            "average": average,
        }
    )
    return report
