"""Class-agnostic DOAnet targets from event tables (frame, class, track, azimuth, elevation, distance)."""

from __future__ import annotations

import numpy as np
import pytest

from seldflow.doanet.labels import doa_targets
from seldflow.errors import InputError
from seldflow.metrics.doa_mot import read_file

NAN = float("nan")
ROWS = np.array(
    [
        # frame, class, track, azimuth, elevation, distance
        [2, 7, 0, 0.0, 90.0, NAN],  # z axis: first row of frame 2 → slot 0
        [0, 3, 0, 90.0, 0.0, NAN],  # y axis
        [3, 1, 1, -90.0, 0.0, NAN],  # -y axis
        [2, 1, 1, 180.0, 0.0, NAN],  # -x axis → slot 1 of frame 2, whatever its class and position in the table
        [9, 0, 0, 0.0, 0.0, NAN],  # past the clip: dropped
    ]
)


def test_slots_follow_the_metadata_order_and_ignore_classes() -> None:
    targets = doa_targets(ROWS, n_frames=5, n_max=2, mode="hnet")
    inactive = [10.0, 10.0, 10.0]
    expected = np.array(
        [
            [[0, 1, 0], inactive],
            [inactive, inactive],
            [[0, 0, 1], [-1, 0, 0]],
            [[0, -1, 0], inactive],
            [inactive, inactive],
        ]
    )
    np.testing.assert_allclose(targets.doa, expected, atol=1e-7)
    np.testing.assert_array_equal(targets.activity, [[1, 0], [0, 0], [1, 1], [1, 0], [0, 0]])
    assert targets.doa.dtype == np.float32 and targets.activity.dtype == np.float32


def test_mse_targets_put_inactive_slots_at_the_zenith() -> None:
    targets = doa_targets(ROWS, n_frames=2, n_max=2, mode="mse")
    np.testing.assert_allclose(targets.doa[1], [[0, 0, 1], [0, 0, 1]])
    np.testing.assert_allclose(targets.doa[0, 1], [0, 0, 1])


def test_no_rows_give_an_empty_clip() -> None:
    targets = doa_targets(np.zeros((0, 6)), n_frames=3)
    assert targets.doa.shape == (3, 2, 3) and (targets.doa == 10).all() and not targets.activity.any()


def test_more_sources_than_slots_names_file_row_and_field() -> None:
    rows = np.array([[4, 0, 0, 0, 0, NAN], [4, 1, 0, 10, 0, NAN], [4, 2, 0, 20, 0, NAN]])
    with pytest.raises(InputError) as error:
        doa_targets(rows, n_frames=10, n_max=2, path="fold1_room1_mix001.csv")
    assert error.value.row == 3 and error.value.field == "frame"
    assert "fold1_room1_mix001.csv" in str(error.value) and "n_max = 2" in str(error.value)
    # three sources in a frame past the clip are dropped, not an error; n_max = 3 takes them
    assert doa_targets(rows, n_frames=4).activity.sum() == 0
    assert doa_targets(rows, n_frames=5, n_max=3).activity[4].tolist() == [1, 1, 1]


def test_csv_labels_to_targets_and_bad_elevation(tmp_path) -> None:
    """A DCASE2020 CSV through the metric's reader: slots in file order; an elevation past 90° is refused there,
    naming file and field, before any target is built."""
    good = tmp_path / "good.csv"
    good.write_text("1,4,0,0,0\n1,9,1,90,0\n")
    targets = doa_targets(read_file(good), n_frames=3, path=good)
    np.testing.assert_allclose(targets.doa[1], [[1, 0, 0], [0, 1, 0]], atol=1e-7)
    bad = tmp_path / "bad.csv"
    bad.write_text("0,4,0,10,95\n")
    with pytest.raises(InputError) as error:
        read_file(bad)
    assert error.value.field == "elevation" and "bad.csv" in str(error.value)
