"""DOAnet's class-agnostic tracking metric restated as a plain per-recording, per-frame loop: the benchmark's reference.

The official code (``sharathadavanne/doa-net``: ``cls_feature_class.py`` builds the labels, ``train_doanet.py``
``test_epoch`` the angle matrix, ``cls_metric.py`` ``doa_metric`` the counts) reads each recording's CSV line by
line, fills two direction slots per frame in row order, computes the matrix of angles between predicted and
reference slots for the whole recording at once and then walks its frames, solving one Hungarian assignment per
frame with directions on both sides. This module does the same, recording by recording in sorted name order (the
CSV contract of :mod:`seldflow.metrics.doa_mot`), so that its time stands for the official code's and its numbers
check the DOAnet keys of :func:`seldflow.metrics.doa_mot.compute_metrics` independently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from seldflow.bench.plain_csv import FrameEvents, read_event_lines, table_frames
from seldflow.formats.events import EV_AZIMUTH, EV_CLASS, EV_ELEVATION, EV_TRACK

SLOTS = 2  # DOAnet's unique_classes: directions per frame
_EPS = 1e-7  # the official eps: counters' start, clamp margin, LF and MOTA denominators
# The official label builder's value of an empty slot (use_hnet): far from any unit vector.
EMPTY_SLOT = 10.0
TRACKING_CHECKED = ("LE", "MOTA", "IDS", "LR", "LP", "LF")
EVENT_COLUMNS_READ = (EV_CLASS, EV_TRACK, EV_AZIMUTH, EV_ELEVATION)


def slot_labels(events: FrameEvents, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors ``(n_frames, 2, 3)`` (10 in empty slots) and 0/1 activity ``(n_frames, 2)``: each frame's
    events fill slots 0, 1 in row order, as ``get_labels_for_file`` after the official polar-to-Cartesian step."""
    xyz = np.full((n_frames, SLOTS, 3), EMPTY_SLOT)
    activity = np.zeros((n_frames, SLOTS))
    for frame, rows in events.items():
        if frame < n_frames:
            for slot, (_cls, _track, azimuth, elevation) in enumerate(rows):
                ele_rad, azi_rad = elevation * np.pi / 180.0, azimuth * np.pi / 180
                activity[frame, slot] = 1
                cos_ele = np.cos(ele_rad)
                xyz[frame, slot] = [np.cos(azi_rad) * cos_ele, np.sin(azi_rad) * cos_ele, np.sin(ele_rad)]
    return xyz, activity


class Counts:
    """``doa_metric``'s accumulators."""

    def __init__(self) -> None:
        self.localization_error = 0.0
        self.total_gt = self.total_pred = _EPS
        self.tp = self.fp = self.fn = self.ids = 0

    def update(self, angles: np.ndarray, gt_activity: np.ndarray, pred_activity: np.ndarray) -> None:
        """One recording: ``angles`` (frames, predicted slot, reference slot) in radians, 0/1 activities."""
        m, n = pred_activity.sum(-1), gt_activity.sum(-1)
        self.fp += (m - n).clip(min=0).sum(-1)
        self.fn += (n - m).clip(min=0).sum(-1)
        self.ids += (pred_activity[1:] * (1 - pred_activity[:-1])).sum(-1).sum(-1)
        for frame, frame_angles in enumerate(angles):
            n_gt, n_pred = int(gt_activity[frame].sum()), int(pred_activity[frame].sum())
            self.tp += min(n_gt, n_pred)
            self.total_pred += n_pred
            self.total_gt += n_gt
            if n_gt and n_pred:
                block = frame_angles[pred_activity[frame] == 1, :][:, gt_activity[frame] == 1]
                rows, cols = linear_sum_assignment(block)
                self.localization_error += block[rows, cols].sum()

    def scores(self) -> dict[str, float]:
        """LE (degrees), MOTA, LR, LP, LF (percent) and IDS, as ``get_results`` (LE NaN without a match)."""
        le = self.localization_error / self.tp if self.tp else float("nan")
        mota = 1 - (self.fp + self.fn + self.ids) / (self.total_gt + _EPS)
        lr, lp = self.tp / self.total_gt, self.tp / self.total_pred
        lf = 2 * lp * lr / (lp + lr + _EPS)
        return {
            "LE": 180.0 * le / np.pi,
            "MOTA": 100.0 * mota,
            "IDS": float(self.ids),
            "LR": 100.0 * lr,
            "LP": 100.0 * lp,
            "LF": 100.0 * lf,
        }


def recording_angles(ref_xyz: np.ndarray, pred_xyz: np.ndarray) -> np.ndarray:
    """``test_epoch``'s angle matrix: predictions renormalised (``+1e-10``), cosines clamped to ``±(1 - 1e-7)``."""
    pred = pred_xyz / np.sqrt(np.sum(pred_xyz**2, -1) + 1e-10)[..., None]
    return np.arccos(np.clip(np.matmul(pred, np.swapaxes(ref_xyz, -1, -2)), -1 + _EPS, 1 - _EPS))


def _score_recording(counts: Counts, reference: FrameEvents, prediction: FrameEvents) -> None:
    frames = [*reference, *prediction]
    n_frames = max(frames) + 1 if frames else 0
    ref_xyz, ref_activity = slot_labels(reference, n_frames)
    pred_xyz, pred_activity = slot_labels(prediction, n_frames)
    counts.update(recording_angles(ref_xyz, pred_xyz), ref_activity, pred_activity > 0.5)


def plain_tracking(ref_dir: str | os.PathLike[str], pred_dir: str | os.PathLike[str]) -> dict[str, float]:
    """Score the reference folder's recordings (sorted by name; a split sub-folder's files count too) against the
    prediction files of the same name (none: no predictions), one ``partial_compute_metric`` each."""
    references = {
        name: Path(root) / name for root, _, names in os.walk(ref_dir) for name in names if name.endswith(".csv")
    }
    counts = Counts()
    for name in sorted(references):
        prediction = Path(pred_dir) / name
        _score_recording(
            counts, read_event_lines(references[name]), read_event_lines(prediction) if prediction.exists() else {}
        )
    return counts.scores()


def naive_tracking_metrics(
    references: Mapping[str, np.ndarray], predictions: Mapping[str, np.ndarray | None]
) -> dict[str, float]:
    """The same loop on event tables keyed by recording (a missing prediction predicts nothing)."""
    counts = Counts()
    for name in sorted(references):
        prediction = predictions.get(name)
        _score_recording(
            counts,
            table_frames(references[name], EVENT_COLUMNS_READ),
            table_frames(prediction if prediction is not None else np.zeros((0, 6)), EVENT_COLUMNS_READ),
        )
    return counts.scores()
