"""Mixture renderer: spatialise bank clips with room impulse responses into DCASE2025 stereo SELD clips.

Each clip is rendered in first-order Ambisonics (FOA), rotated by a random viewing angle and converted to stereo
exactly as the DCASE2025 stereo dataset was made from STARSS23 (L = W + Y', R = W - Y'), so a model trained here
sees the same spatial cues as on the official data. Labels follow the official CSV format (folded azimuth,
distance in cm, onscreen flag of a 100-degree camera looking along the rotated x axis).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal
from tqdm import tqdm

from seldflow.errors import InputError
from seldflow.formats import STEREO_FORMAT, get_label_format
from seldflow.formats.events import event_table, no_events
from seldflow.io import atomic_dir, write_audio
from seldflow.labels import (
    CSV_COLUMNS,
    LABEL_HOP_SECONDS,
    N_CLASSES,
    SAMPLE_RATE,
    empty_rows,
    fold_azimuth,
    onscreen_flags,
    write_labels,
)
from seldflow.synthesize.sofa import Room, Trajectory, read_sofa
from seldflow.synthesize.sources import list_bank, read_source

FOA_CHANNELS = 4
# A diffuse field has W power 1 and power 1/3 in each SN3D dipole (the mean of u_x^2 over the sphere).
DIFFUSE_GAINS = np.array([1.0, 1.0, 1.0, 1.0]) / np.sqrt([1.0, 3.0, 3.0, 3.0])
_SOURCE_CACHE_SIZE = 256


@dataclass(frozen=True)
class MeasuredPath:
    """One measured trajectory ready for rendering: its position ``indices`` in travel order, the angle
    ``arc_deg`` (degrees along the path, 0 at the first point) reached at each of them, whether it is
    ``closed``, and ``loop_deg``, the angle once round a closed path (its last point back to the first
    included; the path's own length when open). Arc angle is what a source moving at an angular speed covers."""

    indices: np.ndarray
    arc_deg: np.ndarray
    closed: bool
    loop_deg: float


@dataclass(frozen=True)
class RoomGrid:
    """A room's impulse responses with each position's spherical coordinates and its ring of equal
    elevation and distance (indices sorted by azimuth), along which moving sources travel.

    A measured room that stores its trajectories has them in ``paths`` (``path_of``: each position's path, or
    -1): moving sources then follow the measured paths instead of the rings.
    """

    irs: np.ndarray
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    distance_m: np.ndarray
    rings: tuple[np.ndarray, ...]
    ring_of: np.ndarray
    paths: tuple[MeasuredPath, ...] = ()
    path_of: np.ndarray | None = None

    @classmethod
    def from_room(cls, room: Room) -> RoomGrid:
        x, y, z = room.positions.T
        horizontal = np.hypot(x, y)
        azimuth = np.rad2deg(np.arctan2(y, x))
        elevation = np.rad2deg(np.arctan2(z, horizontal))
        distance = np.sqrt(horizontal**2 + z**2)
        # Positions on one ring share elevation and distance up to rounding of the stored coordinates.
        keys = np.stack([np.round(elevation, 1), np.round(distance, 3)], axis=1)
        _, ring_ids = np.unique(keys, axis=0, return_inverse=True)
        rings = tuple(
            members[np.argsort(np.mod(azimuth[members], 360.0), kind="stable")]
            for members in (np.flatnonzero(ring_ids == r) for r in range(ring_ids.max() + 1))
        )
        if not room.trajectories:
            return cls(room.irs, azimuth, elevation, distance, rings, ring_ids.ravel())
        units = room.positions / distance[:, None]
        paths = tuple(_measured_path(trajectory, units) for trajectory in room.trajectories)
        path_of = np.full(len(room.irs), -1, dtype=np.int64)
        for number, path in enumerate(paths):
            path_of[path.indices] = number
        return cls(room.irs, azimuth, elevation, distance, rings, ring_ids.ravel(), paths, path_of)

    def unit_vectors(self, positions: np.ndarray) -> np.ndarray:
        """Unit direction vectors [..., 3] of the given position indices."""
        azimuth, elevation = np.deg2rad(self.azimuth_deg[positions]), np.deg2rad(self.elevation_deg[positions])
        return np.stack(
            [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], axis=-1
        )


# Successive knots must differ for interpolation; two measured points in the same direction still get this apart.
_MIN_STEP_DEG = 1e-6


def _measured_path(trajectory: Trajectory, units: np.ndarray) -> MeasuredPath:
    """Arc angles along one trajectory: the great-circle angle between successive measured directions."""
    indices = np.asarray(trajectory.indices, dtype=np.int64)
    steps = np.maximum(_angle_deg(units[indices[:-1]], units[indices[1:]]), _MIN_STEP_DEG)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    loop = arc[-1]
    if trajectory.closed:
        loop += max(float(_angle_deg(units[indices[-1]], units[indices[0]])), _MIN_STEP_DEG)
    return MeasuredPath(indices, arc, bool(trajectory.closed), float(loop))


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between unit vectors, accurate for the small steps of densely measured paths."""
    return np.rad2deg(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, axis=-1)))


@dataclass(frozen=True)
class Event:
    """One sound event of a clip: what plays, when (samples), where it starts and how fast it turns."""

    class_index: int
    path: Path
    onset: int
    length: int
    position: int
    speed_deg_s: float
    snr_db: float


@dataclass(frozen=True)
class MixtureSettings:
    """How clips are mixed; defaults match the DCASE2025 stereo format (5-s clips at 24 kHz, 100-ms labels)."""

    clip_seconds: float = 5.0
    sample_rate: int = SAMPLE_RATE
    max_polyphony: int = 3
    events_per_clip: tuple[int, int] = (1, 6)
    moving_probability: float = 0.3
    angular_speed_deg_s: tuple[float, float] = (10.0, 40.0)
    snr_db: tuple[float, float] = (10.0, 30.0)
    noise_level_db: float = -40.0
    peak_level: float = 0.9
    field_of_view_deg: float = 100.0
    label_format: str = STEREO_FORMAT

    def __post_init__(self) -> None:
        low, high = self.events_per_clip
        if not 0 <= low <= high:
            raise ValueError(f"events_per_clip must be (low, high) with 0 <= low <= high, got {self.events_per_clip}")
        if self.max_polyphony < 1:
            raise ValueError(f"max_polyphony must be at least 1, got {self.max_polyphony}")
        if not 0 < self.peak_level <= 1:
            raise ValueError(f"peak_level must be in (0, 1], got {self.peak_level}")
        frames = self.clip_seconds / LABEL_HOP_SECONDS
        if frames < 1 or abs(frames - round(frames)) > 1e-9:
            raise ValueError(f"clip_seconds must be a multiple of {LABEL_HOP_SECONDS} s, got {self.clip_seconds}")
        if abs(LABEL_HOP_SECONDS * self.sample_rate - self.hop) > 1e-9:
            raise ValueError(f"sample_rate {self.sample_rate} does not give whole samples per label frame")

    @property
    def hop(self) -> int:
        """Samples per label frame."""
        return round(LABEL_HOP_SECONDS * self.sample_rate)

    @property
    def n_frames(self) -> int:
        """Label frames per clip."""
        return round(self.clip_seconds / LABEL_HOP_SECONDS)


@dataclass(frozen=True)
class Clip:
    """One rendered clip: the room it was drawn in, its viewing angle, audio scaled to the peak level, labels."""

    room: int
    deg: int
    stereo: np.ndarray
    foa: np.ndarray
    rows: np.ndarray


def render_split(
    *,
    rooms: Sequence[str | os.PathLike[str]],
    room_ids: Sequence[int],
    bank_dir: str | os.PathLike[str],
    source_split: str,
    stereo_dir: str | os.PathLike[str],
    foa_dir: str | os.PathLike[str],
    metadata_dir: str | os.PathLike[str],
    n_clips: int,
    fold: int,
    seed: int,
    first_clip: int = 0,
    clip_seconds: float = 5.0,
    sample_rate: int = SAMPLE_RATE,
    max_polyphony: int = 3,
    events_per_clip: Sequence[int] = (1, 6),
    moving_probability: float = 0.3,
    angular_speed_deg_s: Sequence[float] = (10.0, 40.0),
    snr_db: Sequence[float] = (10.0, 30.0),
    noise_level_db: float = -40.0,
    peak_level: float = 0.9,
    field_of_view_deg: float = 100.0,
    label_format: str = STEREO_FORMAT,
) -> None:
    """Render clips ``first_clip .. first_clip + n_clips - 1`` of one split (a shard when ``first_clip`` > 0 or
    more clips follow): stereo and FOA WAVs plus metadata CSVs in ``label_format`` (DCASE2025 stereo labels, or
    the FOA scene's 3-D labels in the DCASE2021/2024 formats, see :func:`clip_rows`).

    Files are named ``fold{fold}_room{id}_mix{k+1:03d}_deg{deg:03d}_start0000``. The FOA file holds the rotated
    scene, so its W and Y channels give the stereo pair and its direction matches the unfolded labels. Clip k
    draws everything from its own seed ``SeedSequence(seed, spawn_key=(fold, k))``: it does not change when
    ``n_clips`` does, and splits of different folds are independent even under one seed. The three output
    directories are replaced atomically, all or none.
    """
    if not rooms or len(rooms) != len(room_ids):
        raise ValueError(f"need one room id per room file, got {len(rooms)} rooms and {len(room_ids)} ids")
    if fold < 0 or n_clips < 0 or first_clip < 0:
        raise ValueError(f"fold, n_clips and first_clip must be non-negative, got {fold}, {n_clips}, {first_clip}")
    settings = MixtureSettings(
        clip_seconds=clip_seconds,
        sample_rate=sample_rate,
        max_polyphony=max_polyphony,
        events_per_clip=(int(events_per_clip[0]), int(events_per_clip[1])),
        moving_probability=moving_probability,
        angular_speed_deg_s=(float(angular_speed_deg_s[0]), float(angular_speed_deg_s[1])),
        snr_db=(float(snr_db[0]), float(snr_db[1])),
        noise_level_db=noise_level_db,
        peak_level=peak_level,
        field_of_view_deg=field_of_view_deg,
        label_format=label_format,
    )
    write_rows = get_label_format(label_format).write
    grids = [_load_grid(Path(path), sample_rate) for path in rooms]
    files = list_bank(bank_dir, source_split)
    load = functools.lru_cache(maxsize=_SOURCE_CACHE_SIZE)(functools.partial(read_source, sample_rate=sample_rate))
    with atomic_dir(stereo_dir) as stereo_tmp, atomic_dir(foa_dir) as foa_tmp, atomic_dir(metadata_dir) as meta_tmp:
        for k in tqdm(range(first_clip, first_clip + n_clips), desc=f"fold{fold} mixtures", unit="clip"):
            clip = render_clip(clip_rng(seed, fold, k), grids, files, load, settings)
            stem = clip_stem(fold, room_ids[clip.room], k, clip.deg)
            write_clip((stereo_tmp, foa_tmp, meta_tmp), stem, clip, sample_rate, write_rows)


def clip_rng(seed: int, fold: int, k: int) -> np.random.Generator:
    """Clip k's own generator: its content depends on (seed, fold, k) only, never on the shard or the clip count."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(fold, k)))


def clip_stem(fold: int, room_id: int, k: int, deg: int) -> str:
    """The DCASE2025 file stem of rendered clip k (0-based; the name counts from 1)."""
    return f"fold{fold}_room{room_id}_mix{k + 1:03d}_deg{deg:03d}_start0000"


def rotated_pair(foa: np.ndarray, deg: int, peak_level: float) -> tuple[np.ndarray, np.ndarray]:
    """``(stereo, foa)`` of an FOA scene turned by ``deg``, both scaled by one gain to peak at ``peak_level``.

    One common gain keeps the formats consistent (stereo = W +- Y of the FOA file) and never clips.
    """
    foa = rotate_foa(foa, deg)
    stereo = foa_to_stereo(foa)
    scale = peak_level / max(float(np.max(np.abs(stereo))), float(np.max(np.abs(foa))))
    return stereo * scale, foa * scale


def write_clip(
    dirs: Sequence[Path],
    stem: str,
    clip: Clip,
    sample_rate: int,
    write_rows: Callable[[Path, np.ndarray], None] = write_labels,
) -> None:
    """A clip's stereo WAV, FOA WAV and label CSV (written by ``write_rows``) into the folders ``dirs``."""
    stereo_dir, foa_dir, metadata_dir = dirs
    write_audio(stereo_dir / f"{stem}.wav", clip.stereo, sample_rate)
    write_audio(foa_dir / f"{stem}.wav", clip.foa, sample_rate)
    write_rows(metadata_dir / f"{stem}.csv", clip.rows)


def render_clip(
    rng: np.random.Generator,
    grids: Sequence[RoomGrid],
    files: dict[int, list[Path]],
    load: Callable[[Path], np.ndarray],
    settings: MixtureSettings,
) -> Clip:
    """Draw a room, events and a viewing angle; render FOA, rotate, derive stereo, scale to the peak level."""
    room = int(rng.integers(len(grids)))
    events = place_events(rng, files, load, grids[room], settings)
    n_samples = settings.n_frames * settings.hop
    foa = _render_foa(rng, events, grids[room], load, n_samples, settings.sample_rate, settings.noise_level_db)
    deg = int(rng.integers(0, 360))
    stereo, foa = rotated_pair(foa, deg, settings.peak_level)
    rows = clip_rows(events, grids[room], deg=deg, settings=settings)
    return Clip(room=room, deg=deg, stereo=stereo, foa=foa, rows=rows)


def clip_rows(events: list[Event], grid: RoomGrid, *, deg: int, settings: MixtureSettings) -> np.ndarray:
    """A clip's labels in the split's label format.

    Stereo (DCASE2025) labels fold the azimuth to the front and carry the on-screen flag, which only the stereo
    view has; the 3-D formats (DCASE2021-2024) describe the rotated FOA scene itself.
    """
    timing = {"deg": deg, "hop": settings.hop, "n_frames": settings.n_frames, "sample_rate": settings.sample_rate}
    if settings.label_format == STEREO_FORMAT:
        return event_labels(events, grid, field_of_view_deg=settings.field_of_view_deg, **timing)
    return get_label_format(settings.label_format).from_events(event_table_labels(events, grid, **timing))


def _load_grid(path: Path, sample_rate: int) -> RoomGrid:
    room = read_sofa(path)
    if room.irs.shape[1] != FOA_CHANNELS:
        raise InputError(path, f"expected {FOA_CHANNELS} FOA channels, found {room.irs.shape[1]}", field="Data.IR")
    if room.sample_rate != sample_rate:
        raise InputError(
            path, f"sampled at {room.sample_rate} Hz, mixtures at {sample_rate} Hz", field="Data.SamplingRate"
        )
    return RoomGrid.from_room(room)


# --- event placement -------------------------------------------------------------------------------------------


def place_events(
    rng: np.random.Generator,
    files: dict[int, list[Path]],
    load: Callable[[Path], np.ndarray],
    grid: RoomGrid,
    settings: MixtureSettings,
) -> list[Event]:
    """Draw the events of one clip, sorted by onset, never exceeding ``max_polyphony`` in any label frame.

    An event takes the whole file (cut at the clip end) at an onset on the label grid, chosen uniformly among the
    onsets where it fits completely without breaking the polyphony limit. An event that fits nowhere is not
    added: the clip is full.
    """
    hop = settings.hop
    activity = np.zeros(settings.n_frames, dtype=np.int64)
    events: list[Event] = []
    low, high = settings.events_per_clip
    for _ in range(int(rng.integers(low, high + 1))):
        class_index = int(rng.integers(N_CLASSES))
        path = files[class_index][int(rng.integers(len(files[class_index])))]
        length = min(load(path).size, settings.n_frames * hop)
        span = -(-length // hop)  # label frames touched by the event
        position = int(rng.integers(len(grid.irs)))
        moving = rng.random() < settings.moving_probability
        speed = rng.uniform(*settings.angular_speed_deg_s) * rng.choice((-1.0, 1.0))
        level = rng.uniform(*settings.snr_db)
        windows = np.lib.stride_tricks.sliding_window_view(activity, span).max(axis=1)
        onsets = np.flatnonzero(windows < settings.max_polyphony)
        if onsets.size == 0:
            continue
        onset = int(onsets[rng.integers(onsets.size)])
        activity[onset : onset + span] += 1
        events.append(Event(class_index, path, onset * hop, length, position, speed if moving else 0.0, level))
    return sorted(events, key=lambda e: e.onset)


# --- rendering -------------------------------------------------------------------------------------------------


def _render_foa(
    rng: np.random.Generator,
    events: list[Event],
    grid: RoomGrid,
    load: Callable[[Path], np.ndarray],
    n_samples: int,
    sample_rate: int,
    noise_level_db: float,
) -> np.ndarray:
    """FOA mixture [4, n_samples]: diffuse-like background noise plus every spatialised event."""
    return render_events(rng, events, grid, load, n_samples, sample_rate, noise_level_db, DIFFUSE_GAINS)


def render_events(
    rng: np.random.Generator,
    events: list[Event],
    grid: RoomGrid,
    load: Callable[[Path], np.ndarray],
    n_samples: int,
    sample_rate: int,
    noise_level_db: float,
    noise_gains: np.ndarray,
) -> np.ndarray:
    """Mixture [channels, n_samples] of the room's array (FOA, or any other format its responses hold): Gaussian
    background noise at ``noise_level_db`` scaled per channel by ``noise_gains``, plus every spatialised event at
    its SNR above that noise."""
    noise_rms = 10.0 ** (noise_level_db / 20.0)
    mix = rng.standard_normal((len(noise_gains), n_samples)) * (noise_rms * np.asarray(noise_gains))[:, None]
    for event in events:
        dry = load(event.path)[: event.length].astype(np.float64)
        dry *= noise_rms * 10.0 ** (event.snr_db / 20.0) / np.sqrt(np.mean(dry**2))
        for start, wet in spatialise(event, dry, grid, sample_rate):
            end = min(n_samples, event.onset + start + wet.shape[1])
            mix[:, event.onset + start : end] += wet[:, : end - event.onset - start]
    return mix


def spatialise(event: Event, dry: np.ndarray, grid: RoomGrid, sample_rate: int) -> list[tuple[int, np.ndarray]]:
    """Wet FOA segments ``(offset in samples from the onset, [4, m])`` of one event, to be overlap-added.

    A moving source turns in azimuth along its ring of grid positions, or, in a room with measured trajectories,
    travels along the measured path of its start position. Between the two positions that bracket its current
    place, the two impulse responses are cross-faded linearly (each response's weight is a hat function that is 1
    at its own position and 0 at its neighbours), so the rendered direction follows the trajectory continuously
    instead of jumping between grid points.
    """
    motion = _motion(event, grid, np.arange(dry.size), sample_rate)
    if motion is None:
        return [(0, signal.fftconvolve(dry[None, :], grid.irs[event.position], axes=1))]
    return _crossfade(dry, *motion, grid.irs)


def _motion(
    event: Event, grid: RoomGrid, samples: np.ndarray, sample_rate: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Where a moving event is ``samples`` after its onset, as ``(progress, knot_position)``: a fractional knot
    number per time and the position index of every knot. None for an event that does not move.

    Knots are the positions of the ring or measured path in travel order, repeated once per turn on closed ones.
    """
    if event.speed_deg_s == 0.0:
        return None
    if grid.path_of is None:
        return _ring_motion(event, grid, samples, sample_rate)
    number = int(grid.path_of[event.position])
    if number < 0:
        return None  # a position on no measured trajectory: the source stays where it was measured
    return _path_motion(grid.paths[number], event, samples, sample_rate)


def _ring_motion(event: Event, grid: RoomGrid, samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Turning in azimuth at the event's speed along its ring of equal elevation and distance."""
    ring = grid.rings[grid.ring_of[event.position]]
    ring_azimuth = np.mod(grid.azimuth_deg[ring], 360.0)
    trajectory = grid.azimuth_deg[event.position] + event.speed_deg_s * samples / sample_rate
    turns = np.arange(np.floor(trajectory.min() / 360.0) - 1, np.floor(trajectory.max() / 360.0) + 2)
    knots = (ring_azimuth[None, :] + 360.0 * turns[:, None]).ravel()
    knot_ring_index = np.tile(np.arange(ring.size), turns.size)
    progress = np.interp(trajectory, knots, np.arange(knots.size, dtype=np.float64))
    return progress, ring[knot_ring_index]


def _path_motion(
    path: MeasuredPath, event: Event, samples: np.ndarray, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """Travelling along a measured path at the event's angular speed (negative: against the travel order).

    The source starts at its drawn position. On an open path it stops at whichever end it reaches; a closed path
    wraps around, its last point leading back to the first.
    """
    start = int(np.flatnonzero(path.indices == event.position)[0])
    arc = path.arc_deg[start] + event.speed_deg_s * samples / sample_rate
    if not path.closed:
        arc = np.clip(arc, 0.0, path.arc_deg[-1])
        return np.interp(arc, path.arc_deg, np.arange(path.indices.size, dtype=np.float64)), path.indices
    turns = np.arange(np.floor(arc.min() / path.loop_deg) - 1, np.floor(arc.max() / path.loop_deg) + 2)
    knots = (path.arc_deg[None, :] + path.loop_deg * turns[:, None]).ravel()
    progress = np.interp(arc, knots, np.arange(knots.size, dtype=np.float64))
    return progress, np.tile(path.indices, turns.size)


def _crossfade(
    dry: np.ndarray, progress: np.ndarray, knot_position: np.ndarray, irs: np.ndarray
) -> list[tuple[int, np.ndarray]]:
    """Convolve the dry signal, weighted by each knot's hat function of ``progress``, with that knot's IR."""
    segments = []
    for knot in range(int(np.floor(progress.min())), int(np.ceil(progress.max())) + 1):
        weight = np.clip(1.0 - np.abs(progress - knot), 0.0, None)
        support = np.flatnonzero(weight)
        if support.size == 0:
            continue
        first, last = support[0], support[-1] + 1
        ir = irs[knot_position[knot]]
        segments.append((int(first), signal.fftconvolve((dry * weight)[None, first:last], ir, axes=1)))
    return segments


def rotate_foa(foa: np.ndarray, deg: float) -> np.ndarray:
    """Rotate an ACN (W, Y, Z, X) scene by ``deg`` about the vertical axis: azimuth a becomes a + deg."""
    angle = np.deg2rad(deg)
    w, y, z, x = foa
    return np.stack([w, np.sin(angle) * x + np.cos(angle) * y, z, np.cos(angle) * x - np.sin(angle) * y])


def foa_to_stereo(foa: np.ndarray) -> np.ndarray:
    """DCASE2025 stereo from FOA: left/right cardioid-like pair L = W + Y, R = W - Y (no scaling)."""
    return np.stack([foa[0] + foa[1], foa[0] - foa[1]])


# --- labels ----------------------------------------------------------------------------------------------------


def event_labels(
    events: list[Event],
    grid: RoomGrid,
    *,
    deg: int,
    hop: int,
    n_frames: int,
    sample_rate: int,
    field_of_view_deg: float,
) -> np.ndarray:
    """DCASE2025 label rows of every event in every label frame it touches.

    Positions are taken at the middle of each frame (within the event), the azimuth rotated by ``deg`` and
    folded to the front; source ids are the events' indices in the clip. In a room with measured trajectories a
    moving event's azimuth, elevation (for the onscreen flag) and distance follow its path frame by frame.
    """
    rows = []
    for track in _event_tracks(events, grid, deg=deg, hop=hop, n_frames=n_frames, sample_rate=sample_rate):
        onscreen = onscreen_flags(track.azimuth, track.elevation, field_of_view_deg)
        block = np.empty((track.frames.size, len(CSV_COLUMNS)), dtype=np.int64)
        block[:, 0] = track.frames
        block[:, 1] = track.class_index
        block[:, 2] = track.source
        block[:, 3] = np.rint(fold_azimuth(track.azimuth)).astype(np.int64)
        block[:, 4] = np.rint(track.distance * 100).astype(np.int64)
        block[:, 5] = onscreen
        rows.append(block)
    return np.concatenate(rows) if rows else empty_rows()


def event_table_labels(
    events: list[Event],
    grid: RoomGrid,
    *,
    deg: int,
    hop: int,
    n_frames: int,
    sample_rate: int,
) -> np.ndarray:
    """The 3-D labels of the FOA scene as an event table (:mod:`seldflow.formats.events`).

    Same frames, positions and source ids as :func:`event_labels`, but nothing is folded: azimuth and elevation are
    the rotated FOA scene's, rounded to whole degrees as the DCASE2021-2024 metadata gives them; distance in metres.
    """
    tables = [
        event_table(
            track.frames,
            np.full(track.frames.size, track.class_index),
            np.full(track.frames.size, track.source),
            np.rint(track.azimuth),
            np.rint(track.elevation),
            track.distance,
        )
        for track in _event_tracks(events, grid, deg=deg, hop=hop, n_frames=n_frames, sample_rate=sample_rate)
    ]
    return np.concatenate(tables) if tables else no_events()


@dataclass(frozen=True)
class _Track:
    """One event's label frames with its direction (rotated scene, degrees) and distance (m) in each."""

    source: int
    class_index: int
    frames: np.ndarray
    azimuth: np.ndarray
    elevation: np.ndarray
    distance: np.ndarray


def _event_tracks(
    events: list[Event], grid: RoomGrid, *, deg: int, hop: int, n_frames: int, sample_rate: int
) -> list[_Track]:
    """Every event's label frames and positions at the frame middles, azimuth rotated by ``deg`` into [-180, 180)."""
    tracks = []
    for source, event in enumerate(events):
        first = event.onset // hop
        frames = np.arange(first, min(n_frames, -(-(event.onset + event.length) // hop)))
        samples = np.clip((frames + 0.5) * hop - event.onset, 0, event.length - 1)
        if grid.path_of is None:
            azimuth = grid.azimuth_deg[event.position] + event.speed_deg_s * (samples / sample_rate) + deg
            elevation = np.full(frames.size, grid.elevation_deg[event.position])
            distance = np.full(frames.size, grid.distance_m[event.position])
        else:
            azimuth, elevation, distance = _path_directions(event, grid, samples, sample_rate)
            azimuth = azimuth + deg
        azimuth = np.mod(azimuth + 180.0, 360.0) - 180.0
        tracks.append(_Track(source, event.class_index, frames, azimuth, elevation, distance))
    return tracks


def _path_directions(event: Event, grid: RoomGrid, samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, ...]:
    """Azimuth, elevation (degrees) and distance (metres) of an event in a room with measured trajectories.

    The direction is the cross-fade of the two bracketing positions' directions with the rendering's weights,
    and the distance their weighted mean, so the labels follow the path the audio was rendered along.
    """
    motion = _motion(event, grid, samples, sample_rate)
    if motion is None:
        constant = np.full(samples.size, event.position)
        return grid.azimuth_deg[constant], grid.elevation_deg[constant], grid.distance_m[constant]
    progress, knot_position = motion
    lower = np.floor(progress).astype(np.int64)
    upper = np.minimum(lower + 1, knot_position.size - 1)
    fraction = (progress - lower)[:, None]
    a, b = knot_position[lower], knot_position[upper]
    direction = (1.0 - fraction) * grid.unit_vectors(a) + fraction * grid.unit_vectors(b)
    x, y, z = direction.T
    azimuth = np.rad2deg(np.arctan2(y, x))
    elevation = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
    distance = (1.0 - fraction[:, 0]) * grid.distance_m[a] + fraction[:, 0] * grid.distance_m[b]
    return azimuth, elevation, distance
