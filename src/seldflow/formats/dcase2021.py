"""DCASE2021–2024 label format: headerless CSV ``frame,class,track,azimuth,elevation[,distance]``.

One row per active event and 100-ms label frame. DCASE2021–2023 files have five columns; DCASE2024 (STARSS23 with
distances) adds a sixth, the source distance in centimetres. Angles are in degrees: azimuth in [-180, 180]
(positive to the left), elevation in [-90, 90]. Readers return a float64 event table of shape ``(n, 6)`` indexed
by the ``EV_*`` constants, distance converted to metres (NaN when the file has none).

Conventions, from the official loaders (``load_output_format_file`` in ``sharathadavanne/seld-dcase2021``,
``seld-dcase2022``, ``seld-dcase2023`` and ``partha2409/DCASE2024_seld_baseline``):

* no header line: the official loaders parse every line, so a header crashes them. :func:`read_events` refuses a
  header with an error saying so (rather than skipping it) so that every file it accepts is also readable by the
  official scorer; :func:`write_events` never writes one;
* frame, class and track are integers (``int()`` in the official loader), angles and distance may be floats;
* row order matters: the scorers tell simultaneous tracks of one class apart by their position within the frame,
  not by the track column, so :func:`write_events` keeps the given order.

Reference files (``reference=True``) are validated strictly; every bad value raises :class:`InputError` naming the
file, the 1-based line and the column. Prediction files (``reference=False``) are read as the official scorer
reads them: any finite angle is accepted and taken as a direction on the sphere (the great-circle distance only
uses sines and cosines, so azimuth 370 means 10 and elevation 100 means elevation 80 on the opposite azimuth), any
track index and any finite distance are accepted. Two deliberate differences: a negative frame or a class index
outside ``0 .. n_classes - 1`` in a prediction is an error, where the official scorer silently never scores the
row, because it means the file does not match the metric (e.g. 13-class predictions scored with 12 classes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from seldflow.csv_bulk import Layout, read_numeric_files, whole_numbers
from seldflow.errors import InputError
from seldflow.formats.events import (  # the SELD event table: these files hold it as it is
    EV_AZIMUTH,
    EV_CLASS,
    EV_DISTANCE,
    EV_ELEVATION,
    EV_FRAME,
    EV_TRACK,
    EVENT_COLUMNS,
)
from seldflow.formats.events import no_events as empty_events
from seldflow.io import atomic_file
from seldflow.labels import MAX_INTEGER, check_event_fields, parse_numbers, read_csv_records

FILE_COLUMNS: tuple[str, ...] = EVENT_COLUMNS[:5]
FILE_COLUMNS_WITH_DISTANCE: tuple[str, ...] = EVENT_COLUMNS
_INTEGER_COLUMNS = frozenset({"frame", "class", "track"})
CM_PER_M = 100.0


def read_events(
    path: str | os.PathLike[str],
    *,
    n_classes: int,
    with_distance: bool | None = False,
    max_tracks: int | None = None,
    reference: bool = True,
) -> np.ndarray:
    """Read a DCASE2021-style label or prediction file into a float64 ``(n, 6)`` event table.

    ``with_distance``: ``False`` expects five columns, ``True`` six (distance in cm, returned in metres), ``None``
    accepts either, decided by the first row (the DCASE2023 loader reads STARSS23 files with or without the
    distance column and ignores it). ``max_tracks`` bounds reference track indices to ``0 .. max_tracks - 1``.
    An empty file is a clip without events.
    """
    path = Path(path)
    records = read_csv_records(path)
    if not records:
        return empty_events()
    columns = _file_columns(path, *records[0], with_distance)
    rows = [_parse_row(path, line, record, columns, n_classes, max_tracks, reference) for line, record in records]
    return _events_of_rows(np.asarray(rows, dtype=np.float64))


def read_events_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    n_classes: int,
    with_distance: bool | None = False,
    max_tracks: int | None = None,
    reference: bool = True,
) -> list[np.ndarray]:
    """:func:`read_events` of many files at once: the same tables, or the same error for the first bad file.

    Files in the plain form are parsed in bulk (:func:`seldflow.csv_bulk.read_numeric_files`) and checked with
    :func:`_parse_row`'s rules over whole columns; any other file, or one with a refused row, is read by
    :func:`read_events` itself.
    """
    widths = {False: {5}, True: {6}, None: {5, 6}}[with_distance]
    integers = [EVENT_COLUMNS.index(name) for name in sorted(_INTEGER_COLUMNS)]

    def check(values: np.ndarray, _files: np.ndarray) -> np.ndarray:
        ok = np.isfinite(values).all(axis=1) & whole_numbers(values[:, integers], MAX_INTEGER).all(axis=1)
        cls = values[:, EV_CLASS]
        ok &= (values[:, EV_FRAME] >= 0) & (cls >= 0) & (cls < n_classes)
        return ok & _reference_rows_ok(values, max_tracks) if reference else ok

    return read_numeric_files(
        paths,
        Layout(frozenset(widths)),
        check=check,
        convert=_events_of_rows,
        slow=lambda path: read_events(
            path, n_classes=n_classes, with_distance=with_distance, max_tracks=max_tracks, reference=reference
        ),
    )


def _reference_rows_ok(values: np.ndarray, max_tracks: int | None) -> np.ndarray:
    """:func:`_check_reference_row` over whole columns: angles in range, distance (if any) and track not negative,
    track below ``max_tracks``."""
    azimuth, elevation, track = values[:, EV_AZIMUTH], values[:, EV_ELEVATION], values[:, EV_TRACK]
    ok = (azimuth >= -180) & (azimuth <= 180) & (elevation >= -90) & (elevation <= 90) & (track >= 0)
    if values.shape[1] > len(FILE_COLUMNS):
        ok &= values[:, EV_DISTANCE] >= 0
    return ok & (track < max_tracks) if max_tracks is not None else ok


def _events_of_rows(rows: np.ndarray) -> np.ndarray:
    """The event table of parsed rows, as :func:`read_events` returns it: no distance NaN, a distance in metres."""
    if rows.shape[1] == len(FILE_COLUMNS):
        return np.column_stack([rows, np.full(len(rows), np.nan)])
    events = rows.copy()
    events[:, EV_DISTANCE] /= CM_PER_M
    return events


def _file_columns(path: Path, line: int, record: list[str], with_distance: bool | None) -> tuple[str, ...]:
    """The file's columns, after refusing a header line (which the official loaders cannot read)."""
    if not any(_is_number(value) for value in record):
        raise InputError(
            path,
            f"header line {','.join(record)!r}: DCASE2021-style label files have no header (the official "
            "loader cannot read one); delete the line",
            row=line,
        )
    if with_distance is None:
        with_distance = len(record) == len(FILE_COLUMNS_WITH_DISTANCE)
        if len(record) not in (len(FILE_COLUMNS), len(FILE_COLUMNS_WITH_DISTANCE)):
            raise InputError(path, f"expected 5 or 6 columns, found {len(record)}", row=line)
    return FILE_COLUMNS_WITH_DISTANCE if with_distance else FILE_COLUMNS


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_row(
    path: Path,
    line: int,
    record: list[str],
    columns: tuple[str, ...],
    n_classes: int,
    max_tracks: int | None,
    reference: bool,
) -> list[float]:
    values = parse_numbers(path, line, record, columns, integers=_INTEGER_COLUMNS)
    frame, cls, track, azimuth, elevation = values[:5]
    distance = values[5] if len(values) > len(FILE_COLUMNS) else None
    if frame < 0:
        raise InputError(path, f"negative frame {frame:g}", row=line, field="frame")
    if not 0 <= cls < n_classes:
        raise InputError(path, f"unknown class index {cls:g} (0..{n_classes - 1})", row=line, field="class")
    if reference:
        _check_reference_row(path, line, azimuth, elevation, distance, track, max_tracks)
    return values


