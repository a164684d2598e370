"""Class-agnostic DOA tracking metrics of DOAnet (``doa-mot``): the official frame-wise scores and CLEAR-MOT.

**DOAnet scores** (``LE``, ``MOTA``, ``IDS``, ``LR``, ``LP``, ``LF``) reproduce ``cls_metric.py::doa_metric`` of
``sharathadavanne/doa-net`` @c9815e2 as ``train_doanet.py::test_epoch`` feeds it, quirks included. Per 100-ms
frame, with up to :data:`N_SLOTS` reference and predicted directions and M active predictions, N active references:

* FP += max(M − N, 0), FN += max(N − M, 0), TP += min(M, N): there is no distance gate, a prediction 170° off is
  still a true positive;
* the matched angle is the Hungarian minimum over the M × N angles ``arccos(clip(p·r, −1 + 1e-7, 1 − 1e-7))``,
  ``p`` renormalised with ``+1e-10`` under the root (:func:`seldflow.metrics.common.normalised`). The clamp
  floors every matched angle at 0.0256°, so a perfect prediction scores LE = 0.0256°, not 0;
* IDS counts, per slot, inactive → active transitions between consecutive frames of one recording (frame 0 of a
  recording never counts): track *births*, not identity changes. A perfect prediction has IDS = the number of
  reference onsets; swapping which source sits in which slot adds nothing unless a slot turns on;
* ΣGT and Σpred start at 1e-7; LE = 180/π · Σangle / TP in degrees; MOTA = 100 · (1 − (FP + FN + IDS) /
  (ΣGT + 1e-7)); LR = 100 · TP / ΣGT; LP = 100 · TP / Σpred; LF = 100 · 2·LP·LR / (LP + LR + 1e-7) with LP, LR as
  fractions (a perfect LF is 99.999995). MOTA, LR, LP and LF are percent, IDS a count; MOTA can go negative.
* Without any matched frame TP = 0 and LE = 0/0 is NaN (the official code warns and returns NaN; with no frame
  at all it raises ZeroDivisionError, here NaN too). Reports serialise NaN as JSON ``null``
  (:func:`seldflow.score.to_json`).

Only the matched angle *sum* is kept, so the assignment is solved in closed form for all frames at once: the
smallest active angle where min(M, N) = 1, the cheaper diagonal of the 2 × 2 matrix where M = N = 2; only more
than two slots fall back to ``scipy.optimize.linear_sum_assignment`` frame by frame. Computation is float64 (the
official training loop runs float32, where the clamp floor reads 0.028°).

**CLEAR-MOT** (Bernardin & Stiefelhagen 2008, ``clear_mot`` in the report) is the canonical tracking metric beside
it: a reference and a prediction may only be matched if their angle is at most ``doa_threshold`` degrees (the gate,
default 20°, the DCASE location threshold); correspondences of the previous match of each reference track are kept
while they stay within the gate, the remaining tracks are paired by the Hungarian method on the gated angles, and a
reference track matched to a different prediction track than at its last match is an identity switch (the
last-known-mapping reading that py-motmetrics implements). MOTP = mean matched angle (degrees), MOTA = 100 · (1 −
(FN + FP + IDS) / ΣGT) in percent, like the DOAnet MOTA beside it; both are NaN without matches or references.

**CSV contract** (``seldflow score --metric doa-mot --ref REF_DIR --pred PRED_DIR``): DCASE2020-style headerless
CSVs ``frame,class,track,azimuth,elevation`` (degrees). For the DOAnet scores the rows of a frame fill slots 0, 1
in file row order, as the official label builder does, whatever their class and track; a third row in one frame is
an error (the official builder crashes on it). Recordings are the reference folder's CSVs in sorted name order,
one official ``partial_compute_metric`` call each; a missing or empty prediction file means no predictions. Each
recording spans frames 0 .. (last frame of reference or prediction), so predictions past the reference's last
frame are false positives. For CLEAR-MOT a track is identified by its (class, track) columns (a repeated pair
within one frame by its order); a reference track ends where its pair pauses, because DCASE metadata reuses track
indices for later events, while a predicted track keeps its identity across gaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from seldflow.csv_bulk import Layout, read_numeric_files, whole_numbers
from seldflow.errors import ConfigError, InputError
from seldflow.formats.dcase2021 import FILE_COLUMNS
from seldflow.formats.events import EV_AZIMUTH, EV_CLASS, EV_ELEVATION, EV_FRAME, EV_TRACK, no_events
from seldflow.labels import MAX_INTEGER, check_event_fields, parse_numbers, read_csv_records
from seldflow.metrics.common import normalised, pair_clips, unit_vectors

METRIC_NAME = "doa-mot"
SUMMARY = "DOAnet class-agnostic DOA tracking (LE, MOTA, IDS, LR, LP, LF as the official code) and CLEAR-MOT"
# Directions per frame: DOAnet's Nmax (``unique_classes = 2``); the official label builder has no room for a third.
N_SLOTS = 2
# The class column is ignored: the registry's class count of this metric, never used.
CLASS_AGNOSTIC = 0
# The official eps: the start of ΣGT and Σpred, the arccos clamp margin and the LF and MOTA denominators' term.
OFFICIAL_EPS = 1e-7
# CLEAR-MOT gate (degrees): DCASE's location threshold, so a "match" means what a DCASE TP means.
DEFAULT_GATE_DEG = 20.0
_INTEGER_COLUMNS = frozenset({"frame", "class", "track"})
# Cost of a gated-out pair in the CLEAR-MOT assignment: above any sum of real angles, so valid pairs come first.
_GATED_COST = 1e6


# --------------------------------------------------------------------------------------------------------------
# Reading DCASE2020-style CSVs
# --------------------------------------------------------------------------------------------------------------


def read_file(path: str | Path, *, n_classes: int | None = None, reference: bool = True) -> np.ndarray:
    """Read a DCASE2020-style CSV into an event table (``seldflow.formats.events`` columns, distance NaN), rows
    in file order, because that order assigns the slots.

    Every row needs five numbers, frame, class and track integers, frame ≥ 0; a reference's azimuth must lie in
    [-180, 180] and elevation in [-90, 90], a prediction may hold any finite angle (it is only a direction). The
    class is not checked (``n_classes`` is accepted for the registry's reader signature and ignored). A third row
    in one frame raises :class:`InputError` naming the row. An empty file is a recording without rows.
    """
    path = Path(path)
    records = read_csv_records(path, "label file" if reference else "prediction file")
    if not records:
        return no_events()
    rows = [_parse_row(path, line, record, reference) for line, record in records]
    table = np.column_stack([np.asarray(rows, dtype=np.float64), np.full(len(rows), np.nan)])
    over = np.flatnonzero(frame_slots(table) >= N_SLOTS)
    if over.size:
        frame = int(table[over[0], EV_FRAME])
        raise InputError(
            path,
            f"a third direction in frame {frame}: DOAnet scores at most {N_SLOTS} per frame",
            row=records[over[0]][0],
            field="frame",
        )
    return table


def read_files(
    paths: Sequence[str | Path], *, n_classes: int | None = None, reference: bool = True
) -> list[np.ndarray]:
    """:func:`read_file` of many files at once: the same tables, or the same error for the first bad file.

    Files in the plain form are parsed in bulk (:func:`seldflow.csv_bulk.read_numeric_files`) and checked with
    :func:`_parse_row`'s rules and the slot limit over whole columns; any other file, or one with a refused row, is
    read by :func:`read_file` itself.
    """
    integers = [FILE_COLUMNS.index(name) for name in sorted(_INTEGER_COLUMNS)]

    def check(values: np.ndarray, files: np.ndarray) -> np.ndarray:
        ok = np.isfinite(values).all(axis=1) & whole_numbers(values[:, integers], MAX_INTEGER).all(axis=1)
        ok &= values[:, EV_FRAME] >= 0
        if reference:
            azimuth, elevation = values[:, EV_AZIMUTH], values[:, EV_ELEVATION]
            ok &= (azimuth >= -180) & (azimuth <= 180) & (elevation >= -90) & (elevation <= 90)
        return ok & (_rank_in_frame(files, values[:, EV_FRAME]) < N_SLOTS)

    return read_numeric_files(
        paths,
        Layout(frozenset({len(FILE_COLUMNS)})),
        check=check,
        convert=lambda values: np.column_stack([values, np.full(len(values), np.nan)]),
        slow=lambda path: read_file(path, reference=reference),
    )


def _rank_in_frame(files: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Per row, how many earlier rows of the same file share its frame (:func:`frame_slots` of every file)."""
    order = np.lexsort((np.arange(len(files)), frames, files))
    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = (files[order][1:] != files[order][:-1]) | (frames[order][1:] != frames[order][:-1])
    starts = np.flatnonzero(new_group)
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order)) - np.repeat(starts, np.diff(np.append(starts, len(order))))
    return ranks


