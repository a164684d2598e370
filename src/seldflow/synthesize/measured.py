"""Measured rooms: TAU-SRIR DB and METU SPARG impulse responses converted to the project's SOFA room format.

Measured responses give the renderer real reverberation, and their measurement paths give moving sources the
trajectories the responses were actually taken along (one per trajectory and height in TAU-SRIR DB). The result is
an ordinary project room file (see :mod:`seldflow.synthesize.sofa`): positions in metres relative to the array
(x front, y left, z up), FOA as ACN/SN3D (W, Y, Z, X), plus the recorded trajectories.

Layouts assumed (from the datasets' documentation and the public converters that read them; every field below is
checked, and a missing or malformed one is an :class:`InputError` naming the file and the field):

TAU-SRIR DB (Zenodo 6408611, folder ``TAU-SRIR_DB``), responses at 24 kHz as distributed:

- ``rirs_NN_<room>.mat`` (MATLAB v7.3, i.e. HDF5): a struct array ``rirs`` of size [trajectories x heights] with
  fields ``foa`` and ``mic``, each [samples x 4 x DOAs]. In HDF5 the fields are datasets of object references
  with the reversed shape [heights, trajectories]; each reference points to a [DOAs, 4, samples] array, or to an
  array marked ``MATLAB_empty`` where a trajectory has fewer heights.
- ``rirdata.mat`` (MATLAB v5, read with scipy): struct ``rirdata`` whose field ``room`` is a struct array with
  one entry per room in ``measinfo`` order; ``room(k).rirs(i, j).doa_xyz`` are the unit direction vectors
  [DOAs x 3] of trajectory i at height j, in the array frame. ``room(k)``'s first field holds the room name and is
  compared with the requested room.
- ``measinfo.mat`` (MATLAB v5): struct array ``measinfo`` with fields ``room`` (name), ``trajectoryType``
  (``circular`` or ``linear``) and ``distances``: per trajectory the horizontal range of a circle, or for lines
  an array [points x 3 x trajectories] whose first point is the start (and second, when present, the end) of the
  line in metres around the array's vertical axis.

A position is its measured direction scaled out to the measured path: to the circle's horizontal range, or to
the vertical plane that holds the line (so the source height follows from the direction's elevation, with no
assumption about the microphone height). For lines the directions of a path's first and last responses must
point at the line's two ends (within ``_LINE_END_TOLERANCE_DEG``); if the dataset's frame differed from this,
the conversion stops instead of writing wrong positions.

METU SPARG (Zenodo 2635758, ``spargair.zip``): ``spargair/em32/XYZ/IR000CC.wav``, one mono 32-channel-capsule
file per channel CC = 01..32 and position code XYZ (three digits). Position: x = (3 - X) * 0.5, y = (3 - Y) * 0.5,
z = (Z - 2) * ``z_step_m`` metres (``z_step_m`` = 0.5 as in SpatialScaper; other sources give 0.3 m, so it is a
parameter). The tetrahedral ``mic`` format takes em32 channels 5, 9, 25, 21 (0-based). FOA needs a spherical-
harmonic encoding of all 32 capsules, which this module does not do.

TAU trajectories are kept as measured, one per trajectory and height; circular ones that go all round the array
are closed. METU's grid has no measured paths; its trajectories are the concentric squares of grid points around
the array on each height (the ring at Chebyshev distance k from the array has 8k points), sorted by azimuth and
closed: the densest loops the grid offers, so a moving source circles the array through neighbouring points.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io
import soundfile as sf
from scipy import signal

from seldflow.errors import InputError
from seldflow.labels import SAMPLE_RATE
from seldflow.synthesize.sofa import Room, Trajectory, write_sofa

TAU_ROOMS = ("bomb_shelter", "gym", "pb132", "pc226", "sa203", "sc203", "se203", "tb103", "tc352")
TAU_SAMPLE_RATE = 24000  # the published responses are downsampled to 24 kHz (dataset README)
TAU_CHANNELS = 4
METU_MIC_CHANNELS = (5, 9, 25, 21)  # 0-based em32 capsules used as the tetrahedral format (as SpatialScaper)
METU_GRID_STEP_M = 0.5
METU_ARRAY_CODE = (3, 3, 2)
FORMATS = ("foa", "mic")
_LINE_END_TOLERANCE_DEG = 25.0
_MAT_ERRORS = (ValueError, OSError, TypeError, scipy.io.matlab.MatReadError)
_COMMENT = (
    "Measured responses. Source positions in metres relative to the array centre (x front, y left, z up); "
    "SourceTrajectory, SourceTrajectoryOrder and SourceTrajectoryClosed give the paths moving sources follow."
)


@dataclass(frozen=True)
class _Block:
    """The responses [DOAs, 4, taps] and positions [DOAs, 3] of one measured path, and whether it closes."""

    irs: np.ndarray
    positions: np.ndarray
    closed: bool


# --- entry points ----------------------------------------------------------------------------------------------


def convert_measured(
    source: str,
    dataset_dir: str | os.PathLike[str],
    out_sofa: str | os.PathLike[str],
    *,
    room: str,
    fmt: str,
    sample_rate: int,
) -> Room:
    """Convert one room of a downloaded dataset (``source`` "tau" or "metu") into a SOFA room file.

    ``dataset_dir`` is the dataset's folder (or a file inside it, such as the download marker); the dataset's own
    folder is found below it. One entry point keeps the workflow adapter free of dataset knowledge.
    """
    root = Path(dataset_dir)
    root = root.parent if root.is_file() else root
    if source == "tau":
        tau_dir = _find_tau_dir(root)
        return convert_tau_room(
            _find_tau_room_file(tau_dir, room),
            tau_dir / "rirdata.mat",
            tau_dir / "measinfo.mat",
            out_sofa,
            room=room,
            fmt=fmt,
            sample_rate=sample_rate,
        )
    if source == "metu":
        return convert_metu(_find_em32_dir(root), out_sofa, fmt=fmt, sample_rate=sample_rate, name=room)
    raise ValueError(f"source must be 'tau' or 'metu', got {source!r}")


def convert_tau_room(
    room_mat: str | os.PathLike[str],
    rirdata_mat: str | os.PathLike[str],
    measinfo_mat: str | os.PathLike[str],
    out_sofa: str | os.PathLike[str],
    *,
    room: str,
    fmt: str = "foa",
    sample_rate: int = TAU_SAMPLE_RATE,
) -> Room:
    """Convert one TAU-SRIR DB room (``fmt`` "foa": ACN/SN3D as stored, or "mic": tetrahedral) into a SOFA file.

    Responses are resampled to ``sample_rate``; every (trajectory, height) path becomes one stored trajectory,
    in the order measured. Returns the room as written.
    """
    _check_format(fmt)
    index, kind, distances = _tau_geometry(Path(measinfo_mat), room)
    tau = _TauRoom(Path(room_mat), Path(rirdata_mat), Path(measinfo_mat), index, kind, distances)
    doas = _tau_doas(tau.rirdata, index, room)
    with _open_mat73(tau.room_mat) as handle:
        responses = _tau_responses(tau.room_mat, handle, fmt)
        if responses.shape != doas.shape:
            raise InputError(
                tau.room_mat, f"{responses.shape} trajectories x heights, rirdata has {doas.shape}", field=f"rirs.{fmt}"
            )
        blocks = [
            _tau_path(tau, (i, j), dataset, doas[i, j], fmt, sample_rate)
            for (i, j), dataset in np.ndenumerate(responses)
        ]
    title = f"TAU-SRIR DB room {room} ({fmt}), converted"
    kept = [block for block in blocks if block is not None]
    return _write(out_sofa, kept, sample_rate, name=room, fmt=fmt, title=title, source=tau.room_mat)


@dataclass(frozen=True)
class _TauRoom:
    """The three files of one TAU-SRIR DB room and its geometry from ``measinfo``."""

    room_mat: Path
    rirdata: Path
    measinfo: Path
    index: int
    kind: str
    distances: np.ndarray


def _tau_path(
    tau: _TauRoom, ij: tuple[int, int], dataset: h5py.Dataset | None, doa: object, fmt: str, sample_rate: int
) -> _Block | None:
    """The responses and positions of trajectory i at height j; None where neither file has that height."""
    where = f"rirs({ij[0] + 1},{ij[1] + 1})"
    direction = _unit_rows(tau.rirdata, doa, f"room({tau.index + 1}).{where}.doa_xyz")
    if direction is None and dataset is None:
        return None  # a trajectory measured at fewer heights
    irs = _tau_block(tau.room_mat, dataset, f"{where}.{fmt}", None if direction is None else len(direction))
    if direction is None:
        raise InputError(tau.rirdata, f"no directions for the {len(irs)} responses of {where}", field="doa_xyz")
    if tau.kind == "circular" and np.any(np.hypot(direction[:, 0], direction[:, 1]) < 1e-6):
        raise InputError(tau.rirdata, f"{where}: a direction straight up or down", field="doa_xyz")
    positions = _tau_positions(tau.measinfo, tau.kind, tau.distances, ij[0], direction)
    closed = tau.kind == "circular" and _closes(direction)
    return _Block(_resample(irs, TAU_SAMPLE_RATE, sample_rate), positions, closed)


def convert_metu(
    spargair_dir: str | os.PathLike[str],
    out_sofa: str | os.PathLike[str],
    *,
    fmt: str = "mic",
    sample_rate: int = SAMPLE_RATE,
    name: str = "metu",
    z_step_m: float = METU_GRID_STEP_M,
) -> Room:
    """Convert METU SPARG's em32 responses (``spargair_dir``: the ``em32`` folder of position folders, or a folder
    above it) into a tetrahedral ``mic`` SOFA file, resampled to ``sample_rate``; returns the room as written.

    FOA is refused: it needs an SH encoder for the 32 capsules (the dataset's FOA version is a separate SOFA file
    published by its authors, usable as is).
    """
    _check_format(fmt)
    em32 = _find_em32_dir(Path(spargair_dir))
    if fmt == "foa":
        raise InputError(
            em32,
            "FOA cannot be derived from the raw em32 capsules without a spherical-harmonic encoder; use the METU "
            "FOA SOFA file published by the dataset authors, or fmt='mic'",
            field="fmt",
        )
    codes = sorted(p.name for p in em32.iterdir() if p.is_dir() and re.fullmatch(r"\d{3}", p.name))
    if not codes:
        raise InputError(em32, "no position folders (three-digit XYZ codes) found")
    positions = np.array([_metu_position(em32 / code, z_step_m) for code in codes])
    irs, rate = _metu_responses(em32, codes)
    irs = _resample(irs, rate, sample_rate)
    room = Room(irs, positions, sample_rate, name, trajectories=_metu_rings(codes, positions))
    return _save(out_sofa, room, fmt=fmt, title=f"METU SPARG em32 room responses ({fmt}), converted")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")


def _write(
    out_sofa: str | os.PathLike[str],
    blocks: list[_Block],
    sample_rate: int,
    *,
    name: str,
    fmt: str,
    title: str,
    source: Path,
) -> Room:
    """Stack the paths' responses and positions, record each path as a trajectory, write the SOFA file."""
    if not blocks:
        raise InputError(source, "no responses found")
    taps = {block.irs.shape[2] for block in blocks}
    if len(taps) != 1:
        raise InputError(source, f"paths have responses of different lengths {sorted(taps)}")
    starts = np.cumsum([0] + [len(block.irs) for block in blocks])
    trajectories = tuple(
        Trajectory(np.arange(start, start + len(block.irs)), block.closed)
        for start, block in zip(starts, blocks, strict=False)
        if len(block.irs) >= 2
    )
    irs = np.concatenate([block.irs for block in blocks])
    positions = np.concatenate([block.positions for block in blocks])
    return _save(out_sofa, Room(irs, positions, sample_rate, name, trajectories=trajectories), fmt=fmt, title=title)


