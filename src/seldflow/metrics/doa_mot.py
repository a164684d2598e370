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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit
from scipy.optimize import linear_sum_assignment

from seldflow.csv_bulk import Layout, read_numeric_files, whole_numbers
from seldflow.errors import ConfigError, InputError
from seldflow.formats.dcase2021 import FILE_COLUMNS
from seldflow.formats.events import (
    EV_AZIMUTH,
    EV_CLASS,
    EV_ELEVATION,
    EV_FRAME,
    EV_TRACK,
    frame_slots,
    no_events,
    rank_within,
)
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
# Identities of the CLEAR-MOT cells of a chunk (a chunk holds far fewer than 2**31).
_CELL_INDEX = np.int32
# Relative gap below which two pairings of a 2 x 2 frame count as tied (linear_sum_assignment then decides).
CLEAR_MARGIN = 1e-9
# Recordings read and scored together (their tables, rows, DOAnet counts and CLEAR-MOT cells): bounds the working
# memory of scoring a folder to about a megabyte (the official loop holds one recording at a time).
RECORDING_CHUNK = 50


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
    return rank_within(_row_labels(files, frames.astype(np.int64)))


def _parse_row(path: Path, line: int, record: list[str], reference: bool) -> list[float]:
    values = parse_numbers(path, line, record, FILE_COLUMNS, integers=_INTEGER_COLUMNS)
    frame, _, _, azimuth, elevation = values
    if frame < 0:
        raise InputError(path, f"negative frame {frame:g}", row=line, field="frame")
    if reference:
        check_event_fields(path, line, cls=0, source=0, azimuth=azimuth, elevation=elevation, distance=0.0, n_classes=1)
    return values


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
        angles = clear_mot_angles(reference.xyz[r], prediction.xyz[p])
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
    tally = Tally(doa_threshold=doa_threshold)
    pairs = sorted(
        pair_clips(references, predictions, missing=missing, ref_source=ref_source, pred_source=pred_source),
        key=lambda pair: pair[0],
    )
    tally.add([reference for _, reference, _ in pairs], [prediction for _, _, prediction in pairs])
    return tally.report()


class Tally:
    """:func:`compute_metrics` over recordings given a few at a time, in sorted name order: the counts of both
    metrics add up over recordings, so a folder can be scored a chunk of :data:`RECORDING_CHUNK` files at a time
    with flat memory (``seldflow score``, :func:`seldflow.score.score_dirs`). Recordings are scored in chunks of
    :data:`RECORDING_CHUNK`, counted from the first, however they are handed in, so the sums, and the numbers to
    the last bit, do not depend on how the recordings arrive."""

    chunk = RECORDING_CHUNK

    def __init__(self, *, doa_threshold: float = DEFAULT_GATE_DEG) -> None:
        if not doa_threshold > 0:
            raise ConfigError(f"metric {METRIC_NAME}", "doa_threshold", f"must be positive, got {doa_threshold}")
        self.doa_threshold = doa_threshold
        self.doanet, self.clear = DoaCounts(), ClearMotCounts()
        self.recordings = self.without_predictions = 0
        self._waiting: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])

    def add(self, references: Sequence[np.ndarray], predictions: Sequence[np.ndarray | None]) -> None:
        """The next recordings: their reference tables and prediction tables (None: no predictions)."""
        if len(references) != len(predictions):
            raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
        refs, preds = self._waiting
        refs += [np.asarray(reference, dtype=np.float64).reshape(-1, 6) for reference in references]
        preds += [
            no_events() if prediction is None else np.asarray(prediction, dtype=np.float64).reshape(-1, 6)
            for prediction in predictions
        ]
        while len(refs) >= self.chunk:
            chunk = refs[: self.chunk], preds[: self.chunk]
            del refs[: self.chunk], preds[: self.chunk]
            self._score(*chunk)

    def _score(self, refs: list[np.ndarray], preds: list[np.ndarray]) -> None:
        """Score recordings, emptying the lists once their rows are gathered (a caller that keeps no other
        reference to the tables frees them before the counting's own arrays are made)."""
        self.recordings += len(refs)
        self.without_predictions += sum(not len(prediction) for prediction in preds)
        recordings = _Recordings(refs, preds)
        refs.clear(), preds.clear()
        self.doanet += recordings.doanet_counts()
        crowded, cells = recordings.clear_mot_parts(self.doa_threshold)
        del recordings  # its rows are freed before the matching, which needs only the cells
        self.clear += crowded + match_cells(cells, self.doa_threshold)

    def report(self) -> dict[str, Any]:
        """The report of every recording added (the DOAnet keys, ``counts``, ``clear_mot`` and ``settings``)."""
        if self._waiting[0]:
            self._score(*self._waiting)
        doanet = self.doanet
        return {
            **doanet_scores(doanet),
            "counts": {
                "TP": doanet.tp,
                "FP": doanet.fp,
                "FN": doanet.fn,
                "n_ref": doanet.n_ref,
                "n_pred": doanet.n_pred,
            },
            "clear_mot": clear_mot_scores(self.clear, self.doa_threshold),
            "settings": {"recordings": self.recordings, "recordings_without_predictions": self.without_predictions},
        }


