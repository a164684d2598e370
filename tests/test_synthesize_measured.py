"""Measured rooms: TAU-SRIR DB and METU SPARG layouts converted to SOFA rooms with trajectories, and moving
sources rendered along those trajectories.

The fixtures are small copies of the real layouts: a MATLAB v7.3 (HDF5) room file with a ``rirs`` struct array
of ``foa``/``mic`` fields stored as object references, ``rirdata.mat``/``measinfo.mat`` as MATLAB v5 structs
(written with scipy, as the dataset's are read), and a METU-like ``spargair/em32/XYZ/IR000CC.wav`` tree. Every
response is a delayed impulse with the FOA gains of its known direction, so expected values follow from geometry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import netCDF4
import numpy as np
import pytest
import scipy.io
import soundfile as sf

from seldflow.errors import InputError
from seldflow.labels import fold_azimuth, read_labels
from seldflow.synthesize import convert_measured, convert_metu, convert_tau_room
from seldflow.synthesize.measured import METU_MIC_CHANNELS
from seldflow.synthesize.mixtures import Event, RoomGrid, event_labels, render_split, spatialise
from seldflow.synthesize.sofa import Room, Trajectory, read_sofa, write_sofa
from seldflow.synthesize.sources import make_source_bank

SR = 24000
HOP = 2400
TAPS = 32
DELAY = 4


# --- geometry of the fixture rooms -----------------------------------------------------------------------------


def _foa_gains(position: np.ndarray) -> np.ndarray:
    """ACN/SN3D (W, Y, Z, X) gains of a point source, with 1/r level."""
    distance = np.linalg.norm(position)
    x, y, z = position / distance
    return np.array([1.0, y, z, x]) / distance


def _irs(positions: np.ndarray, fmt: str) -> np.ndarray:
    """[DOAs, 4, taps]: FOA impulses with the gains of each direction, or for ``mic`` an impulse per channel c
    at delay DELAY + c (so the channel order can be read off the delays)."""
    irs = np.zeros((len(positions), 4, TAPS))
    for m, position in enumerate(positions):
        if fmt == "foa":
            irs[m, :, DELAY] = _foa_gains(position)
        else:
            irs[m, np.arange(4), DELAY + np.arange(4)] = 1.0 / np.linalg.norm(position)
    return irs


def _circle(range_m: float, z: float, azimuths: np.ndarray) -> np.ndarray:
    az = np.deg2rad(azimuths)
    return np.stack([range_m * np.cos(az), range_m * np.sin(az), np.full(az.size, z)], axis=1)


def _line(x: float, z: float, ys: np.ndarray) -> np.ndarray:
    return np.stack([np.full(ys.size, x), ys, np.full(ys.size, z)], axis=1)


FRONT_YS = 1.5 * np.tan(np.deg2rad(np.arange(-45.0, 46.0, 2.0)))  # 46 points, 2 degrees apart at the array

ROOMS: dict[str, dict[str, Any]] = {
    "gym": {
        "number": 2,
        "kind": "circular",
        "distances": np.array([[1.0, 2.0]]),
        # [trajectory][height] -> positions, None = not measured at that height
        "paths": [
            [_circle(1.0, 0.0, np.arange(0.0, 360.0, 10.0)), _circle(1.0, 0.4, np.arange(0.0, 360.0, 10.0))],
            [_circle(2.0, -0.3, np.arange(0.0, 360.0, 10.0)), None],
        ],
    },
    "tb103": {
        "number": 9,
        "kind": "linear",
        # [start/end, xyz, trajectory]: a line in front from right to left, one behind from left to right
        "distances": np.array([[[1.5, -2.0], [-1.5, 1.0], [0.0, 0.0]], [[1.5, -2.0], [1.5, -1.0], [0.0, 0.0]]]),
        "paths": [
            [_line(1.5, 0.3, FRONT_YS), _line(1.5, -0.4, FRONT_YS)],
            [_line(-2.0, 0.2, np.linspace(-1.0, 1.0, 21)), None],
        ],
    },
}


def _write_mat73(path: Path, paths: list[list[np.ndarray | None]]) -> None:
    """A MATLAB v7.3 room file: struct array ``rirs`` [trajectories x heights], fields foa/mic as object references
    in HDF5's reversed [heights, trajectories] order, each to a [DOAs, 4, taps] array (MATLAB [taps x 4 x DOAs])."""
    n_traj, n_heights = len(paths), len(paths[0])
    with h5py.File(path, "w", userblock_size=512) as handle:
        refs = handle.create_group("#refs#")
        group = handle.create_group("rirs")
        group.attrs["MATLAB_class"] = np.bytes_("struct")
        for fmt in ("foa", "mic"):
            field = group.create_dataset(fmt, shape=(n_heights, n_traj), dtype=h5py.ref_dtype)
            for i in range(n_traj):
                for j in range(n_heights):
                    name = f"{fmt}_{i}_{j}"
                    if paths[i][j] is None:
                        target = refs.create_dataset(name, data=np.array([0, 0], dtype=np.uint64))
                        target.attrs["MATLAB_empty"] = np.uint8(1)
                    else:
                        target = refs.create_dataset(name, data=_irs(paths[i][j], fmt))
                    target.attrs["MATLAB_class"] = np.bytes_("double")
                    field[j, i] = target.ref
    with path.open("r+b") as handle:
        handle.write(b"MATLAB 7.3 MAT-file, test fixture, HDF5 schema 1.00 .".ljust(116) + bytes(8) + b"\x00\x02IM")


