"""The official DCASE2021-2023 segment-based SELD scorers restated as plain loops: the benchmark's references.

The official code (``sharathadavanne/seld-dcase2021`` and ``seld-dcase2023``: ``cls_feature_class.py``,
``SELD_evaluation_metrics.py``, ``cls_compute_seld_results.py``) reads each CSV line by line, collects each
1-s segment's events by class and frame (``segment_labels``), and walks every segment and class of a file, pairing
the directions of every frame both sides share by one Hungarian assignment on great-circle angles. This module
does the same in the same data structures, so that its time stands for the official code's in ``make bench`` and
its numbers check the semantics documented in :mod:`seldflow.metrics.dcase2021` independently (micro for
DCASE2021, with 600-frame files; macro for DCASE2022-2023, files as long as the reference's last frame index).
Predictions are read in the polar form seldflow writes (the official drivers convert their Cartesian outputs to
exactly that first).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from seldflow.bench.plain_csv import FrameEvents, last_frame, read_event_lines, table_frames
from seldflow.formats.events import EV_AZIMUTH, EV_CLASS, EV_ELEVATION, EV_TRACK

SEGMENT_FRAMES = 10
FILE_FRAMES_2021 = 600  # DCASE2021 scores every file on 600 frames
_EPS = float(np.finfo(np.float64).eps)
SEGMENT_CHECKED = ("ER", "F", "LE", "LR", "SELD")
# The event table columns of a row, in the order the official reader keeps them.
EVENT_COLUMNS_READ = (EV_CLASS, EV_TRACK, EV_AZIMUTH, EV_ELEVATION)

# segment -> class -> (frames within the segment that hold the class, each frame's [azimuth, elevation] list)
SegmentTracks = dict[int, dict[int, tuple[list[int], list[list[list[float]]]]]]


def segment_tracks(events: FrameEvents, n_frames: int) -> SegmentTracks:
    """Events of frames ``0 .. 10 * ceil(n_frames / 10) - 1`` by 1-s segment and class, as ``segment_labels``."""
    segments: SegmentTracks = {}
    for start in range(0, n_frames, SEGMENT_FRAMES):
        by_class: dict[int, dict[int, list[list[float]]]] = {}
        for frame in range(start, start + SEGMENT_FRAMES):
            for cls, _track, azimuth, elevation, *_ in events.get(frame, ()):
                by_class.setdefault(cls, {}).setdefault(frame - start, []).append([azimuth, elevation])
        segments[start // SEGMENT_FRAMES] = {
            cls: (list(frames), list(frames.values())) for cls, frames in by_class.items()
        }
    return segments


def great_circle(ref: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Angles (degrees) between every reference and predicted (azimuth, elevation) in radians, the spherical way."""
    az1, el1 = ref[:, 0][:, None], ref[:, 1][:, None]
    az2, el2 = pred[:, 0][None, :], pred[:, 1][None, :]
    cosine = np.sin(el1) * np.sin(el2) + np.cos(el1) * np.cos(el2) * np.cos(np.abs(az1 - az2))
    return np.arccos(np.clip(cosine, -1, 1)) * 180 / np.pi