def _check_reference_row(
    path: Path,
    line: int,
    azimuth: float,
    elevation: float,
    distance: float | None,
    track: float,
    max_tracks: int | None,
) -> None:
    """Range checks of a reference row beyond frame and class: angles, distance and the track index."""
    check_event_fields(
        path,
        line,
        cls=0,
        source=0,  # this format has a track column instead, checked below under its own name
        azimuth=azimuth,
        elevation=elevation,
        distance=0.0 if distance is None else distance,
        n_classes=1,
        distance_unit=" cm",
    )
    if track < 0 or (max_tracks is not None and track >= max_tracks):
        allowed = f"0..{max_tracks - 1}" if max_tracks is not None else ">= 0"
        raise InputError(path, f"track index {track:g} out of range {allowed}", row=line, field="track")


def write_events(path: str | os.PathLike[str], events: np.ndarray, *, with_distance: bool = False) -> None:
    """Write an event table as a headerless DCASE2021-style CSV, atomically, rows in the given order.

    As the official writer (``write_output_format_file``): frame, class and track as integers, the other columns
    as Python floats (``10.0``). With ``with_distance`` the sixth column is the distance in centimetres (the
    table holds metres); an event without a distance (NaN) is then an error.
    """
    table = np.asarray(events, dtype=np.float64).reshape(-1, len(EVENT_COLUMNS))
    if with_distance and np.isnan(table[:, EV_DISTANCE]).any():
        raise ValueError(f"{path}: events without a distance cannot be written with with_distance=True")
    with atomic_file(path) as tmp, tmp.open("w", newline="") as fh:
        write_events_to(fh, table, with_distance=with_distance)


def write_events_to(stream: TextIO, events: np.ndarray, *, with_distance: bool = False) -> None:
    """Write an event table as headerless DCASE2021-style CSV text to an open stream, rows in the given order.

    The text :func:`write_events` puts in its file; for writers of many files (a benchmark's thousands of label
    files) that need no atomic replacement.
    """
    table = np.asarray(events, dtype=np.float64).reshape(-1, len(EVENT_COLUMNS))
    stream.writelines(_format_row(row, with_distance) + "\n" for row in table)


def _format_row(row: Sequence[float], with_distance: bool) -> str:
    fields = [str(int(row[EV_FRAME])), str(int(row[EV_CLASS])), str(int(row[EV_TRACK]))]
    fields += [repr(float(row[EV_AZIMUTH])), repr(float(row[EV_ELEVATION]))]
    if with_distance:
        fields.append(repr(float(row[EV_DISTANCE]) * CM_PER_M))
    return ",".join(fields)
