"""Reading many small numeric CSV files at once, with the per-line readers' exact results and errors.

Scoring a folder means reading thousands of label files of a few hundred lines each. The label readers
(:func:`seldflow.labels.read_labels` and friends) parse and check one field at a time in Python, which made reading
take more than nine tenths of a folder's scoring time. :func:`read_numeric_files` reads the same files in bulk and
falls back to a per-file reader wherever the bulk path is not certain to agree with it:

* every file's bytes are read once; a file takes the bulk path only in a plain form: the expected header line
  exactly (when the format has one), then at least one line, lines ending in ``\\n`` (the last may lack it), no
  blank line, only the characters ``0-9 + - . e E ,``, and the same number of fields on every line, one of the
  format's widths;
* the lines of a batch of such files are parsed by pandas' C reader into float64, which rounds every decimal
  correctly (pandas >= 3.1 uses ``fast_float``; older pandas are asked for its ``round_trip`` converter, which calls
  Python's own), so each value is the ``float(text)`` the per-line readers compute; an empty field, which pandas
  reads as NaN, sends its file to the per-file reader;
* the format's checks run vectorised over the whole batch (``check``: a per-row verdict); a file with any row
  refused is read again by the per-file reader, which raises its usual error naming the file, line and field;
* files go back in the given order, the first failing one raising exactly as reading them one by one would.

Anything unusual (a byte-order mark, ``\\r\\n`` line ends, spaces, quotes, another header, an empty or header-only
file) is simply read by the per-file reader, so the bulk path changes speed, never results or messages.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from seldflow.io import read_bytes

NEWLINE, COMMA = ord("\n"), ord(",")
# The only bytes a file's data lines may hold on the bulk path: digits, signs, decimal points, exponents, commas
# and line ends. Anything else (letters of nan/inf, spaces, quotes, \r, non-ASCII) goes to the per-file reader.
BULK_BYTES = b"0123456789+-.eE,\n"
# Files parsed together: bounds the batch's text and its transient arrays whatever the number of files.
BATCH_FILES = 1024
# pandas' own converter rounds correctly from 3.1 on (fast_float); before, its default one may miss the last bit.
_PANDAS_EXACT = tuple(int(part) for part in pd.__version__.split(".")[:2]) >= (3, 1)

# (values (n, width) float64, file index of each row) -> True for each row the per-file reader accepts as is.
RowCheck = Callable[[np.ndarray, np.ndarray], np.ndarray]
# (values (n, width) float64 of accepted rows) -> the table rows the per-file reader returns for them.
Convert = Callable[[np.ndarray], np.ndarray]
# The per-file reader: path -> table, or an error naming the file, line and field.
SlowReader = Callable[[Path], np.ndarray]


@dataclass(frozen=True)
class Layout:
    """What the bulk path takes: ``widths`` (fields per line, the same on every line of a file) and the exact
    ``header`` line (without its line end), or None for headerless files."""

    widths: frozenset[int]
    header: bytes | None = None


def read_numeric_files(
    paths: Sequence[str | os.PathLike[str]],
    layout: Layout,
    *,
    check: RowCheck,
    convert: Convert,
    slow: SlowReader,
    batch_files: int = BATCH_FILES,
) -> list[np.ndarray]:
    """The table of each of ``paths``, in order, as ``slow`` would return it (or raising as it would).

    ``check`` and ``convert`` state the per-file reader's checks and output for files in the plain form (module
    docstring); everything else, and every file with a refused row, is read by ``slow``.
    """
    tables: list[np.ndarray] = []
    for start in range(0, len(paths), batch_files):
        batch = paths[start : start + batch_files]
        fast = _read_batch(batch, layout, check, convert)
        tables.extend(table if table is not None else slow(Path(path)) for path, table in zip(batch, fast, strict=True))
    return tables


class _Body(NamedTuple):
    """A file's data lines in the plain form: its position in the batch, the text and its number of lines."""

    position: int
    text: bytes
    lines: int