def _save(out_sofa: str | os.PathLike[str], room: Room, *, fmt: str, title: str) -> Room:
    """Write a converted room as a SOFA file (its trajectories included) and hand it back."""
    write_sofa(
        out_sofa,
        room.irs,
        room.positions,
        room.sample_rate,
        room_name=room.name,
        fmt=fmt,
        trajectories=room.trajectories,
        title=title,
        comment=_COMMENT,
    )
    return room


def _resample(irs: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling along the taps (exact rational ratio, linear phase), as float32."""
    if rate == target:
        return np.asarray(irs, dtype=np.float32)
    divisor = math.gcd(int(rate), int(target))
    return signal.resample_poly(irs, target // divisor, rate // divisor, axis=-1).astype(np.float32)


def _closes(directions: np.ndarray) -> bool:
    """Whether a path of directions goes once all round the vertical axis and its last step back to the first
    is no longer than a few of its own steps: then a source can keep circling along it."""
    azimuth = np.arctan2(directions[:, 1], directions[:, 0])
    steps = np.angle(np.exp(1j * np.diff(np.append(azimuth, azimuth[0]))))
    winding = round(float(np.sum(steps)) / (2 * np.pi))
    closing, usual = abs(steps[-1]), float(np.median(np.abs(steps[:-1]))) if steps.size > 1 else 0.0
    return abs(winding) == 1 and directions.shape[0] >= 3 and closing <= max(np.deg2rad(5.0), 3.0 * usual)


# --- TAU-SRIR DB -----------------------------------------------------------------------------------------------


def _find_tau_dir(root: Path) -> Path:
    """The folder holding ``measinfo.mat``: ``root`` itself or the one folder below it that does."""
    if (root / "measinfo.mat").is_file():
        return root
    found = sorted(path.parent for path in root.rglob("measinfo.mat"))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} folders with a"
        raise InputError(root, f"{what} TAU-SRIR DB measinfo.mat found below this folder")
    return found[0]


def _find_tau_room_file(tau_dir: Path, room: str) -> Path:
    found = sorted(tau_dir.glob(f"rirs_*_{room}.mat"))
    if len(found) != 1:
        raise InputError(tau_dir, f"expected one room file rirs_NN_{room}.mat, found {len(found)}")
    return found[0]


def _load_v5(path: Path, name: str) -> np.ndarray:
    """One variable of a MATLAB v5 file as scipy returns it (structs as structured arrays, nothing squeezed)."""
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        data = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=True, variable_names=[name])
    except NotImplementedError as exc:
        raise InputError(path, "is a MATLAB v7.3 (HDF5) file; expected the MATLAB v5 file of the dataset") from exc
    except _MAT_ERRORS as exc:
        raise InputError(path, f"not a readable MATLAB file ({exc})") from exc
    if name not in data:
        raise InputError(path, "missing MATLAB variable", field=name)
    return data[name]


def _field(path: Path, struct: np.ndarray, name: str, where: str) -> np.ndarray:
    """Field ``name`` of a MATLAB struct (array): an object array of the struct's shape."""
    if not isinstance(struct, np.ndarray) or struct.dtype.names is None or name not in struct.dtype.names:
        raise InputError(path, "missing struct field", field=f"{where}.{name}")
    return struct[name]


def _text(value: object) -> str | None:
    """A MATLAB char array as a string, or None when the value is not text."""
    array = np.asarray(value)
    if array.dtype.kind != "U":
        return None
    return "".join(str(item) for item in array.ravel()).strip()


def _tau_geometry(path: Path, room: str) -> tuple[int, str, np.ndarray]:
    """The room's index in ``measinfo``, its trajectory type and its ``distances`` array."""
    measinfo = _load_v5(path, "measinfo")
    names = [_text(value) for value in _field(path, measinfo, "room", "measinfo").ravel(order="F")]
    matches = [k for k, found in enumerate(names) if found is not None and found.lower() == room.lower()]
    if len(matches) != 1:
        raise InputError(path, f"room '{room}' not found once among {names}", field="measinfo.room")
    index = matches[0]
    kind = _text(_field(path, measinfo, "trajectoryType", "measinfo").ravel(order="F")[index])
    if kind is None or kind.lower() not in ("circular", "linear"):
        raise InputError(path, f"expected 'circular' or 'linear', found {kind!r}", field="measinfo.trajectoryType")
    distances = _field(path, measinfo, "distances", "measinfo").ravel(order="F")[index]
    try:
        distances = np.asarray(distances, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"not numeric ({exc})", field="measinfo.distances") from exc
    return index, kind.lower(), distances


def _tau_doas(path: Path, index: int, room: str) -> np.ndarray:
    """``rirdata.room(index).rirs(i, j).doa_xyz`` as an object array [trajectories, heights]."""
    rirdata = _load_v5(path, "rirdata")
    if rirdata.size != 1:
        raise InputError(path, f"expected one rirdata struct, found {rirdata.size}", field="rirdata")
    rate = _fs(rirdata)
    if rate is not None and rate != TAU_SAMPLE_RATE:
        raise InputError(path, f"responses at {rate} Hz, expected {TAU_SAMPLE_RATE}", field="rirdata.fs")
    rooms = _field(path, rirdata, "room", "rirdata").ravel()[0]
    if not isinstance(rooms, np.ndarray) or rooms.size <= index:
        raise InputError(path, f"needs at least {index + 1} rooms (measinfo order)", field="rirdata.room")
    record = rooms.ravel(order="F")[index : index + 1]
    name = _text(record[0][0]) if record.dtype.names else None
    if name is not None and name.lower() != room.lower():
        raise InputError(path, f"entry {index + 1} is room '{name}', not '{room}'", field="rirdata.room")
    paths = _field(path, record, "rirs", f"rirdata.room({index + 1})")[0]
    if not isinstance(paths, np.ndarray) or paths.dtype.names is None or paths.ndim != 2:
        raise InputError(path, "expected a [trajectories x heights] struct array", field=f"room({index + 1}).rirs")
    return _field(path, paths, "doa_xyz", f"room({index + 1}).rirs")


def _fs(rirdata: np.ndarray) -> int | None:
    """The documented 24 kHz is checked against a top-level ``fs`` field when there is one."""
    if rirdata.dtype.names is None or "fs" not in rirdata.dtype.names:
        return None
    value = np.asarray(rirdata["fs"].ravel()[0]).ravel()
    return int(value[0]) if value.size == 1 and np.issubdtype(value.dtype, np.number) else None


def _unit_rows(path: Path, value: object, field: str) -> np.ndarray | None:
    """Measured directions [DOAs, 3] normalised to unit length; None for an empty entry."""
    array = np.asarray(value)
    if array.size == 0:
        return None
    if array.ndim != 2 or array.shape[1] != 3 or not np.issubdtype(array.dtype, np.number):
        raise InputError(path, f"expected [DOAs x 3] numbers, found {array.dtype} {array.shape}", field=field)
    norms = np.linalg.norm(array, axis=1)
    if not np.all(np.isfinite(array)) or np.any(norms < 1e-6):
        raise InputError(path, "directions must be finite and non-zero", field=field)
    return array / norms[:, None]


def _open_mat73(path: Path) -> h5py.File:
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, f"not a readable MATLAB v7.3 (HDF5) file ({exc})") from exc


