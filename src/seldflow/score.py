"""Score stage: the official DCASE2025 Task 3 stereo SELD metric (F20°, DOAE, RDE, on/off-screen accuracy)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

from seldflow.errors import InputError
from seldflow.labels import COL_AZIMUTH, COL_CLASS, COL_DISTANCE, COL_FRAME, COL_ONSCREEN, N_CLASSES, fold_azimuth

_EPS = np.finfo(np.float64).eps


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
) -> dict:
    """Provisional implementation; see the module docstring."""
    unknown = sorted(set(predictions) - set(references))
    if unknown:
        raise InputError(unknown[0], "prediction has no reference clip")
    tp = np.zeros(n_classes)
    fp = np.zeros(n_classes)
    fps = np.zeros(n_classes)
    fn = np.zeros(n_classes)
    ang = np.zeros(n_classes)
    rel = np.zeros(n_classes)
    dist = np.zeros(n_classes)
    onc = np.zeros(n_classes)
    de_tp = np.zeros(n_classes)
    for name, ref in references.items():
        ref = np.asarray(ref).reshape(-1, 6)
        if name not in predictions:
            if missing == "error":
                raise InputError(name, "reference clip has no prediction")
            if missing == "skip":
                continue
            pred = np.zeros((0, 6), dtype=np.int64)
        else:
            pred = np.asarray(predictions[name]).reshape(-1, 6)
        if len(ref) == 0:
            continue
        n_frames = int(ref[:, COL_FRAME].max())
        for frame in range(n_frames):
            r = ref[ref[:, COL_FRAME] == frame]
            p = pred[pred[:, COL_FRAME] == frame]
            for c in range(n_classes):
                rc = r[r[:, COL_CLASS] == c]
                pc = p[p[:, COL_CLASS] == c]
                if len(rc) and len(pc):
                    cost = np.abs(
                        fold_azimuth(rc[:, COL_AZIMUTH])[:, None] - fold_azimuth(pc[:, COL_AZIMUTH])[None, :]
                    )
                    ri, pi = linear_sum_assignment(cost)
                    doa = cost[ri, pi]
                    de = np.abs(rc[ri, COL_DISTANCE] - pc[pi, COL_DISTANCE]).astype(float)
                    rde = de / (rc[ri, COL_DISTANCE] + _EPS)
                    on = rc[ri, COL_ONSCREEN] == pc[pi, COL_ONSCREEN]
                    k = len(ri)
                    wrong = (doa > doa_threshold) | (de > dist_threshold) | (rde > reldist_threshold)
                    if req_onscreen:
                        wrong |= ~on
                    lc = int(wrong.sum())
                    tp[c] += k - lc
                    fps[c] += lc
                    fp[c] += max(0, len(pc) - len(rc))
                    fn[c] += max(0, len(rc) - len(pc))
                    ang[c] += doa.sum()
                    dist[c] += de.sum()
                    rel[c] += rde.sum()
                    onc[c] += on.sum()
                    de_tp[c] += k
                elif len(rc):
                    fn[c] += len(rc)
                elif len(pc):
                    fp[c] += len(pc)
    with np.errstate(divide="ignore", invalid="ignore"):
        f_c = tp / (tp + fps + 0.5 * (fp + fn))
        f_c = np.nan_to_num(f_c)
        doae_c = np.where(de_tp > 0, ang / de_tp, np.nan)
        rde_c = np.where(de_tp > 0, rel / de_tp, np.nan)
        on_c = np.where(de_tp > 0, onc / de_tp, np.nan)
    return {
        "F": float(f_c.mean()),
        "DOAE": float(np.nanmean(doae_c)) if np.any(de_tp > 0) else math.nan,
        "RDE": float(np.nanmean(rde_c)) if np.any(de_tp > 0) else math.nan,
        "OnscreenAcc": float(np.nanmean(on_c)) if np.any(de_tp > 0) else math.nan,
        "classwise_F": f_c.tolist(),
        "classwise_DOAE": doae_c.tolist(),
        "classwise_RDE": rde_c.tolist(),
        "TP": int(tp.sum()),
        "FP": int(fp.sum() + fps.sum()),
        "FN": int(fn.sum() + fps.sum()),
    }
