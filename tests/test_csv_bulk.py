"""Bulk label reading (seldflow.csv_bulk) against the per-line readers it stands in for.

The expectation of every case is what the per-line reader of the same format returns or raises for that file
(those readers have their own tests against the official readers); the bulk readers must agree table for table,
dtype included, and error for error, message included, on well-formed files and on every kind of malformed one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from seldflow.csv_bulk import Layout, read_numeric_files, whole_numbers
from seldflow.errors import InputError
from seldflow.formats.dcase2021 import read_events, read_events_files
from seldflow.labels import CSV_COLUMNS, read_labels, read_labels_files
from seldflow.metrics import doa_mot
from seldflow.metrics.dcase2025 import read_prediction, read_predictions

HEADER = ",".join(CSV_COLUMNS)

# Good rows of each file kind and ways to break a file; each case is (name, text).
STEREO_ROWS = ["0,1,0,-30,150,0", "0,1,1,45,200,1", "3,12,2,180,0,0", "7,0,0,-180,1000,1"]
EVENT_ROWS = ["0,1,0,-30.5,10.25", "0,1,1,45.0,-89.75", "3,11,2,180,90", "7,0,0,-180.0,-90.0"]
EVENT6_ROWS = [f"{row},{distance}" for row, distance in zip(EVENT_ROWS, ("150", "200.5", "0", "1e3"), strict=True)]
DOA_ROWS = ["0,1,0,-30.5,10.25", "0,4,1,45.0,-89.75", "3,11,2,180,90", "7,0,0,-180.0,-90.0"]


def with_field(row: str, index: int, value: str) -> str:
    """``row`` with its field ``index`` replaced by ``value`` (negative indices count from the end)."""
    fields = row.split(",")
    fields[index] = value
    return ",".join(fields)


def variants(rows: list[str], header: str | None) -> list[tuple[str, str]]:
    """Well-formed and malformed texts built from ``rows`` (``header`` prepended where the format has one)."""
    top = f"{header}\n" if header is not None else ""
    first = rows[0]

    def one(row: str) -> str:
        return top + row + "\n"

    cases = [
        ("plain", top + "\n".join(rows) + "\n"),
        ("no final newline", top + "\n".join(rows)),
        ("one row", one(first)),
        ("crlf", top.replace("\n", "\r\n") + "\r\n".join(rows) + "\r\n"),
        ("blank line", top + first + "\n\n" + rows[1] + "\n"),
        ("blank first line", "\n" + top + first + "\n"),
        ("spaces", one(first.replace(",", ", "))),
        ("bom", "\ufeff" + one(first)),
        ("empty", ""),
        ("only newlines", "\n\n"),
        ("extra column", one(first + ",1")),
        ("missing column", one(first.rsplit(",", 1)[0])),
        ("ragged", top + first + ",1\n" + rows[1].rsplit(",", 1)[0] + "\n"),
        ("empty field", one(with_field(first, 1, ""))),
        ("empty first field", one(with_field(first, 0, ""))),
        ("fractional frame", one(with_field(first, 0, "1.5"))),
        ("integer as float", one(with_field(first, 0, "1.0"))),
        ("exponent frame", one(with_field(first, 0, "1e1"))),
        ("negative frame", one(with_field(first, 0, "-1"))),
        ("huge frame", one(with_field(first, 0, "9007199254740993"))),
        ("plus sign", one(with_field(first, 0, "+3"))),
        ("overflow", one(with_field(first, -1, "1e999"))),
        ("nan", one(with_field(first, -1, "nan"))),
        ("letters", one(with_field(first, -1, "abc"))),
        ("bad number", one(with_field(first, -1, "1e"))),
        ("double sign", one(with_field(first, -1, "--1"))),
        ("quoted", one('"' + first.replace(",", '","') + '"')),
        ("class 12", one(with_field(first, 1, "12"))),
        ("class 13", one(with_field(first, 1, "13"))),
        ("negative class", one(with_field(first, 1, "-1"))),
        ("negative track", one(with_field(first, 2, "-2"))),
        ("track 10", one(with_field(first, 2, "10"))),
        ("fractional track", one(with_field(first, 2, "0.5"))),
        ("azimuth 181", one(with_field(first, 3, "181"))),
        ("azimuth 400.5", one(with_field(first, 3, "400.5"))),
        ("fifth field -91", one(with_field(first, 4, "-91"))),
        ("fifth field 90.5", one(with_field(first, 4, "90.5"))),
        ("last field negative", one(with_field(first, -1, "-1"))),
        ("last field 2", one(with_field(first, -1, "2"))),
        ("last field 0.5", one(with_field(first, -1, "0.5"))),
        ("third row in a frame", top + "\n".join([first, rows[1], first]) + "\n"),
        ("frame split across the file", top + "\n".join([first, rows[2], rows[1]]) + "\n"),
        ("non-ascii", top + first + "\n" + "\u00e9\n"),
    ]
    if header is not None:
        cases += [
            ("header only", top),
            ("other header", "frame,class,track,azimuth,distance,onscreen\n" + first + "\n"),
            ("header with spaces", header.replace(",", ", ") + "\n" + first + "\n"),
            ("event on line 1", "\n".join(rows) + "\n"),
        ]
    else:
        cases += [("header line", "frame,class,track,azimuth,elevation\n" + first + "\n")]
    return cases


# (name, rows, header, bulk reader, per-line reader)
Reader = Callable[[Path], np.ndarray]
FORMATS: list[tuple[str, list[str], str | None, Callable[[list[Path]], list[np.ndarray]], Reader]] = [
    (
        "dcase2025 reference",
        STEREO_ROWS,
        HEADER,
        lambda paths: read_labels_files(paths, n_frames=None, n_classes=13),
        lambda path: read_labels(path, n_frames=None, n_classes=13),
    ),
    (
        "dcase2025 reference, 5 frames",
        STEREO_ROWS,
        HEADER,
        lambda paths: read_labels_files(paths, n_frames=5, n_classes=13),
        lambda path: read_labels(path, n_frames=5, n_classes=13),
    ),
    (
        "dcase2025 prediction",
        STEREO_ROWS,
        HEADER,
        lambda paths: read_predictions(paths, n_classes=13),
        lambda path: read_prediction(path, n_classes=13),
    ),
    *[
        (
            f"events {label} {'reference' if reference else 'prediction'}",
            rows,
            None,
            lambda paths, d=distance, r=reference: read_events_files(paths, n_classes=12, with_distance=d, reference=r),
            lambda path, d=distance, r=reference: read_events(path, n_classes=12, with_distance=d, reference=r),
        )
        for label, rows, distance in (
            ("5 columns", EVENT_ROWS, False),
            ("6 columns", EVENT6_ROWS, True),
            ("5 or 6 columns", EVENT_ROWS, None),
            ("6 of 5 or 6 columns", EVENT6_ROWS, None),
        )
        for reference in (True, False)
    ],
    (
        "events with a track limit",
        EVENT_ROWS,
        None,
        lambda paths: read_events_files(paths, n_classes=12, max_tracks=2),
        lambda path: read_events(path, n_classes=12, max_tracks=2),
    ),
    *[
        (
            f"doa-mot {'reference' if reference else 'prediction'}",
            DOA_ROWS,
            None,
            lambda paths, r=reference: doa_mot.read_files(paths, reference=r),
            lambda path, r=reference: doa_mot.read_file(path, reference=r),
        )
        for reference in (True, False)
    ],
]


def outcome(read: Callable[[], object]) -> tuple[str, object]:
    """('table', array) or ('error', message) of one read."""
    try:
        return "table", read()
    except InputError as error:
        return "error", str(error)


def assert_same(bulk: tuple[str, object], slow: tuple[str, object], where: str) -> None:
    assert bulk[0] == slow[0], f"{where}: bulk {bulk} vs per-line {slow}"
    if bulk[0] == "error":
        assert bulk[1] == slow[1], where
    else:
        a, b = np.asarray(bulk[1]), np.asarray(slow[1])
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        np.testing.assert_array_equal(a, b, err_msg=where)


@pytest.mark.parametrize(("name", "rows", "header", "bulk", "slow"), FORMATS, ids=[f[0] for f in FORMATS])
def test_every_file_reads_as_the_per_line_reader_reads_it(
    tmp_path: Path, name: str, rows: list[str], header: str | None, bulk: Callable, slow: Reader
) -> None:
    for index, (case, text) in enumerate(variants(rows, header)):
        path = tmp_path / f"case{index:02d}.csv"
        path.write_bytes(text.encode("utf-8"))
        expected = outcome(lambda path=path: slow(path))
        got = outcome(lambda path=path: bulk([path])[0])
        assert_same(got, expected, f"{name} / {case}")


@pytest.mark.parametrize(("name", "rows", "header", "bulk", "slow"), FORMATS, ids=[f[0] for f in FORMATS])
def test_many_files_keep_their_order_and_the_first_error_wins(
    tmp_path: Path, name: str, rows: list[str], header: str | None, bulk: Callable, slow: Reader
) -> None:
    """All variants in one call: good ones come back in order; with bad ones, the first bad file's error."""
    paths = []
    for index, (_, text) in enumerate(variants(rows, header)):
        paths.append(tmp_path / f"case{index:02d}.csv")
        paths[-1].write_bytes(text.encode("utf-8"))
    expected = []
    for path in paths:
        expected.append(outcome(lambda path=path: slow(path)))
    good = [path for path, result in zip(paths, expected, strict=True) if result[0] == "table"]
    tables = bulk(good)
    for path, table in zip(good, tables, strict=True):
        assert_same(("table", table), outcome(lambda path=path: slow(path)), f"{name} / {path.name}")
    first_error = next((result for result in expected if result[0] == "error"), None)
    if first_error is not None:
        assert_same(outcome(lambda: bulk(paths)), first_error, f"{name}: all files")