def _tau_responses(path: Path, handle: h5py.File, fmt: str) -> np.ndarray:
    """The ``rirs.<fmt>`` arrays of the struct array as an object array [trajectories, heights] of HDF5
    datasets (None where MATLAB stored an empty array); nothing is read yet."""
    group = handle.get("rirs")
    if not isinstance(group, h5py.Group):
        raise InputError(path, "missing MATLAB struct variable", field="rirs")
    field = group.get(fmt)
    if not isinstance(field, h5py.Dataset):
        raise InputError(path, "missing struct field", field=f"rirs.{fmt}")
    if h5py.check_ref_dtype(field.dtype) is None:
        out = np.empty((1, 1), dtype=object)  # a 1 x 1 struct stores the array itself
        out[0, 0] = field
        return out
    refs = field[()]
    if refs.ndim != 2:
        raise InputError(path, f"expected a 2-D struct array, found shape {refs.shape}", field=f"rirs.{fmt}")
    out = np.empty(refs.T.shape, dtype=object)
    for (i, j), ref in np.ndenumerate(refs.T):
        try:
            target = handle[ref]
        except (ValueError, KeyError) as exc:
            raise InputError(path, f"broken reference ({exc})", field=f"rirs({i + 1},{j + 1}).{fmt}") from exc
        out[i, j] = None if target.attrs.get("MATLAB_empty", 0) else target
    return out


