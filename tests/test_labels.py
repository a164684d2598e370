"""DCASE2025 label conventions: CSV reading and writing, azimuth folding and the ADPIT target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import stereo_target

from seldflow.errors import InputError
from seldflow.formats import dcase2021
from seldflow.labels import CSV_COLUMNS, fold_azimuth, onscreen_flags, read_labels, write_labels

HEADER = ",".join(CSV_COLUMNS) + "\n"
ACT, X, Y, DIST = range(4)


def csv_file(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(header + body)
    return path


# ---------------------------------------------------------------------------------------------------------------
# ADPIT target


def test_single_event_fills_track_zero_with_unit_vector_and_metres() -> None:
    target = stereo_target(np.array([[7, 4, 0, 30, 250, 1]]))
    assert target.shape == (50, 6, 4, 13) and target.dtype == np.float32
    np.testing.assert_allclose(target[7, 0, :, 4], [1.0, np.sqrt(3) / 2, 0.5, 2.5], rtol=1e-6)
    assert np.count_nonzero(target) == 4


def test_two_same_class_events_fill_tracks_one_and_two_in_csv_order() -> None:
    rows = np.array([[3, 0, 5, 90, 100, 0], [3, 0, 2, -90, 300, 0]])
    target = stereo_target(rows)
    np.testing.assert_allclose(target[3, 1, :, 0], [1.0, 0.0, 1.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(target[3, 2, :, 0], [1.0, 0.0, -1.0, 3.0], atol=1e-7)
    assert not target[3, [0, 3, 4, 5]].any()


def test_three_or_more_same_class_events_fill_tracks_three_to_five() -> None:
    azimuths = [0, 45, -45, 10]  # the fourth simultaneous event has no track and is dropped
    rows = np.array([[0, 8, k, az, 100 * (k + 1), 0] for k, az in enumerate(azimuths)])
    target = stereo_target(rows)
    for track, az in zip((3, 4, 5), azimuths, strict=False):
        rad = np.deg2rad(az)
        np.testing.assert_allclose(target[0, track, :, 8], [1.0, np.cos(rad), np.sin(rad), track - 2], atol=1e-6)
    assert target[0, :3].max() == 0.0
    assert target[0, :, ACT].sum() == 3


def test_events_of_different_classes_each_use_track_zero() -> None:
    rows = np.array([[10, 1, 0, -30, 120, 0], [10, 12, 0, 60, 80, 1], [11, 1, 0, -30, 120, 0]])
    target = stereo_target(rows)
    assert target[10, 0, ACT, 1] == target[10, 0, ACT, 12] == target[11, 0, ACT, 1] == 1.0
    assert target[:, :, ACT].sum() == 3
    assert target[10, 0, DIST, 12] == pytest.approx(0.8)


def test_empty_labels_give_zero_target() -> None:
    assert not stereo_target(np.zeros((0, 6), dtype=np.int64)).any()


# ---------------------------------------------------------------------------------------------------------------
# Azimuth folding


@pytest.mark.parametrize(
    ("azimuth", "folded"),
    [
        (150, 30),
        (-120, -60),
        (90, 90),
        (-90, -90),
        (0, 0),
        (45, 45),
        # 180 wraps to -180 first, and -180 folds to -180 - (-180) = 0: straight behind maps to straight ahead.
        (180, 0),
        (-180, 0),
        (270, -90),  # wraps to -90, already in front
        (-270, 90),
        (100, 80),
        (-91, -89),
    ],
)
def test_fold_azimuth(azimuth: float, folded: float) -> None:
    assert float(fold_azimuth(azimuth)) == pytest.approx(folded)


def test_fold_azimuth_keeps_lateral_sine_and_front_half() -> None:
    azimuths = np.arange(-360, 361, 7.5)
    folded = fold_azimuth(azimuths)
    assert folded.shape == azimuths.shape
    assert np.all((folded >= -90) & (folded <= 90))
    # Folding mirrors across the left/right axis: the left/right component sin(azimuth) is unchanged.
    np.testing.assert_allclose(np.sin(np.deg2rad(folded)), np.sin(np.deg2rad(azimuths)), atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Reading and writing CSVs


def test_write_then_read_round_trip_sorted(tmp_path: Path) -> None:
    rows = np.array(
        [[12, 3, 1, -45, 180, 0], [2, 5, 0, 90, 95, 1], [12, 3, 0, 30, 250, 1], [2, 1, 4, -90, 400, 0]],
        dtype=np.int64,
    )
    path = tmp_path / "out" / "clip.csv"
    write_labels(path, rows)
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER.strip()
    assert lines[1:] == ["2,1,4,-90,400,0", "2,5,0,90,95,1", "12,3,0,30,250,1", "12,3,1,-45,180,0"]
    back = read_labels(path)
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, rows[np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))])


def test_no_events_give_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    write_labels(path, np.zeros((0, 6), dtype=np.int64))
    assert path.read_text() == HEADER
    assert read_labels(path).shape == (0, 6)


def test_reads_integer_valued_floats_blank_lines_and_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(("\ufeff" + HEADER + "3,2,0,45.0,120,1\n\n").encode("utf-8"))
    np.testing.assert_array_equal(read_labels(path), [[3, 2, 0, 45, 120, 1]])


@pytest.mark.parametrize(
    ("body", "row", "field", "message"),
    [
        ("1,2,3\n", 2, None, "expected 6 columns"),
        ("0,0,0,10,100,0\n1,x,0,10,100,0\n", 3, "class", "not a number"),
        ("1,2,0,10.5,100,0\n", 2, "azimuth", "integer"),
        ("1,13,0,10,100,0\n", 2, "class", "unknown class"),
        ("1,-1,0,10,100,0\n", 2, "class", "unknown class"),
        ("50,0,0,10,100,0\n", 2, "frame", "out of range"),
        ("-1,0,0,10,100,0\n", 2, "frame", "out of range"),
        ("1,0,0,181,100,0\n", 2, "azimuth", "out of range"),
        ("1,0,0,-181,100,0\n", 2, "azimuth", "out of range"),
        ("1,0,0,10,-5,0\n", 2, "distance", "negative"),
        ("1,0,0,10,100,2\n", 2, "onscreen", "0 or 1"),
        ("1,0,-2,10,100,1\n", 2, "source", "negative"),
        ("1,0,0,nan,100,1\n", 2, "azimuth", "integer"),
        # Huge integers would overflow the int64 table (a raw OverflowError) or be read as another number.
        ("1,0,99999999999999999999,10,100,1\n", 2, "source", "out of range"),
        ("1,0,0,10,1e300,1\n", 2, "distance", "out of range"),
        ("1,0,0,10,1e400,1\n", 2, "distance", "integer"),
    ],
)
def test_malformed_rows_name_file_row_and_field(
    tmp_path: Path, body: str, row: int, field: str | None, message: str
) -> None:
    path = csv_file(tmp_path, body)
    with pytest.raises(InputError, match=message) as err:
        read_labels(path)
    assert (err.value.path, err.value.row, err.value.field) == (str(path), row, field)
    assert str(err.value).startswith(f"{path}: row {row}")


@pytest.mark.parametrize(("line", "field"), [("0,0,99999999999999999999,10,0", "track"), ("1e300,0,0,10,0", "frame")])
def test_huge_integers_of_dcase2021_files_name_row_and_field(tmp_path: Path, line: str, field: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("0,0,0,10,0\n" + line + "\n")
    with pytest.raises(InputError, match="out of range") as err:
        dcase2021.read_events(path, n_classes=12)
    assert (err.value.row, err.value.field) == (2, field)


def test_frame_bound_can_be_lifted_for_long_predictions(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "600,0,0,10,100,0\n")
    np.testing.assert_array_equal(read_labels(path, n_frames=None), [[600, 0, 0, 10, 100, 0]])


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("frame,class,source,azimuth,distance\n", "header must be"),
        ("class,frame,source,azimuth,distance,onscreen\n", "header must be"),
        ("", "empty file"),
    ],
)
def test_bad_header_is_reported_on_row_one(tmp_path: Path, header: str, message: str) -> None:
    path = csv_file(tmp_path, "", header=header)
    with pytest.raises(InputError, match=message) as err:
        read_labels(path)
    assert (err.value.path, err.value.row) == (str(path), 1)


def test_headerless_file_is_rejected(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "0,1,0,20,100,0\n", header="")
    with pytest.raises(InputError, match="header must be"):
        read_labels(path)


def test_missing_file_and_non_text_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found") as err:
        read_labels(tmp_path / "absent.csv")
    assert err.value.path == str(tmp_path / "absent.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(HEADER.encode() + b"\xff\xfe\x00garbage\n")
    with pytest.raises(InputError, match="not UTF-8") as err:
        read_labels(binary)
    assert err.value.path == str(binary)


@pytest.mark.parametrize(
    ("azimuth", "elevation", "expected"),
    [
        (0.0, 0.0, 1),
        (49.0, 0.0, 1),
        (51.0, 0.0, 0),
        (-49.0, 0.0, 1),
        (180.0, 0.0, 0),
        (130.0, 0.0, 0),  # tan(130) = tan(-50): behind the camera, not on screen
        (0.0, 33.0, 1),  # on the axis the limit is atan(tan(50) * 360/640) = 33.8 degrees
        (0.0, -35.0, 0),
        (45.0, 20.0, 1),  # tan(20) / cos(45) = 0.51 < 0.67
        (45.0, 30.0, 0),  # tan(30) / cos(45) = 0.82 > 0.67
    ],
)
def test_onscreen_flags_follow_a_perspective_camera(azimuth: float, elevation: float, expected: int) -> None:
    assert onscreen_flags(azimuth, elevation, 100.0) == expected
    assert onscreen_flags(np.array([azimuth]), np.array([elevation])).tolist() == [expected]
