"""Tests of the DCASE2021-style label format: reading, strict reference checks, lenient predictions, writing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from seldflow.errors import InputError
from seldflow.formats.dcase2021 import (
    EV_AZIMUTH,
    EV_CLASS,
    EV_DISTANCE,
    EV_ELEVATION,
    EV_FRAME,
    EV_TRACK,
    read_events,
    write_events,
)


def write(tmp_path: Path, text: str, name: str = "clip.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_five_columns_with_nan_distance(tmp_path: Path) -> None:
    path = write(tmp_path, "0,3,0,-40,10\n0,3,1,170,-5\n12,11,0,0,90\n")

    events = read_events(path, n_classes=12)

    assert events.dtype == np.float64
    assert events.shape == (3, 6)
    assert events[:, EV_FRAME].tolist() == [0, 0, 12]
    assert events[:, EV_CLASS].tolist() == [3, 3, 11]
    assert events[:, EV_TRACK].tolist() == [0, 1, 0]
    assert events[:, EV_AZIMUTH].tolist() == [-40, 170, 0]
    assert events[:, EV_ELEVATION].tolist() == [10, -5, 90]
    assert np.isnan(events[:, EV_DISTANCE]).all()


def test_reads_distance_in_centimetres_as_metres(tmp_path: Path) -> None:
    path = write(tmp_path, "5,0,0,10,0,150\n5,0,1,-10,0,35\n")

    events = read_events(path, n_classes=13, with_distance=True)

    assert events[:, EV_DISTANCE].tolist() == pytest.approx([1.5, 0.35])


def test_optional_distance_column_follows_the_first_row(tmp_path: Path) -> None:
    five = read_events(write(tmp_path, "0,0,0,10,0\n", "a.csv"), n_classes=13, with_distance=None)
    six = read_events(write(tmp_path, "0,0,0,10,0,200\n", "b.csv"), n_classes=13, with_distance=None)

    assert math.isnan(five[0, EV_DISTANCE])
    assert six[0, EV_DISTANCE] == pytest.approx(2.0)
    with pytest.raises(InputError, match="expected 6 columns, found 5") as info:
        read_events(write(tmp_path, "0,0,0,10,0,200\n1,0,0,10,0\n", "c.csv"), n_classes=13, with_distance=None)
    assert info.value.row == 2


def test_empty_file_is_a_clip_without_events(tmp_path: Path) -> None:
    assert read_events(write(tmp_path, ""), n_classes=13).shape == (0, 6)


def test_header_line_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = write(tmp_path, "frame,class,track,azimuth,elevation\n0,1,0,10,0\n")

    with pytest.raises(InputError, match="no header") as info:
        read_events(path, n_classes=13)
    assert (info.value.path, info.value.row) == (str(path), 1)


@pytest.mark.parametrize(
    ("line", "field", "message", "kwargs"),
    [
        ("0,13,0,10,0", "class", "unknown class index 13", {}),
        ("-1,0,0,10,0", "frame", "negative frame", {}),
        ("0,0,3,10,0", "track", "track index 3 out of range 0..2", {"max_tracks": 3}),
        ("0,0,-1,10,0", "track", "track index -1", {}),
        ("0,0,0,180.5,0", "azimuth", "azimuth 180.5 out of range", {}),
        ("0,0,0,10,-91", "elevation", "elevation -91 out of range", {}),
        ("0,0,0,ten,0", "azimuth", "not a number", {}),
        ("0,0,0,10,nan", "elevation", "not a finite number", {}),
        ("0.5,0,0,10,0", "frame", "expected an integer", {}),
        ("0,0,0,10,0,-5", "distance", "negative distance -5 cm", {"with_distance": True}),
    ],
)
def test_bad_reference_values_name_file_row_and_field(
    tmp_path: Path, line: str, field: str, message: str, kwargs: dict[str, object]
) -> None:
    first = "0,0,0,10,0,100" if kwargs.get("with_distance") else "0,0,0,10,0"
    path = write(tmp_path, f"{first}\n{line}\n")

    with pytest.raises(InputError, match=message) as info:
        read_events(path, n_classes=13, **kwargs)  # type: ignore[arg-type]

    assert (info.value.path, info.value.row, info.value.field) == (str(path), 2, field)
    assert f"{path}: row 2: field '{field}'" in str(info.value)


def test_wrong_column_count_names_the_row(tmp_path: Path) -> None:
    path = write(tmp_path, "0,0,0,10,0\n1,0,0,10\n")

    with pytest.raises(InputError, match="expected 5 columns, found 4") as info:
        read_events(path, n_classes=13)
    assert info.value.row == 2


def test_predictions_accept_any_finite_direction_and_track(tmp_path: Path) -> None:
    """The official scorer takes prediction angles as spherical coordinates, whatever their range."""
    path = write(tmp_path, "0,0,-7,370.5,100.25,-20\n")

    events = read_events(path, n_classes=13, with_distance=True, reference=False)

    assert events[0].tolist() == pytest.approx([0, 0, -7, 370.5, 100.25, -0.2])
    with pytest.raises(InputError, match="azimuth"):
        read_events(path, n_classes=13, with_distance=True)


@pytest.mark.parametrize(
    ("line", "field"), [("0,13,0,0,0", "class"), ("-2,0,0,0,0", "frame"), ("0,0,0,x,0", "azimuth")]
)
def test_predictions_still_need_a_known_class_a_frame_and_numbers(tmp_path: Path, line: str, field: str) -> None:
    with pytest.raises(InputError) as info:
        read_events(write(tmp_path, line + "\n"), n_classes=13, reference=False)
    assert (info.value.row, info.value.field) == (1, field)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_events(tmp_path / "absent.csv", n_classes=13)


def test_write_is_headerless_official_style_and_round_trips(tmp_path: Path) -> None:
    events = np.array([[3, 1, 0, -40.0, 10.0, 1.5], [3, 1, 1, 12.25, -3.5, 0.35], [0, 2, 0, 0.0, 0.0, 2.0]])
    path = tmp_path / "out" / "clip.csv"

    write_events(path, events, with_distance=True)

    lines = path.read_text().splitlines()
    assert lines[0] == "3,1,0,-40.0,10.0,150.0"  # integers where the official writer writes integers, row order kept
    assert lines[2] == "0,2,0,0.0,0.0,200.0"
    np.testing.assert_allclose(read_events(path, n_classes=13, with_distance=True), events, rtol=1e-15)
    assert [p.name for p in path.parent.iterdir()] == ["clip.csv"]  # written atomically, no temporary left


def test_write_without_distance_drops_the_column(tmp_path: Path) -> None:
    path = tmp_path / "clip.csv"
    write_events(path, np.array([[7, 4, 2, 90.0, 45.0, np.nan]]))

    assert path.read_text() == "7,4,2,90.0,45.0\n"
    with pytest.raises(ValueError, match="distance"):
        write_events(path, np.array([[7, 4, 2, 90.0, 45.0, np.nan]]), with_distance=True)