def _tau_block(path: Path, dataset: h5py.Dataset | None, field: str, n_doas: int | None) -> np.ndarray:
    """One path's responses [DOAs, 4, taps] (MATLAB's [taps x 4 x DOAs] read from HDF5's reversed order)."""
    if dataset is None:
        raise InputError(path, f"no responses for the {n_doas} directions in rirdata", field=field)
    if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind not in "fiu":
        raise InputError(path, "expected a numeric array", field=field)
    irs = np.asarray(dataset[()], dtype=np.float64)
    if irs.ndim == 2:
        irs = irs[None]  # MATLAB drops a trailing singleton: one DOA is [taps x 4]
    if irs.ndim != 3 or irs.shape[1] != TAU_CHANNELS:
        raise InputError(
            path, f"expected [DOAs, {TAU_CHANNELS} channels, taps] in HDF5, found shape {irs.shape}", field=field
        )
    if n_doas is not None and irs.shape[0] != n_doas:
        raise InputError(path, f"{irs.shape[0]} responses but rirdata has {n_doas} directions", field=field)
    if not np.all(np.isfinite(irs)):
        raise InputError(path, "responses hold NaN or infinite values", field=field)
    return irs


def _tau_positions(path: Path, kind: str, distances: np.ndarray, trajectory: int, directions: np.ndarray) -> np.ndarray:
    """Scale the measured directions of trajectory ``trajectory`` out to its circle or line."""
    if kind == "circular":
        ranges = distances.ravel()
        if ranges.size <= trajectory or not ranges[trajectory] > 0:
            raise InputError(path, f"no positive range for trajectory {trajectory + 1}", field="measinfo.distances")
        horizontal = np.hypot(directions[:, 0], directions[:, 1])
        return directions * (ranges[trajectory] / horizontal)[:, None]
    if distances.ndim != 3 or distances.shape[1] != 3 or distances.shape[2] <= trajectory:
        raise InputError(
            path, f"expected [points x 3 x trajectories] line ends, found {distances.shape}", field="measinfo.distances"
        )
    start, end = distances[0, :, trajectory], distances[min(1, distances.shape[0] - 1), :, trajectory]
    return _onto_line(path, directions, start[:2], end[:2], trajectory)