# --------------------------------------------------------------------------------------------------------------
# All recordings at once (what compute_metrics runs; the per-recording functions above state the same rules)
# --------------------------------------------------------------------------------------------------------------


def doanet_counts_of(refs: list[np.ndarray], preds: list[np.ndarray]) -> DoaCounts:
    """The sum of :func:`doanet_counts` over recordings (reference and prediction tables), computed at once."""
    return _Recordings(refs, preds).doanet_counts()


def clear_mot_counts_of(refs: list[np.ndarray], preds: list[np.ndarray], gate_deg: float) -> ClearMotCounts:
    """The sum of :func:`clear_mot_counts` over recordings, computed for all recordings together."""
    crowded, cells = _Recordings(refs, preds).clear_mot_parts(gate_deg)
    return crowded + match_cells(cells, gate_deg)


def _row_labels(*columns: np.ndarray) -> np.ndarray:
    """An int64 label per row, equal for rows equal in every (integer) column, numbered in sorted row order.

    The columns are combined into one int64 key where their ranges allow it (always, for label tables), which
    sorts much faster than the rows themselves.
    """
    n = len(columns[0])
    if not n:
        return np.zeros(0, dtype=np.int64)
    spans = [int(column.max()) - int(column.min()) + 1 for column in columns]
    if math.prod(spans) < 2**62:
        key = np.zeros(n, dtype=np.int64)
        for column, span in zip(columns, spans, strict=True):
            key = key * span + (column - column.min())
        return np.unique(key, return_inverse=True)[1].astype(np.int64)
    order = np.lexsort(columns[::-1])
    new = np.zeros(n, dtype=bool)
    new[0] = True
    for column in columns:
        new[1:] |= column[order][1:] != column[order][:-1]
    labels = np.empty(n, dtype=np.int64)
    labels[order] = np.cumsum(new) - 1
    return labels


