"""Score stage: the official DCASE2025 Task 3 stereo SELD metric, quirks included, with jackknife intervals.

Numbers from this module must be comparable with published DCASE2025 results, so it reproduces the official
scorer's behaviour rather than an idealised metric:

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

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as sps
from scipy.optimize import linear_sum_assignment

from seldflow.errors import InputError, SeldflowError
from seldflow.io import atomic_file
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

# The official scorer adds this to every denominator; keeping it makes our numbers identical to the last digit.
_EPS = float(np.finfo(np.float64).eps)

# Rows of the per-clip, per-class statistics array (axis -2 of every ``stats`` array below).
TP, FP_SPATIAL, FP, FN, SUM_DOA, SUM_DIST, SUM_RELDIST, SUM_ONSCREEN, MATCHED, N_REF = range(10)
N_STATS = 10

AVERAGES = ("macro", "micro")
MISSING_MODES = ("error", "skip", "empty")
SCALAR_METRICS = ("F", "DOAE", "DistE", "RDE", "OnscreenAcc")
_LISTED_NAMES = 10


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
    refs, preds = _pair_clips(references, predictions, missing=missing, n_classes=n_classes)
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
    refs, preds = _pair_clips(references, predictions, missing=missing, n_classes=n_classes)
    return _jackknife_from_stats(_clip_stats(refs, preds, **thresholds), average, significance_level)


def load_label_dir(path: str | Path) -> dict[str, np.ndarray]:
    """Read every ``*.csv`` directly in ``path`` and in its immediate sub-folders (split folders), keyed by stem.

    The DCASE layout keeps references in ``metadata_dev/<split>/``; predictions are usually flat. Stems must be
    unique across sub-folders because clips are matched by stem. Frames may exceed 49 (long predictions are
    legal; the scorer ignores them); every other field is validated by :func:`seldflow.labels.read_labels`.
    Files not ending in ``.csv`` and deeper folders are not read.
    """
    return {stem: table for stem, (table, _) in _load_labelled(path).items()}


def _load_labelled(path: str | Path) -> dict[str, tuple[np.ndarray, str]]:
    """Stem -> (rows, split), where split names the folder the CSV came from (used to score whole splits)."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(root, "label directory not found")
    tables: dict[str, tuple[np.ndarray, str]] = {}
    origin: dict[str, Path] = {}
    for csv_path in _label_files(root):
        stem = csv_path.stem
        if stem in origin:
            raise InputError(csv_path, f"duplicate clip name {stem!r}: also in {origin[stem]}")
        origin[stem] = csv_path
        tables[stem] = (read_labels(csv_path, n_frames=None), str(csv_path.parent))
    if not tables:
        raise InputError(root, "no .csv label files in the directory or its sub-folders")
    return tables


def _load_many(paths: Sequence[str | Path]) -> dict[str, tuple[np.ndarray, str]]:
    merged: dict[str, tuple[np.ndarray, str]] = {}
    for path in paths:
        for stem, entry in _load_labelled(path).items():
            if stem in merged:
                raise InputError(path, f"duplicate clip name {stem!r}: also in {merged[stem][1]}")
            merged[stem] = entry
    return merged


