"""The official DCASE2025 stereo SELD scorer restated as a plain per-file, per-frame loop: the benchmark's reference.

The official scorer (``partha2409/DCASE2025_seld_baseline``, ``metrics.py`` and ``utils.py``) reads every CSV line
by line into a dict of frames, files each frame's events into a dict of classes and track slots, and then walks
every reference frame and every class, pairing the tracks of a class by one Hungarian assignment. This module does
the same, in the same data structures, so that its running time stands for the official code's in ``make bench``
and its numbers check :mod:`seldflow.metrics.dcase2025` independently (it shares no scoring code with it):

* :func:`seldflow.bench.plain_csv.read_label_lines` is the official reader: the first line skipped, each other line
  split at commas, frame, class, source and onscreen parsed with ``int()``, azimuth and distance with ``float()``;
* :func:`file_tracks` files the events into at most ten track slots per class and frame, as ``organize_labels``;
* :func:`plain_dcase2025` scores folders as ``ComputeSELDResults`` does: every reference file of every split
  sub-folder, then every prediction file, scored over the reference's frames ``0 .. last - 1``;
* :func:`naive_metrics` scores label tables already in memory with the same loop (a clip without a prediction
  predicts nothing).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from seldflow.bench.plain_csv import FrameEvents, last_frame, read_label_lines, table_frames
from seldflow.labels import COL_AZIMUTH, COL_CLASS, COL_DISTANCE, COL_ONSCREEN, COL_SOURCE, N_CLASSES

# The official scorer's epsilon (numpy's float64 machine epsilon), in every denominator.
_EPS = float(np.finfo(np.float64).eps)
# Track slots per class and frame (organize_labels' max_tracks).
MAX_TRACKS = 10
# Scalar metrics compared with seldflow's scorer, besides the class-wise F.
SCORER_CHECKED = ("F", "DOAE", "DistE", "RDE")

# The CSV columns of a table row, in the order the official reader keeps them: class, source, azimuth, distance,
# onscreen.
STEREO_COLUMNS = (COL_CLASS, COL_SOURCE, COL_AZIMUTH, COL_DISTANCE, COL_ONSCREEN)
# frame -> class -> track slot -> [azimuth, distance, onscreen]
FrameTracks = dict[int, dict[int, dict[int, list[float]]]]


def file_tracks(events: FrameEvents, n_frames: int) -> FrameTracks:
    """Events of frames ``0 .. n_frames - 1`` filed by class and track slot: a source id names its slot when that
    slot is free and below :data:`MAX_TRACKS`, otherwise the lowest free slot is taken, or slot 0 is overwritten."""
    tracks: FrameTracks = {frame: {} for frame in range(n_frames)}
    for frame in range(n_frames):
        for cls, source, azimuth, distance, onscreen in events.get(frame, ()):
            slots = tracks[frame].setdefault(cls, {})
            if source in slots or source >= MAX_TRACKS:
                free = sorted(set(range(MAX_TRACKS)) - slots.keys())
                source = free[0] if free else 0
            slots[source] = [azimuth, distance, onscreen]
    return tracks


def fold(azimuth: np.ndarray) -> np.ndarray:
    """Azimuths wrapped to [-180, 180) and folded onto the front half [-90, 90]."""
    wrapped = (azimuth + 180.0) % 360.0 - 180.0
    folded = wrapped.copy()
    back_left, back_right = wrapped < -90.0, wrapped > 90.0
    folded[back_left] = -180.0 - wrapped[back_left]
    folded[back_right] = 180.0 - wrapped[back_right]
    return folded


class Counts:
    """The official accumulators, one entry per class."""

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes
        for name in ("tp", "fp", "fp_spatial", "fn", "sum_doa", "sum_dist", "sum_reldist", "matched"):
            setattr(self, name, np.zeros(n_classes))

    def update(self, pred: FrameTracks, ref: FrameTracks, thresholds: tuple[float, float, float]) -> None:
        """One clip: every reference frame, every class, one Hungarian assignment where both sides have tracks."""
        doa_threshold, dist_threshold, reldist_threshold = thresholds
        for frame in range(len(ref)):
            for cls in range(self.n_classes):
                ref_tracks, pred_tracks = ref[frame].get(cls), pred[frame].get(cls)
                if ref_tracks is not None and pred_tracks is not None:
                    r = np.array(list(ref_tracks.values()))
                    p = np.array(list(pred_tracks.values()))
                    cost = np.abs(fold(r[:, 0])[:, None] - fold(p[:, 0])[None, :])
                    rows, cols = linear_sum_assignment(cost)
                    doa_err = cost[rows, cols]
                    dist_err = np.abs(r[rows, 1] - p[cols, 1])
                    reldist_err = dist_err / (r[rows, 1] + _EPS)
                    wrong = int(
                        np.sum(
                            (doa_err > doa_threshold) | (dist_err > dist_threshold) | (reldist_err > reldist_threshold)
                        )
                    )
                    pairs = min(len(r), len(p))
                    self.sum_doa[cls] += doa_err.sum()
                    self.sum_dist[cls] += dist_err.sum()
                    self.sum_reldist[cls] += reldist_err.sum()
                    self.matched[cls] += pairs
                    self.tp[cls] += pairs - wrong
                    self.fp_spatial[cls] += wrong
                    self.fp[cls] += max(0, len(p) - len(r))
                    self.fn[cls] += max(0, len(r) - len(p))
                elif ref_tracks is not None:
                    self.fn[cls] += len(ref_tracks)
                elif pred_tracks is not None:
                    self.fp[cls] += len(pred_tracks)

    def scores(self) -> dict[str, Any]:
        """Macro-averaged F, DOAE, DistE, RDE (errors over the classes with pairs), class-wise F and the counts."""
        classwise_f = self.tp / (_EPS + self.tp + self.fp_spatial + 0.5 * (self.fp + self.fn))

        def macro_error(total: np.ndarray) -> float:
            values = [total[c] / (self.matched[c] + _EPS) for c in range(self.n_classes) if self.matched[c] > 0]
            return float(np.mean(values)) if values else math.nan

        return {
            "F": float(classwise_f.mean()),
            "DOAE": macro_error(self.sum_doa),
            "DistE": macro_error(self.sum_dist),
            "RDE": macro_error(self.sum_reldist),
            "classwise_F": classwise_f.tolist(),
            "TP": int(self.tp.sum()),
            "FP": int(self.fp.sum()),
            "FP_spatial": int(self.fp_spatial.sum()),
            "FN": int(self.fn.sum()),
        }


def plain_dcase2025(
    ref_dir: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str],
    *,
    doa_threshold: float = 20.0,
    dist_threshold: float = math.inf,
    reldist_threshold: float = 1.0,
    n_classes: int = N_CLASSES,
) -> dict[str, Any]:
    """Score a prediction folder against a reference root (``<split>/<clip>.csv``) as the official scorer does.

    References are read and filed first, each over its frames ``0 .. last - 1``; then each prediction file, filed
    over as many frames as the longer of the two, is scored against its reference (a reference without a
    prediction file is not scored). Returns :meth:`Counts.scores` (macro average, audio-only).
    """
    references: dict[str, tuple[FrameTracks, int]] = {}
    for split in os.listdir(ref_dir):
        for name in os.listdir(Path(ref_dir) / split):
            events = read_label_lines(Path(ref_dir) / split / name)
            n_frames = last_frame(events)
            references[name] = (file_tracks(events, n_frames), n_frames)
    counts = Counts(n_classes)
    thresholds = (doa_threshold, dist_threshold, reldist_threshold)
    for name in os.listdir(pred_dir):
        events = read_label_lines(Path(pred_dir) / name)
        ref_tracks, n_frames = references[name]
        counts.update(file_tracks(events, max(last_frame(events), n_frames)), ref_tracks, thresholds)
    return counts.scores()


def naive_metrics(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    doa_threshold: float = 20.0,
    dist_threshold: float = math.inf,
    reldist_threshold: float = 1.0,
    n_classes: int = N_CLASSES,
) -> dict[str, Any]:
    """The same loop on label tables keyed by clip (CSV column order); a clip without a prediction predicts
    nothing, as :func:`seldflow.metrics.dcase2025.compute_metrics` with ``missing="empty"`` scores it."""
    counts = Counts(n_classes)
    thresholds = (doa_threshold, dist_threshold, reldist_threshold)
    for name, ref_rows in references.items():
        ref_events = table_frames(ref_rows, STEREO_COLUMNS)
        pred_events = table_frames(predictions.get(name, np.zeros((0, 6))), STEREO_COLUMNS)
        n_frames = last_frame(ref_events)
        pred_tracks = file_tracks(pred_events, max(last_frame(pred_events), n_frames))
        counts.update(pred_tracks, file_tracks(ref_events, n_frames), thresholds)
    return counts.scores()


def metric_difference(a: Mapping[str, Any], b: Mapping[str, Any], names: Sequence[str] = SCORER_CHECKED) -> float:
    """Largest absolute difference of the scalar metrics ``names`` and ``classwise_F`` (NaN = NaN counts as 0)."""
    pairs = [(float(a[n]), float(b[n])) for n in names]
    if "classwise_F" in a and "classwise_F" in b:
        pairs += list(zip(map(float, a["classwise_F"]), map(float, b["classwise_F"]), strict=True))
    worst = 0.0
    for x, y in pairs:
        if math.isnan(x) and math.isnan(y):
            continue
        worst = max(worst, abs(x - y) if math.isfinite(x) and math.isfinite(y) else math.inf)
    return worst
