"""The official DCASE2024 frame-based SELD scorer with distances restated as a plain loop: the benchmark's reference.

The official code (``partha2409/DCASE2024_seld_baseline``: ``cls_feature_class.py``, ``SELD_evaluation_metrics.py``
``SELDMetrics``, ``cls_compute_seld_results.py`` with ``segment_based_metrics=False, evaluate_distance=True``)
reads each CSV line by line, turns every direction into a unit vector, files each frame's events by class and
track (``organize_labels``: a repeated track id takes a new negative id) and walks every reference frame and
class, pairing the tracks of a class by one Hungarian assignment on the angle between the vectors (each
normalised with ``+1e-10`` under the root). This module does the same in the same data structures; its numbers
check :mod:`seldflow.metrics.dcase2024` independently. Prediction distances are read in centimetres like the
reference's, as :mod:`seldflow.metrics.dcase2024` documents for its polar prediction files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from seldflow.bench.plain_csv import FrameEvents, last_frame, read_event_lines, table_frames
from seldflow.formats.events import EV_AZIMUTH, EV_CLASS, EV_DISTANCE, EV_ELEVATION, EV_TRACK

_EPS = float(np.finfo(np.float64).eps)
FRAME_CHECKED = ("ER", "F", "LE", "DE", "RDE", "LR", "SELD")
# The event table columns of a row, in the order the official reader keeps them (distance in metres).
EVENT_COLUMNS_READ = (EV_CLASS, EV_TRACK, EV_AZIMUTH, EV_ELEVATION, EV_DISTANCE)

# frame -> class -> track id -> [x, y, z, distance]
FrameTracks = dict[int, dict[int, dict[int, list[float]]]]


def cartesian(events: FrameEvents) -> FrameEvents:
    """Each event's (azimuth, elevation) in degrees as a unit vector, as ``convert_output_format_polar_to_cartesian``:
    ``[class, track, x, y, z, distance]``."""
    converted: FrameEvents = {}
    for frame, rows in events.items():
        converted[frame] = []
        for cls, track, azimuth, elevation, distance in rows:
            ele_rad, azi_rad = elevation * np.pi / 180.0, azimuth * np.pi / 180.0
            x, y = np.cos(azi_rad) * np.cos(ele_rad), np.sin(azi_rad) * np.cos(ele_rad)
            converted[frame].append([cls, track, x, y, np.sin(ele_rad), distance])
    return converted


def file_tracks(events: FrameEvents, n_frames: int) -> FrameTracks:
    """Events of frames ``0 .. n_frames - 1`` by class and track, as ``organize_labels``: a track id seen twice in
    a frame and class files the later event under the next free negative id."""
    tracks: FrameTracks = {frame: {} for frame in range(n_frames)}
    for frame in range(n_frames):
        for cls, track, *location in events.get(frame, ()):
            slots = tracks[frame].setdefault(cls, {})
            if track in slots:
                lowest = min(slots)
                track = lowest - 1 if lowest < 0 else -1
            slots[track] = location
    return tracks


def vector_angles(ref: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Angles (degrees) between every reference and predicted vector, each normalised with ``+1e-10``."""
    ref = ref / np.sqrt((ref**2).sum(axis=1, keepdims=True) + 1e-10)
    pred = pred / np.sqrt((pred**2).sum(axis=1, keepdims=True) + 1e-10)
    cosine = (ref[:, None, :] * pred[None, :, :]).sum(axis=2)
    return np.arccos(np.clip(cosine, -1, 1)) * 180 / np.pi


