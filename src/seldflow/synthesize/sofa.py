"""SOFA room files (SingleRoomSRIR): one impulse response per source position around a fixed array.

The project writes its simulated rooms in the layout SpatialScaper and AudibleLight read, so one room file serves
the built-in renderer and those tools alike. Source positions are Cartesian metres relative to the array centre
(x front, y left, z up); FOA channels are ACN (W, Y, Z, X) with SN3D normalisation.

Measured rooms may also record their trajectories: the ordered paths along which the source was measured moving
(a circle or line per height in TAU-SRIR DB). They are three extra integer variables over the position dimension M,
which pysofaconventions, SpatialScaper and AudibleLight ignore:

- ``SourceTrajectory`` (int32): the trajectory a position lies on, 0 .. T-1, or -1 for a position on none;
- ``SourceTrajectoryOrder`` (int32): its place along that trajectory, 0 .. L-1 in travel order (-1 if none);
- ``SourceTrajectoryClosed`` (int8): 1 when the trajectory goes all round the array and closes on itself.

A file without them (every third-party SOFA) reads back with ``Room.trajectories = None``.

The bytes are reproducible: the dates are fixed, and netCDF-C creates its HDF5 objects without modification
times, so writing the same room twice gives identical files (checked by the tests).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np

from seldflow.errors import InputError
from seldflow.io import atomic_file

# Fixed so that the file does not depend on when it was written.
FIXED_DATE = "2025-01-01 00:00:00"
_REQUIRED = ("Data.IR", "Data.SamplingRate", "SourcePosition")
_TRAJECTORY_VARIABLES = ("SourceTrajectory", "SourceTrajectoryOrder", "SourceTrajectoryClosed")


@dataclass(frozen=True)
class Trajectory:
    """One measured source path: indices into the room's positions in travel order, and whether it closes on
    itself (goes all round the array), so that a moving source can follow the path that was really measured."""

    indices: np.ndarray
    closed: bool = False


@dataclass(frozen=True)
class Room:
    """Impulse responses of one room: ``irs`` [M, R, N] float32 for the M source ``positions`` [M, 3], and the
    measured ``trajectories`` through those positions (None when the file records none)."""

    irs: np.ndarray
    positions: np.ndarray
    sample_rate: int
    name: str
    trajectories: tuple[Trajectory, ...] | None = None


def write_sofa(
    path: str | os.PathLike[str],
    irs: np.ndarray,
    source_positions: np.ndarray,
    sample_rate: int,
    *,
    room_name: str,
    room_dims: np.ndarray | list[float] | None = None,
    array_position: np.ndarray | list[float] | None = None,
    fmt: str = "foa",
    trajectories: Sequence[Trajectory] | None = None,
    title: str | None = None,
    comment: str | None = None,
) -> None:
    """Write ``irs`` [M, R, N] measured at ``source_positions`` [M, 3] as a SingleRoomSRIR SOFA file.

    ``room_dims`` and ``array_position`` (room coordinates, metres), when both given, become the room corners
    ``RoomCornerA``/``RoomCornerB`` expressed relative to the array, the frame of every other position.
    ``trajectories`` (disjoint paths of at least two positions each) are stored as described in the module
    docstring; without them the file is byte for byte what it was before trajectories existed. ``title`` and
    ``comment`` replace the global attributes written for simulated rooms (measured rooms say where they came from).
    """
    irs = np.asarray(irs, dtype=np.float32)
    positions = np.asarray(source_positions, dtype=np.float64)
    if irs.ndim != 3:
        raise ValueError(f"irs must be [M, R, N], got shape {irs.shape}")
    if positions.shape != (irs.shape[0], 3):
        raise ValueError(f"source_positions must be [{irs.shape[0]}, 3], got shape {positions.shape}")
    if (room_dims is None) != (array_position is None):
        raise ValueError("room_dims and array_position must be given together")
    n_pos, n_rec, n_taps = irs.shape
    columns = None if trajectories is None else trajectory_columns(trajectories, n_pos)
    with atomic_file(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as ds:
        _write_global_attributes(ds, room_name=room_name, fmt=fmt, title=title, comment=comment)
        for dim, size in (("M", n_pos), ("R", n_rec), ("N", n_taps), ("E", 1), ("I", 1), ("C", 3)):
            ds.createDimension(dim, size)
        _position(ds, "ListenerPosition", ("I", "C"), np.zeros((1, 3)))
        _position(ds, "ListenerUp", ("I", "C"), [[0.0, 0.0, 1.0]])
        _position(ds, "ListenerView", ("I", "C"), [[1.0, 0.0, 0.0]])
        _position(ds, "ReceiverPosition", ("R", "C", "I"), np.zeros((n_rec, 3, 1)))
        _position(ds, "SourcePosition", ("M", "C"), positions)
        _position(ds, "SourceUp", ("I", "C"), [[0.0, 0.0, 1.0]])
        _position(ds, "SourceView", ("I", "C"), [[-1.0, 0.0, 0.0]])
        _position(ds, "EmitterPosition", ("E", "C", "I"), np.zeros((1, 3, 1)))
        if room_dims is not None and array_position is not None:
            origin = np.asarray(array_position, dtype=np.float64)
            _position(ds, "RoomCornerA", ("I", "C"), -origin[None, :])
            _position(ds, "RoomCornerB", ("I", "C"), (np.asarray(room_dims, dtype=np.float64) - origin)[None, :])
            ds.RoomCorners = "RoomCornerA, RoomCornerB"
        ir = ds.createVariable("Data.IR", "f4", ("M", "R", "N"), zlib=True, complevel=4)
        if fmt == "foa":
            ir.ChannelOrdering = "acn"
            ir.Normalization = "sn3d"
        ir[:] = irs
        rate = ds.createVariable("Data.SamplingRate", "f8", ("I",))
        rate.Units = "hertz"
        rate[:] = float(sample_rate)
        ds.createVariable("Data.Delay", "f8", ("I", "R"))[:] = np.zeros((1, n_rec))
        if columns is not None:
            _write_trajectories(ds, *columns)


def trajectory_columns(trajectories: Sequence[Trajectory], n_positions: int) -> tuple[np.ndarray, ...]:
    """Per-position (trajectory id, order along it, closed flag) columns; -1/-1/0 for a position on none.

    A position on two trajectories could not be told apart in this encoding, so it is refused, as are paths
    shorter than two positions (nothing to move along) and indices outside the room.
    """
    ids = np.full(n_positions, -1, dtype=np.int32)
    order = np.full(n_positions, -1, dtype=np.int32)
    closed = np.zeros(n_positions, dtype=np.int8)
    for number, trajectory in enumerate(trajectories):
        indices = np.asarray(trajectory.indices)
        if indices.ndim != 1 or indices.size < 2 or not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(f"trajectory {number} must be a 1-D integer array of at least 2 positions")
        if indices.min() < 0 or indices.max() >= n_positions:
            raise ValueError(f"trajectory {number} has indices outside 0..{n_positions - 1}")
        if np.unique(indices).size != indices.size or np.any(ids[indices] >= 0):
            raise ValueError(f"trajectory {number} repeats a position or shares one with another trajectory")
        ids[indices] = number
        order[indices] = np.arange(indices.size, dtype=np.int32)
        closed[indices] = int(bool(trajectory.closed))
    return ids, order, closed


def _write_trajectories(ds: netCDF4.Dataset, ids: np.ndarray, order: np.ndarray, closed: np.ndarray) -> None:
    descriptions = (
        "measured trajectory of each source position (0-based), -1 if none",
        "0-based place of each source position along its trajectory in travel order, -1 if none",
        "1 if the position's trajectory closes on itself (goes all round the array), else 0",
    )
    for name, values, description in zip(_TRAJECTORY_VARIABLES, (ids, order, closed), descriptions, strict=True):
        var = ds.createVariable(name, values.dtype.str[1:], ("M",))
        var.Description = description
        var[:] = values


def _write_global_attributes(
    ds: netCDF4.Dataset, *, room_name: str, fmt: str, title: str | None, comment: str | None
) -> None:
    attributes = {
        "Conventions": "SOFA",
        "Version": "2.1",
        "SOFAConventions": "SingleRoomSRIR",
        "SOFAConventionsVersion": "1.0",
        "DataType": "FIR",
        "RoomType": "shoebox",
        "APIName": "seldflow",
        "APIVersion": "0.1",
        "AuthorContact": "seldflow",
        "Organization": "seldflow",
        "License": "CC BY 4.0",
        "DateCreated": FIXED_DATE,
        "DateModified": FIXED_DATE,
        "Title": title or f"Simulated spatial room impulse responses: {room_name}",
        "DatabaseName": "seldflow",
        "ListenerShortName": fmt,
        "RoomShortName": room_name,
        "Comment": comment or "Source positions in metres relative to the array centre (x front, y left, z up).",
    }
    ds.setncatts(attributes)


def _position(ds: netCDF4.Dataset, name: str, dims: tuple[str, ...], values: object) -> None:
    """A position-like variable; every one carries Units and Type, which pysofaconventions insists on."""
    var = ds.createVariable(name, "f8", dims)
    var.Units = "metre"
    var.Type = "cartesian"
    var[:] = np.asarray(values, dtype=np.float64)


def read_sofa(path: str | os.PathLike[str]) -> Room:
    """Read the impulse responses, source positions (Cartesian, relative to the array) and rate of a SOFA file.

    Spherical ``SourcePosition`` (degrees, degrees, metres) is converted; any other inconsistency is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "SOFA file not found")
    try:
        ds = netCDF4.Dataset(path, "r")
    except OSError as exc:
        raise InputError(path, f"not a readable SOFA (netCDF4/HDF5) file ({exc})") from exc
    with ds:
        for name in _REQUIRED:
            if name not in ds.variables:
                raise InputError(path, "missing SOFA variable", field=name)
        irs = np.asarray(ds.variables["Data.IR"][:], dtype=np.float32)
        positions = np.asarray(ds.variables["SourcePosition"][:], dtype=np.float64)
        coordinates = str(getattr(ds.variables["SourcePosition"], "Type", "cartesian")).lower()
        rates = np.asarray(ds.variables["Data.SamplingRate"][:], dtype=np.float64).ravel()
        name = str(getattr(ds, "RoomShortName", path.stem))
        columns = _read_trajectory_columns(path, ds)
    if irs.ndim != 3 or irs.shape[0] == 0 or irs.shape[2] == 0:
        raise InputError(path, f"expected a non-empty [M, R, N] array, found shape {irs.shape}", field="Data.IR")
    if positions.shape == (1, 3) and irs.shape[0] > 1:
        positions = np.repeat(positions, irs.shape[0], axis=0)
    if positions.shape != (irs.shape[0], 3):
        raise InputError(path, f"expected shape ({irs.shape[0]}, 3), found {positions.shape}", field="SourcePosition")
    if coordinates == "spherical":
        positions = _spherical_to_cartesian(positions)
    elif coordinates != "cartesian":
        raise InputError(path, f"unknown coordinate Type '{coordinates}'", field="SourcePosition")
    if rates.size != 1 or not np.isfinite(rates[0]) or rates[0] <= 0 or rates[0] != round(rates[0]):
        raise InputError(path, f"expected one positive integer rate, found {rates}", field="Data.SamplingRate")
    if not (np.all(np.isfinite(irs)) and np.all(np.isfinite(positions))):
        raise InputError(path, "impulse responses or positions hold NaN or infinite values")
    trajectories = None if columns is None else _trajectories_from_columns(path, irs.shape[0], *columns)
    return Room(irs=irs, positions=positions, sample_rate=int(rates[0]), name=name, trajectories=trajectories)


