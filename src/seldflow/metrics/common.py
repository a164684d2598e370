"""Pieces every official-metric implementation shares: clip pairing, label folders, frame grouping, track matching.

The DCASE scorers all compare one reference table with one prediction table per clip, frame by frame and class by
class, pairing the tracks of a class with the Hungarian algorithm. The helpers here do that for all clips at once
with numpy, so each metric module only states its own cost, thresholds and counting rules.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
from scipy.optimize import linear_sum_assignment

from seldflow.errors import InputError
from seldflow.formats.events import EV_AZIMUTH, EV_ELEVATION

# Every official scorer adds numpy's float64 epsilon to its denominators; keeping it keeps the last digits equal.
EPS = float(np.finfo(np.float64).eps)
# The official DCASE2024 and DOAnet code add this under the square root when normalising direction vectors.
NORM_EPS = 1e-10

MISSING_MODES = ("error", "skip", "empty")
_LISTED_NAMES = 10

# Reads one label file: (path, n_classes=..., reference=...) -> table.
FileReader = Callable[..., np.ndarray]
# Reads many label files at once: (paths, n_classes=..., reference=...) -> their tables, in order.
FilesReader = Callable[..., list[np.ndarray]]


# --------------------------------------------------------------------------------------------------------------
# Clip pairing
# --------------------------------------------------------------------------------------------------------------


def check_missing(missing: str) -> None:
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {MISSING_MODES}, got {missing!r}")


def pair_clips(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    *,
    missing: str,
    ref_source: str = "references",
    pred_source: str = "predictions",
) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """``(name, reference, prediction or None)`` of the clips to compare, in reference order (see
    :func:`paired_names`)."""
    names = paired_names(references, predictions, missing=missing, ref_source=ref_source, pred_source=pred_source)
    return [(name, references[name], predictions.get(name)) for name in names]


def paired_names(
    references: Mapping[str, Any],
    predictions: Mapping[str, Any],
    *,
    missing: str,
    ref_source: str = "references",
    pred_source: str = "predictions",
) -> list[str]:
    """The names of the clips to compare, in reference order (a name without a prediction only with ``missing``
    ``"empty"``).

    The official scorers iterate over prediction files: a prediction without a reference crashes them (always an
    error here, as it would otherwise go unscored), and a reference without a prediction is silently left out,
    losing its false negatives. Here that is an error unless ``missing`` is ``"skip"`` (the official behaviour,
    with a warning on stderr) or ``"empty"`` (scored as a clip with no detections, prediction ``None``).
    """
    check_missing(missing)
    check_pairing(
        [name for name in predictions if name not in references],
        [name for name in references if name not in predictions],
        missing=missing,
        ref_source=ref_source,
        pred_source=pred_source,
    )
    return [name for name in references if name in predictions or missing == "empty"]


def check_pairing(
    orphans: Sequence[str], absent: Sequence[str], *, missing: str, ref_source: str, pred_source: str
) -> None:
    """The faults of pairing predictions with references (:func:`paired_names`): ``orphans`` (predictions
    without a reference) are an error, ``absent`` (references without a prediction) one too with ``missing``
    ``"error"`` and a warning with ``"skip"``."""
    if orphans:
        raise InputError(pred_source, f"no reference in {ref_source} for prediction(s) {name_list(orphans)}")
    if absent and missing == "error":
        raise InputError(
            pred_source,
            f"no prediction for {len(absent)} reference clip(s) in {ref_source}: {name_list(absent)} "
            "(write an empty prediction file for a clip without detections)",
        )
    if absent and missing == "skip":
        print(
            f"warning: {pred_source}: skipping {len(absent)} reference clip(s) without a prediction, as the "
            f"official scorer does (their events are not counted): {name_list(absent)}",
            file=sys.stderr,
        )


def name_list(names: Sequence[str]) -> str:
    """At most ten names, sorted, and how many more there are."""
    shown = ", ".join(sorted(names)[:_LISTED_NAMES])
    return shown if len(names) <= _LISTED_NAMES else f"{shown} (+{len(names) - _LISTED_NAMES} more)"


# --------------------------------------------------------------------------------------------------------------
# Label folders
# --------------------------------------------------------------------------------------------------------------


def read_label_dir(
    path: str | Path, read_files: FilesReader, *, n_classes: int, reference: bool
) -> dict[str, tuple[np.ndarray, str]]:
    """Stem -> (table, split) for every ``*.csv`` directly in ``path`` and in its immediate sub-folders.

    The DCASE layout keeps references in ``metadata_dev/<split>/``; predictions are usually flat. ``split`` is
    the folder the file came from, so whole splits can be selected. Stems must be unique across sub-folders
    because clips are matched by stem; files not ending in ``.csv`` and deeper folders are not read. The files are
    read together by ``read_files`` (a metric's bulk reader), in sorted order.
    """
    files = _label_files(path)
    stems = [name[: -len(".csv")] for _, name in files]
    origin: dict[str, int] = {}
    count = len(files)
    for index, stem in enumerate(stems):
        if stem in origin:
            count = index
            break
        origin[stem] = index
    # Files before a repeated stem are read first, so a bad one among them is reported as reading in order would.
    tables = read_files(
        [os.path.join(folder, name) for folder, name in files[:count]], n_classes=n_classes, reference=reference
    )
    if count < len(files):
        repeated, first = Path(*files[count]), Path(*files[origin[stems[count]]])
        raise InputError(repeated, f"duplicate clip name {stems[count]!r}: also in {first}")
    return {stem: (table, folder) for stem, (folder, _), table in zip(stems, files, tables, strict=True)}


# Names listed before they are made into an array (:func:`label_file_listing`): their strings' memory is reused.
LISTING_BATCH = 1024


@dataclass(frozen=True)
class LabelListing:
    """The ``*.csv`` label files of some folders: ``stems`` (file names without ``.csv``, encoded, sorted) and per
    stem ``folder``, an index into ``folders`` (the folder it is in: the split).

    Arrays, not a stem -> folder dict: a dict holds a Python string and an entry per file (about 150 bytes), for as
    long as the folder is scored; these hold a file in a few dozen bytes (the names are strings only while their
    folder is listed), so the listing of tens of thousands of files costs well under a megabyte.
    """

    stems: np.ndarray
    folder: np.ndarray
    folders: tuple[str, ...]

    def contains(self, stems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per stem of ``stems``, whether it is listed here, and its position here (meaningless where not)."""
        position = np.minimum(np.searchsorted(self.stems, stems), max(len(self.stems) - 1, 0))
        found = self.stems[position] == stems if len(self.stems) else np.zeros(len(stems), dtype=bool)
        return found, position

    def names(self, which: np.ndarray) -> list[str]:
        """The stems at ``which`` (a mask or positions) as names."""
        return [os.fsdecode(stem) for stem in self.stems[which].tolist()]


def label_file_listing(paths: Sequence[str | Path]) -> LabelListing:
    """The :class:`LabelListing` of the files :func:`read_label_dir` reads in each of ``paths``, without reading
    them, for scoring a folder a chunk of files at a time. A path without label files is an error, as is a stem
    in two folders (named at its file in the later folder: ``paths`` in order, each folder before its sub-folders,
    those by name)."""
    folders: list[str] = []
    listed: list[np.ndarray] = []
    for path in paths:
        found = {folder: _csv_stems(folder) for folder in _label_folders(path)}
        if not any(len(stems) for stems in found.values()):
            raise InputError(Path(path), "no .csv label files in the directory or its sub-folders")
        folders += found
        listed += found.values()
    stems = np.concatenate(listed)
    folder = np.repeat(np.arange(len(folders), dtype=np.int32), [len(found) for found in listed])
    order = np.argsort(stems, kind="stable")  # a stem's files stay in folder order
    listing = LabelListing(stems[order], folder[order], tuple(folders))
    repeated = np.flatnonzero(listing.stems[1:] == listing.stems[:-1])
    if len(repeated):
        (name,) = listing.names(repeated[:1])
        first, later = (Path(listing.folders[listing.folder[k]], f"{name}.csv") for k in (repeated[0], repeated[0] + 1))
        raise InputError(later, f"duplicate clip name {name!r}: also in {first}")
    return listing


def _csv_stems(folder: str) -> np.ndarray:
    """The encoded stems of the ``*.csv`` files directly in ``folder``, in listing order (no stat per file), made
    into arrays :data:`LISTING_BATCH` at a time, so the names are never all Python objects at once."""
    batches: list[np.ndarray] = []
    batch: list[bytes] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if _is_csv(name := entry.name) and entry.is_file():
                batch.append(os.fsencode(name[: -len(".csv")]))
                if len(batch) == LISTING_BATCH:
                    batches.append(np.array(batch, dtype=bytes))
                    batch.clear()
    batches.append(np.array(batch, dtype=bytes))
    return np.concatenate(batches)


def _label_files(path: str | Path) -> list[tuple[str, str]]:
    """(folder, name) of the ``*.csv`` files directly in ``path`` (by name), then of each sub-folder's (folders by
    name): strings, as thousands of Path objects cost. A missing folder or one without label files is an error."""
    files = [file for folder in _label_folders(path) for file in _csv_files(folder)]
    if not files:
        raise InputError(Path(path), "no .csv label files in the directory or its sub-folders")
    return files


def _label_folders(path: str | Path) -> list[str]:
    """``path`` and its immediate sub-folders (by name), the folders label files are read from."""
    if not Path(path).is_dir():
        raise InputError(Path(path), "label directory not found")
    root = str(Path(path))
    with os.scandir(root) as entries:
        subs = sorted(entry.name for entry in entries if entry.is_dir())
    return [root, *(os.path.join(root, sub) for sub in subs)]


def _csv_files(folder: str) -> list[tuple[str, str]]:
    """(folder, name) of the ``*.csv`` files directly in ``folder``, sorted by name (no stat per file)."""
    names = sorted(entry.name for entry in os.scandir(folder) if _is_csv(entry.name) and entry.is_file())
    return [(folder, name) for name in names]


def _is_csv(name: str) -> bool:
    """A ``.csv`` suffix as :attr:`pathlib.PurePath.suffix` reads it (a bare ``.csv`` is a hidden file, no suffix)."""
    return os.path.splitext(name)[1] == ".csv"


# --------------------------------------------------------------------------------------------------------------
# Frame grouping and track matching (vectorised over all clips)
# --------------------------------------------------------------------------------------------------------------


# Clips whose per-clip statistics are computed together (by_clip_chunks): bounds the working memory of scoring.
CLIP_CHUNK = 1000

ClipFunction = TypeVar("ClipFunction", bound=Callable[..., Any])


def by_clip_chunks(function: ClipFunction) -> ClipFunction:
    """Run a per-clip statistics function ``(refs, preds, **options) -> NamedTuple`` (every field an array with
    one entry per clip on axis 0) on :data:`CLIP_CHUNK` clips at a time and join the parts.

    Each clip's statistics depend on that clip alone, so the joined result is exactly the one-pass result, while
    the grouped and sorted copies of the rows exist for one chunk at a time instead of for the whole dataset.
    """

    @functools.wraps(function)
    def chunked(refs: Sequence[np.ndarray], preds: Sequence[np.ndarray], **options: Any) -> Any:
        if len(refs) <= CLIP_CHUNK:
            return function(refs, preds, **options)
        starts = range(0, len(refs), CLIP_CHUNK)
        parts = [function(refs[s : s + CLIP_CHUNK], preds[s : s + CLIP_CHUNK], **options) for s in starts]
        return type(parts[0])(*(np.concatenate(field) for field in zip(*parts, strict=True)))

    return chunked  # type: ignore[return-value]


def checked_tables(
    named: Sequence[tuple[str, np.ndarray | None]],
    valid_rows: Callable[[np.ndarray], np.ndarray],
    as_table: Callable[[str, np.ndarray | None], np.ndarray],
    width: int = 6,
) -> list[np.ndarray]:
    """``as_table(name, rows)`` of every clip (a metric's one-clip check and conversion), in one pass over all rows.

    Tables of the expected width whose rows ``valid_rows`` all accepts come back as float64 ``(n, width)`` without
    a call per clip (``None`` and empty tables as empty ones); otherwise every clip goes through ``as_table``,
    which raises naming the first bad clip. ``valid_rows`` must accept exactly the rows ``as_table`` accepts.
    """
    tables = [np.zeros((0, width)) if rows is None else np.asarray(rows, dtype=np.float64) for _, rows in named]
    if all(table.ndim == 2 and table.shape[1] == width for table in tables if table.size):
        tables = [table.reshape(-1, width) for table in tables]
        chunks = range(0, len(tables), CLIP_CHUNK)
        if all(valid_rows(np.concatenate([*tables[s : s + CLIP_CHUNK], np.zeros((0, width))])).all() for s in chunks):
            return tables
    return [as_table(name, rows) for name, rows in named]


class Groups(NamedTuple):
    """Rows of all clips sorted by (clip, frame, class); one entry per group in ``keys`` / ``start`` / ``count``.

    A group key is ``(clip * span + frame) * n_classes + class``.
    """

    rows: np.ndarray
    keys: np.ndarray
    start: np.ndarray
    count: np.ndarray


def group_frames(
    tables: Sequence[np.ndarray],
    frame_limits: np.ndarray,
    span: int,
    n_classes: int,
    *,
    frame_col: int = 0,
    class_col: int = 1,
) -> Groups:
    """Stack the rows of all clips with ``frame < frame_limits[clip]`` and sort them into (clip, frame, class) groups.

    The sort is stable, so tracks keep their file order inside a group as in the official scorers, where the
    order decides track identities (row position) and which of two equally distant tracks the Hungarian step pairs.
    ``span`` must exceed every kept frame index.
    """
    width = tables[0].shape[1] if len(tables) else 6
    lengths = np.array([len(t) for t in tables], dtype=np.int64)
    rows = np.concatenate([t.reshape(-1, width) for t in tables]) if len(tables) else np.zeros((0, width))
    clip = np.repeat(np.arange(len(tables)), lengths)
    frame = rows[:, frame_col].astype(np.int64)
    kept = np.flatnonzero(frame < frame_limits[clip])
    keys = (clip[kept] * span + frame[kept]) * n_classes + rows[kept, class_col].astype(np.int64)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    rows = rows[kept[order]]  # one gather: the stacked rows are freed before the groups are built
    start = np.flatnonzero(np.diff(keys, prepend=-1)) if len(keys) else np.zeros(0, dtype=np.int64)
    count = np.diff(np.append(start, len(keys)))
    return Groups(rows, keys[start], start, count)


def row_keys(groups: Groups, row_index: np.ndarray) -> np.ndarray:
    """Group key of each sorted row (the group whose start is the last one not after the row)."""
    return groups.keys[np.searchsorted(groups.start, row_index, side="right") - 1]


class Common(NamedTuple):
    """(clip, frame, class) groups present in both reference and prediction, with their row ranges."""

    keys: np.ndarray
    ref_start: np.ndarray
    n_ref: np.ndarray
    pred_start: np.ndarray
    n_pred: np.ndarray
    ref_only: np.ndarray  # mask over the reference groups
    pred_only: np.ndarray  # mask over the prediction groups


def common_groups(ref: Groups, pred: Groups) -> Common:
    keys, ref_idx, pred_idx = np.intersect1d(ref.keys, pred.keys, assume_unique=True, return_indices=True)
    ref_only = np.ones(len(ref.keys), dtype=bool)
    ref_only[ref_idx] = False
    pred_only = np.ones(len(pred.keys), dtype=bool)
    pred_only[pred_idx] = False
    return Common(
        keys, ref.start[ref_idx], ref.count[ref_idx], pred.start[pred_idx], pred.count[pred_idx], ref_only, pred_only
    )


# Groups with both sides holding several tracks and at most this many cells (3 x 3) are solved by scoring every
# assignment (at most 6); larger ones go to linear_sum_assignment one by one.
SMALL_GROUP_CELLS = 9
# Candidate pairs scored at once when pairing groups with one track on a side (bounds the cost arrays' memory).
CANDIDATE_CHUNK = 1 << 18
# Relative gap between the cheapest and the next assignment below which the exact solver decides: ties (equal
# costs are common with integer angles) and near-ties that rounding might order differently.
CLEAR_MARGIN = 1e-9

# Pairwise cost: (reference row indices, prediction row indices) -> cost of each pair, same shape.
PairCost = Callable[[np.ndarray, np.ndarray], np.ndarray]


def match_tracks(cost: PairCost, common: Common) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian pairing of reference and predicted rows within each common group (sorted row indices).

    Groups where one side has a single track (nearly all of them) reduce to the first minimum of one row or column
    of the cost matrix, which is what ``linear_sum_assignment`` returns there; they are solved in bulk. Groups of
    up to :data:`SMALL_GROUP_CELLS` cells are solved in bulk too, by scoring every assignment, where the cheapest
    one is cheaper than the next by more than rounding could blur (then ``linear_sum_assignment`` finds the same);
    the rest, ties included, one by one with ``linear_sum_assignment``. Pairs come back group by group, reference
    rows ascending within a group.
    """
    n_ref, n_pred = common.n_ref, common.n_pred
    single = (n_ref == 1) | (n_pred == 1)
    ref_a, pred_a = _match_single(
        cost, common.ref_start[single], n_ref[single], common.pred_start[single], n_pred[single]
    )
    pairs_ref, pairs_pred = [ref_a], [pred_a]
    left = ~single & (n_ref * n_pred > SMALL_GROUP_CELLS)
    for shape in {(int(r), int(p)) for r, p in zip(n_ref[~single & ~left], n_pred[~single & ~left], strict=True)}:
        groups = np.flatnonzero(~single & (n_ref == shape[0]) & (n_pred == shape[1]))
        ref_rows, pred_rows, clear = _match_small(cost, common.ref_start[groups], common.pred_start[groups], shape)
        pairs_ref.append(ref_rows)
        pairs_pred.append(pred_rows)
        left[groups[~clear]] = True
    for g in np.flatnonzero(left):
        r0, nr, p0, npred = common.ref_start[g], n_ref[g], common.pred_start[g], n_pred[g]
        ref_idx, pred_idx = np.meshgrid(np.arange(r0, r0 + nr), np.arange(p0, p0 + npred), indexing="ij")
        rows, cols = linear_sum_assignment(cost(ref_idx, pred_idx))
        pairs_ref.append(r0 + rows)
        pairs_pred.append(p0 + cols)
    ref_rows = np.concatenate(pairs_ref).astype(np.int64)
    pred_rows = np.concatenate(pairs_pred).astype(np.int64)
    order = np.argsort(ref_rows)  # groups own disjoint, increasing row ranges
    return ref_rows[order], pred_rows[order]


def _match_small(
    cost: PairCost, ref_start: np.ndarray, pred_start: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cheapest assignment of groups of one shape ``(rows, columns)``, each found by scoring all of them.

    Returns the paired reference and predicted rows of the groups whose cheapest assignment is clear (better than
    the next by more than :data:`CLEAR_MARGIN`, relative), and that mask; the others need the exact solver.
    """
    n_rows, n_cols = shape
    matrix = cost(
        ref_start[:, None, None] + np.arange(n_rows)[None, :, None],
        pred_start[:, None, None] + np.arange(n_cols)[None, None, :],
    )
    rows, cols = _assignments(n_rows, n_cols)  # (A, k) each
    totals = matrix[:, rows, cols].sum(axis=2)  # (G, A)
    best = np.argmin(totals, axis=1)
    ranked = np.sort(totals, axis=1)
    clear = ranked[:, 1] - ranked[:, 0] > CLEAR_MARGIN * (1.0 + np.abs(ranked[:, 0]))
    chosen = best[clear]
    ref_rows = ref_start[clear, None] + rows[chosen]
    pred_rows = pred_start[clear, None] + cols[chosen]
    return ref_rows.reshape(-1), pred_rows.reshape(-1), clear


def _assignments(n_rows: int, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Every maximal one-to-one pairing of ``n_rows`` rows with ``n_cols`` columns: row and column indices
    ``(assignments, min(n_rows, n_cols))``."""
    if n_rows <= n_cols:
        cols = np.array(list(itertools.permutations(range(n_cols), n_rows)), dtype=np.int64)
        return np.broadcast_to(np.arange(n_rows), cols.shape).copy(), cols
    rows = np.array(list(itertools.permutations(range(n_rows), n_cols)), dtype=np.int64)
    return rows, np.broadcast_to(np.arange(n_cols), rows.shape).copy()


def _match_single(
    cost: PairCost, ref_start: np.ndarray, n_ref: np.ndarray, pred_start: np.ndarray, n_pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pair groups of shape 1×N or N×1: each candidate pair is scored, and the first cheapest one kept.

    Groups are taken in chunks of about :data:`CANDIDATE_CHUNK` candidate pairs, so the cost arrays stay small
    whatever the number of clips."""
    candidates = np.cumsum(n_ref * n_pred)
    total = int(candidates[-1]) if len(candidates) else 0
    cuts = np.searchsorted(candidates, np.arange(CANDIDATE_CHUNK, total, CANDIDATE_CHUNK), side="right")
    bounds = [0, *cuts.tolist(), len(n_ref)]
    pairs = [
        _match_single_chunk(cost, ref_start[a:b], n_ref[a:b], pred_start[a:b], n_pred[a:b])
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate([r for r, _ in pairs]), np.concatenate([p for _, p in pairs])


def _match_single_chunk(
    cost: PairCost, ref_start: np.ndarray, n_ref: np.ndarray, pred_start: np.ndarray, n_pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n_candidates = n_ref * n_pred
    group = np.repeat(np.arange(len(n_ref)), n_candidates)
    offset = np.arange(int(n_candidates.sum())) - np.repeat(np.cumsum(n_candidates) - n_candidates, n_candidates)
    cand_ref = ref_start[group] + offset // n_pred[group]
    cand_pred = pred_start[group] + offset % n_pred[group]
    order = np.lexsort((offset, cost(cand_ref, cand_pred), group))
    first = order[np.searchsorted(group[order], np.arange(len(n_ref)))]
    return cand_ref[first], cand_pred[first]


def unit_vectors(rows: np.ndarray) -> np.ndarray:
    """Direction vectors ``(n, 3)`` of event rows' (azimuth, elevation) in degrees (:func:`direction_vectors`)."""
    return direction_vectors(rows[:, EV_AZIMUTH], rows[:, EV_ELEVATION])


def direction_vectors(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """Unit vectors ``(..., 3)`` of azimuth and elevation in degrees, as the official scorers convert them:
    x = cos az cos el, y = sin az cos el, z = sin el (azimuth positive to the left)."""
    az = np.asarray(azimuth_deg, dtype=np.float64) * np.pi / 180.0
    el = np.asarray(elevation_deg, dtype=np.float64) * np.pi / 180.0
    return np.stack([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)], axis=-1)


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Vectors over their last axis divided by ``sqrt(x² + y² + z² + 1e-10)``, as the official code normalises
    them: a unit vector comes out a hair shorter than 1 and a zero vector stays zero instead of turning NaN."""
    return vectors / np.sqrt((vectors**2).sum(axis=-1, keepdims=True) + NORM_EPS)


def nanmean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean ignoring NaN; NaN (without numpy's warning) when every entry is NaN."""
    finite = ~np.isnan(values)
    n = finite.sum(axis=axis)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)