class _Side:
    """One side's rows of several recordings, one recording after another, with each row's recording, frame,
    global frame (recording ``r`` owns ``offsets[r] .. offsets[r] + n_frames[r] - 1``), direction and slot (its
    position among the rows of its frame, :func:`frame_slots`)."""

    def __init__(self, tables: list[np.ndarray], offsets: np.ndarray) -> None:
        lengths = np.array([len(table) for table in tables], dtype=np.int64)
        self.starts = np.cumsum(lengths) - lengths
        self.rows = np.concatenate(tables) if tables else no_events()
        self.recording = np.repeat(np.arange(len(tables)), lengths)
        self.frame = self.rows[:, EV_FRAME].astype(np.int64)
        self.global_frame = offsets[self.recording] + self.frame
        self.xyz = unit_vectors(self.rows)
        self.slot = rank_within(self.global_frame)

    @property
    def n_recordings(self) -> int:
        return len(self.starts)

    def table(self, recording: int) -> np.ndarray:
        """The event table of one recording (its rows, without a copy: the tables themselves need not be kept)."""
        start = int(self.starts[recording])
        return self.rows[start : start + int(np.count_nonzero(self.recording == recording))]

    def slots(self, total_frames: int) -> DoaSlots:
        """:func:`slots_from_table` of every recording, on the global frame axis."""
        xyz = np.zeros((total_frames, N_SLOTS, 3))
        active = np.zeros((total_frames, N_SLOTS), dtype=bool)
        xyz[self.global_frame, self.slot] = self.xyz
        active[self.global_frame, self.slot] = True
        return DoaSlots(xyz, active)

    def slot_rows(self, total_frames: int) -> np.ndarray:
        """Per global frame, the rows in slots 0 and 1 ``(total_frames, 2)``, -1 where empty."""
        rows = np.full((total_frames, N_SLOTS), -1, dtype=np.int64)
        rows[self.global_frame, self.slot] = np.arange(len(self.rows))
        return rows

    def identities(self, slot_rows: np.ndarray, *, split_at_gaps: bool) -> np.ndarray:
        """:func:`tracks_from_table`'s identities (frames of at most two rows), distinct across recordings."""
        cls, track = self.rows[:, EV_CLASS].astype(np.int64), self.rows[:, EV_TRACK].astype(np.int64)
        pairs = slot_rows[slot_rows[:, 1] >= 0]
        repeated = pairs[(cls[pairs[:, 0]] == cls[pairs[:, 1]]) & (track[pairs[:, 0]] == track[pairs[:, 1]]), 1]
        rank = np.zeros(len(self.rows), dtype=np.int64)
        rank[repeated] = 1  # a (class, track) pair seen twice in a frame: its second row
        ident = _row_labels(self.recording, cls, track, rank)
        if split_at_gaps and len(ident):
            order = np.lexsort((self.frame, ident))
            frames = self.frame[order]
            starts = np.ones(len(ident), dtype=bool)
            starts[1:] = (ident[order][1:] != ident[order][:-1]) | (frames[1:] != frames[:-1] + 1)
            ident = np.empty(len(ident), dtype=np.int64)
            ident[order] = np.cumsum(starts) - 1
        return ident


class _Recordings:
    """Reference and prediction tables of several recordings on one global frame axis, for the scores of all
    recordings at once. A recording spans :func:`recording_frames` frames."""

    def __init__(self, refs: list[np.ndarray], preds: list[np.ndarray]) -> None:
        self.n_frames = np.array([recording_frames(r, p) for r, p in zip(refs, preds, strict=True)], dtype=np.int64)
        self.offsets = np.cumsum(self.n_frames) - self.n_frames
        self.total = int(self.n_frames.sum())
        self.ref, self.pred = _Side(refs, self.offsets), _Side(preds, self.offsets)

    def doanet_counts(self) -> DoaCounts:
        """:func:`doanet_counts` summed over the recordings; births only within a recording (its first frame
        never follows another recording's last)."""
        reference, prediction = self.ref.slots(self.total), self.pred.slots(self.total)
        n_ref, n_pred = reference.active.sum(axis=1), prediction.active.sum(axis=1)
        births = prediction.active[1:] & ~prediction.active[:-1]
        births[self.offsets[(self.n_frames > 0) & (self.offsets > 0)] - 1] = False
        return DoaCounts(
            angle_sum=float(matched_angles(reference, prediction).sum()),
            tp=int(np.minimum(n_ref, n_pred).sum()),
            fp=int(np.maximum(n_pred - n_ref, 0).sum()),
            fn=int(np.maximum(n_ref - n_pred, 0).sum()),
            ids=int(births.sum()),
            n_ref=int(n_ref.sum()),
            n_pred=int(n_pred.sum()),
        )

    def clear_mot_parts(self, gate_deg: float) -> tuple[ClearMotCounts, _CellBlock]:
        """:func:`clear_mot_counts` summed over the recordings, in two parts: the counts of the recordings with a
        crowded frame, and the cells of the others, for :func:`match_cells`.

        CLEAR-MOT carries each reference track's last match from frame to frame, so the cells (the frames with
        both references and predictions) are matched in turn, recording after recording (:func:`match_cells`).
        Frames hold at most two detections per side there (DCASE2020 files cannot hold more); a recording with a
        more crowded frame is scored by :func:`clear_mot_counts` on its own, with ``gate_deg`` (the cells take the
        gate when they are matched).
        """
        crowded = set(self.ref.recording[self.ref.slot >= N_SLOTS].tolist())
        crowded |= set(self.pred.recording[self.pred.slot >= N_SLOTS].tolist())
        if not crowded:
            return ClearMotCounts(), self._cells()
        total = ClearMotCounts()
        for recording in sorted(crowded):
            total += clear_mot_counts(
                tracks_from_table(self.ref.table(recording), split_at_gaps=True),
                tracks_from_table(self.pred.table(recording), split_at_gaps=False),
                gate_deg,
            )
        keep = [index for index in range(self.ref.n_recordings) if index not in crowded]
        rest = _Recordings([self.ref.table(index) for index in keep], [self.pred.table(index) for index in keep])
        return total, rest._cells()

    def _cells(self) -> _CellBlock:
        """The common frames (references and predictions both present) of recordings without a crowded frame."""
        ref_rows, pred_rows = self.ref.slot_rows(self.total), self.pred.slot_rows(self.total)
        ref_ident = self.ref.identities(ref_rows, split_at_gaps=True)
        pred_ident = self.pred.identities(pred_rows, split_at_gaps=False)
        common = np.flatnonzero((ref_rows[:, 0] >= 0) & (pred_rows[:, 0] >= 0))  # global frames, ascending
        ref_rows, pred_rows = ref_rows[common], pred_rows[common]
        return _CellBlock(
            ref_ident=np.where(ref_rows >= 0, ref_ident[ref_rows], -1).astype(_CELL_INDEX),
            pred_ident=np.where(pred_rows >= 0, pred_ident[pred_rows], -1).astype(_CELL_INDEX),
            angles=clear_mot_angles(self.ref.xyz[ref_rows], self.pred.xyz[pred_rows]),  # (n, 2, 2)
            ref_tracks=int(ref_ident.max(initial=-1)) + 1,
            ref_rows=len(self.ref.rows),
            pred_rows=len(self.pred.rows),
        )


