"""Class-agnostic DOAnet targets from DCASE2020 label rows (frame, class, track, azimuth, elevation)."""

from __future__ import annotations

import numpy as np
import pytest

from seldflow.doanet.labels import doa_targets
from seldflow.errors import InputError

ROWS = np.array(
    [
        # frame, class, track, azimuth, elevation
        [0, 3, 0, 90.0, 0.0],  # y axis
        [2, 7, 0, 0.0, 90.0],  # z axis: first row of frame 2 → slot 0
        [2, 1, 1, 180.0, 0.0],  # -x axis → slot 1, whatever its class
        [3, 1, 1, -90.0, 0.0],  # -y axis
        [9, 0, 0, 0.0, 0.0],  # past the clip: dropped
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
    targets = doa_targets(np.zeros((0, 5)), n_frames=3)
    assert targets.doa.shape == (3, 2, 3) and (targets.doa == 10).all() and not targets.activity.any()


def test_more_sources_than_slots_names_file_row_and_field() -> None:
    rows = np.array([[4, 0, 0, 0, 0], [4, 1, 0, 10, 0], [4, 2, 0, 20, 0]])
    with pytest.raises(InputError) as error:
        doa_targets(rows, n_frames=10, n_max=2, path="fold1_room1_mix001.csv")
    assert error.value.row == 3 and error.value.field == "frame"
    assert "fold1_room1_mix001.csv" in str(error.value) and "n_max = 2" in str(error.value)


@pytest.mark.parametrize(
    ("row", "field"),
    [([0, 0, 0, 10.0, 95.0], "elevation"), ([0, 0, 0, 200.0, 0.0], "azimuth"), ([-1, 0, 0, 0, 0], "frame")],
)
def test_out_of_range_values_name_the_field(row: list, field: str) -> None:
    with pytest.raises(InputError) as error:
        doa_targets(np.array([[1, 0, 0, 0, 0], row]), n_frames=4, path="labels.csv")
    assert error.value.field == field and error.value.row == 2