def test_numbers_are_the_correctly_rounded_decimals(tmp_path: Path) -> None:
    """Each field is float(text): long decimals, exponents and halfway cases, as Python itself reads them."""
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.uniform(-180, 180, 3000), rng.lognormal(0, 8, 3000), -rng.lognormal(0, 8, 3000)])
    texts = [repr(float(v)) for v in values] + [f"{v:.25g}" for v in values[:2000]] + [f"{v:.3e}" for v in values]
    texts += ["9007199254740993", "0.1000000000000000055511151231257827", "2.2250738585072014e-308", "4.9e-324"]
    texts += ["1.7976931348623157e308", "5e-324", "123456789012345678901234567890", "0.30000000000000004", "1."]
    lines = [f"{k % 7},{k % 12},{k % 3},{text},{text}" for k, text in enumerate(texts)]
    path = tmp_path / "numbers.csv"
    path.write_text("\n".join(lines) + "\n")
    layout = Layout(frozenset({5}))
    (table,) = read_numeric_files(
        [path], layout, check=lambda v, f: np.ones(len(v), dtype=bool), convert=lambda v: v, slow=lambda p: None
    )
    expected = np.array([[float(field) for field in line.split(",")] for line in lines])
    np.testing.assert_array_equal(table, expected)


def test_whole_numbers_are_finite_integers_within_the_limit() -> None:
    values = np.array([0.0, -3.0, 2.5, np.inf, np.nan, 2.0**53, 2.0**53 + 2, -(2.0**53)])
    assert whole_numbers(values, 2**53).tolist() == [True, True, False, False, False, True, False, True]