def _parse_row(path: Path, line: int, record: list[str], reference: bool) -> list[float]:
    values = parse_numbers(path, line, record, FILE_COLUMNS, integers=_INTEGER_COLUMNS)
    frame, _, _, azimuth, elevation = values
    if frame < 0:
        raise InputError(path, f"negative frame {frame:g}", row=line, field="frame")
    if reference:
        check_event_fields(path, line, cls=0, source=0, azimuth=azimuth, elevation=elevation, distance=0.0, n_classes=1)
    return values


def frame_slots(table: np.ndarray) -> np.ndarray:
    """Slot of each row: its position among the rows of its frame, in table order (the official label builder
    appends a frame's rows in file order, wherever in the file they stand)."""
    return rank_within(table[:, EV_FRAME].astype(np.int64))


def rank_within(groups: np.ndarray) -> np.ndarray:
    """Per element, how many earlier elements share its group label (0 for the first of each group)."""
    order = np.argsort(groups, kind="stable")
    ranked = groups[order]
    ranks = np.empty(len(groups), dtype=np.int64)
    ranks[order] = np.arange(len(groups)) - np.searchsorted(ranked, ranked, side="left")
    return ranks


# --------------------------------------------------------------------------------------------------------------
# DOAnet scores (official)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DoaSlots:
    """Frame-wise class-agnostic directions of one recording: ``xyz`` ``(frames, slots, 3)`` and ``active``
    ``(frames, slots)`` bool. Predicted vectors need not be unit length (the metric normalises them, as the
    official code does a network's raw output); reference vectors are used as given."""

    xyz: np.ndarray
    active: np.ndarray


