"""DCASE2025 Task 3 label conventions: classes and the metadata CSV format (training targets: the task's method).

One place for the format so the synthesizer (writes CSVs), features (reads them into targets), inference (writes
predictions) and the scorer (reads both) cannot drift apart.

Label rows are ``int64`` arrays of shape ``(n, 6)`` with the CSV columns
``frame, class, source, azimuth, distance, onscreen`` (azimuth in degrees, positive to the left; distance in cm).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from seldflow.csv_bulk import Layout, read_numeric_files, whole_numbers
from seldflow.errors import InputError
from seldflow.io import atomic_file

SAMPLE_RATE = 24000
CLIP_SECONDS = 5.0
CLIP_SAMPLES = int(SAMPLE_RATE * CLIP_SECONDS)
LABEL_HOP_SECONDS = 0.1
LABEL_FRAMES = 50

CLASSES: tuple[str, ...] = (
    "Female speech, woman speaking",
    "Male speech, man speaking",
    "Clapping",
    "Telephone",
    "Laughter",
    "Domestic sounds",
    "Walk, footsteps",
    "Door, open or close",
    "Music",
    "Musical instrument",
    "Water tap, faucet",
    "Bell",
    "Knock",
)
N_CLASSES = len(CLASSES)

# Foreground folder names of SpatialScaper's DCASE class map, so a real FSD50K-derived bank can replace ours.
CLASS_FOLDERS: tuple[str, ...] = (
    "femaleSpeech",
    "maleSpeech",
    "clapping",
    "telephone",
    "laughter",
    "domesticSounds",
    "footsteps",
    "doorCupboard",
    "music",
    "musicInstrument",
    "waterTap",
    "bell",
    "knock",
)

CSV_COLUMNS: tuple[str, ...] = ("frame", "class", "source", "azimuth", "distance", "onscreen")
COL_FRAME, COL_CLASS, COL_SOURCE, COL_AZIMUTH, COL_DISTANCE, COL_ONSCREEN = range(6)


def empty_rows() -> np.ndarray:
    """A label table with no events."""
    return np.zeros((0, len(CSV_COLUMNS)), dtype=np.int64)


def fold_azimuth(azimuth_deg: np.ndarray | float) -> np.ndarray:
    """Wrap to [-180, 180) and fold the rear half onto the front, as a stereo pair cannot tell front from back."""
    wrapped = (np.asarray(azimuth_deg, dtype=np.float64) + 180.0) % 360.0 - 180.0
    folded = np.where(wrapped > 90.0, 180.0 - wrapped, wrapped)
    return np.where(folded < -90.0, -180.0 - folded, folded)


# The DCASE2025 video is a 640 x 360 perspective view with a 100-degree horizontal field of view.
VIDEO_ASPECT = 360 / 640


def onscreen_flags(
    azimuth_deg: np.ndarray | float, elevation_deg: np.ndarray | float, field_of_view_deg: float = 100.0
) -> np.ndarray:
    """Whether directions fall inside the frame of a perspective camera looking along +x (0/1 per direction).

    A rectilinear lens maps (azimuth a, elevation e) to image coordinates (tan a, tan e / cos a); the frame spans
    tan(fov/2) horizontally and that times the 360/640 aspect vertically, so the vertical limit widens off-axis.
    """
    azimuth = np.deg2rad(np.asarray(azimuth_deg, dtype=np.float64))
    elevation = np.deg2rad(np.asarray(elevation_deg, dtype=np.float64))
    half_width = np.tan(np.deg2rad(field_of_view_deg) / 2.0)
    in_front = np.cos(azimuth) > 1e-9
    cos_az = np.where(in_front, np.cos(azimuth), 1.0)
    horizontal = np.abs(np.sin(azimuth) / cos_az) <= half_width
    vertical = np.abs(np.tan(elevation) / cos_az) <= half_width * VIDEO_ASPECT
    return (in_front & horizontal & vertical).astype(np.int64)


def read_csv_records(path: str | os.PathLike[str], what: str = "label file") -> list[tuple[int, list[str]]]:
    """Non-blank CSV records of a UTF-8 file with their 1-based line numbers, for the label readers to parse.

    One reader for every label format (DCASE2025, STARSS23, SpatialScaper), so they fail the same way.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: tolerate the byte-order mark spreadsheets write
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    return [
        (line, record)
        for line, record in enumerate(reader, start=1)
        if record and any(value.strip() for value in record)
    ]


# Largest integer magnitude a label field may hold: every integer up to it is exact in a float64.
MAX_INTEGER = 2**53


def parse_numbers(
    path: Path,
    line: int,
    record: list[str],
    columns: Sequence[str],
    *,
    integers: Collection[str],
    hint: str = "",
) -> list[float]:
    """The values of one CSV row, checked for count, numbers, finiteness and integers where ``integers`` says.

    Each failure names the file, the row and the column; ``hint`` is appended to a 'not a number' message.
    Integers must lie within +-2**53 (:data:`MAX_INTEGER`): beyond it a float no longer holds every integer, so
    the value read would not be the one written, and the int64 label tables would overflow with a raw traceback.
    """
    if len(record) != len(columns):
        raise InputError(path, f"expected {len(columns)} columns, found {len(record)}", row=line)
    values: list[float] = []
    for name, text in zip(columns, record, strict=True):
        try:
            number = float(text)
        except ValueError:
            raise InputError(path, f"not a number: {text!r}{hint}", row=line, field=name) from None
        if name in integers and (not np.isfinite(number) or number != round(number)):
            raise InputError(path, f"expected an integer, found {text!r}", row=line, field=name)
        if not np.isfinite(number):
            raise InputError(path, f"not a finite number: {text!r}", row=line, field=name)
        if name in integers and abs(number) > MAX_INTEGER:
            raise InputError(path, f"integer {text!r} out of range -2**53..2**53", row=line, field=name)
        values.append(number)
    return values