@pytest.mark.parametrize(
    ("module", "slow_name", "rows", "header", "bulk"),
    [
        ("seldflow.labels", "read_labels", STEREO_ROWS, HEADER, lambda p: read_labels_files(p, n_frames=None)),
        ("seldflow.metrics.dcase2025", "read_prediction", STEREO_ROWS, HEADER, read_predictions),
        (
            "seldflow.formats.dcase2021",
            "read_events",
            EVENT6_ROWS,
            None,
            lambda p: read_events_files(p, n_classes=12, with_distance=None),
        ),
        ("seldflow.metrics.doa_mot", "read_file", DOA_ROWS, None, doa_mot.read_files),
    ],
)
def test_plain_files_never_reach_the_per_line_reader(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    slow_name: str,
    rows: list[str],
    header: str | None,
    bulk: Callable,
) -> None:
    texts = [text for name, text in variants(rows, header) if name in ("plain", "no final newline", "one row")]
    paths = []
    for index, text in enumerate(texts * 3):
        paths.append(tmp_path / f"clip{index}.csv")
        paths[-1].write_text(text)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the per-line reader was called")

    monkeypatch.setattr(f"{module}.{slow_name}", refuse)
    tables = bulk(paths)
    assert [len(table) for table in tables] == [len(rows), len(rows), 1] * 3