def slots_from_table(table: np.ndarray, n_frames: int, n_slots: int = N_SLOTS) -> DoaSlots:
    """The :class:`DoaSlots` of an event table over ``n_frames`` frames, rows filling slots in table order."""
    xyz = np.zeros((n_frames, n_slots, 3))
    active = np.zeros((n_frames, n_slots), dtype=bool)
    frames, slots = table[:, EV_FRAME].astype(np.int64), frame_slots(table)
    xyz[frames, slots] = unit_vectors(table)
    active[frames, slots] = True
    return DoaSlots(xyz, active)


@dataclass(frozen=True)
class DoaCounts:
    """What the official ``doa_metric`` accumulates (without its 1e-7 starts): matched angle sum in radians,
    TP, FP, FN, IDS and the active reference and predicted directions. Counts of recordings add up."""

    angle_sum: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    ids: int = 0
    n_ref: int = 0
    n_pred: int = 0

    def __add__(self, other: DoaCounts) -> DoaCounts:
        return DoaCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def doanet_counts(reference: DoaSlots, prediction: DoaSlots) -> DoaCounts:
    """One recording's counts, as one official ``partial_compute_metric`` call with the activity branch."""
    if reference.active.shape != prediction.active.shape:
        raise ValueError(f"reference {reference.active.shape} and prediction {prediction.active.shape} differ")
    n_ref, n_pred = reference.active.sum(axis=1), prediction.active.sum(axis=1)
    births = prediction.active[1:] & ~prediction.active[:-1]
    return DoaCounts(
        angle_sum=float(matched_angles(reference, prediction).sum()),
        tp=int(np.minimum(n_ref, n_pred).sum()),
        fp=int(np.maximum(n_pred - n_ref, 0).sum()),
        fn=int(np.maximum(n_ref - n_pred, 0).sum()),
        ids=int(births.sum()),
        n_ref=int(n_ref.sum()),
        n_pred=int(n_pred.sum()),
    )