def _onto_line(path: Path, directions: np.ndarray, start: np.ndarray, end: np.ndarray, trajectory: int) -> np.ndarray:
    """Scale directions to the vertical plane through a horizontal line from ``start`` to ``end`` (x, y metres).

    With only a start point the line is taken parallel to the y axis, as every public converter assumes.
    """
    along = end - start
    if np.linalg.norm(along) < 1e-9:
        along = np.array([0.0, 1.0])
    else:
        _check_line_ends(path, directions, start, end, trajectory)
    normal = np.array([-along[1], along[0]]) / np.linalg.norm(along)
    offset = float(normal @ start)
    facing = directions[:, :2] @ normal
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = offset / facing
    if abs(offset) < 1e-6 or not np.all(np.isfinite(scale) & (scale > 0)):
        raise InputError(
            path,
            f"trajectory {trajectory + 1}: measured directions do not point at the line",
            field="measinfo.distances",
        )
    return directions * scale[:, None]


def _check_line_ends(path: Path, directions: np.ndarray, start: np.ndarray, end: np.ndarray, trajectory: int) -> None:
    """The path's first and last directions must point at the line's ends (either way round), which confirms
    that ``measinfo`` and the directions share one frame."""
    ends = np.rad2deg(np.arctan2([start[1], end[1]], [start[0], end[0]]))
    seen = np.rad2deg(np.arctan2(directions[[0, -1], 1], directions[[0, -1], 0]))
    error = min(
        np.max(np.abs(np.mod(seen - ends + 180.0, 360.0) - 180.0)),
        np.max(np.abs(np.mod(seen - ends[::-1] + 180.0, 360.0) - 180.0)),
    )
    if error > _LINE_END_TOLERANCE_DEG:
        raise InputError(
            path,
            f"trajectory {trajectory + 1}: line ends at azimuths {np.round(ends, 1)} but its measured directions "
            f"end at {np.round(seen, 1)} (do measinfo and rirdata share one frame?)",
            field="measinfo.distances",
        )