def read_labels(
    path: str | os.PathLike[str],
    *,
    n_frames: int | None = LABEL_FRAMES,
    n_classes: int = N_CLASSES,
) -> np.ndarray:
    """Read and validate a DCASE2025 metadata or prediction CSV.

    ``n_frames`` bounds the frame index (``None`` accepts any non-negative frame, e.g. for long predictions).
    Every malformed value raises :class:`InputError` naming the file, the 1-based line and the column.
    """
    path = Path(path)
    records = read_csv_records(path)
    if not records or records[0][0] != 1:
        raise InputError(path, "empty file: expected the header " + ",".join(CSV_COLUMNS), row=1)
    header = records[0][1]
    if [h.strip() for h in header] != list(CSV_COLUMNS):
        raise InputError(path, f"header must be {','.join(CSV_COLUMNS)}, found {','.join(header)}", row=1)
    rows = [_parse_row(path, line, record, n_frames, n_classes) for line, record in records[1:]]
    if not rows:
        return empty_rows()
    return np.asarray(rows, dtype=np.int64)


def read_labels_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    n_frames: int | None = LABEL_FRAMES,
    n_classes: int = N_CLASSES,
) -> list[np.ndarray]:
    """:func:`read_labels` of many files at once: the same tables, or the same error for the first bad file.

    Files in the plain form are parsed in bulk (:func:`seldflow.csv_bulk.read_numeric_files`) and checked with the
    rules of :func:`_parse_row` stated over whole columns; any other file, or one with a refused row, is read by
    :func:`read_labels` itself.
    """

    def check(values: np.ndarray, _files: np.ndarray) -> np.ndarray:
        frame, cls, source, azimuth, distance, onscreen = values.T
        ok = whole_numbers(values, MAX_INTEGER).all(axis=1) & (frame >= 0)
        if n_frames is not None:
            ok &= frame < n_frames
        ok &= (cls >= 0) & (cls < n_classes) & (source >= 0) & (azimuth >= -180) & (azimuth <= 180)
        return ok & (distance >= 0) & ((onscreen == 0) | (onscreen == 1))

    return read_numeric_files(
        paths,
        Layout(frozenset({len(CSV_COLUMNS)}), header=",".join(CSV_COLUMNS).encode()),
        check=check,
        convert=lambda values: values.astype(np.int64),
        slow=lambda path: read_labels(path, n_frames=n_frames, n_classes=n_classes),
    )


def _parse_row(path: Path, line: int, record: list[str], n_frames: int | None, n_classes: int) -> list[int]:
    values = [round(v) for v in parse_numbers(path, line, record, CSV_COLUMNS, integers=CSV_COLUMNS)]
    frame, cls, source, azimuth, distance, onscreen = values
    if frame < 0 or (n_frames is not None and frame >= n_frames):
        limit = f"0..{n_frames - 1}" if n_frames is not None else ">= 0"
        raise InputError(path, f"frame {frame} out of range {limit}", row=line, field="frame")
    check_event_fields(path, line, cls=cls, source=source, azimuth=azimuth, distance=distance, n_classes=n_classes)
    if onscreen not in (0, 1):
        raise InputError(path, f"onscreen must be 0 or 1, found {onscreen}", row=line, field="onscreen")
    return values


def check_event_fields(
    path: Path,
    line: int,
    *,
    cls: float,
    source: float,
    azimuth: float,
    distance: float,
    elevation: float | None = None,
    n_classes: int = N_CLASSES,
    distance_unit: str = "",
) -> None:
    """Range checks every label format shares (class, source id, azimuth, elevation when it has one, distance)."""
    checks = (
        ("class", 0 <= cls < n_classes, f"unknown class index {_number(cls)} (0..{n_classes - 1})"),
        ("source", source >= 0, f"negative source id {_number(source)}"),
        ("azimuth", -180 <= azimuth <= 180, f"azimuth {_number(azimuth)} out of range -180..180"),
        (
            "elevation",
            elevation is None or -90 <= elevation <= 90,
            f"elevation {_number(elevation)} out of range -90..90",
        ),
        ("distance", distance >= 0, f"negative distance {_number(distance)}{distance_unit}"),
    )
    for field, ok, message in checks:
        if not ok:
            raise InputError(path, message, row=line, field=field)


def _number(value: float | None) -> str:
    """Integers as written, floats without trailing zeros (the float readers hold 91.0 for a written 91)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def write_labels(path: str | os.PathLike[str], rows: np.ndarray) -> None:
    """Write label rows (sorted by frame, class, source) with the DCASE2025 header; header-only when empty."""
    with atomic_file(path) as tmp, tmp.open("w", newline="") as fh:
        write_labels_to(fh, rows)


def write_labels_to(stream: TextIO, rows: np.ndarray) -> None:
    """Write label rows as DCASE2025 CSV text to an open stream (e.g. stdout)."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, len(CSV_COLUMNS))
    order = np.lexsort((rows[:, COL_SOURCE], rows[:, COL_CLASS], rows[:, COL_FRAME]))
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows[order].tolist())