def angle_matrix(reference: DoaSlots, prediction: DoaSlots) -> np.ndarray:
    """Per frame the official angles (radians) ``(frames, predicted slot, reference slot)``: predictions
    renormalised with +1e-10, cosines clamped to ±(1 − 1e-7)."""
    cosines = np.einsum("tpc,trc->tpr", normalised(prediction.xyz), reference.xyz)
    return np.arccos(np.clip(cosines, -1.0 + OFFICIAL_EPS, 1.0 - OFFICIAL_EPS))


def matched_angles(reference: DoaSlots, prediction: DoaSlots) -> np.ndarray:
    """Per frame the sum of angles of the minimum-cost assignment of active predictions to active references
    (0 where either side is empty): what ``linear_sum_assignment`` finds, in closed form where it can be."""
    angles = angle_matrix(reference, prediction)
    pairs = prediction.active[:, :, None] & reference.active[:, None, :]
    n_matched = np.minimum(reference.active.sum(axis=1), prediction.active.sum(axis=1))
    cheapest = np.where(pairs, angles, np.inf).min(axis=(1, 2), initial=np.inf)
    total = np.where(n_matched == 1, cheapest, 0.0)
    several = np.flatnonzero(n_matched >= 2)
    if angles.shape[1:] == (2, 2):  # both slots active on both sides: the cheaper of the two pairings
        straight = angles[several, 0, 0] + angles[several, 1, 1]
        crossed = angles[several, 0, 1] + angles[several, 1, 0]
        total[several] = np.minimum(straight, crossed)
    else:
        for t in several:
            block = angles[t][prediction.active[t]][:, reference.active[t]]
            rows, cols = linear_sum_assignment(block)
            total[t] = block[rows, cols].sum()
    return total


def doanet_scores(counts: DoaCounts) -> dict[str, float | int]:
    """LE (degrees), MOTA, LR, LP, LF (percent) and IDS as the official ``get_results`` computes them."""
    total_gt = OFFICIAL_EPS + counts.n_ref
    total_pred = OFFICIAL_EPS + counts.n_pred
    le = counts.angle_sum / counts.tp if counts.tp else float("nan")
    mota = 1 - (counts.fp + counts.fn + counts.ids) / (total_gt + OFFICIAL_EPS)
    lr = counts.tp / total_gt
    lp = counts.tp / total_pred
    lf = 2 * lp * lr / (lp + lr + OFFICIAL_EPS)
    return {
        "LE": 180.0 * le / np.pi,
        "MOTA": 100.0 * mota,
        "IDS": counts.ids,
        "LR": 100.0 * lr,
        "LP": 100.0 * lp,
        "LF": 100.0 * lf,
    }


# --------------------------------------------------------------------------------------------------------------
# CLEAR-MOT (canonical)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tracks:
    """Detections of one recording for CLEAR-MOT: ``frame`` and track ``ident`` (int64) and unit ``xyz`` per
    detection, identities unique within a frame."""

    frame: np.ndarray
    ident: np.ndarray
    xyz: np.ndarray


