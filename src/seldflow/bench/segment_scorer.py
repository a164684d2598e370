"""The DCASE2021-2023 segment metric as a plain loop, timed against seldflow's vectorised scorer.

:func:`naive_segment_metrics` walks files, 1-s segments, classes and frames one at a time with one Hungarian
assignment per frame, the way the official DCASE code is organised; it is a second, independent implementation
of the semantics documented in :mod:`seldflow.metrics.dcase2021` (micro for DCASE2021, macro for DCASE2023), so
agreement to the last digit is a check of both, and the ratio of their times is the speed-up ``make bench`` reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from seldflow.bench.records import Comparison
from seldflow.bench.timing import median_times
from seldflow.formats.events import EV_AZIMUTH, EV_CLASS, EV_ELEVATION, EV_FRAME
from seldflow.metrics import get_metric

SEGMENT_FRAMES = 10
FILE_FRAMES_2021 = 600  # DCASE2021 scores every file on 600 frames
_EPS = float(np.finfo(np.float64).eps)
SEGMENT_CHECKED = ("ER", "F", "LE", "LR", "SELD")


def _unit(events: np.ndarray) -> np.ndarray:
    azimuth, elevation = np.radians(events[:, EV_AZIMUTH]), np.radians(events[:, EV_ELEVATION])
    return np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], 1)


def _angles(ref: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Great-circle angles (degrees) between every reference and predicted direction of one frame."""
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    pred = pred / np.linalg.norm(pred, axis=1, keepdims=True)
    return np.degrees(np.arccos(np.clip(ref @ pred.T, -1.0, 1.0)))


def _segment_tracks(events: np.ndarray, segment: int, cls: int) -> dict[int, np.ndarray]:
    """Frame -> directions of class ``cls`` in segment ``segment``, in file order (a row's position is its track)."""
    start = segment * SEGMENT_FRAMES
    chosen = events[(events[:, EV_CLASS] == cls) & (events[:, EV_FRAME] >= start)]
    chosen = chosen[chosen[:, EV_FRAME] < start + SEGMENT_FRAMES]
    return {int(frame): _unit(chosen[chosen[:, EV_FRAME] == frame]) for frame in dict.fromkeys(chosen[:, EV_FRAME])}


class _Counts:
    """The official accumulators, per class."""

    def __init__(self, n_classes: int) -> None:
        names = ("TP", "FP", "FP_spatial", "FN", "DE", "DE_TP", "DE_FN", "N_ref")
        self.__dict__.update({name: np.zeros(n_classes) for name in names})
        self.S = self.D = self.I = 0.0


def _score_class(counts: _Counts, cls: int, ref: dict, pred: dict, threshold: float, micro: bool) -> tuple[int, int]:
    """One class of one segment; returns this class's (FP, FN) contribution to the segment's error rate."""
    n_ref = max((len(v) for v in ref.values()), default=0)
    n_pred = max((len(v) for v in pred.values()), default=0)
    counts.N_ref[cls] += n_ref
    if not pred:
        counts.FN[cls] += n_ref
        counts.DE_FN[cls] += n_ref
        return 0, n_ref
    if not ref:
        counts.FP[cls] += n_pred
        return n_pred, 0
    track_angles: dict[int, list[float]] = {}
    for frame, ref_doas in ref.items():
        if frame not in pred:
            continue
        matrix = _angles(ref_doas, pred[frame])
        rows, cols = linear_sum_assignment(matrix)
        for row, col in zip(rows, cols, strict=True):
            track_angles.setdefault(int(row), []).append(float(matrix[row, col]))
    if not track_angles:  # the quirk: no common frame adds the *predicted* count to the misses
        counts.FN[cls] += n_pred
        counts.DE_FN[cls] += n_pred
        return 0, n_pred
    fp = 0
    for angles in track_angles.values():
        mean = sum(angles) / len(angles)
        counts.DE[cls] += mean
        counts.DE_TP[cls] += 1
        if mean <= threshold:
            counts.TP[cls] += 1
        else:
            fp += 1
            counts.FP[cls] += micro  # DCASE2021 counts a spatial miss as a plain false positive
            counts.FP_spatial[cls] += not micro
    extra = n_pred - n_ref
    counts.FP[cls] += max(extra, 0)
    counts.FN[cls] += max(-extra, 0)
    counts.DE_FN[cls] += max(-extra, 0)
    return fp + max(extra, 0), max(-extra, 0)