# --- METU SPARG ------------------------------------------------------------------------------------------------


def _find_em32_dir(root: Path) -> Path:
    """The ``em32`` folder of position folders: ``root`` itself or the one folder named em32 below it."""
    if not root.is_dir():
        raise InputError(root, "dataset folder not found")
    if any(p.is_dir() and re.fullmatch(r"\d{3}", p.name) for p in root.iterdir()):
        return root
    found = sorted(p for p in root.rglob("em32") if p.is_dir())
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise InputError(root, f"{what} METU SPARG em32 folders found below this folder")
    return found[0]


def _metu_position(folder: Path, z_step_m: float) -> np.ndarray:
    x_code, y_code, z_code = (int(digit) for digit in folder.name)
    if (x_code, y_code, z_code) == METU_ARRAY_CODE:
        raise InputError(folder, "this code is the array's own position", field="position code")
    return np.array([(3 - x_code) * 0.5, (3 - y_code) * 0.5, (z_code - 2) * z_step_m])


def _metu_responses(em32: Path, codes: list[str]) -> tuple[np.ndarray, int]:
    """The tetrahedral channels [positions, 4, taps] (shorter files zero-padded) and their common rate."""
    responses, rates = [], set()
    for code in codes:
        channels = []
        for channel in METU_MIC_CHANNELS:
            samples, rate = _read_mono(em32 / code, f"IR{channel + 1:05d}.wav")
            channels.append(samples)
            rates.add(rate)
        responses.append(channels)
    if len(rates) != 1:
        raise InputError(em32, f"channel files have different sample rates {sorted(rates)}", field="samplerate")
    taps = max(len(samples) for channels in responses for samples in channels)
    irs = np.zeros((len(codes), len(METU_MIC_CHANNELS), taps))
    for m, channels in enumerate(responses):
        for r, samples in enumerate(channels):
            irs[m, r, : len(samples)] = samples
    return irs, rates.pop()


