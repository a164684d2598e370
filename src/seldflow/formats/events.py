"""The SELD event table every label format converts to and every method reads and writes.

One float64 array ``(n, 6)`` per clip with the columns frame (100-ms label frame), class, track, azimuth and
elevation in degrees, distance in metres (NaN when the format has none). Label formats differ in columns, units and
integer rounding; methods should not care, so they see only this table.
"""

from __future__ import annotations

import numpy as np

EVENT_COLUMNS: tuple[str, ...] = ("frame", "class", "track", "azimuth", "elevation", "distance")
EV_FRAME, EV_CLASS, EV_TRACK, EV_AZIMUTH, EV_ELEVATION, EV_DISTANCE = range(len(EVENT_COLUMNS))


def no_events() -> np.ndarray:
    """An event table with no rows."""
    return np.zeros((0, len(EVENT_COLUMNS)), dtype=np.float64)


def event_table(
    frame: np.ndarray,
    cls: np.ndarray,
    track: np.ndarray,
    azimuth: np.ndarray,
    elevation: np.ndarray,
    distance: np.ndarray,
) -> np.ndarray:
    """Stack per-event columns into the table, in :data:`EVENT_COLUMNS` order."""
    columns = (frame, cls, track, azimuth, elevation, distance)
    return np.stack([np.asarray(column, dtype=np.float64) for column in columns], axis=1)


def mirror_events(events: np.ndarray) -> np.ndarray:
    """Events of the scene mirrored left/right (the LR-swap augmentation): azimuth changes sign."""
    mirrored = np.array(events, dtype=np.float64, copy=True)
    mirrored[:, EV_AZIMUTH] = -mirrored[:, EV_AZIMUTH]
    return mirrored


def frame_slots(table: np.ndarray) -> np.ndarray:
    """Slot of each row: its position among the rows of its frame, in table order (DOAnet's label builder
    appends a frame's rows in file order, wherever in the file they stand; its metric and its class-agnostic
    training targets fill slots this way)."""
    return rank_within(table[:, EV_FRAME].astype(np.int64))


def rank_within(groups: np.ndarray) -> np.ndarray:
    """Per element, how many earlier elements share its group label (0 for the first of each group)."""
    order = np.argsort(groups, kind="stable")
    ranked = groups[order]
    ranks = np.empty(len(groups), dtype=np.int64)
    ranks[order] = np.arange(len(groups)) - np.searchsorted(ranked, ranked, side="left")
    return ranks