def _read_trajectory_columns(path: Path, ds: netCDF4.Dataset) -> tuple[np.ndarray, ...] | None:
    present = [name for name in _TRAJECTORY_VARIABLES if name in ds.variables]
    if not present:
        return None
    for name in _TRAJECTORY_VARIABLES:
        if name not in ds.variables:
            raise InputError(path, f"trajectory variables need all of {', '.join(_TRAJECTORY_VARIABLES)}", field=name)
    return tuple(np.ma.getdata(ds.variables[name][:]) for name in _TRAJECTORY_VARIABLES)


def _trajectories_from_columns(
    path: Path, n_positions: int, ids: np.ndarray, order: np.ndarray, closed: np.ndarray
) -> tuple[Trajectory, ...]:
    """Rebuild the trajectories, checking that the columns encode disjoint, gap-free paths as the writer does."""
    for name, values in zip(_TRAJECTORY_VARIABLES, (ids, order, closed), strict=True):
        if values.shape != (n_positions,) or not np.issubdtype(values.dtype, np.integer):
            raise InputError(path, f"expected {n_positions} integers, found {values.dtype} {values.shape}", field=name)
    if ids.min() < -1:
        raise InputError(path, f"trajectory ids must be >= -1, found {ids.min()}", field=_TRAJECTORY_VARIABLES[0])
    trajectories = []
    for number in range(int(ids.max()) + 1):
        members = np.flatnonzero(ids == number)
        if members.size < 2:
            raise InputError(
                path, f"trajectory {number} has {members.size} positions, need 2 or more", field="SourceTrajectory"
            )
        members = members[np.argsort(order[members], kind="stable")]
        if not np.array_equal(order[members], np.arange(members.size)):
            raise InputError(
                path, f"trajectory {number} is not numbered 0..{members.size - 1}", field="SourceTrajectoryOrder"
            )
        if np.unique(closed[members]).size != 1:
            raise InputError(path, f"trajectory {number} is both closed and open", field="SourceTrajectoryClosed")
        trajectories.append(Trajectory(indices=members.astype(np.int64), closed=bool(closed[members[0]])))
    return tuple(trajectories)


def _spherical_to_cartesian(positions: np.ndarray) -> np.ndarray:
    azimuth, elevation = np.deg2rad(positions[:, 0]), np.deg2rad(positions[:, 1])
    radius = positions[:, 2]
    return np.stack(
        [
            radius * np.cos(elevation) * np.cos(azimuth),
            radius * np.cos(elevation) * np.sin(azimuth),
            radius * np.sin(elevation),
        ],
        axis=1,
    )