@dataclass(frozen=True)
class _CellBlock:
    """The CLEAR-MOT cells of some recordings, recording after recording, each's in frame order: per common frame,
    the identities in its two reference and two predicted slots (-1: empty slot) and the angles between them; with
    the number of reference identities and of rows (detections) of each side."""

    ref_ident: np.ndarray
    pred_ident: np.ndarray
    angles: np.ndarray
    ref_tracks: int
    ref_rows: int
    pred_rows: int


def match_cells(cells: _CellBlock, gate_deg: float) -> ClearMotCounts:
    """The CLEAR-MOT counts of the recordings of ``cells``, by the rules of :func:`_frame_pairs`, cell by cell.

    The frames must be matched in turn (a track keeps its last match), so a compiled loop walks them
    (:func:`_match_in_turn`); the one decision it cannot take itself, a near tie between the two pairings of a full
    2 x 2 frame, depends on that frame's angles alone and is taken beforehand by ``linear_sum_assignment``
    (:func:`_full_frame_pairings`).
    """
    valid = (cells.ref_ident >= 0)[:, :, None] & (cells.pred_ident >= 0)[:, None, :]
    allowed = valid & (cells.angles <= gate_deg)
    cost = np.where(allowed, cells.angles, _GATED_COST)
    last = np.full(cells.ref_tracks, -1, dtype=np.int64)  # reference identity -> predicted identity of its last match
    matches, distance_sum, switches = _match_in_turn(
        cells.ref_ident, cells.pred_ident, cells.angles, allowed, cost, _full_frame_pairings(cost, valid), last
    )
    return ClearMotCounts(
        matches=matches,
        distance_sum=distance_sum,
        fn=cells.ref_rows - matches,
        fp=cells.pred_rows - matches,
        switches=switches,
        n_ref=cells.ref_rows,
    )