def _read_batch(
    paths: Sequence[str | os.PathLike[str]], layout: Layout, check: RowCheck, convert: Convert
) -> list[np.ndarray | None]:
    """Tables of the files the bulk path takes, None for the others."""
    groups: dict[int, list[_Body]] = {}  # width (fields of the first line) -> bodies
    for position, path in enumerate(paths):
        text = _plain_body(read_bytes(path), layout)
        if text is not None:
            width = text.count(b",", 0, text.find(b"\n")) + 1
            groups.setdefault(width, []).append(_Body(position, text, text.count(b"\n")))
    tables: list[np.ndarray | None] = [None] * len(paths)
    for width, bodies in groups.items():
        if width in layout.widths:
            for position, table in _parse_group(bodies, width, check, convert):
                tables[position] = table
    return tables


def _plain_body(data: bytes, layout: Layout) -> bytes | None:
    """The data lines of a file in the plain form, each ending in a line end; None for any other file."""
    if layout.header is not None:
        end = data.find(b"\n")
        if end < 0 or data[:end] != layout.header:
            return None
        data = data[end + 1 :]
    if not data or data.translate(None, BULK_BYTES) or data.startswith(b"\n") or b"\n\n" in data:
        return None
    return data if data.endswith(b"\n") else data + b"\n"


def _parse_group(
    bodies: Sequence[_Body], width: int, check: RowCheck, convert: Convert
) -> list[tuple[int, np.ndarray]]:
    """Parse files of one width together; returns (position, table) of those whose every row passes."""
    text = b"".join(body.text for body in bodies)
    regular = _same_width_lines(text, bodies, width)
    if not regular.all():
        bodies = [body for body, keep in zip(bodies, regular.tolist(), strict=True) if keep]
        text = b"".join(body.text for body in bodies)
    if not bodies:
        return []
    values = _parse(text, width)
    if values is None:  # a field pandas refuses: look for its file(s) one by one
        if len(bodies) == 1:
            return []
        return [result for body in bodies for result in _parse_group([body], width, check, convert)]
    lines = np.array([body.lines for body in bodies], dtype=np.int64)
    file_of_row = np.repeat(np.arange(len(bodies)), lines)
    with np.errstate(invalid="ignore"):  # NaN / inf rows are refused; their files are read again one by one
        ok = check(values, file_of_row) & ~np.isnan(values).any(axis=1)
        converted = convert(values)
    bad_files = np.zeros(len(bodies), dtype=bool)
    bad_files[file_of_row[~ok]] = True
    ends = np.cumsum(lines).tolist()
    return [
        (body.position, converted[end - body.lines : end])
        for body, end, bad in zip(bodies, ends, bad_files.tolist(), strict=True)
        if not bad
    ]


def _same_width_lines(text: bytes, bodies: Sequence[_Body], width: int) -> np.ndarray:
    """Per body (their texts joined in ``text``), whether every line has ``width - 1`` commas."""
    data = np.frombuffer(text, dtype=np.uint8)
    line_ends = np.flatnonzero(data == NEWLINE)
    commas_before = np.searchsorted(np.flatnonzero(data == COMMA), line_ends)
    wrong_lines = np.flatnonzero(np.diff(commas_before, prepend=0) != width - 1)
    regular = np.ones(len(bodies), dtype=bool)
    ends = np.cumsum([body.lines for body in bodies])
    regular[np.searchsorted(ends, wrong_lines, side="right")] = False
    return regular


def _parse(text: bytes, width: int) -> np.ndarray | None:
    """Lines of ``width`` numeric fields as float64 ``(n, width)``; None when pandas refuses a field."""
    options = {} if _PANDAS_EXACT else {"float_precision": "round_trip"}
    try:
        frame = pd.read_csv(io.BytesIO(text), header=None, names=range(width), dtype=np.float64, engine="c", **options)
    except ValueError:
        return None
    return frame.to_numpy(dtype=np.float64)


def whole_numbers(values: np.ndarray, limit: float) -> np.ndarray:
    """Elementwise: finite, an integer, and at most ``limit`` in magnitude (what the per-line readers accept as an
    integer field)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values == np.round(values)) & (np.abs(values) <= limit)
