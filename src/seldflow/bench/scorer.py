"""The official metric, plain loop versus seldflow's vectorised scorer: the reference and the timed comparison.

:func:`naive_metrics` scores clip by clip, frame by frame and class by class with one Hungarian assignment each,
as the DCASE reference code does; it checks :func:`seldflow.metrics.dcase2025.compute_metrics` to the last digit
and gives the speed-up :func:`compare_scorer` reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from seldflow.bench.records import Comparison
from seldflow.bench.timing import median_times
from seldflow.labels import (
    COL_AZIMUTH,
    COL_CLASS,
    COL_DISTANCE,
    COL_FRAME,
    N_CLASSES,
    fold_azimuth,
)
from seldflow.metrics.dcase2025 import compute_metrics

# The official scorer's epsilon (see seldflow.score), so the loop and the vectorised scorer agree to the last digit.
_EPS = float(np.finfo(np.float64).eps)
# Metrics compared between the vectorised scorer and the loop.
SCORER_CHECKED = ("F", "DOAE", "DistE", "RDE")


def naive_metrics(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    doa_threshold: float = 20.0,
    dist_threshold: float = math.inf,
    reldist_threshold: float = 1.0,
    n_classes: int = N_CLASSES,
) -> dict[str, Any]:
    """The official DCASE2025 metric as a plain loop over clips, frames and classes (macro averaging).

    Each reference clip is scored on frames ``0 .. max_reference_frame - 1``; a clip without a prediction counts
    as predicting nothing. In each frame and class the tracks present on both sides are paired by
    ``scipy.optimize.linear_sum_assignment`` on the folded-azimuth difference; a pair over a threshold counts as a
    spatial false positive; unpaired tracks are false negatives or false positives. Returns ``F``, ``DOAE``,
    ``DistE``, ``RDE`` and ``classwise_F``, as :func:`seldflow.metrics.dcase2025.compute_metrics` (without
    on-screen options).
    """
    tp, fp_spatial, fp, fn, matched = (np.zeros(n_classes) for _ in range(5))
    sum_doa, sum_dist, sum_reldist = (np.zeros(n_classes) for _ in range(3))
    for name, ref_rows in references.items():
        ref = np.asarray(ref_rows, dtype=np.float64).reshape(-1, 6)
        pred = np.asarray(predictions.get(name, np.zeros((0, 6))), dtype=np.float64).reshape(-1, 6)
        n_frames = int(ref[:, COL_FRAME].max()) if len(ref) else 0
        for frame in range(n_frames):
            ref_frame = ref[ref[:, COL_FRAME] == frame]
            pred_frame = pred[pred[:, COL_FRAME] == frame]
            for cls in range(n_classes):
                r = ref_frame[ref_frame[:, COL_CLASS] == cls]
                p = pred_frame[pred_frame[:, COL_CLASS] == cls]
                if len(r) and len(p):
                    ref_az = fold_azimuth(r[:, COL_AZIMUTH])
                    pred_az = fold_azimuth(p[:, COL_AZIMUTH])
                    cost = np.abs(ref_az[:, None] - pred_az[None, :])
                    for i, j in zip(*linear_sum_assignment(cost), strict=True):
                        doa_err = cost[i, j]
                        ref_dist = r[i, COL_DISTANCE]
                        dist_err = abs(ref_dist - p[j, COL_DISTANCE])
                        reldist_err = dist_err / (ref_dist + _EPS)
                        wrong = doa_err > doa_threshold or dist_err > dist_threshold or reldist_err > reldist_threshold
                        fp_spatial[cls] += wrong
                        tp[cls] += not wrong
                        sum_doa[cls] += doa_err
                        sum_dist[cls] += dist_err
                        sum_reldist[cls] += reldist_err
                        matched[cls] += 1
                    fn[cls] += max(len(r) - len(p), 0)
                    fp[cls] += max(len(p) - len(r), 0)
                else:
                    fn[cls] += len(r)
                    fp[cls] += len(p)

    classwise_f = tp / (_EPS + tp + fp_spatial + 0.5 * (fp + fn))

    def macro_error(total: np.ndarray) -> float:
        values = [total[c] / (matched[c] + _EPS) for c in range(n_classes) if matched[c] > 0]
        return float(np.mean(values)) if values else math.nan

    return {
        "F": float(classwise_f.mean()),
        "DOAE": macro_error(sum_doa),
        "DistE": macro_error(sum_dist),
        "RDE": macro_error(sum_reldist),
        "classwise_F": classwise_f.tolist(),
        "TP": int(tp.sum()),
        "FP": int(fp.sum()),
        "FP_spatial": int(fp_spatial.sum()),
        "FN": int(fn.sum()),
    }


def metric_difference(a: Mapping[str, Any], b: Mapping[str, Any], names: Sequence[str] = SCORER_CHECKED) -> float:
    """Largest absolute difference of the scalar metrics ``names`` and ``classwise_F`` (NaN = NaN counts as 0)."""
    pairs = [(float(a[n]), float(b[n])) for n in names]
    pairs += list(zip(map(float, a["classwise_F"]), map(float, b["classwise_F"]), strict=True))
    worst = 0.0
    for x, y in pairs:
        if math.isnan(x) and math.isnan(y):
            continue
        worst = max(worst, abs(x - y) if math.isfinite(x) and math.isfinite(y) else math.inf)
    return worst


def compare_scorer(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    repeats: int = 3,
    warmup: int = 1,
    **thresholds: Any,
) -> tuple[Comparison, float]:
    """Time :func:`naive_metrics` against :func:`seldflow.metrics.dcase2025.compute_metrics` on the same label tables.

    Returns the comparison (seconds per scoring of all clips; ratio = loop / vectorised, the speed-up) and the
    largest absolute difference of F, DOAE, DistE, RDE and the class-wise F between them.
    """
    fast = compute_metrics(references, predictions, **thresholds)
    slow = naive_metrics(references, predictions, **thresholds)
    diff = metric_difference(fast, slow)
    timed = median_times(
        {
            "loop": lambda: naive_metrics(references, predictions, **thresholds),
            "vectorised": lambda: compute_metrics(references, predictions, **thresholds),
        },
        repeats=repeats,
        warmup=warmup,
    )
    comparison = Comparison(
        name="scorer",
        work=f"official metric over {len(references)} clips (labels in memory)",
        a_label="per-frame Python loop + Hungarian (naive_metrics)",
        a_seconds=timed["loop"],
        b_label="seldflow.metrics.dcase2025.compute_metrics",
        b_seconds=timed["vectorised"],
        meaning="speed-up of the vectorised scorer over the per-frame loop (>1: seldflow faster)",
        check=f"max |Δ| of F, DOAE, DistE, RDE, class-wise F = {diff:.1e} (F {fast['F']:.4f})",
    )
    return comparison, diff