def tracks_from_table(table: np.ndarray, *, split_at_gaps: bool) -> Tracks:
    """Tracks of an event table, identified by (class, track) (a repeated pair within a frame by its order).

    ``split_at_gaps`` starts a new identity wherever a pair was absent in the previous frame (reference tracks:
    DCASE metadata reuses a track index for a later event).
    """
    frame = table[:, EV_FRAME].astype(np.int64)
    if not len(table):
        return Tracks(frame, np.zeros(0, dtype=np.int64), np.zeros((0, 3)))
    pair = np.column_stack([table[:, EV_CLASS], table[:, EV_TRACK]]).astype(np.int64)
    in_frame = _labels(np.column_stack([frame, pair]))
    ident = _labels(np.column_stack([pair, rank_within(in_frame)]))
    if split_at_gaps:
        order = np.lexsort((frame, ident))
        starts = np.ones(len(table), dtype=bool)
        starts[1:] = (ident[order][1:] != ident[order][:-1]) | (frame[order][1:] != frame[order][:-1] + 1)
        ident = np.empty(len(table), dtype=np.int64)
        ident[order] = np.cumsum(starts) - 1
    return Tracks(frame, ident, unit_vectors(table))


def _labels(keys: np.ndarray) -> np.ndarray:
    """An int64 label per row of ``keys``, equal for equal rows."""
    return np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


@dataclass(frozen=True)
class ClearMotCounts:
    """CLEAR-MOT sums: matches and their angle sum (degrees), misses (FN), false positives, identity switches and
    reference detections. Counts of recordings add up."""

    matches: int = 0
    distance_sum: float = 0.0
    fn: int = 0
    fp: int = 0
    switches: int = 0
    n_ref: int = 0

    def __add__(self, other: ClearMotCounts) -> ClearMotCounts:
        return ClearMotCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def clear_mot_counts(reference: Tracks, prediction: Tracks, gate_deg: float = DEFAULT_GATE_DEG) -> ClearMotCounts:
    """CLEAR-MOT counts of one recording (Bernardin & Stiefelhagen 2008), frame by frame.

    In each frame, first every reference track keeps the prediction it was last matched to, if that prediction is
    present and at most ``gate_deg`` away; then the remaining tracks are paired by the Hungarian method on their
    angles, pairs beyond the gate excluded. A new pair whose reference track was last matched to another
    prediction is an identity switch. Unmatched references are misses, unmatched predictions false positives.
    """
    ref_frames, pred_frames = _frame_groups(reference), _frame_groups(prediction)
    last: dict[int, int] = {}  # reference identity -> prediction identity of its last match
    matches, distance_sum, switches = 0, 0.0, 0
    for frame in sorted(ref_frames.keys() & pred_frames.keys()):
        r, p = ref_frames[frame], pred_frames[frame]
        ref_ids, pred_ids = reference.ident[r].tolist(), prediction.ident[p].tolist()
        angles = np.degrees(np.arccos(np.clip(reference.xyz[r] @ prediction.xyz[p].T, -1.0, 1.0)))
        kept, new = _frame_pairs(ref_ids, pred_ids, angles <= gate_deg, angles, last)
        switches += sum(ref_ids[i] in last and last[ref_ids[i]] != pred_ids[j] for i, j in new)
        for i, j in kept + new:
            last[ref_ids[i]] = pred_ids[j]
            distance_sum += float(angles[i, j])
        matches += len(kept) + len(new)
    return ClearMotCounts(
        matches=matches,
        distance_sum=distance_sum,
        fn=len(reference.frame) - matches,
        fp=len(prediction.frame) - matches,
        switches=switches,
        n_ref=len(reference.frame),
    )


def _frame_groups(tracks: Tracks) -> dict[int, np.ndarray]:
    """Frame -> indices of its detections."""
    frames, inverse = np.unique(tracks.frame, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(frames) + 1))
    return {int(f): order[bounds[k] : bounds[k + 1]] for k, f in enumerate(frames)}