def _predicted_splits(
    references: Mapping[str, tuple[np.ndarray, str]], predictions: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """References of the split folders that hold at least one predicted clip.

    A reference root such as ``metadata_dev/`` holds the training splits too; a split is evaluated whole or not
    at all, so inside a scored split a missing prediction is still caught by ``missing``.
    """
    scored = sorted({split for stem, (_, split) in references.items() if stem in predictions})
    kept = {stem: rows for stem, (rows, split) in references.items() if split in scored}
    return kept, scored


def score_dirs(
    ref_dir: str | Path | Sequence[str | Path],
    pred_dir: str | Path | Sequence[str | Path],
    *,
    onscreen: bool = False,
    jackknife: bool = False,
    missing: str = "error",
    **thresholds: Any,
) -> dict[str, Any]:
    """Score folders of prediction CSVs against folders of reference CSVs (flat or with split sub-folders).

    Each side takes one folder or a list of them (e.g. one per test split). Only reference splits (folders) that
    hold at least one predicted clip are scored; ``settings.splits`` lists them. ``thresholds`` are the threshold
    / averaging options of :func:`compute_metrics`. With ``onscreen`` the report adds ``OnscreenAcc`` and
    ``F_onscreen`` (the F-score that also requires the on-screen flag to match); otherwise the on-screen accuracy,
    meaningless for audio-only systems, is left out. With ``jackknife`` it adds ``intervals``: the jackknife
    statistics of each scalar metric.
    """
    if "req_onscreen" in thresholds:
        raise TypeError("score_dirs() reports both F-scores with onscreen=True; it takes no req_onscreen")
    average = thresholds.pop("average", "macro")
    _check_options(average, missing)
    ref_dirs = [ref_dir] if isinstance(ref_dir, (str, Path)) else list(ref_dir)
    pred_dirs = [pred_dir] if isinstance(pred_dir, (str, Path)) else list(pred_dir)
    preds_by_name = {stem: rows for stem, (rows, _) in _load_many(pred_dirs).items()}
    refs_by_name, splits = _predicted_splits(_load_many(ref_dirs), preds_by_name)
    refs, preds = _pair_clips(
        refs_by_name,
        preds_by_name,
        missing=missing,
        n_classes=thresholds.get("n_classes", N_CLASSES),
        ref_source=", ".join(map(str, ref_dirs)),
        pred_source=", ".join(map(str, pred_dirs)),
    )
    stats = _clip_stats(refs, preds, req_onscreen=False, **thresholds)
    report = _report(stats, average)
    reported = ["F", "DOAE", "DistE", "RDE"]
    if onscreen:
        onscreen_stats = _clip_stats(refs, preds, req_onscreen=True, **thresholds)
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
    report["settings"] = {**_settings(average, missing, onscreen, thresholds), "splits": splits}
    return report


def to_json(metrics: Mapping[str, Any]) -> str:
    """Serialise a metrics dict as strict JSON: NaN and infinities (an undefined error, no threshold) become null."""
    return json.dumps(_json_ready(metrics), indent=2, allow_nan=False)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Declare the ``score`` command's options on ``parser`` (also used for the ``seldflow score`` subcommand)."""
    parser.add_argument("--ref", required=True, type=Path, help="reference CSV folder (flat or split sub-folders)")
    parser.add_argument("--pred", required=True, type=Path, help="prediction CSV folder (flat or split sub-folders)")
    parser.add_argument("--onscreen", action="store_true", help="also report on-screen accuracy and F_onscreen")
    parser.add_argument("--jackknife", action="store_true", help="add leave-one-clip-out 95%% intervals")
    parser.add_argument(
        "--missing",
        choices=MISSING_MODES,
        default="error",
        help="reference clips without a prediction: fail (default), skip like the official scorer, or score empty",
    )
    parser.add_argument("--doa-threshold", type=float, default=20.0, help="azimuth error threshold in degrees")
    parser.add_argument(
        "--dist-threshold", type=float, default=math.inf, help="absolute distance error threshold in cm"
    )
    parser.add_argument("--reldist-threshold", type=float, default=1.0, help="relative distance error threshold")
    parser.add_argument("--average", choices=AVERAGES, default="macro", help="class averaging")
    return parser


def write_metrics(path: str | Path, metrics: Mapping[str, Any]) -> None:
    """Write a metrics report as strict JSON, atomically (a failed run leaves no stale or partial file)."""
    with atomic_file(path) as tmp:
        tmp.write_text(to_json(metrics) + "\n")


def run(args: argparse.Namespace) -> int:
    """Execute parsed ``score`` options: one JSON object on stdout; exit status 2 on bad input."""
    try:
        report = score_dirs(
            args.ref,
            args.pred,
            onscreen=args.onscreen,
            jackknife=args.jackknife,
            missing=args.missing,
            doa_threshold=args.doa_threshold,
            dist_threshold=args.dist_threshold,
            reldist_threshold=args.reldist_threshold,
            average=args.average,
        )
    except SeldflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(to_json(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m seldflow.score`` (the same as ``seldflow score``)."""
    parser = add_arguments(argparse.ArgumentParser(prog="seldflow score", description=__doc__.splitlines()[0]))
    return run(parser.parse_args(argv))


# --------------------------------------------------------------------------------------------------------------
# Clip pairing and validation
# --------------------------------------------------------------------------------------------------------------


def _check_options(average: str, missing: str) -> None:
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {MISSING_MODES}, got {missing!r}")


def _pair_clips(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    missing: str,
    n_classes: int,
    ref_source: str = "references",
    pred_source: str = "predictions",
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Reference and prediction tables of the clips to compare, in reference order.

    A prediction for an unknown clip is always an error (it would otherwise be silently unscored); a reference
    without a prediction is handled as ``missing`` says.
    """
    orphans = [name for name in predictions if name not in references]
    if orphans:
        raise InputError(pred_source, f"no reference in {ref_source} for prediction(s) {_name_list(orphans)}")
    absent = [name for name in references if name not in predictions]
    if absent and missing == "error":
        raise InputError(
            pred_source,
            f"no prediction for {len(absent)} reference clip(s) in {ref_source}: {_name_list(absent)} "
            "(write a header-only CSV for a clip without detections)",
        )
    if absent and missing == "skip":
        print(
            f"warning: {pred_source}: skipping {len(absent)} reference clip(s) without a prediction, as the "
            f"official scorer does (their events are not counted): {_name_list(absent)}",
            file=sys.stderr,
        )
    refs: list[np.ndarray] = []
    preds: list[np.ndarray] = []
    for name, ref in references.items():
        if name not in predictions and missing == "skip":
            continue
        refs.append(_as_table(ref_source, name, ref, n_classes))
        pred = predictions.get(name)
        preds.append(
            _as_table(pred_source, name, pred, n_classes) if pred is not None else np.zeros((0, len(CSV_COLUMNS)))
        )
    return refs, preds


def _name_list(names: Sequence[str]) -> str:
    shown = ", ".join(sorted(names)[:_LISTED_NAMES])
    return shown if len(names) <= _LISTED_NAMES else f"{shown} (+{len(names) - _LISTED_NAMES} more)"


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


class _Groups(NamedTuple):
    """Rows sorted by (clip, frame, class) group key; one entry per group in ``keys`` / ``start`` / ``count``."""

    rows: np.ndarray
    keys: np.ndarray
    start: np.ndarray
    count: np.ndarray


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
    ref = _group(refs, scored_frames, span, n_classes)
    pred = _group(preds, scored_frames, span, n_classes)
    bins = n_clips * n_classes

    def add(stat: int, keys: np.ndarray, weights: np.ndarray) -> None:
        counts[stat] += np.bincount(_clip_class_bin(keys, span, n_classes), weights=weights, minlength=bins)

    add(N_REF, ref.keys, ref.count.astype(np.float64))
    common, ref_idx, pred_idx = np.intersect1d(ref.keys, pred.keys, assume_unique=True, return_indices=True)
    ref_only = np.ones(len(ref.keys), dtype=bool)
    ref_only[ref_idx] = False
    pred_only = np.ones(len(pred.keys), dtype=bool)
    pred_only[pred_idx] = False
    add(FN, ref.keys[ref_only], ref.count[ref_only].astype(np.float64))
    add(FP, pred.keys[pred_only], pred.count[pred_only].astype(np.float64))

    n_ref, n_pred = ref.count[ref_idx], pred.count[pred_idx]
    add(FN, common, np.maximum(n_ref - n_pred, 0).astype(np.float64))
    add(FP, common, np.maximum(n_pred - n_ref, 0).astype(np.float64))

    ref_az = fold_azimuth(ref.rows[:, COL_AZIMUTH])
    pred_az = fold_azimuth(pred.rows[:, COL_AZIMUTH])
    pair_ref, pair_pred = _match_tracks(ref_az, pred_az, ref.start[ref_idx], n_ref, pred.start[pred_idx], n_pred)
    pair_keys = _row_keys(ref, pair_ref)

    doa_err = np.abs(ref_az[pair_ref] - pred_az[pair_pred])
    ref_dist = ref.rows[pair_ref, COL_DISTANCE]
    dist_err = np.abs(ref_dist - pred.rows[pair_pred, COL_DISTANCE])
    reldist_err = dist_err / (ref_dist + _EPS)
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


def _group(tables: Sequence[np.ndarray], scored_frames: np.ndarray, span: int, n_classes: int) -> _Groups:
    """Stack the scored rows of all clips and sort them into (clip, frame, class) groups.

    The sort is stable so tracks keep their file order inside a group, as in the official scorer, which
    decides which of two equally distant tracks the Hungarian step pairs.
    """
    lengths = np.array([len(t) for t in tables], dtype=np.int64)
    rows = np.concatenate([t.reshape(-1, len(CSV_COLUMNS)) for t in tables]) if len(tables) else np.zeros((0, 6))
    clip = np.repeat(np.arange(len(tables)), lengths)
    frame = rows[:, COL_FRAME].astype(np.int64)
    keep = frame < scored_frames[clip]
    rows, clip, frame = rows[keep], clip[keep], frame[keep]
    keys = (clip * span + frame) * n_classes + rows[:, COL_CLASS].astype(np.int64)
    order = np.argsort(keys, kind="stable")
    keys, start, count = np.unique(keys[order], return_index=True, return_counts=True)
    return _Groups(rows[order], keys, start, count)


def _row_keys(groups: _Groups, row_index: np.ndarray) -> np.ndarray:
    """Group key of each sorted row (the group whose start is the last one not after the row)."""
    return groups.keys[np.searchsorted(groups.start, row_index, side="right") - 1]


def _clip_class_bin(keys: np.ndarray, span: int, n_classes: int) -> np.ndarray:
    clip = keys // (span * n_classes)
    return clip * n_classes + keys % n_classes


def _match_tracks(
    ref_az: np.ndarray,
    pred_az: np.ndarray,
    ref_start: np.ndarray,
    n_ref: np.ndarray,
    pred_start: np.ndarray,
    n_pred: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian pairing of reference and predicted tracks within each group present in both.

    Groups where one side has a single track (nearly all of them) reduce to the first minimum of one row or column
    of the cost matrix, which is what ``linear_sum_assignment`` returns there; they are solved in bulk, the rest
    one by one.
    """
    single = (n_ref == 1) | (n_pred == 1)
    ref_a, pred_a = _match_single(ref_az, pred_az, ref_start[single], n_ref[single], pred_start[single], n_pred[single])
    pairs_ref, pairs_pred = [ref_a], [pred_a]
    for r0, nr, p0, npred in zip(ref_start[~single], n_ref[~single], pred_start[~single], n_pred[~single], strict=True):
        cost = np.abs(ref_az[r0 : r0 + nr, None] - pred_az[None, p0 : p0 + npred])
        rows, cols = linear_sum_assignment(cost)
        pairs_ref.append(r0 + rows)
        pairs_pred.append(p0 + cols)
    return np.concatenate(pairs_ref).astype(np.int64), np.concatenate(pairs_pred).astype(np.int64)


def _match_single(
    ref_az: np.ndarray,
    pred_az: np.ndarray,
    ref_start: np.ndarray,
    n_ref: np.ndarray,
    pred_start: np.ndarray,
    n_pred: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Pair groups of shape 1×N or N×1: each candidate pair is scored, and the first cheapest one kept."""
    n_candidates = n_ref * n_pred
    group = np.repeat(np.arange(len(n_ref)), n_candidates)
    offset = np.arange(int(n_candidates.sum())) - np.repeat(np.cumsum(n_candidates) - n_candidates, n_candidates)
    cand_ref = ref_start[group] + offset // n_pred[group]
    cand_pred = pred_start[group] + offset % n_pred[group]
    cost = np.abs(ref_az[cand_ref] - pred_az[cand_pred])
    order = np.lexsort((offset, cost, group))
    first = order[np.searchsorted(group[order], np.arange(len(n_ref)))]
    return cand_ref[first], cand_pred[first]


# --------------------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------------------


def _metric_arrays(counts: np.ndarray, average: str) -> dict[str, np.ndarray]:
    """Metrics from summed statistics ``(..., N_STATS, n_classes)``; vectorised over leading axes for the jackknife."""
    classwise = _classwise(counts)
    if average == "macro":
        overall = {
            "F": classwise["F"].mean(axis=-1),
            **{name: _nanmean(classwise[name]) for name in SCALAR_METRICS[1:]},
        }
    else:
        overall = _classwise(counts.sum(axis=-1, keepdims=True))
        overall = {name: value[..., 0] for name, value in overall.items()}
    return {**overall, **{f"classwise_{name}": value for name, value in classwise.items()}}


def _classwise(counts: np.ndarray) -> dict[str, np.ndarray]:
    tp, fp_spatial, fp, fn = (counts[..., k, :] for k in (TP, FP_SPATIAL, FP, FN))
    matched = counts[..., MATCHED, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        f_score = tp / (_EPS + tp + fp_spatial + 0.5 * (fp + fn))

        def per_match(stat: int) -> np.ndarray:
            return np.where(matched > 0, counts[..., stat, :] / (matched + _EPS), np.nan)

        return {
            "F": f_score,
            "DOAE": per_match(SUM_DOA),
            "DistE": per_match(SUM_DIST),
            "RDE": per_match(SUM_RELDIST),
            "OnscreenAcc": per_match(SUM_ONSCREEN),
        }


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN; NaN (without numpy's warning) when every entry is NaN."""
    finite = ~np.isnan(values)
    n = finite.sum(axis=-1)
    total = np.where(finite, values, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


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


# --------------------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------------------


def _label_files(root: Path) -> list[Path]:
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix == ".csv")
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files.extend(sorted(p for p in sub.iterdir() if p.is_file() and p.suffix == ".csv"))
    return files


def _settings(average: str, missing: str, onscreen: bool, thresholds: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "doa_threshold": thresholds.get("doa_threshold", 20.0),
        "dist_threshold": thresholds.get("dist_threshold", math.inf),
        "reldist_threshold": thresholds.get("reldist_threshold", 1.0),
        "n_classes": thresholds.get("n_classes", N_CLASSES),
        "average": average,
        "missing": missing,
        "onscreen": onscreen,
    }


def _json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


if __name__ == "__main__":
    sys.exit(main())
