"""Class-agnostic DOAnet targets from DCASE2020-style label rows ``(frame, class, track, azimuth, elevation)``.

Every 100-ms label frame gets up to ``n_max`` unit vectors, filled into slots in the order the rows appear in the
metadata (class and track ignored), and a 0/1 activity per slot. Empty slots hold the inactive direction of the
training mode: ``(10, 10, 10)`` when Hnet associates (outside the unit sphere, so Hnet never assigns it) or the
unit vector ``(0, 0, 1)`` for the MSE baseline with fixed slots. Reading the CSV is the caller's business; this
module takes its rows as an array.
"""

from __future__ import annotations

from os import PathLike
from typing import Literal, NamedTuple

import numpy as np

from seldflow.doanet.directions import INACTIVE_COORDINATE, INACTIVE_MSE_DIRECTION, unit_vectors
from seldflow.errors import InputError

# Columns of a DCASE2020 label row.
FRAME, CLASS, TRACK, AZIMUTH, ELEVATION = range(5)
LABEL_COLUMNS = 5
TargetMode = Literal["hnet", "mse"]
INACTIVE_DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "hnet": (INACTIVE_COORDINATE,) * 3,
    "mse": INACTIVE_MSE_DIRECTION,
}


class DOATargets(NamedTuple):
    """``doa (n_frames, n_max, 3)`` float32 and ``activity (n_frames, n_max)`` float32 (1 = slot active)."""

    doa: np.ndarray
    activity: np.ndarray


def _check_rows(rows: np.ndarray, path: str | PathLike[str]) -> np.ndarray:
    """Rows as float64 ``(n, 5)``, with an error naming the first bad row and field."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.size == 0:
        return rows.reshape(0, LABEL_COLUMNS)
    if rows.ndim != 2 or rows.shape[1] != LABEL_COLUMNS:
        raise InputError(path, f"expected rows of frame, class, track, azimuth, elevation; got shape {rows.shape}")
    checks = (
        (FRAME, "frame", lambda v: np.isfinite(v) & (v >= 0) & (v == np.round(v)), "a non-negative integer"),
        (AZIMUTH, "azimuth", lambda v: np.isfinite(v) & (np.abs(v) <= 180), "within ±180°"),
        (ELEVATION, "elevation", lambda v: np.isfinite(v) & (np.abs(v) <= 90), "within ±90°"),
    )
    for column, name, valid, expected in checks:
        bad = np.flatnonzero(~valid(rows[:, column]))
        if len(bad):
            raise InputError(path, f"{rows[bad[0], column]:g} is not {expected}", row=int(bad[0]) + 1, field=name)
    return rows


def doa_targets(
    rows: np.ndarray,
    n_frames: int,
    n_max: int = 2,
    mode: TargetMode = "hnet",
    path: str | PathLike[str] = "<labels>",
) -> DOATargets:
    """Targets of one clip of ``n_frames`` label frames; rows at or past ``n_frames`` are dropped.

    A frame with more than ``n_max`` rows is an error (naming ``path``, the row and its frame): the network has
    ``n_max`` slots, and silently dropping a source would teach it to miss sources.
    """
    if mode not in INACTIVE_DIRECTIONS:
        raise ValueError(f"mode must be one of {sorted(INACTIVE_DIRECTIONS)}, got {mode!r}")
    rows = _check_rows(rows, path)
    doa = np.tile(np.asarray(INACTIVE_DIRECTIONS[mode], dtype=np.float64), (n_frames, n_max, 1))
    activity = np.zeros((n_frames, n_max), dtype=np.float32)
    directions = unit_vectors(rows[:, AZIMUTH], rows[:, ELEVATION])
    filled = np.zeros(n_frames, dtype=np.int64)
    for index, frame in enumerate(rows[:, FRAME].astype(np.int64)):
        if frame >= n_frames:
            continue
        slot = filled[frame]
        if slot >= n_max:
            message = f"frame {frame} has more than n_max = {n_max} active sources"
            raise InputError(path, message, row=index + 1, field="frame")
        doa[frame, slot] = directions[index]
        activity[frame, slot] = 1.0
        filled[frame] += 1
    return DOATargets(doa.astype(np.float32), activity)