def _frame_pairs(
    ref_ids: list[int], pred_ids: list[int], allowed: np.ndarray, angles: np.ndarray, last: Mapping[int, int]
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """One frame's (reference index, prediction index) pairs: those kept from the last matches, then new ones."""
    position = {ident: j for j, ident in enumerate(pred_ids)}
    kept: list[tuple[int, int]] = []
    for i, ident in enumerate(ref_ids):
        j = position.get(last.get(ident, -1))
        if j is not None and allowed[i, j] and all(j != taken for _, taken in kept):
            kept.append((i, j))
    free_refs = [i for i in range(len(ref_ids)) if all(i != done for done, _ in kept)]
    free_preds = [j for j in range(len(pred_ids)) if all(j != taken for _, taken in kept)]
    new: list[tuple[int, int]] = []
    if free_refs and free_preds:
        cost = np.where(allowed, angles, _GATED_COST)[np.ix_(free_refs, free_preds)]
        rows, cols = linear_sum_assignment(cost)
        new = [
            (free_refs[a], free_preds[b])
            for a, b in zip(rows, cols, strict=True)
            if allowed[free_refs[a], free_preds[b]]
        ]
    return kept, new


def clear_mot_scores(counts: ClearMotCounts, gate_deg: float) -> dict[str, float | int]:
    """MOTA (percent), MOTP (degrees), IDS and the counts behind them; NaN where undefined."""
    mota = 100.0 * (1 - (counts.fn + counts.fp + counts.switches) / counts.n_ref) if counts.n_ref else float("nan")
    return {
        "MOTA": mota,
        "MOTP": counts.distance_sum / counts.matches if counts.matches else float("nan"),
        "IDS": counts.switches,
        "FP": counts.fp,
        "FN": counts.fn,
        "matches": counts.matches,
        "n_ref": counts.n_ref,
        "gate_deg": gate_deg,
    }


# --------------------------------------------------------------------------------------------------------------
# Folders of CSVs (the registry's entry point)
# --------------------------------------------------------------------------------------------------------------


def recording_frames(reference: np.ndarray, prediction: np.ndarray) -> int:
    """Frames a recording spans: through the last frame of either table (none when both are empty)."""
    frames = np.concatenate([reference[:, EV_FRAME], prediction[:, EV_FRAME]])
    return int(frames.max()) + 1 if len(frames) else 0


def compute_metrics(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    n_classes: int = CLASS_AGNOSTIC,
    missing: str = "empty",
    ref_source: str = "references",
    pred_source: str = "predictions",
    doa_threshold: float = DEFAULT_GATE_DEG,
) -> dict[str, Any]:
    """Score event tables keyed by recording name (see the module docstring): the DOAnet keys, ``counts``,
    ``clear_mot`` (gated at ``doa_threshold`` degrees) and ``settings``.

    A prediction that is ``None`` or absent (with ``missing="empty"``, the default) is a recording without
    predictions. ``n_classes`` exists for the registry's signature and is ignored, like the class column (so a
    caller that passes its task's class count to every metric needs no special case).
    """
    if not doa_threshold > 0:
        raise ConfigError(f"metric {METRIC_NAME}", "doa_threshold", f"must be positive, got {doa_threshold}")
    pairs = pair_clips(references, predictions, missing=missing, ref_source=ref_source, pred_source=pred_source)
    doanet, clear = DoaCounts(), ClearMotCounts()
    without = 0
    for _, reference, prediction in sorted(pairs, key=lambda pair: pair[0]):
        if prediction is None or not len(prediction):
            without += 1
            prediction = no_events()
        n_frames = recording_frames(reference, prediction)
        doanet += doanet_counts(slots_from_table(reference, n_frames), slots_from_table(prediction, n_frames))
        clear += clear_mot_counts(
            tracks_from_table(reference, split_at_gaps=True),
            tracks_from_table(prediction, split_at_gaps=False),
            doa_threshold,
        )
    return {
        **doanet_scores(doanet),
        "counts": {"TP": doanet.tp, "FP": doanet.fp, "FN": doanet.fn, "n_ref": doanet.n_ref, "n_pred": doanet.n_pred},
        "clear_mot": clear_mot_scores(clear, doa_threshold),
        "settings": {"recordings": len(pairs), "recordings_without_predictions": without},
    }
