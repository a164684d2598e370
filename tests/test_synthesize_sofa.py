"""SOFA room files: round trip, convention validity, reproducible bytes and input validation."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from seldflow.errors import InputError
from seldflow.synthesize.sofa import Trajectory, read_sofa, write_sofa


def _example(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((5, 4, 64)).astype(np.float32), rng.uniform(-2.0, 2.0, (5, 3))


def test_round_trip_keeps_responses_positions_rate_and_name(tmp_path: Path) -> None:
    irs, positions = _example()
    path = tmp_path / "room.sofa"
    write_sofa(path, irs, positions, 24000, room_name="lab", room_dims=[6.0, 5.0, 3.0], array_position=[3, 2, 1])
    room = read_sofa(path)
    np.testing.assert_array_equal(room.irs, irs)
    np.testing.assert_array_equal(room.positions, positions)
    assert (room.sample_rate, room.name) == (24000, "lab")
    with netCDF4.Dataset(path) as ds:
        assert ds.SOFAConventions == "SingleRoomSRIR"
        assert ds.variables["Data.IR"].ChannelOrdering == "acn"
        assert ds.variables["Data.IR"].Normalization == "sn3d"
        np.testing.assert_array_equal(ds.variables["ListenerPosition"][:], np.zeros((1, 3)))
        np.testing.assert_array_equal(ds.variables["RoomCornerA"][:], [[-3.0, -2.0, -1.0]])
        np.testing.assert_array_equal(ds.variables["RoomCornerB"][:], [[3.0, 3.0, 2.0]])


def test_file_passes_pysofaconventions_validation(tmp_path: Path) -> None:
    sofa = pytest.importorskip("pysofaconventions")
    irs, positions = _example()
    path = tmp_path / "room.sofa"
    write_sofa(path, irs, positions, 24000, room_name="lab", room_dims=[6.0, 5.0, 3.0], array_position=[3, 2, 1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        handle = sofa.SOFAFile(str(path), "r")
        assert handle.isValid()
        handle.close()
    assert not [str(w.message) for w in caught if issubclass(w.category, sofa.SOFAWarning)]


def test_writing_twice_gives_identical_bytes(tmp_path: Path) -> None:
    irs, positions = _example()
    write_sofa(tmp_path / "a.sofa", irs, positions, 24000, room_name="lab")
    time.sleep(1.1)  # a timestamp with one-second resolution would now differ
    write_sofa(tmp_path / "b.sofa", irs, positions, 24000, room_name="lab")
    assert (tmp_path / "a.sofa").read_bytes() == (tmp_path / "b.sofa").read_bytes()
    other_irs, _ = _example(seed=1)
    write_sofa(tmp_path / "c.sofa", other_irs, positions, 24000, room_name="lab")
    assert (tmp_path / "c.sofa").read_bytes() != (tmp_path / "a.sofa").read_bytes()


def test_spherical_source_positions_are_converted(tmp_path: Path) -> None:
    irs, positions = _example()
    path = tmp_path / "room.sofa"
    write_sofa(path, irs, positions, 24000, room_name="lab")
    with netCDF4.Dataset(path, "a") as ds:
        var = ds.variables["SourcePosition"]
        var.Type = "spherical"
        var[:] = [[90.0, 0.0, 2.0], [0.0, 90.0, 1.0], [180.0, 0.0, 1.5], [45.0, 0.0, 1.0], [0.0, -30.0, 2.0]]
    expected = [[0, 2, 0], [0, 0, 1], [-1.5, 0, 0], [np.sqrt(0.5), np.sqrt(0.5), 0], [np.sqrt(3), 0, -1]]
    np.testing.assert_allclose(read_sofa(path).positions, expected, atol=1e-12)


def test_missing_file_and_non_sofa_file_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_sofa(tmp_path / "absent.sofa")
    garbage = tmp_path / "garbage.sofa"
    garbage.write_bytes(b"not an hdf5 file")
    with pytest.raises(InputError, match="not a readable SOFA") as err:
        read_sofa(garbage)
    assert err.value.path == str(garbage)


@pytest.mark.parametrize("missing", ["Data.IR", "SourcePosition", "Data.SamplingRate"])
def test_missing_variable_is_named(tmp_path: Path, missing: str) -> None:
    path = tmp_path / "partial.sofa"
    with netCDF4.Dataset(path, "w") as ds:
        for dim, size in (("M", 2), ("R", 4), ("N", 8), ("I", 1), ("C", 3)):
            ds.createDimension(dim, size)
        shapes = {"Data.IR": ("M", "R", "N"), "SourcePosition": ("M", "C"), "Data.SamplingRate": ("I",)}
        for name, dims in shapes.items():
            if name != missing:
                ds.createVariable(name, "f8", dims)[:] = 1.0
    with pytest.raises(InputError, match="missing SOFA variable") as err:
        read_sofa(path)
    assert err.value.field == missing


def test_position_count_must_match_responses(tmp_path: Path) -> None:
    path = tmp_path / "mismatch.sofa"
    with netCDF4.Dataset(path, "w") as ds:
        for dim, size in (("M", 3), ("R", 4), ("N", 8), ("I", 1), ("C", 3), ("P", 2)):
            ds.createDimension(dim, size)
        ds.createVariable("Data.IR", "f4", ("M", "R", "N"))[:] = 0.0
        ds.createVariable("SourcePosition", "f8", ("P", "C"))[:] = 1.0
        ds.createVariable("Data.SamplingRate", "f8", ("I",))[:] = 24000.0
    with pytest.raises(InputError, match=r"expected shape \(3, 3\)") as err:
        read_sofa(path)
    assert err.value.field == "SourcePosition"


def test_writer_rejects_inconsistent_arrays(tmp_path: Path) -> None:
    irs, positions = _example()
    with pytest.raises(ValueError, match="source_positions"):
        write_sofa(tmp_path / "x.sofa", irs, positions[:3], 24000, room_name="lab")
    with pytest.raises(ValueError, match="together"):
        write_sofa(tmp_path / "x.sofa", irs, positions, 24000, room_name="lab", room_dims=[1, 2, 3])
    assert not list(tmp_path.iterdir())


TRAJECTORIES = [Trajectory(np.array([3, 1, 4]), closed=True), Trajectory(np.array([0, 2]))]


def test_trajectories_round_trip_and_files_without_them_read_as_none(tmp_path: Path) -> None:
    irs, positions = _example()
    write_sofa(tmp_path / "paths.sofa", irs, positions, 24000, room_name="lab", trajectories=TRAJECTORIES)
    room = read_sofa(tmp_path / "paths.sofa")
    assert room.trajectories is not None and len(room.trajectories) == 2
    for got, expected in zip(room.trajectories, TRAJECTORIES, strict=True):
        np.testing.assert_array_equal(got.indices, expected.indices)
        assert got.closed == expected.closed
    with netCDF4.Dataset(tmp_path / "paths.sofa") as ds:
        np.testing.assert_array_equal(ds.variables["SourceTrajectory"][:], [1, 0, 1, 0, 0])
        np.testing.assert_array_equal(ds.variables["SourceTrajectoryOrder"][:], [0, 1, 1, 0, 2])
        np.testing.assert_array_equal(ds.variables["SourceTrajectoryClosed"][:], [0, 1, 0, 1, 1])
    write_sofa(tmp_path / "plain.sofa", irs, positions, 24000, room_name="lab")
    assert read_sofa(tmp_path / "plain.sofa").trajectories is None


def test_file_with_trajectories_is_valid_and_reproducible(tmp_path: Path) -> None:
    sofa = pytest.importorskip("pysofaconventions")
    irs, positions = _example()
    for name in ("a.sofa", "b.sofa"):
        write_sofa(tmp_path / name, irs, positions, 24000, room_name="lab", trajectories=TRAJECTORIES)
    assert (tmp_path / "a.sofa").read_bytes() == (tmp_path / "b.sofa").read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        handle = sofa.SOFAFile(str(tmp_path / "a.sofa"), "r")
        assert handle.isValid()
        np.testing.assert_array_equal(handle.getVariableValue("SourcePosition"), positions)
        handle.close()
    assert not [str(w.message) for w in caught if issubclass(w.category, sofa.SOFAWarning)]


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"drop": "SourceTrajectoryClosed"}, "SourceTrajectoryClosed"),
        ({"SourceTrajectoryOrder": [0, 2, 1, 0, 3]}, "SourceTrajectoryOrder"),  # trajectory 0 skips place 2
        ({"SourceTrajectory": [1, 0, 2, 0, 0]}, "SourceTrajectory"),  # trajectory 2 of a single position
        ({"SourceTrajectoryClosed": [0, 1, 0, 0, 1]}, "SourceTrajectoryClosed"),  # both closed and open
    ],
)
def test_malformed_trajectories_are_input_errors(tmp_path: Path, edit: dict, field: str) -> None:
    irs, positions = _example()
    path = tmp_path / "paths.sofa"
    write_sofa(path, irs, positions, 24000, room_name="lab", trajectories=TRAJECTORIES)
    with netCDF4.Dataset(path, "a") as ds:
        for name, values in edit.items():
            if name == "drop":
                ds.renameVariable(values, "Renamed")
            else:
                ds.variables[name][:] = values
    with pytest.raises(InputError) as err:
        read_sofa(path)
    assert (err.value.path, err.value.field) == (str(path), field)


@pytest.mark.parametrize(
    "trajectories",
    [
        [Trajectory(np.array([0, 1])), Trajectory(np.array([1, 2]))],  # shared position
        [Trajectory(np.array([4]))],  # nothing to move along
        [Trajectory(np.array([3, 5]))],  # outside the room
    ],
)
def test_writer_rejects_bad_trajectories(tmp_path: Path, trajectories: list[Trajectory]) -> None:
    irs, positions = _example()
    with pytest.raises(ValueError, match="trajectory"):
        write_sofa(tmp_path / "x.sofa", irs, positions, 24000, room_name="lab", trajectories=trajectories)
    assert not list(tmp_path.iterdir())