def _directions(points: np.ndarray | None) -> np.ndarray:
    return np.zeros((0, 0)) if points is None else points / np.linalg.norm(points, axis=1)[:, None]


def _write_tau(root: Path) -> Path:
    """A TAU-SRIR_DB folder with the fixture rooms, rirdata.mat and measinfo.mat."""
    root.mkdir(parents=True)
    info = np.empty((len(ROOMS), 1), dtype=[(n, object) for n in ("room", "distances", "heights", "trajectoryType")])
    rooms = np.empty((len(ROOMS), 1), dtype=[(n, object) for n in ("name", "year", "rirs", "n")])
    for k, (name, spec) in enumerate(ROOMS.items()):
        _write_mat73(root / f"rirs_{spec['number']:02d}_{name}.mat", spec["paths"])
        info[k, 0] = (name, spec["distances"], np.array([[0.9, 1.5]]), spec["kind"])
        n_traj, n_heights = len(spec["paths"]), len(spec["paths"][0])
        doas = np.empty((n_traj, n_heights), dtype=[("doa_xyz", object)])
        counts = np.zeros((n_traj, n_heights))
        for i in range(n_traj):
            for j in range(n_heights):
                doas[i, j] = (_directions(spec["paths"][i][j]),)
                counts[i, j] = 0 if spec["paths"][i][j] is None else len(spec["paths"][i][j])
        rooms[k, 0] = (name, 2019.0, doas, counts)
    rirdata = np.empty((1, 1), dtype=[("fs", object), ("room", object), ("ambisonicsNorm", object)])
    rirdata[0, 0] = (24000.0, rooms, "sn3d")
    scipy.io.savemat(root / "rirdata.mat", {"rirdata": rirdata})
    scipy.io.savemat(root / "measinfo.mat", {"measinfo": info})
    return root


METU_CODES = ("223", "233", "243", "323", "343", "423", "433", "443", "213", "333")  # 8 round the array at Z=3


def _write_metu(root: Path, rate: int = 48000, codes: tuple[str, ...] = METU_CODES) -> Path:
    """``spargair/em32/XYZ/IR000CC.wav``: channel c (0-based) of every position is an impulse at 20 + 2c samples,
    scaled by 1 / distance."""
    em32 = root / "spargair" / "em32"
    for code in codes:
        folder = em32 / code
        folder.mkdir(parents=True)
        x, y, z = (3 - int(code[0])) * 0.5, (3 - int(code[1])) * 0.5, (int(code[2]) - 2) * 0.5
        for channel in range(32):
            samples = np.zeros(96)
            samples[20 + 2 * channel] = 0.5 / np.linalg.norm([x, y, z])
            sf.write(folder / f"IR{channel + 1:05d}.wav", samples, rate, subtype="FLOAT")
    return root


