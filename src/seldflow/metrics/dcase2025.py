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
  while a class with no paired tracks is left out (NaN) of the DOAE / RDE averages.

One deliberate difference: the official scorer silently skips a reference clip that has no prediction (losing its
false negatives). Here that is an error unless ``missing`` says to skip it (with a warning) or to score it as an
empty prediction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as sps

from seldflow.errors import InputError
from seldflow.labels import (
    COL_AZIMUTH,
    COL_CLASS,
    COL_DISTANCE,
    COL_FRAME,
    COL_ONSCREEN,
    CSV_COLUMNS,
    N_CLASSES,
    fold_azimuth,
    read_labels,
)
from seldflow.metrics.common import (
    EPS,
    check_missing,
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
    equal to a threshold still counts as correct. ``req_onscreen`` also requires the on-screen flag to match.
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
    """Read one DCASE2025 CSV (header required) for scoring; the same rules for references and predictions.

    Frames are not bounded: long predictions are legal and the scorer ignores frames past the reference.
    """
    del reference  # both sides share the format and its checks
    return read_labels(path, n_frames=None, n_classes=n_classes)


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
    """The report of the score stage: :func:`compute_metrics` plus optional on-screen and jackknife sections.

    ``thresholds`` are ``doa_threshold``, ``dist_threshold`` and ``reldist_threshold``. With ``onscreen`` the
    report adds ``OnscreenAcc`` and ``F_onscreen`` (the F-score that also requires the on-screen flag to match);
    otherwise the on-screen accuracy, meaningless for audio-only systems, is left out. With ``jackknife`` it adds
    ``intervals``: the jackknife statistics of each scalar metric. ``settings`` records every option used.
    """
    if "req_onscreen" in thresholds:
        raise TypeError("score_report() reports both F-scores with onscreen=True; it takes no req_onscreen")
    _check_options(average, missing)
    clips = pair_clips(references, predictions, missing=missing, ref_source=ref_source, pred_source=pred_source)
    refs, preds = _tables(clips, n_classes, ref_source, pred_source)
    stats = _clip_stats(refs, preds, req_onscreen=False, n_classes=n_classes, **thresholds)
    report = _report(stats, average)
    reported = ["F", "DOAE", "DistE", "RDE"]
    if onscreen:
        onscreen_stats = _clip_stats(refs, preds, req_onscreen=True, n_classes=n_classes, **thresholds)
        report["F_onscreen"] = _report(onscreen_stats, average)["F"]
        reported.append("OnscreenAcc")
    else:
        for key in ("OnscreenAcc", "classwise_OnscreenAcc"):
            report.pop(key)
    if jackknife:
        spread = _jackknife_from_stats(stats, average)
        report["intervals"] = {name: spread[name] for name in reported}
        if onscreen:
            report["intervals"]["F_onscreen"] = _jackknife_from_stats(onscreen_stats, average)["F"]
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
    """Validated reference and prediction tables of paired clips; a missing prediction is an empty table."""
    refs = [_as_table(ref_source, name, ref, n_classes) for name, ref, _ in clips]
    preds = [
        _as_table(pred_source, name, pred, n_classes) if pred is not None else np.zeros((0, len(CSV_COLUMNS)))
        for name, _, pred in clips
    ]
    return refs, preds


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
    ref = group_frames(refs, scored_frames, span, n_classes)
    pred = group_frames(preds, scored_frames, span, n_classes)
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