def naive_segment_metrics(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    edition: str = "dcase2023",
    n_classes: int = 13,
    doa_threshold: float = 20.0,
) -> dict[str, float]:
    """ER, F, LE, LR and SELD of event tables keyed by clip (a missing prediction predicts nothing)."""
    micro = edition == "dcase2021"
    counts = _Counts(n_classes)
    for name, ref in references.items():
        pred = predictions.get(name, np.zeros((0, 6)))
        last = FILE_FRAMES_2021 if micro else int(ref[:, EV_FRAME].max()) if len(ref) else 0
        n_segments = last // SEGMENT_FRAMES if micro else math.ceil(last / SEGMENT_FRAMES)
        for segment in range(n_segments):
            fp = fn = 0
            for cls in range(n_classes):
                ref_tracks, pred_tracks = (_segment_tracks(t, segment, cls) for t in (ref, pred))
                class_fp, class_fn = _score_class(counts, cls, ref_tracks, pred_tracks, doa_threshold, micro)
                fp, fn = fp + class_fp, fn + class_fn
            counts.S += min(fp, fn)
            counts.D += max(0, fn - fp)
            counts.I += max(0, fp - fn)
    return _results(counts, micro)


def _results(c: _Counts, micro: bool) -> dict[str, float]:
    er = (c.S + c.D + c.I) / (c.N_ref.sum() + _EPS)
    if micro:
        tp, fp, fn = c.TP.sum(), c.FP.sum(), c.FN.sum()
        f = tp / (_EPS + tp + 0.5 * (fp + fn))
        le = c.DE.sum() / (c.DE_TP.sum() + _EPS) if c.DE_TP.sum() else 180.0
        lr = c.DE_TP.sum() / (_EPS + c.DE_TP.sum() + c.DE_FN.sum())
    else:
        f = float(np.mean(c.TP / (_EPS + c.TP + c.FP_spatial + 0.5 * (c.FP + c.FN))))
        le = float(np.mean(np.where(c.DE_TP > 0, c.DE / (c.DE_TP + _EPS), 180.0)))
        lr = float(np.mean(c.DE_TP / (_EPS + c.DE_TP + c.DE_FN)))
    seld = (er + (1.0 - f) + le / 180.0 + (1.0 - lr)) / 4.0
    return {"ER": float(er), "F": float(f), "LE": float(le), "LR": float(lr), "SELD": float(seld)}


def compare_segment_scorer(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    edition: str = "dcase2023",
    n_classes: int = 13,
    repeats: int = 3,
    warmup: int = 1,
) -> tuple[Comparison, float]:
    """Time :func:`naive_segment_metrics` against the registered metric on the same event tables.

    Returns the comparison (ratio = loop / vectorised, the speed-up) and the largest absolute difference of ER, F,
    LE, LR and SELD between the two.
    """
    metric = get_metric(edition)

    def fast() -> dict[str, Any]:
        return metric.score(references, predictions, n_classes=n_classes, missing="empty")

    def slow() -> dict[str, float]:
        return naive_segment_metrics(references, predictions, edition=edition, n_classes=n_classes)

    a, b = fast(), slow()
    diff = max(abs(float(a[key]) - b[key]) for key in SEGMENT_CHECKED)
    timed = median_times({"loop": slow, "vectorised": fast}, repeats=repeats, warmup=warmup)
    comparison = Comparison(
        name=f"scorer_{edition}",
        work=f"{edition} segment metric over {len(references)} clips (event tables in memory)",
        a_label="per-segment, per-frame Python loop + Hungarian (naive_segment_metrics)",
        a_seconds=timed["loop"],
        b_label=f"seldflow.metrics ({edition})",
        b_seconds=timed["vectorised"],
        meaning="speed-up of the vectorised scorer over the per-frame loop (>1: seldflow faster)",
        check=f"max |Δ| of ER, F, LE, LR, SELD = {diff:.1e} (SELD {a['SELD']:.4f})",
    )
    return comparison, diff
