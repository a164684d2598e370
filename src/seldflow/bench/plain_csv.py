"""The official scorers' CSV readers, restated: one line at a time into a dict of frames.

Each official scorer reads a label file with a loop over its lines, splitting at commas and converting each field
with ``int()`` or ``float()``, into ``{frame: [event, ...]}``. The plain references of ``make bench`` read the same
way, so that their time includes what the official code spends on reading (the largest share for small clips).
No checks: these readers are timing and numerical references for well-formed files, not parsers of user input.
"""

from __future__ import annotations

import os

import numpy as np

# frame -> [[class, track or source, value, ...], ...] in file order
FrameEvents = dict[int, list[list[float]]]

# The DCASE2024 files hold distances in centimetres; its scorer converts them to metres on reading.
CM_PER_M = 100.0


def read_label_lines(path: str | os.PathLike[str]) -> FrameEvents:
    """A DCASE2025 CSV as ``utils.load_labels`` reads it: line 1 (the header) skipped, then
    ``[class, source, azimuth, distance, onscreen]`` per line, ``int()`` for the integers, ``float()`` for azimuth
    and distance."""
    events: FrameEvents = {}
    with open(path) as handle:
        lines = handle.readlines()[1:]
    for line in lines:
        fields = line.strip().split(",")
        row = [int(fields[1]), int(fields[2]), float(fields[3]), float(fields[4]), int(fields[5])]
        events.setdefault(int(fields[0]), []).append(row)
    return events


def read_event_lines(path: str | os.PathLike[str], *, distance: bool = False) -> FrameEvents:
    """A headerless DCASE2020-2024 CSV as ``load_output_format_file`` reads it: ``[class, track, azimuth,
    elevation]`` per line (``int()`` / ``float()``), plus the distance in metres with ``distance`` (DCASE2024)."""
    events: FrameEvents = {}
    with open(path) as handle:
        for line in handle:
            fields = line.strip().split(",")
            row = [int(fields[1]), int(fields[2]), float(fields[3]), float(fields[4])]
            if distance:
                row.append(float(fields[5]) / CM_PER_M)
            events.setdefault(int(fields[0]), []).append(row)
    return events


def table_frames(rows: np.ndarray, columns: tuple[int, ...]) -> FrameEvents:
    """The frame dict of a label table (column 0 the frame): ``columns`` of each row, classes and tracks as ints
    (for the plain loops on tables already in memory)."""
    table = np.asarray(rows, dtype=np.float64)
    events: FrameEvents = {}
    for row in table.reshape(-1, table.shape[-1]) if table.size else ():
        values = [float(row[column]) for column in columns]
        values[0], values[1] = int(values[0]), int(values[1])
        events.setdefault(int(row[0]), []).append(values)
    return events


def last_frame(events: FrameEvents) -> int:
    """The largest frame index of a file (0 without events): the official scorers' frame count of a reference."""
    return max(events) if events else 0