class Counts:
    """The official accumulators, per class, and the segment-wise substitutions, deletions and insertions."""

    def __init__(self, n_classes: int, micro: bool) -> None:
        self.n_classes, self.micro = n_classes, micro
        for name in ("tp", "fp", "fp_spatial", "fn", "de", "de_tp", "de_fn", "n_ref"):
            setattr(self, name, np.zeros(n_classes))
        self.S = self.D = self.I = 0

    def update(self, pred: SegmentTracks, gt: SegmentTracks, threshold: float) -> None:
        """One file: every reference segment and class."""
        for segment in range(len(gt)):
            loc_fp = loc_fn = 0
            for cls in range(self.n_classes):
                ref, est = gt[segment].get(cls), pred[segment].get(cls)
                n_ref = max(len(doas) for doas in ref[1]) if ref is not None else 0
                n_pred = max(len(doas) for doas in est[1]) if est is not None else 0
                self.n_ref[cls] += n_ref
                if ref is not None and est is not None:
                    fp, fn = self._both(cls, ref, est, n_ref, n_pred, threshold)
                    loc_fp, loc_fn = loc_fp + fp, loc_fn + fn
                elif ref is not None:
                    loc_fn += n_ref
                    self.fn[cls] += n_ref
                    self.de_fn[cls] += n_ref
                elif est is not None:
                    loc_fp += n_pred
                    self.fp[cls] += n_pred
            self.S += min(loc_fp, loc_fn)
            self.D += max(0, loc_fn - loc_fp)
            self.I += max(0, loc_fp - loc_fn)

    def _both(self, cls: int, ref: tuple, est: tuple, n_ref: int, n_pred: int, threshold: float) -> tuple[int, int]:
        """A class in both: per reference track (row position in its frame), the mean angle over shared frames."""
        angles: dict[int, list[float]] = {}
        for index, frame in enumerate(ref[0]):
            if frame in est[0]:
                gt_doas = np.array(ref[1][index]) * np.pi / 180.0
                pred_doas = np.array(est[1][est[0].index(frame)]) * np.pi / 180.0
                cost = great_circle(gt_doas, pred_doas)
                for row, col in zip(*linear_sum_assignment(cost), strict=True):
                    angles.setdefault(int(row), []).append(cost[row, col])
        if not angles:  # the official quirk: the predicted count becomes the misses
            self.fn[cls] += n_pred
            self.de_fn[cls] += n_pred
            return 0, n_pred
        fp = fn = 0
        for track_angles in angles.values():
            mean = sum(track_angles) / len(track_angles)
            self.de[cls] += mean
            self.de_tp[cls] += 1
            if mean <= threshold:
                self.tp[cls] += 1
            else:
                fp += 1
                if self.micro:  # DCASE2021 counts a spatial miss as a plain false positive
                    self.fp[cls] += 1
                else:
                    self.fp_spatial[cls] += 1
        if n_pred > n_ref:
            fp += n_pred - n_ref
            self.fp[cls] += n_pred - n_ref
        elif n_pred < n_ref:
            fn += n_ref - n_pred
            self.fn[cls] += n_ref - n_pred
            self.de_fn[cls] += n_ref - n_pred
        return fp, fn

    def scores(self) -> dict[str, float]:
        """ER, F, LE, LR and SELD: pooled over classes (DCASE2021), or per class and averaged (DCASE2022-2023)."""
        er = (self.S + self.D + self.I) / (self.n_ref.sum() + _EPS)
        if self.micro:
            tp, fp, fn, de_tp = self.tp.sum(), self.fp.sum(), self.fn.sum(), self.de_tp.sum()
            f = tp / (_EPS + tp + 0.5 * (fp + fn))
            le = self.de.sum() / (de_tp + _EPS) if de_tp else 180.0
            lr = de_tp / (_EPS + de_tp + self.de_fn.sum())
            seld = (er + (1 - f) + le / 180 + (1 - lr)) / 4
        else:
            f_c = self.tp / (_EPS + self.tp + self.fp_spatial + 0.5 * (self.fp + self.fn))
            le_c = self.de / (self.de_tp + _EPS)
            le_c[self.de_tp == 0] = 180.0
            lr_c = self.de_tp / (_EPS + self.de_tp + self.de_fn)
            seld_c = (er + (1 - f_c) + le_c / 180 + (1 - lr_c)) / 4
            f, le, lr, seld = f_c.mean(), le_c.mean(), lr_c.mean(), seld_c.mean()
        return {"ER": float(er), "F": float(f), "LE": float(le), "LR": float(lr), "SELD": float(seld)}


def _file_frames(events: FrameEvents, micro: bool) -> int:
    return FILE_FRAMES_2021 if micro else last_frame(events)


def plain_segment(
    ref_dir: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str],
    *,
    edition: str = "dcase2023",
    n_classes: int = 13,
    doa_threshold: float = 20.0,
) -> dict[str, float]:
    """Score a prediction folder against a reference root (``<split>/<clip>.csv``) as the official driver does:
    references read and segmented first, then each prediction file over its reference's segments."""
    micro = edition == "dcase2021"
    references: dict[str, tuple[SegmentTracks, int]] = {}
    for split in os.listdir(ref_dir):
        for name in os.listdir(Path(ref_dir) / split):
            events = read_event_lines(Path(ref_dir) / split / name)
            n_frames = _file_frames(events, micro)
            references[name] = (segment_tracks(events, n_frames), n_frames)
    counts = Counts(n_classes, micro)
    for name in os.listdir(pred_dir):
        ref_segments, n_frames = references[name]
        counts.update(segment_tracks(read_event_lines(Path(pred_dir) / name), n_frames), ref_segments, doa_threshold)
    return counts.scores()


def naive_segment_metrics(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    edition: str = "dcase2023",
    n_classes: int = 13,
    doa_threshold: float = 20.0,
) -> dict[str, float]:
    """The same loop on event tables keyed by clip (a missing prediction predicts nothing)."""
    micro = edition == "dcase2021"
    counts = Counts(n_classes, micro)
    for name, ref in references.items():
        ref_events = table_frames(ref, EVENT_COLUMNS_READ)
        pred_events = table_frames(predictions.get(name, np.zeros((0, 6))), EVENT_COLUMNS_READ)
        n_frames = _file_frames(ref_events, micro)
        counts.update(segment_tracks(pred_events, n_frames), segment_tracks(ref_events, n_frames), doa_threshold)
    return counts.scores()