def _full_frame_pairings(cost: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per cell, how ``linear_sum_assignment`` pairs its two reference and two predicted tracks when all four are
    free: 0 straight (0-0, 1-1), 1 crossed (0-1, 1-0); -1 for a cell without two tracks on each side. The clearly
    cheaper pairing wins; near ties (relative gap below :data:`CLEAR_MARGIN`) are the solver's to decide."""
    straight = cost[:, 0, 0] + cost[:, 1, 1]
    crossed = cost[:, 0, 1] + cost[:, 1, 0]
    margin = CLEAR_MARGIN * (1.0 + np.minimum(straight, crossed))
    pairing = np.where(crossed < straight - margin, 1, 0).astype(np.int8)
    full = valid.all(axis=(1, 2))
    for cell in np.flatnonzero(full & (np.abs(straight - crossed) <= margin)):
        pairing[cell] = int(linear_sum_assignment(cost[cell])[1][0])
    pairing[~full] = -1
    return pairing


# numba: each frame's matching depends on the last, so the frames are a loop, which NumPy can only run one
# array call per frame (a few hundred microseconds each); compiled, a frame costs a few dozen nanoseconds.
@njit(cache=True)
def _match_in_turn(
    ref_ident: np.ndarray,
    pred_ident: np.ndarray,
    angles: np.ndarray,
    allowed: np.ndarray,
    cost: np.ndarray,
    pairing: np.ndarray,
    last: np.ndarray,
) -> tuple[int, float, int]:
    """Match the cells in turn, updating ``last``: per frame, each reference slot (0 first) keeps the predicted
    track it was last matched to while that one is there and within the gate; the free tracks are then paired as
    ``linear_sum_assignment`` pairs them (one free track on a side: its first cheapest partner), pairs beyond the
    gate dropped. Returns the matches, their angle sum and the identity switches."""
    matches, distance_sum, switches = 0, 0.0, 0
    previous = np.empty(2, dtype=np.int64)
    present = np.empty(2, dtype=np.int64)  # predicted identities, -2 for an empty slot (never a last match)
    kept = np.empty(2, dtype=np.int64)
    new = np.empty(2, dtype=np.int64)
    taken = np.empty(2, dtype=np.bool_)
    for c in range(len(ref_ident)):
        for slot in range(2):
            present[slot] = pred_ident[c, slot] if pred_ident[c, slot] >= 0 else -2
            previous[slot] = last[ref_ident[c, slot]] if ref_ident[c, slot] >= 0 else -1
            kept[slot], new[slot], taken[slot] = -1, -1, False
        for i in range(2):
            j = 0 if present[0] == previous[i] else (1 if present[1] == previous[i] else -1)
            if previous[i] >= 0 and j >= 0 and allowed[c, i, j] and not taken[j]:
                kept[i], taken[j] = j, True
        free_ref0, free_ref1 = ref_ident[c, 0] >= 0 and kept[0] < 0, ref_ident[c, 1] >= 0 and kept[1] < 0
        free_pred0, free_pred1 = pred_ident[c, 0] >= 0 and not taken[0], pred_ident[c, 1] >= 0 and not taken[1]
        n_ref, n_pred = int(free_ref0) + int(free_ref1), int(free_pred0) + int(free_pred1)
        if n_ref == 1 and n_pred >= 1:
            i = 0 if free_ref0 else 1
            if n_pred == 2:
                new[i] = 0 if cost[c, i, 0] <= cost[c, i, 1] else 1
            else:
                new[i] = 0 if free_pred0 else 1
        elif n_ref == 2 and n_pred == 1:
            j = 0 if free_pred0 else 1
            new[0 if cost[c, 0, j] <= cost[c, 1, j] else 1] = j
        elif n_ref == 2 and n_pred == 2:
            new[0], new[1] = pairing[c], 1 - pairing[c]
        for i in range(2):
            if new[i] >= 0 and not allowed[c, i, new[i]]:
                new[i] = -1
            if new[i] >= 0 and previous[i] >= 0 and previous[i] != present[new[i]]:
                switches += 1
            paired = max(kept[i], new[i])  # a reference slot is kept or new, never both
            if paired >= 0:
                last[ref_ident[c, i]] = present[paired]
                matches += 1
                distance_sum += angles[c, i, paired]
    return matches, distance_sum, switches


def clear_mot_angles(ref_xyz: np.ndarray, pred_xyz: np.ndarray) -> np.ndarray:
    """Angles in degrees between every reference and predicted unit vector over the last two axes:
    ``(..., n_ref, 3)`` and ``(..., n_pred, 3)`` give ``(..., n_ref, n_pred)`` (cosines clipped to [-1, 1])."""
    cosine = (ref_xyz[..., :, None, :] * pred_xyz[..., None, :, :]).sum(axis=-1)
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