@pytest.fixture(scope="module")
def metu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_metu(tmp_path_factory.mktemp("metu") / "data")


@pytest.fixture(scope="module")
def tau(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_tau(tmp_path_factory.mktemp("tau") / "TAU-SRIR_DB")


def _convert(tau: Path, out: Path, room: str, **kwargs: Any) -> Room:
    number = ROOMS[room]["number"]
    return convert_tau_room(
        tau / f"rirs_{number:02d}_{room}.mat", tau / "rirdata.mat", tau / "measinfo.mat", out, room=room, **kwargs
    )


@pytest.fixture(scope="module")
def converted(tau: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("sofa")
    for room in ROOMS:
        _convert(tau, out / f"{room}_foa.sofa", room)
    return {room: out / f"{room}_foa.sofa" for room in ROOMS}


# --- TAU conversion --------------------------------------------------------------------------------------------


def _measured(room: str) -> list[np.ndarray]:
    """The fixture's measured paths in the order the converter stores them (trajectory, then height)."""
    return [points for heights in ROOMS[room]["paths"] for points in heights if points is not None]


@pytest.mark.parametrize("room", list(ROOMS))
def test_tau_positions_responses_and_trajectories(converted: dict[str, Path], room: str) -> None:
    sofa = read_sofa(converted[room])
    paths = _measured(room)
    np.testing.assert_allclose(sofa.positions, np.concatenate(paths), atol=1e-9)
    np.testing.assert_allclose(sofa.irs, np.concatenate([_irs(p, "foa") for p in paths]), atol=1e-6)
    assert (sofa.sample_rate, sofa.name) == (SR, room)
    assert sofa.trajectories is not None and len(sofa.trajectories) == len(paths)
    start = 0
    for trajectory, points in zip(sofa.trajectories, paths, strict=True):
        np.testing.assert_array_equal(trajectory.indices, np.arange(start, start + len(points)))
        assert trajectory.closed == (ROOMS[room]["kind"] == "circular")  # full circles close, lines never
        start += len(points)
    with netCDF4.Dataset(converted[room]) as ds:
        assert (ds.ListenerShortName, ds.variables["Data.IR"].ChannelOrdering) == ("foa", "acn")


def test_tau_mic_format_keeps_the_channel_order(tau: Path, tmp_path: Path) -> None:
    room = _convert(tau, tmp_path / "tb103_mic.sofa", "tb103", fmt="mic")
    sofa = read_sofa(tmp_path / "tb103_mic.sofa")
    np.testing.assert_array_equal(
        np.argmax(np.abs(sofa.irs), axis=2), np.tile(DELAY + np.arange(4), (len(room.irs), 1))
    )
    with netCDF4.Dataset(tmp_path / "tb103_mic.sofa") as ds:
        assert ds.ListenerShortName == "mic" and "ChannelOrdering" not in ds.variables["Data.IR"].ncattrs()


def test_tau_resampling_keeps_direction_and_delay(tau: Path, tmp_path: Path) -> None:
    sofa_path = tmp_path / "tb103_16k.sofa"
    _convert(tau, sofa_path, "tb103", sample_rate=16000)
    sofa = read_sofa(sofa_path)
    assert sofa.sample_rate == 16000 and sofa.irs.shape[2] == -(-TAPS * 2 // 3)
    w, y, z, x = np.moveaxis(sofa.irs, 1, 0)
    # The filtered impulse keeps each channel's relative gain: the intensity direction is the position's.
    intensity = np.stack([np.sum(w * x, axis=1), np.sum(w * y, axis=1), np.sum(w * z, axis=1)], axis=1)
    expected = sofa.positions / np.linalg.norm(sofa.positions, axis=1)[:, None]
    np.testing.assert_allclose(intensity / np.linalg.norm(intensity, axis=1)[:, None], expected, atol=1e-6)
    assert np.all(np.abs(np.argmax(np.abs(w), axis=1) - DELAY * 2 / 3) <= 1)


def test_dataset_folder_and_marker_are_found(tmp_path: Path, metu: Path) -> None:
    tau = _write_tau(tmp_path / "tau" / "data" / "TAU-SRIR_DB")
    (tmp_path / "tau" / ".complete").write_text("{}")
    room = convert_measured(
        "tau", tmp_path / "tau" / ".complete", tmp_path / "gym.sofa", room="gym", fmt="foa", sample_rate=SR
    )
    assert len(room.irs) == sum(len(p) for p in _measured("gym")) and tau.is_dir()
    room = convert_measured("metu", metu.parent, tmp_path / "metu.sofa", room="metu", fmt="mic", sample_rate=SR)
    assert read_sofa(tmp_path / "metu.sofa").name == "metu" and len(room.irs) == len(METU_CODES)


# --- METU conversion -------------------------------------------------------------------------------------------


def test_metu_positions_channels_and_rings(tmp_path: Path, metu: Path) -> None:
    out = tmp_path / "metu_mic.sofa"
    convert_metu(metu, out, sample_rate=48000)
    sofa = read_sofa(out)
    codes = sorted(METU_CODES)
    expected = [[(3 - int(c[0])) * 0.5, (3 - int(c[1])) * 0.5, (int(c[2]) - 2) * 0.5] for c in codes]
    np.testing.assert_allclose(sofa.positions, expected)
    np.testing.assert_array_equal(
        np.argmax(sofa.irs, axis=2), np.tile(20 + 2 * np.array(METU_MIC_CHANNELS), (len(codes), 1))
    )
    # One closed ring: the 8 points round the array at Z = 3, counter-clockwise from the front (code 233).
    assert sofa.trajectories is not None and len(sofa.trajectories) == 1
    ring = sofa.trajectories[0]
    assert ring.closed
    assert [codes[i] for i in ring.indices] == ["233", "223", "323", "423", "433", "443", "343", "243"]


def test_metu_resampled_to_24k(tmp_path: Path, metu: Path) -> None:
    convert_metu(metu / "spargair" / "em32", tmp_path / "metu.sofa", sample_rate=SR)
    sofa = read_sofa(tmp_path / "metu.sofa")
    assert sofa.sample_rate == SR and sofa.irs.shape[2] == 48
    np.testing.assert_array_equal(np.argmax(sofa.irs, axis=2)[0], 10 + np.array(METU_MIC_CHANNELS))


def test_metu_foa_is_refused_with_the_reason(tmp_path: Path) -> None:
    _write_metu(tmp_path / "metu", codes=("233",))
    with pytest.raises(InputError, match="spherical-harmonic encoder") as err:
        convert_metu(tmp_path / "metu", tmp_path / "metu_foa.sofa", fmt="foa")
    assert err.value.field == "fmt"
    assert not (tmp_path / "metu_foa.sofa").exists()


# --- rendering along measured trajectories ---------------------------------------------------------------------


def _render_event(grid: RoomGrid, event: Event, rng_seed: int = 0) -> np.ndarray:
    """FOA [4, n] of one event (white noise) with no background, overlap-added as the mixer does."""
    dry = np.random.default_rng(rng_seed).standard_normal(event.length)
    out = np.zeros((4, event.onset + event.length + TAPS))
    for start, wet in spatialise(event, dry, grid, SR):
        out[:, event.onset + start : event.onset + start + wet.shape[1]] += wet
    return out


def _frame_directions(foa: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth and elevation (degrees) of the active intensity vector in each label frame."""
    azimuth, elevation = [], []
    for frame in frames:
        w, y, z, x = foa[:, frame * HOP : (frame + 1) * HOP]
        ix, iy, iz = np.dot(w, x), np.dot(w, y), np.dot(w, z)
        azimuth.append(np.degrees(np.arctan2(iy, ix)))
        elevation.append(np.degrees(np.arctan2(iz, np.hypot(ix, iy))))
    return np.array(azimuth), np.array(elevation)


def _event(position: int, speed: float, frames: int) -> Event:
    return Event(
        class_index=3,
        path=Path("x.wav"),
        onset=HOP,
        length=frames * HOP,
        position=position,
        speed_deg_s=speed,
        snr_db=20.0,
    )


@pytest.mark.parametrize("speed", [20.0, -20.0])
def test_moving_event_renders_and_is_labelled_along_the_measured_line(converted: dict, speed: float) -> None:
    grid = RoomGrid.from_room(read_sofa(converted["tb103"]))
    line = _measured("tb103")[0]  # y from -1.5 to 1.5 at x = 1.5, z = 0.3
    event = _event(position=23, speed=speed, frames=30)  # starts near 1 degree, 3 s at 20 deg/s: hits an end
    rows = event_labels([event], grid, deg=0, hop=HOP, n_frames=40, sample_rate=SR, field_of_view_deg=100.0)
    azimuth, elevation = _frame_directions(_render_event(grid, event), rows[:, 0])
    np.testing.assert_allclose(rows[:, 3], azimuth, atol=1.0)  # in front, so folding changes nothing
    end = line[-1] if speed > 0 else line[0]
    end_azimuth = np.degrees(np.arctan2(end[1], end[0]))
    np.testing.assert_allclose(elevation[-5:], np.degrees(np.arctan2(0.3, np.hypot(*end[:2]))), atol=0.5)
    # It stops at the end of the line (about 2.2 s after the start): the last frames stay there, at its distance.
    np.testing.assert_array_equal(rows[-6:, 3], np.rint(end_azimuth))
    np.testing.assert_array_equal(rows[-6:, 4], np.rint(np.linalg.norm(end) * 100))
    assert rows[0, 4] < rows[-1, 4]  # nearer the middle of the line than at its end
    steps = np.diff(rows[:12, 3])
    assert np.all(steps * np.sign(speed) >= 0) and abs(rows[11, 3] - rows[0, 3]) >= 18  # about 2 deg per frame


def test_moving_event_wraps_round_a_closed_circle(converted: dict) -> None:
    grid = RoomGrid.from_room(read_sofa(converted["gym"]))
    event = _event(position=35, speed=40.0, frames=10)  # starts at 350 degrees on the 1 m circle at z = 0
    rows = event_labels([event], grid, deg=0, hop=HOP, n_frames=20, sample_rate=SR, field_of_view_deg=100.0)
    expected = np.mod(350.0 + 40.0 * (np.arange(10) + 0.5) * 0.1 + 180.0, 360.0) - 180.0
    np.testing.assert_allclose(rows[:, 3], expected, atol=1.0)
    azimuth, _ = _frame_directions(_render_event(grid, event), rows[:, 0])
    np.testing.assert_allclose(np.mod(azimuth - expected + 180.0, 360.0) - 180.0, 0.0, atol=1.0)


def test_position_on_no_trajectory_stays_put(tmp_path: Path) -> None:
    positions = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    irs = np.stack([_irs(p[None], "foa")[0] for p in positions]).astype(np.float32)
    write_sofa(tmp_path / "r.sofa", irs, positions, SR, room_name="r", trajectories=[Trajectory(np.arange(3))])
    grid = RoomGrid.from_room(read_sofa(tmp_path / "r.sofa"))
    rows = event_labels([_event(3, 30.0, 5)], grid, deg=0, hop=HOP, n_frames=10, sample_rate=SR, field_of_view_deg=100)
    np.testing.assert_array_equal(rows[:, 3:5], [[0, 100]] * 5)  # straight up, not moving


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bank") / "bank"
    make_source_bank(out, clips_per_class={"train": 1}, min_seconds=0.6, max_seconds=1.0, seed=3)
    return out


def _render_split(out: Path, bank: Path, room: Path, **overrides: Any) -> dict[str, Path]:
    dirs = {name: out / name for name in ("stereo", "foa", "metadata")}
    args: dict[str, Any] = dict(
        rooms=[room],
        room_ids=[1],
        bank_dir=bank,
        source_split="train",
        stereo_dir=dirs["stereo"],
        foa_dir=dirs["foa"],
        metadata_dir=dirs["metadata"],
        n_clips=4,
        fold=1,
        seed=7,
        clip_seconds=2.0,
        events_per_clip=(1, 1),
        moving_probability=1.0,
        snr_db=(60, 60),
    )
    render_split(**{**args, **overrides})
    return dirs


def test_rendered_clips_in_a_measured_room_match_their_labels(tmp_path: Path, bank: Path, converted: dict) -> None:
    dirs = _render_split(tmp_path, bank, converted["tb103"])
    distances = np.linalg.norm(np.concatenate(_measured("tb103")), axis=1) * 100
    moved = 0
    for wav in sorted(dirs["foa"].glob("*.wav")):
        foa = sf.read(wav, always_2d=True)[0].T
        rows = read_labels(dirs["metadata"] / f"{wav.stem}.csv", n_frames=20)
        azimuth, _ = _frame_directions(foa, rows[1:-1, 0])
        level = np.array([np.sqrt(np.mean(foa[0, f * HOP : (f + 1) * HOP] ** 2)) for f in rows[1:-1, 0]])
        loud = level > 0.1 * level.max()
        np.testing.assert_allclose(fold_azimuth(azimuth[loud]), rows[1:-1, 3][loud], atol=2.0)
        assert np.all((rows[:, 4] >= np.floor(distances.min())) & (rows[:, 4] <= np.ceil(distances.max())))
        moved += np.unique(rows[:, 3]).size > 1
    assert moved >= 3


def test_rings_stored_as_trajectories_render_like_the_ring_renderer(tmp_path: Path, bank: Path) -> None:
    """A closed trajectory round a ring of equal elevation and distance moves a source as the built-in ring
    renderer does: same labels (within a degree of interpolation) and the same audio."""
    positions = _circle(1.0, 0.0, np.arange(0.0, 360.0, 15.0))
    irs = _irs(positions, "foa").astype(np.float32)
    write_sofa(tmp_path / "plain.sofa", irs, positions, SR, room_name="ring")
    ring = Trajectory(np.arange(len(positions)), closed=True)
    write_sofa(tmp_path / "paths.sofa", irs, positions, SR, room_name="ring", trajectories=[ring])
    plain = _render_split(tmp_path / "a", bank, tmp_path / "plain.sofa", events_per_clip=(2, 3), moving_probability=0.7)
    paths = _render_split(tmp_path / "b", bank, tmp_path / "paths.sofa", events_per_clip=(2, 3), moving_probability=0.7)
    for csv in sorted(plain["metadata"].glob("*.csv")):
        a, b = read_labels(csv, n_frames=20), read_labels(paths["metadata"] / csv.name, n_frames=20)
        np.testing.assert_array_equal(a[:, [0, 1, 2, 4]], b[:, [0, 1, 2, 4]])
        assert np.max(np.abs(a[:, 3] - b[:, 3])) <= 1
        audio_a = sf.read(plain["foa"] / f"{csv.stem}.wav")[0]
        audio_b = sf.read(paths["foa"] / f"{csv.stem}.wav")[0]
        np.testing.assert_allclose(audio_a, audio_b, atol=3 / 32768)


# --- bad input -------------------------------------------------------------------------------------------------


def _break_measinfo(tau: Path) -> tuple[Path, str]:
    info = scipy.io.loadmat(tau / "measinfo.mat")["measinfo"]
    kept = [n for n in info.dtype.names if n != "distances"]
    smaller = np.empty(info.shape, dtype=[(n, object) for n in kept])
    for n in kept:
        smaller[n] = info[n]
    scipy.io.savemat(tau / "measinfo.mat", {"measinfo": smaller})
    return tau / "measinfo.mat", "measinfo.distances"


def _break_room_field(tau: Path) -> tuple[Path, str]:
    with h5py.File(tau / "rirs_09_tb103.mat", "a") as handle:
        del handle["rirs/foa"]
    return tau / "rirs_09_tb103.mat", "rirs.foa"


def _break_channels(tau: Path) -> tuple[Path, str]:
    with h5py.File(tau / "rirs_09_tb103.mat", "a") as handle:
        target = handle[handle["rirs/foa"][0, 0]]
        data = target[()][:, :3]
        name = target.name
        del handle[name]
        handle.create_dataset(name, data=data)
        handle["rirs/foa"][0, 0] = handle[name].ref
    return tau / "rirs_09_tb103.mat", "rirs(1,1).foa"


def _break_room_file(tau: Path) -> tuple[Path, str | None]:
    (tau / "rirs_09_tb103.mat").write_bytes(b"MATLAB 7.3 MAT-file, but truncated")
    return tau / "rirs_09_tb103.mat", None


def _break_rirdata(tau: Path) -> tuple[Path, str | None]:
    (tau / "rirdata.mat").write_bytes(b"not a mat file at all" * 10)
    return tau / "rirdata.mat", None


def _break_line_frame(tau: Path) -> tuple[Path, str]:
    info = scipy.io.loadmat(tau / "measinfo.mat")["measinfo"]
    distances = info["distances"][1, 0]
    info["distances"][1, 0] = distances[:, [1, 0, 2], :]  # x and y swapped: a frame the directions do not share
    scipy.io.savemat(tau / "measinfo.mat", {"measinfo": info})
    return tau / "measinfo.mat", "measinfo.distances"


def _break_doa_count(tau: Path) -> tuple[Path, str]:
    with h5py.File(tau / "rirs_09_tb103.mat", "a") as handle:
        target = handle[handle["rirs/foa"][1, 0]]
        data, name = target[()][:-1], target.name
        del handle[name]
        handle.create_dataset(name, data=data)
        handle["rirs/foa"][1, 0] = handle[name].ref
    return tau / "rirs_09_tb103.mat", "rirs(1,2).foa"


@pytest.mark.parametrize(
    "breaker",
    [
        _break_measinfo,
        _break_room_field,
        _break_channels,
        _break_room_file,
        _break_rirdata,
        _break_line_frame,
        _break_doa_count,
    ],
)
def test_bad_tau_input_names_file_and_field_and_writes_nothing(tmp_path: Path, breaker: Any) -> None:
    tau = _write_tau(tmp_path / "TAU-SRIR_DB")
    path, field = breaker(tau)
    out = tmp_path / "out" / "tb103_foa.sofa"
    with pytest.raises(InputError) as err:
        _convert(tau, out, "tb103")
    assert (err.value.path, err.value.field) == (str(path), field)
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_unknown_room_and_missing_file_are_input_errors(tau: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="room 'hall' not found") as err:
        convert_tau_room(
            tau / "rirs_09_tb103.mat", tau / "rirdata.mat", tau / "measinfo.mat", tmp_path / "x.sofa", room="hall"
        )
    assert err.value.field == "measinfo.room"
    with pytest.raises(InputError, match="expected one room file"):
        convert_measured("tau", tau, tmp_path / "x.sofa", room="hall", fmt="foa", sample_rate=SR)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("damage", "field", "message"),
    [
        ("stereo", "channels", "found 2 channels"),
        ("garbage", None, "cannot read audio"),
        ("missing", "IR00010.wav", "missing em32 channel"),
    ],
)
def test_bad_metu_input_names_file_and_field_and_writes_nothing(
    tmp_path: Path, damage: str, field: str | None, message: str
) -> None:
    _write_metu(tmp_path / "metu", codes=("233", "323", "433"))
    folder = tmp_path / "metu" / "spargair" / "em32" / "323"
    wav = folder / "IR00010.wav"  # em32 channel 9, one of the four mic channels
    if damage == "stereo":
        sf.write(wav, np.zeros((96, 2)), 48000)
    elif damage == "garbage":
        wav.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    else:
        wav.unlink()
    out = tmp_path / "out" / "metu_mic.sofa"
    with pytest.raises(InputError, match=message) as err:
        convert_metu(tmp_path / "metu", out)
    assert (err.value.path, err.value.field) == (str(folder if damage == "missing" else wav), field)
    assert not out.parent.exists() or not any(out.parent.iterdir())