def _read_mono(folder: Path, name: str) -> tuple[np.ndarray, int]:
    path = folder / name
    if not path.is_file():
        raise InputError(folder, "missing em32 channel file", field=name)
    try:
        samples, rate = sf.read(path, dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise InputError(path, f"cannot read audio ({exc})") from exc
    if samples.shape[1] != 1:
        raise InputError(path, f"expected one em32 channel, found {samples.shape[1]} channels", field="channels")
    if samples.shape[0] == 0 or not np.all(np.isfinite(samples)):
        raise InputError(path, "empty or non-finite response", field="samples")
    return samples[:, 0], int(rate)


def _metu_rings(codes: list[str], positions: np.ndarray) -> tuple[Trajectory, ...]:
    """Closed loops round the array: per height, the square ring of points at each Chebyshev distance from it,
    sorted by azimuth (rings with fewer than three points are left out)."""
    digits = np.array([[int(d) for d in code] for code in codes])
    square = np.max(np.abs(digits[:, :2] - np.array(METU_ARRAY_CODE[:2])), axis=1)
    azimuth = np.mod(np.arctan2(positions[:, 1], positions[:, 0]), 2 * np.pi)
    rings = []
    for height, size in sorted({(int(z), int(k)) for z, k in zip(digits[:, 2], square, strict=True) if k > 0}):
        members = np.flatnonzero((digits[:, 2] == height) & (square == size))
        members = members[np.argsort(azimuth[members], kind="stable")]
        units = positions[members] / np.linalg.norm(positions[members], axis=1)[:, None]
        if members.size >= 3:
            rings.append(Trajectory(members.astype(np.int64), closed=_closes(units)))
    return tuple(rings)
