"""The official DCASE2021–2023 SELD metrics: segment-based, location-aware detection and class-aware localization.

Reproduces ``SELDMetrics.update_seld_scores`` / ``compute_seld_scores`` and their driver
``ComputeSELDResults.get_SELD_Results`` of the official repositories, quirks included, so that numbers are
comparable with published results:

* DCASE2021: ``sharathadavanne/seld-dcase2021`` @f8e09db (``metrics/SELD_evaluation_metrics.py``), micro average,
  12 classes;
* DCASE2022: ``sharathadavanne/seld-dcase2022`` @c8adb1d, DCASE2023: ``sharathadavanne/seld-dcase2023`` @24d14c9
  (``SELD_evaluation_metrics.py``; the two are identical), macro average, 13 classes.

How the official code scores (every point below is reproduced):

* Labels are grouped into 1-s segments of 10 label frames. In DCASE2021 every file is 600 frames long (60 s):
  frames from 600 on are ignored, in reference and prediction alike. From DCASE2022 on a file has
  ``ceil(L / 10)`` segments, ``L`` being the largest frame index of the *reference* (not ``L + 1``): frames from
  ``10 * ceil(L / 10)`` on are ignored, so when ``L`` is a multiple of 10 the last annotated frame itself is
  dropped. A reference without events has no segments here (the official loader crashes on it).
* Per segment and class, ``N`` is the largest number of that class's DOAs in any single frame of the segment
  (``nb_gt_doas`` / ``nb_pred_doas``); the reference ``N`` adds to ``N_ref``.
* Class in reference and prediction: in every frame both have, reference and predicted DOAs are paired by the
  Hungarian algorithm on the great-circle angle (spherical formula, clipped, in degrees). A "track" is the
  reference row position within its frame: the track column of the file is ignored. Per track, the paired
  angles are averaged over the segment: a TP if the mean is at most ``doa_threshold`` (20°, inclusive), otherwise
  a spatial false positive. Every track adds its mean to the localization error and counts once in
  ``DE_TP``. Then ``N_pred - N_ref`` extra predicted tracks are FPs, ``N_ref - N_pred`` missing ones FNs (and
  ``DE_FN``).
* Quirk: when the class is in both but they share no frame of the segment, the *predicted* count ``N_pred`` (not
  ``N_ref``) is added to FN and DE_FN, and nothing to FP.
* Class only in the reference: ``N_ref`` FNs (and DE_FN). Only in the prediction: ``N_pred`` FPs.
* Error rate: per segment, with ``fp`` = FPs + spatial FPs and ``fn`` = FNs over all classes,
  ``S += min(fp, fn)``, ``D += max(0, fn - fp)``, ``I += max(0, fp - fn)``; ``ER = (S + D + I) / N_ref``
  (global, never per class).
* F-score: DCASE2021 counts a spatial FP as an ordinary FP, ``F = TP / (TP + (FP + FP_spatial + FN) / 2)``;
  DCASE2022–2023 weigh it fully, ``F = TP / (TP + FP_spatial + (FP + FN) / 2)``.
* ``LE = Σ mean track angle / DE_TP`` (degrees, 180 when nothing was paired), ``LR = DE_TP / (DE_TP + DE_FN)``,
  ``SELD = (ER + (1 - F) + LE / 180 + (1 - LR)) / 4``. Every denominator has float64 ``eps`` added.
* Micro average pools the counts of all classes. Macro computes F, LE, LR and SELD per class with the global ER
  and averages over *all* ``n_classes`` classes: a class absent from reference and prediction scores F = 0,
  LE = 180, LR = 0 (a perfect prediction of data using 12 of 13 classes gets F = 12/13).
* Only prediction files are iterated: a reference without a prediction is silently ignored, one without a
  reference crashes. Here the first is an error by default (``missing="error"``); ``missing="skip"`` reproduces
  the official behaviour (with a warning) and ``missing="empty"`` scores the clip as having no detections. A
  prediction without a reference is always an error.
* The official drivers read predictions in Cartesian form and convert them to polar angles; reading polar
  predictions directly gives the same numbers up to rounding (about 1e-13 degrees).

The ``classwise`` section of a micro-averaged report holds the same per-class formulas for information; the
official DCASE2021 scorer reports no per-class values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from seldflow.errors import InputError
from seldflow.formats.dcase2021 import (
    EV_AZIMUTH,
    EV_CLASS,
    EV_ELEVATION,
    EV_FRAME,
    EVENT_COLUMNS,
    empty_events,
    read_events,
    read_events_files,
)
from seldflow.metrics.common import (
    EPS,
    Groups,
    by_clip_chunks,
    checked_tables,
    common_groups,
    group_frames,
    match_tracks,
    pair_clips,
)

SEGMENT_FRAMES = 10  # 1-s segments of 100-ms label frames
AVERAGES = ("macro", "micro")

# Rows of the per-clip, per-class statistics array.
TP, FP_SPATIAL, FP, FN, SUM_LE, DE_TP, DE_FN, N_REF = range(8)
N_STATS = 8
# Columns of the per-clip error-rate array.
SUBSTITUTIONS, DELETIONS, INSERTIONS = range(3)


@dataclass(frozen=True)
class Edition:
    """What changed between the yearly versions of the segment-based scorer."""

    name: str
    n_classes: int
    average: str
    clip_frames: int | None  # fixed file length in frames, or None: from the reference's largest frame index
    spatial_fp_weight: float  # weight of a spatial FP in the F-score denominator
    distance_column: bool | None  # the reference files' distance column: absent, present, either (ignored)


EDITIONS: dict[str, Edition] = {
    "dcase2021": Edition("dcase2021", 12, "micro", 600, 0.5, False),
    "dcase2022": Edition("dcase2022", 13, "macro", None, 1.0, False),
    "dcase2023": Edition("dcase2023", 13, "macro", None, 1.0, None),
}


class ClipCounts(NamedTuple):
    """Additive statistics per clip, so dataset totals (and leave-one-out totals) are plain sums."""

    counts: np.ndarray  # (n_clips, N_STATS, n_classes)
    errors: np.ndarray  # (n_clips, 3): substitutions, deletions, insertions
    n_segments: np.ndarray  # (n_clips,)


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def compute_metrics(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    edition: str = "dcase2023",
    n_classes: int | None = None,
    average: str | None = None,
    doa_threshold: float = 20.0,
    missing: str = "error",
    ref_source: str = "references",
    pred_source: str = "predictions",
) -> dict[str, Any]:
    """Official segment-based SELD scores of ``predictions`` against ``references`` (both keyed by clip name).

    Tables are ``(n, 6)`` event tables (:mod:`seldflow.formats.dcase2021` columns; the distance is not used).
    ``edition`` picks the year's conventions (see the module docstring); ``n_classes`` and ``average`` default to
    the edition's (12 / micro for DCASE2021, 13 / macro for 2022–2023). Returns ``ER``, ``F`` and ``LR`` as
    fractions, ``LE`` in degrees, ``SELD``, a ``classwise`` section and the counts behind them.
    """
    conventions = _edition(edition)
    n_classes = conventions.n_classes if n_classes is None else n_classes
    average = conventions.average if average is None else average
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
        clip_frames=conventions.clip_frames,
    )
    report = _report(counts, average, conventions.spatial_fp_weight)
    report["settings"] = {
        "edition": conventions.name,
        "n_classes": n_classes,
        "average": average,
        "doa_threshold": doa_threshold,
        "missing": missing,
    }
    return report


def read_file(
    path: str | Path, *, edition: str = "dcase2023", n_classes: int | None = None, reference: bool = True
) -> np.ndarray:
    """Read one label file in the edition's format (five columns; DCASE2023 also accepts STARSS23's six)."""
    conventions = _edition(edition)
    return read_events(
        path,
        n_classes=conventions.n_classes if n_classes is None else n_classes,
        with_distance=conventions.distance_column,
        reference=reference,
    )


def read_files(
    paths: Sequence[str | Path], *, edition: str = "dcase2023", n_classes: int | None = None, reference: bool = True
) -> list[np.ndarray]:
    """:func:`read_file` of many files at once (:func:`seldflow.formats.dcase2021.read_events_files`)."""
    conventions = _edition(edition)
    return read_events_files(
        paths,
        n_classes=conventions.n_classes if n_classes is None else n_classes,
        with_distance=conventions.distance_column,
        reference=reference,
    )


@by_clip_chunks
def clip_counts(
    refs: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    *,
    n_classes: int,
    doa_threshold: float = 20.0,
    clip_frames: int | None = None,
) -> ClipCounts:
    """Per-clip, per-class counts of the official segment-based evaluation, vectorised over all clips.

    ``clip_frames`` fixes every clip's length (600 in DCASE2021); ``None`` derives it from the reference.
    """
    n_clips = len(refs)
    frame_limits = _frame_limits(refs, clip_frames)
    span = int(frame_limits.max(initial=0))
    counts = np.zeros((n_clips, N_STATS, n_classes))
    errors = np.zeros((n_clips, len((SUBSTITUTIONS, DELETIONS, INSERTIONS))))
    n_segments = frame_limits // SEGMENT_FRAMES
    if span == 0:
        return ClipCounts(counts, errors, n_segments)
    ref = group_frames(refs, frame_limits, span, n_classes)
    pred = group_frames(preds, frame_limits, span, n_classes)
    to_segment = _SegmentKeys(span, n_classes)

    ref_segments, n_ref = _segment_max(to_segment(ref.keys), ref.count)
    pred_segments, n_pred = _segment_max(to_segment(pred.keys), pred.count)
    track_segments, tracks, sum_le, tp = _segment_tracks(ref, pred, to_segment, doa_threshold)

    keys = np.union1d(ref_segments, pred_segments)
    n_ref, n_pred = _spread(keys, ref_segments, n_ref), _spread(keys, pred_segments, n_pred)
    tracks, sum_le, tp = (_spread(keys, track_segments, values) for values in (tracks, sum_le, tp))
    stats = _segment_stats(n_ref, n_pred, tracks, sum_le, tp)

    clip, segment, cls = to_segment.split(keys)
    bins = clip * n_classes + cls
    for stat, values in stats.items():
        counts[:, stat, :] = np.bincount(bins, weights=values, minlength=n_clips * n_classes).reshape(n_clips, -1)
    errors[:] = _error_counts(clip * span + segment, clip, stats, n_clips)
    return ClipCounts(counts, errors, n_segments)


# --------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------


def _edition(name: str) -> Edition:
    if name not in EDITIONS:
        raise ValueError(f"edition must be one of {tuple(EDITIONS)}, got {name!r}")
    return EDITIONS[name]


def _valid_rows(rows: np.ndarray, n_classes: int) -> np.ndarray:
    """Per row, what :func:`_as_table` accepts: a non-negative integer frame, a class index, finite angles."""
    frame, cls = rows[:, EV_FRAME], rows[:, EV_CLASS]
    ok = (frame >= 0) & (frame == np.round(frame)) & (cls >= 0) & (cls < n_classes) & (cls == np.round(cls))
    ok &= np.isfinite(rows[:, EV_AZIMUTH]) & np.isfinite(rows[:, EV_ELEVATION])
    return ok


def _as_table(source: str, name: str, rows: np.ndarray | None, n_classes: int) -> np.ndarray:
    """An ``(n, 6)`` float64 event table; frame and class must be integers in range, angles finite."""
    if rows is None:
        return empty_events()
    table = np.asarray(rows, dtype=np.float64)
    if table.size == 0:
        return empty_events()
    if table.ndim != 2 or table.shape[1] != len(EVENT_COLUMNS):
        raise InputError(source, f"clip {name!r}: event tables must have shape (n, 6), got {table.shape}")
    checks = (
        (EV_FRAME, (table[:, EV_FRAME] >= 0) & (table[:, EV_FRAME] == np.round(table[:, EV_FRAME])), "a frame"),
        (EV_CLASS, np.isin(table[:, EV_CLASS], np.arange(n_classes)), f"a class index in 0..{n_classes - 1}"),
        (EV_AZIMUTH, np.isfinite(table[:, EV_AZIMUTH]), "a finite azimuth"),
        (EV_ELEVATION, np.isfinite(table[:, EV_ELEVATION]), "a finite elevation"),
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
# Segment-based counting
# --------------------------------------------------------------------------------------------------------------


def _frame_limits(refs: Sequence[np.ndarray], clip_frames: int | None) -> np.ndarray:
    """Frames scored per clip: fixed, or ``10 * ceil(L / 10)`` with ``L`` the reference's largest frame index."""
    if clip_frames is not None:
        return np.full(len(refs), clip_frames, dtype=np.int64)
    last = np.array([int(r[:, EV_FRAME].max()) if len(r) else 0 for r in refs], dtype=np.int64)
    return -(-last // SEGMENT_FRAMES) * SEGMENT_FRAMES


class _SegmentKeys:
    """Maps (clip, frame, class) group keys to (clip, segment, class) keys ``(clip * span + segment) * C + class``.

    ``span`` (frames) is a multiple of 10, and segment keys sort by clip, then segment, then class.
    """

    def __init__(self, span: int, n_classes: int) -> None:
        self.span = span
        self.n_classes = n_classes

    def __call__(self, frame_keys: np.ndarray) -> np.ndarray:
        cls = frame_keys % self.n_classes
        clip_frame = frame_keys // self.n_classes
        clip, frame = clip_frame // self.span, clip_frame % self.span
        return (clip * self.span + frame // SEGMENT_FRAMES) * self.n_classes + cls

    def split(self, segment_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        clip_segment = segment_keys // self.n_classes
        return clip_segment // self.span, clip_segment % self.span, segment_keys % self.n_classes


def _segment_max(segment_keys: np.ndarray, frame_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment and class, the largest number of DOAs in one frame (the official ``nb_*_doas``)."""
    keys, inverse = np.unique(segment_keys, return_inverse=True)
    largest = np.zeros(len(keys))
    np.maximum.at(largest, inverse, frame_counts)
    return keys, largest


class _Directions(NamedTuple):
    """Per event row, what the spherical angle formula needs: azimuth in radians, sine and cosine of elevation."""

    azimuth: np.ndarray
    sin_elevation: np.ndarray
    cos_elevation: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray) -> _Directions:
        elevation = np.deg2rad(rows[:, EV_ELEVATION])
        return cls(np.deg2rad(rows[:, EV_AZIMUTH]), np.sin(elevation), np.cos(elevation))


def _great_circle(ref: _Directions, r: np.ndarray, pred: _Directions, p: np.ndarray) -> np.ndarray:
    """Angle in degrees between reference rows ``r`` and predicted rows ``p`` by the spherical formula (the
    per-row sines and cosines computed once, elementwise the same numbers as computing them per pair)."""
    cosine = ref.sin_elevation[r] * pred.sin_elevation[p]
    cosine += ref.cos_elevation[r] * pred.cos_elevation[p] * np.cos(np.abs(ref.azimuth[r] - pred.azimuth[p]))
    return np.rad2deg(np.arccos(np.clip(cosine, -1.0, 1.0)))


def _segment_tracks(
    ref: Groups, pred: Groups, to_segment: _SegmentKeys, doa_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per segment and class with paired frames: number of tracks, sum of their mean angles, number of TPs.

    A track is the reference row position within its frame; its angle is averaged over the frames where it was
    paired, and it is a TP when that mean is at most ``doa_threshold``.
    """
    both = common_groups(ref, pred)
    ref_directions, pred_directions = _Directions.of(ref.rows), _Directions.of(pred.rows)

    def cost(r: np.ndarray, p: np.ndarray) -> np.ndarray:
        return _great_circle(ref_directions, r, pred_directions, p)

    pair_ref, pair_pred = match_tracks(cost, both)
    angle = cost(pair_ref, pair_pred)
    group = np.searchsorted(ref.start, pair_ref, side="right") - 1
    position = pair_ref - ref.start[group]
    width = int(ref.count.max(initial=1))
    track_keys, inverse = np.unique(to_segment(ref.keys[group]) * width + position, return_inverse=True)
    frames = np.bincount(inverse, minlength=len(track_keys))
    mean_angle = np.bincount(inverse, weights=angle, minlength=len(track_keys)) / np.maximum(frames, 1)
    segments, per_segment = np.unique(track_keys // width, return_inverse=True)
    tracks = np.bincount(per_segment, minlength=len(segments)).astype(np.float64)
    sum_le = np.bincount(per_segment, weights=mean_angle, minlength=len(segments))
    tp = np.bincount(per_segment, weights=(mean_angle <= doa_threshold).astype(np.float64), minlength=len(segments))
    return segments, tracks, sum_le, tp


def _spread(keys: np.ndarray, subset: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` (one per key of the sorted ``subset`` of ``keys``) on ``keys``, zero elsewhere."""
    full = np.zeros(len(keys))
    full[np.searchsorted(keys, subset)] = values
    return full


def _segment_stats(
    n_ref: np.ndarray, n_pred: np.ndarray, tracks: np.ndarray, sum_le: np.ndarray, tp: np.ndarray
) -> dict[int, np.ndarray]:
    """Counts per (clip, segment, class), following the official case analysis."""
    in_both = (n_ref > 0) & (n_pred > 0)
    unpaired = in_both & (tracks == 0)  # quirk: the predicted count becomes the FN count
    paired = in_both & (tracks > 0)
    ref_only = (n_ref > 0) & (n_pred == 0)
    pred_only = (n_ref == 0) & (n_pred > 0)
    fn = np.where(ref_only, n_ref, 0.0) + np.where(unpaired, n_pred, 0.0)
    fn += np.where(paired, np.maximum(n_ref - n_pred, 0.0), 0.0)
    fp = np.where(pred_only, n_pred, 0.0) + np.where(paired, np.maximum(n_pred - n_ref, 0.0), 0.0)
    return {
        TP: np.where(paired, tp, 0.0),
        FP_SPATIAL: np.where(paired, tracks - tp, 0.0),
        FP: fp,
        FN: fn,
        SUM_LE: np.where(paired, sum_le, 0.0),
        DE_TP: np.where(paired, tracks, 0.0),
        DE_FN: fn,
        N_REF: n_ref,
    }


def _error_counts(segment: np.ndarray, clip: np.ndarray, stats: Mapping[int, np.ndarray], n_clips: int) -> np.ndarray:
    """Substitutions, deletions and insertions per clip from each segment's FP (spatial ones included) and FN."""
    segments, inverse = np.unique(segment, return_inverse=True)
    fp = np.bincount(inverse, weights=stats[FP] + stats[FP_SPATIAL], minlength=len(segments))
    fn = np.bincount(inverse, weights=stats[FN], minlength=len(segments))
    segment_clip = np.zeros(len(segments), dtype=np.int64)
    segment_clip[inverse] = clip
    per_segment = np.stack([np.minimum(fp, fn), np.maximum(0.0, fn - fp), np.maximum(0.0, fp - fn)], axis=1)
    return np.stack([np.bincount(segment_clip, weights=col, minlength=n_clips) for col in per_segment.T], axis=1)


# --------------------------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------------------------


def scores(counts: np.ndarray, errors: np.ndarray, average: str, spatial_fp_weight: float) -> dict[str, Any]:
    """ER, F, LE, LR, SELD (and per-class values) from summed ``counts`` (N_STATS, C) and ``errors`` (3,)."""
    er = float(errors.sum() / (counts[N_REF].sum() + EPS))
    classwise = _class_scores(counts, er, spatial_fp_weight)
    if average == "macro":
        overall = {name: float(values.mean()) for name, values in classwise.items()}
    else:
        overall = {
            name: float(values[0])
            for name, values in _class_scores(counts.sum(axis=1, keepdims=True), er, spatial_fp_weight).items()
        }
    return {"ER": er, **overall, "classwise": {name: values.tolist() for name, values in classwise.items()}}


def _class_scores(counts: np.ndarray, er: float, spatial_fp_weight: float) -> dict[str, np.ndarray]:
    tp, fp_spatial, fp, fn = counts[TP], counts[FP_SPATIAL], counts[FP], counts[FN]
    de_tp = counts[DE_TP]
    f_score = tp / (EPS + tp + spatial_fp_weight * fp_spatial + 0.5 * (fp + fn))
    le = np.where(de_tp > 0, counts[SUM_LE] / (de_tp + EPS), 180.0)
    lr = de_tp / (EPS + de_tp + counts[DE_FN])
    seld = (er + (1.0 - f_score) + le / 180.0 + (1.0 - lr)) / 4.0
    return {"F": f_score, "LE": le, "LR": lr, "SELD": seld}


def _report(counts: ClipCounts, average: str, spatial_fp_weight: float) -> dict[str, Any]:
    totals = counts.counts.sum(axis=0)
    errors = counts.errors.sum(axis=0)
    report = scores(totals, errors, average, spatial_fp_weight)
    named = {"TP": TP, "FP": FP, "FP_spatial": FP_SPATIAL, "FN": FN, "N_ref": N_REF}
    report["classwise"].update({name: totals[stat].astype(int).tolist() for name, stat in named.items()})
    report.update({name: int(totals[stat].sum()) for name, stat in named.items()})
    report.update(
        {
            "S": int(errors[SUBSTITUTIONS]),
            "D": int(errors[DELETIONS]),
            "I": int(errors[INSERTIONS]),
            "DE_TP": int(totals[DE_TP].sum()),
            "DE_FN": int(totals[DE_FN].sum()),
            "n_files": len(counts.n_segments),
            "n_segments": int(counts.n_segments.sum()),
            "average": average,
        }
    )
    return report