class Counts:
    """The official accumulators, per class, and the frame-wise substitutions, deletions and insertions."""

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes
        names = ("tp", "fp", "fp_spatial", "fn", "sum_doa", "sum_dist", "sum_reldist", "de_tp", "de_fn", "n_ref")
        for name in names:
            setattr(self, name, np.zeros(n_classes))
        self.S = self.D = self.I = 0

    def update(self, pred: FrameTracks, gt: FrameTracks, thresholds: tuple[float, float, float]) -> None:
        """One file: every reference frame and class."""
        doa_threshold, dist_threshold, reldist_threshold = thresholds
        for frame in range(len(gt)):
            loc_fp = loc_fn = 0
            for cls in range(self.n_classes):
                ref, est = gt[frame].get(cls), pred[frame].get(cls)
                if ref is not None:
                    self.n_ref[cls] += len(ref)
                if ref is not None and est is not None:
                    r, p = np.array(list(ref.values())), np.array(list(est.values()))
                    cost = vector_angles(r[:, :3], p[:, :3])
                    rows, cols = linear_sum_assignment(cost)
                    doa_err = cost[rows, cols]
                    dist_err = np.abs(r[rows, 3] - p[cols, 3])
                    reldist_err = dist_err / (r[rows, 3] + _EPS)
                    wrong = int(
                        np.sum(
                            (doa_err > doa_threshold) | (dist_err > dist_threshold) | (reldist_err > reldist_threshold)
                        )
                    )
                    pairs, extra, missing = min(len(r), len(p)), max(0, len(p) - len(r)), max(0, len(r) - len(p))
                    self.sum_doa[cls] += doa_err.sum()
                    self.sum_dist[cls] += dist_err.sum()
                    self.sum_reldist[cls] += reldist_err.sum()
                    self.tp[cls] += pairs - wrong
                    self.de_tp[cls] += pairs
                    self.fp[cls] += extra
                    self.fp_spatial[cls] += wrong
                    self.fn[cls] += missing
                    self.de_fn[cls] += missing
                    loc_fp, loc_fn = loc_fp + extra + wrong, loc_fn + missing
                elif ref is not None:
                    loc_fn += len(ref)
                    self.fn[cls] += len(ref)
                    self.de_fn[cls] += len(ref)
                elif est is not None:
                    loc_fp += len(est)
                    self.fp[cls] += len(est)
            self.S += min(loc_fp, loc_fn)
            self.D += max(0, loc_fn - loc_fp)
            self.I += max(0, loc_fp - loc_fn)

    def scores(self) -> dict[str, float]:
        """ER, F, LE, DE, RDE, LR and SELD, per class and averaged over all classes (errors over those with pairs)."""
        er = (self.S + self.D + self.I) / (self.n_ref.sum() + _EPS)
        f = self.tp / (_EPS + self.tp + self.fp_spatial + 0.5 * (self.fp + self.fn))
        errors = []
        for total in (self.sum_doa, self.sum_dist, self.sum_reldist):
            per_class = total / (self.de_tp + _EPS)
            per_class[self.de_tp == 0] = math.nan
            errors.append(per_class)
        le, de, rde = errors
        lr = self.de_tp / (_EPS + self.de_tp + self.de_fn)
        with np.errstate(invalid="ignore"):
            stacked = np.stack([1 - f, le / 180, rde])
            seld = np.nansum(stacked, axis=0) / (~np.isnan(stacked)).sum(axis=0)
        return {
            "ER": float(er),
            "F": float(f.mean()),
            "LE": _nanmean(le),
            "DE": _nanmean(de),
            "RDE": _nanmean(rde),
            "LR": float(lr.mean()),
            "SELD": float(seld.mean()),
        }


def _nanmean(values: np.ndarray) -> float:
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else math.nan


def plain_frame(
    ref_dir: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str],
    *,
    n_classes: int = 13,
    doa_threshold: float = 20.0,
    dist_threshold: float = math.inf,
    reldist_threshold: float = 1.0,
) -> dict[str, float]:
    """Score a prediction folder against a reference root (``<split>/<clip>.csv``) as the official driver does:
    references read and filed first over frames ``0 .. last - 1``, then each prediction file over as many."""
    references: dict[str, tuple[FrameTracks, int]] = {}
    for split in os.listdir(ref_dir):
        for name in os.listdir(Path(ref_dir) / split):
            events = cartesian(read_event_lines(Path(ref_dir) / split / name, distance=True))
            n_frames = last_frame(events)
            references[name] = (file_tracks(events, n_frames), n_frames)
    counts = Counts(n_classes)
    thresholds = (doa_threshold, dist_threshold, reldist_threshold)
    for name in os.listdir(pred_dir):
        ref_tracks, n_frames = references[name]
        events = cartesian(read_event_lines(Path(pred_dir) / name, distance=True))
        counts.update(file_tracks(events, n_frames), ref_tracks, thresholds)
    return counts.scores()


def naive_frame_metrics(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    n_classes: int = 13,
    doa_threshold: float = 20.0,
    dist_threshold: float = math.inf,
    reldist_threshold: float = 1.0,
) -> dict[str, float]:
    """The same loop on event tables keyed by clip, distances in metres (a missing prediction predicts nothing)."""
    counts = Counts(n_classes)
    thresholds = (doa_threshold, dist_threshold, reldist_threshold)
    for name, ref in references.items():
        ref_events = cartesian(table_frames(ref, EVENT_COLUMNS_READ))
        pred_events = cartesian(table_frames(predictions.get(name, np.zeros((0, 6))), EVENT_COLUMNS_READ))
        n_frames = last_frame(ref_events)
        counts.update(file_tracks(pred_events, n_frames), file_tracks(ref_events, n_frames), thresholds)
    return counts.scores()
