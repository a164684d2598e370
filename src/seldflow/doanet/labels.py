"""Class-agnostic DOAnet targets from an event table (``seldflow.formats.events``; for DCASE2020 CSVs the table
that :func:`seldflow.metrics.doa_mot.read_file` reads, which also checks the angle ranges).

Every 100-ms label frame gets up to ``n_max`` unit vectors, filled into slots in the order the rows appear in the
metadata (class and track ignored; :func:`~seldflow.formats.events.frame_slots`, as the metric fills them), and a
0/1 activity per slot. Empty slots hold the inactive direction of the training mode: ``(10, 10, 10)`` when Hnet
associates (outside the unit sphere, so Hnet never assigns it) or the unit vector ``(0, 0, 1)`` for the MSE
baseline with fixed slots.
"""

from __future__ import annotations

from os import PathLike
from typing import Literal, NamedTuple

import numpy as np

from seldflow.doanet.directions import INACTIVE_COORDINATE, INACTIVE_MSE_DIRECTION
from seldflow.errors import InputError
from seldflow.formats.events import EV_FRAME, frame_slots
from seldflow.metrics.common import unit_vectors

TargetMode = Literal["hnet", "mse"]
INACTIVE_DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "hnet": (INACTIVE_COORDINATE,) * 3,
    "mse": INACTIVE_MSE_DIRECTION,
}


class DOATargets(NamedTuple):
    """``doa (n_frames, n_max, 3)`` float32 and ``activity (n_frames, n_max)`` float32 (1 = slot active)."""

    doa: np.ndarray
    activity: np.ndarray


def doa_targets(
    events: np.ndarray,
    n_frames: int,
    n_max: int = 2,
    mode: TargetMode = "hnet",
    path: str | PathLike[str] = "<labels>",
) -> DOATargets:
    """Targets of one clip of ``n_frames`` label frames from its event table; rows at or past ``n_frames`` are
    dropped.

    A frame with more than ``n_max`` rows is an error (naming ``path``, the row, counted from 1 in table order,
    and its frame): the network has ``n_max`` slots, and silently dropping a source would teach it to miss them.
    """
    if mode not in INACTIVE_DIRECTIONS:
        raise ValueError(f"mode must be one of {sorted(INACTIVE_DIRECTIONS)}, got {mode!r}")
    frames = events[:, EV_FRAME].astype(np.int64)
    if (frames < 0).any():
        row = int(np.flatnonzero(frames < 0)[0])
        raise InputError(path, f"negative frame {frames[row]}", row=row + 1, field="frame")
    slots = frame_slots(events)
    over = np.flatnonzero((slots >= n_max) & (frames < n_frames))
    if over.size:
        message = f"frame {frames[over[0]]} has more than n_max = {n_max} active sources"
        raise InputError(path, message, row=int(over[0]) + 1, field="frame")
    doa = np.tile(np.asarray(INACTIVE_DIRECTIONS[mode], dtype=np.float32), (n_frames, n_max, 1))
    activity = np.zeros((n_frames, n_max), dtype=np.float32)
    inside = frames < n_frames
    doa[frames[inside], slots[inside]] = unit_vectors(events[inside])
    activity[frames[inside], slots[inside]] = 1.0
    return DOATargets(doa, activity)
