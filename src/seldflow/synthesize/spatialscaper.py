"""Optional synthesis backend (``synthesis.backend: spatialscaper``): SpatialScaper renders the FOA scenes.

SpatialScaper (github.com/iranroman/SpatialScaper, v0.1.5; not on PyPI) places and spatialises the events with its
own trajectories (linear or semicircular moving sources, static sources snapped to the nearest impulse response)
in our SOFA rooms. Everything around it matches the built-in renderer (:func:`mixtures.render_split`): the same
keyword interface, per-clip seeds, file names and outputs, FOA rotated by a random viewing angle, stereo derived
from the rotated FOA, both scaled to one peak level, DCASE2025 labels.

SpatialScaper's output needs three repairs, all done here:

* **Labels** (:func:`read_spatialscaper_labels`, :func:`to_dcase2025_rows`): its CSV has no header, integer
  (truncated) azimuth and elevation, distance in metres, and it samples each event's trajectory at the 100-ms grid
  times ``0, 0.1, ...`` after the onset but drops the first grid point and writes grid point ``i + 1`` on frame
  ``onset + i``. So its rows hold the positions at the frame *boundaries* shifted one frame early, and the last
  frame the event sounds in has no row. We put every position back on its boundary, emit one row for every frame
  the event's audio touches and give each frame the position at its middle, as the built-in renderer does.
* **Clipping** (:func:`check_clipping`): it writes 16-bit PCM without normalising or limiting. A clipped clip is
  re-rendered 10 dB lower with the same draws; the float mixture never leaves SpatialScaper, so it cannot be
  rescaled instead.
* **Silent drops**: an event shorter than one label frame gets no label row (and a moving one crashes), so source
  files shorter than :data:`MIN_EVENT_SECONDS` are never drawn, and every placed event must appear in the labels.

SpatialScaper draws from Python's and NumPy's *global* random generators: each clip seeds both from its own seed
sequence (their previous states are restored afterwards), so output is reproducible but rendering is not
thread-safe.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import random
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from seldflow.errors import ConfigError, InputError, SeldflowError
from seldflow.formats import STEREO_FORMAT
from seldflow.io import atomic_dir, read_audio
from seldflow.labels import (
    CLASS_FOLDERS,
    CSV_COLUMNS,
    N_CLASSES,
    SAMPLE_RATE,
    check_event_fields,
    empty_rows,
    fold_azimuth,
    onscreen_flags,
    parse_numbers,
    read_csv_records,
)
from seldflow.synthesize.mixtures import (
    FOA_CHANNELS,
    Clip,
    MixtureSettings,
    clip_rng,
    clip_stem,
    rotated_pair,
    write_clip,
)
from seldflow.synthesize.sofa import read_sofa
from seldflow.synthesize.sources import list_bank

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "SpatialScaper is not on PyPI; install it from source into the synthesis environment (Python 3.11 or older: "
    "its setup.py imports the removed 'imp' module): git clone https://github.com/iranroman/SpatialScaper && "
    "pip install ./SpatialScaper"
)
# Columns of the arrays read from SpatialScaper label files (one per CSV field, in file order).
SPATIALSCAPER_COLUMNS: tuple[str, ...] = ("frame", "class", "source", "azimuth", "elevation", "distance")
SS_FRAME, SS_CLASS, SS_SOURCE, SS_AZIMUTH, SS_ELEVATION, SS_DISTANCE = range(6)
# Source files shorter than two label frames are never drawn: SpatialScaper gives an event of one frame or less
# no label row at all, and a moving one gets no trajectory point and crashes.
MIN_EVENT_SECONDS = 0.2
# Mean absolute amplitude (dB re full scale; SpatialScaper sets levels that way) of the loudest possible event:
# 40 dB of headroom for crest factor and overlaps, while its background noise (snr_db below) stays about 30 dB above
# the 16-bit quantisation floor. Impulsive sounds can still exceed full scale; the clipping retry catches those.
EVENT_LEVEL_DB = -40.0
CLIP_RETRY_DB = 10.0
CLIP_RETRIES = 2
_FILE_DRAWS = 100
_ROOM_PREFIX = "seldflow_room"
_CLIP_FULL_WARNING = "Could not find a start time"
_INT16_FULL_SCALE = 32767.0 / 32768.0


class SpatialScaperMissingError(SeldflowError):
    """``synthesis.backend: spatialscaper`` was chosen but the package cannot be imported."""


# --- labels ----------------------------------------------------------------------------------------------------


def read_spatialscaper_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a SpatialScaper label CSV into a float64 array ``(n, 6)`` of :data:`SPATIALSCAPER_COLUMNS`.

    The file has no header; each row is ``frame, class, source, azimuth, elevation, distance`` with the first five
    integers (degrees for the angles) and the distance in metres (three decimals), e.g. ``12,10,1,-93,6,2.514``.
    Malformed values raise :class:`InputError` naming the file, the 1-based row and the field.
    """
    path = Path(path)
    records = read_csv_records(path, "SpatialScaper label file")
    rows = [_parse_spatialscaper_row(path, line, record) for line, record in records]
    if not rows:
        return np.zeros((0, len(SPATIALSCAPER_COLUMNS)), dtype=np.float64)
    return np.asarray(rows, dtype=np.float64)


def _parse_spatialscaper_row(path: Path, line: int, record: list[str]) -> list[float]:
    hint = " (SpatialScaper label files have no header)" if line == 1 else ""
    integers = SPATIALSCAPER_COLUMNS[:-1]  # all but the distance in metres
    values = parse_numbers(path, line, record, SPATIALSCAPER_COLUMNS, integers=integers, hint=hint)
    frame, cls, source, azimuth, elevation, distance = values
    if frame < 0:
        raise InputError(path, f"negative frame {frame:g}", row=line, field="frame")
    check_event_fields(
        path, line, cls=cls, source=source, azimuth=azimuth, elevation=elevation, distance=distance, distance_unit=" m"
    )
    return values


def to_dcase2025_rows(
    rows: np.ndarray,
    *,
    deg: float,
    n_frames: int,
    field_of_view_deg: float = 100.0,
    path: str | os.PathLike[str] = "<SpatialScaper labels>",
) -> np.ndarray:
    """DCASE2025 label rows (``int64 (m, 6)``, see :mod:`seldflow.labels`) from SpatialScaper rows.

    SpatialScaper writes, for an event with onset frame ``o`` whose audio touches frames ``o .. o + K``, the K rows
    ``o .. o + K - 1``, where row ``o + i`` holds the position at time ``(i + 1) * 100 ms`` after the onset, i.e.
    at the boundary between frames ``o + i`` and ``o + i + 1`` (the position at the onset is dropped). This
    function undoes that shift: it emits rows for all K + 1 frames and gives each frame the position at its middle,
    the mean (in Cartesian coordinates, as SpatialScaper interpolates) of the positions at its two boundaries. The
    onset boundary, which SpatialScaper dropped, takes the first written position and the end boundary of the last
    frame the last one (the trajectory ends inside that frame). Static events are unaffected by the averaging.

    Then azimuths turn by ``deg`` (the FOA rotation of the clip), the onscreen flag comes from the rotated azimuth
    and the elevation, azimuths fold to the front, and distances become centimetres (rounded). SpatialScaper's
    integer angles are truncated toward zero, which we keep: it rounds positions to 0.001 degree first, so the
    angles of grid positions are exact and de-biasing would spoil them; elsewhere the error is below 1 degree.

    Input frames must lie in ``0 .. n_frames - 1``, and each source must have one class and consecutive frames,
    else :class:`InputError` naming ``path`` and the 1-based input row (the file line for rows read by
    :func:`read_spatialscaper_labels` from a file without blank lines). The only row ever left out is a restored
    last frame that would fall at ``n_frames``, just past the clip's end (SpatialScaper keeps events inside the
    clip, so their audio does not reach it).
    """
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(SPATIALSCAPER_COLUMNS))
    blocks = []
    for source in np.unique(rows[:, SS_SOURCE]):
        members = np.flatnonzero(rows[:, SS_SOURCE] == source)
        members = members[np.argsort(rows[members, SS_FRAME], kind="stable")]
        event = rows[members]
        _check_event(path, event, members, n_frames)
        boundary = _cartesian(event[:, SS_AZIMUTH], event[:, SS_ELEVATION], event[:, SS_DISTANCE])
        padded = np.concatenate([boundary[:1], boundary, boundary[-1:]])
        middle = (padded[:-1] + padded[1:]) / 2.0
        frames = int(event[0, SS_FRAME]) + np.arange(len(middle))
        keep = frames < n_frames
        frames, middle = frames[keep], middle[keep]
        x, y, z = middle.T
        azimuth = np.rad2deg(np.arctan2(y, x)) + deg
        azimuth = np.mod(azimuth + 180.0, 360.0) - 180.0
        elevation = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
        block = np.empty((frames.size, len(CSV_COLUMNS)), dtype=np.int64)
        block[:, 0] = frames
        block[:, 1] = int(event[0, SS_CLASS])
        block[:, 2] = int(source)
        block[:, 3] = np.rint(fold_azimuth(azimuth)).astype(np.int64)
        block[:, 4] = np.rint(np.linalg.norm(middle, axis=1) * 100.0).astype(np.int64)
        block[:, 5] = onscreen_flags(azimuth, elevation, field_of_view_deg)
        blocks.append(block)
    return np.concatenate(blocks) if blocks else empty_rows()


def _check_event(path: str | os.PathLike[str], event: np.ndarray, members: np.ndarray, n_frames: int) -> None:
    source = int(event[0, SS_SOURCE])
    frames = event[:, SS_FRAME]
    for index, frame in zip(members, frames, strict=True):
        if not 0 <= frame < n_frames:
            raise InputError(path, f"frame {frame:g} out of range 0..{n_frames - 1}", row=int(index) + 1, field="frame")
    classes = np.unique(event[:, SS_CLASS])
    if classes.size != 1:
        found = ", ".join(f"{c:g}" for c in classes)
        raise InputError(path, f"source {source} changes class ({found})", row=int(members[0]) + 1, field="class")
    steps = np.diff(frames)
    if np.any(steps != 1):
        bad = int(np.flatnonzero(steps != 1)[0]) + 1
        problem = "repeats" if steps[bad - 1] == 0 else "skips to"
        message = f"source {source} {problem} frame {frames[bad]:g}: expected consecutive frames"
        raise InputError(path, message, row=int(members[bad]) + 1, field="frame")


def _cartesian(azimuth_deg: np.ndarray, elevation_deg: np.ndarray, distance: np.ndarray) -> np.ndarray:
    azimuth, elevation = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    return np.stack(
        [
            distance * np.cos(elevation) * np.cos(azimuth),
            distance * np.cos(elevation) * np.sin(azimuth),
            distance * np.sin(elevation),
        ],
        axis=1,
    )


# --- audio -----------------------------------------------------------------------------------------------------


def check_clipping(audio: np.ndarray, path: str | os.PathLike[str], *, min_run: int = 1) -> None:
    """Raise :class:`InputError` naming ``path`` if 16-bit audio holds a run of ``min_run`` full-scale samples.

    ``audio`` is int16 or float as read back from a 16-bit file (``k / 32768``). SpatialScaper writes the float
    mixture as 16-bit PCM without normalising or limiting, and libsndfile saturates values beyond full scale at
    32767 or -32768: unlimited float audio lands exactly there only when it exceeded full scale, so by default a
    single such sample counts as clipping. Runs are counted per channel along the last axis.
    """
    if min_run < 1:
        raise ValueError(f"min_run must be at least 1, got {min_run}")
    audio = np.asarray(audio)
    if np.issubdtype(audio.dtype, np.integer):
        info = np.iinfo(audio.dtype)
        full = (audio >= info.max) | (audio <= info.min)
    else:  # 16-bit full scale read as float: 32767 / 32768 and -1
        tolerance = 0.25 / 32768.0
        full = (audio >= _INT16_FULL_SCALE - tolerance) | (audio <= -1.0 + tolerance)
    full = np.atleast_2d(full)
    if not full.any():
        return
    longest = max(_longest_run(channel) for channel in full.reshape(-1, full.shape[-1]))
    if longest >= min_run:
        channel, sample = (int(i[0]) for i in np.nonzero(full.reshape(-1, full.shape[-1])))
        raise InputError(
            path,
            f"clipped: {int(full.sum())} samples at 16-bit full scale (lowest clipped channel {channel} from sample "
            f"{sample}; longest run {longest})",
            field="audio",
        )


def _longest_run(flags: np.ndarray) -> int:
    padded = np.concatenate([[0], flags.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int(np.max(edges[1::2] - edges[0::2])) if edges.size else 0


# --- rendering -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedEvent:
    """What our seed decides for one event; SpatialScaper draws its onset, trajectory and SNR."""

    class_index: int
    path: Path
    moving: bool


@dataclass(frozen=True)
class ClipPlan:
    """The draws of one clip from its own seed sequence."""

    room: int
    events: tuple[PlannedEvent, ...]
    deg: int
    global_seed: int


def render_split_spatialscaper(
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
    speed_limit_m_s: float = 1.5,
    label_format: str = STEREO_FORMAT,
) -> None:
    """Render clips ``first_clip .. first_clip + n_clips - 1`` of one split with SpatialScaper.

    Same interface, file names (``fold{fold}_room{id}_mix{k+1:03d}_deg{deg:03d}_start0000``), seeds
    (``SeedSequence(seed, spawn_key=(fold, k))`` per clip) and all-or-nothing outputs as
    :func:`seldflow.synthesize.mixtures.render_split`. Per clip our seed draws the room, the number of events and
    each event's class, source file and whether it moves (``moving_probability``), the viewing angle, and the seed
    of SpatialScaper's global generators; SpatialScaper draws the onsets (at most ``max_polyphony`` overlapping;
    an event that fits nowhere is left out, the clip is full), trajectories (moving sources travel at most
    ``speed_limit_m_s`` on average, static ones snap to the nearest impulse response) and SNRs (uniform in
    ``snr_db``, mean absolute amplitude over its white background noise). Its FOA output is rotated by the viewing
    angle, stereo is derived from it and both are scaled to ``peak_level`` with one gain.

    ``angular_speed_deg_s`` and ``noise_level_db`` have no SpatialScaper equivalent and are ignored (logged):
    trajectories are set by ``speed_limit_m_s``, and the absolute noise level disappears in the peak scaling.
    At least one event per clip is required (SpatialScaper cannot render a clip without events). Labels are
    DCASE2025 stereo labels only (``label_format``): the 3-D formats are the built-in renderer's.
    """
    if label_format != STEREO_FORMAT:
        raise ConfigError(
            "dataset", "label_format", f"the spatialscaper backend writes {STEREO_FORMAT} labels, not {label_format!r}"
        )
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
        snr_db=(float(snr_db[0]), float(snr_db[1])),
        peak_level=peak_level,
        field_of_view_deg=field_of_view_deg,
    )
    if settings.events_per_clip[0] < 1:
        raise ValueError(
            f"the spatialscaper backend needs at least one event per clip, got events_per_clip {events_per_clip}"
        )
    if not speed_limit_m_s > 0:
        raise ValueError(f"speed_limit_m_s must be positive, got {speed_limit_m_s}")
    ss = import_spatialscaper()
    log.warning(
        "synthesis.backend spatialscaper: angular_speed_deg_s %s and noise_level_db %s have no SpatialScaper "
        "equivalent and are ignored (moving sources follow its trajectories at up to %s m/s; output is "
        "peak-normalised)",
        list(angular_speed_deg_s),
        noise_level_db,
        speed_limit_m_s,
    )
    for path in rooms:
        _check_room(Path(path))
    files = list_bank(bank_dir, source_split)
    duration_of = functools.lru_cache(maxsize=None)(_duration)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="seldflow-spatialscaper-")))
        names = stack.enter_context(_registered_rooms(ss, [Path(p) for p in rooms], work / "rirs"))
        stack.enter_context(_global_rng_state())
        stereo_tmp = stack.enter_context(atomic_dir(stereo_dir))
        foa_tmp = stack.enter_context(atomic_dir(foa_dir))
        meta_tmp = stack.enter_context(atomic_dir(metadata_dir))
        renderer = _Renderer(ss, work / "rirs", work / "clip" / "clip", str(bank_dir), settings, speed_limit_m_s)
        for k in tqdm(range(first_clip, first_clip + n_clips), desc=f"fold{fold} spatialscaper", unit="clip"):
            plan = plan_clip(clip_rng(seed, fold, k), len(rooms), files, duration_of, settings)
            stem = clip_stem(fold, room_ids[plan.room], k, plan.deg)
            foa, rows = renderer.render(plan, names[plan.room], stem)
            if not np.any(foa):
                raise InputError(stem, "SpatialScaper rendered a silent clip", field="audio")
            stereo, foa = rotated_pair(foa.astype(np.float64), plan.deg, settings.peak_level)
            clip = Clip(room=plan.room, deg=plan.deg, stereo=stereo, foa=foa, rows=rows)
            write_clip((stereo_tmp, foa_tmp, meta_tmp), stem, clip, sample_rate)


def import_spatialscaper() -> ModuleType:
    """The ``spatialscaper`` package, or :class:`SpatialScaperMissingError` with install instructions."""
    try:
        import spatialscaper  # optional: imported only when this backend is used
        import spatialscaper.core
    except ImportError as exc:
        raise SpatialScaperMissingError(
            f"config key 'synthesis.backend': 'spatialscaper' needs the spatialscaper package, which cannot be "
            f"imported ({exc}). {INSTALL_HINT}; or use the built-in renderer."
        ) from exc
    return spatialscaper


def plan_clip(
    rng: np.random.Generator,
    n_rooms: int,
    files: dict[int, list[Path]],
    duration_of: Callable[[Path], float],
    settings: MixtureSettings,
) -> ClipPlan:
    """Our draws for one clip: room index, events (class, a file of at least :data:`MIN_EVENT_SECONDS`, moving or
    static), viewing angle, and the seed for SpatialScaper's global generators."""
    room = int(rng.integers(n_rooms))
    low, high = settings.events_per_clip
    events = []
    for _ in range(int(rng.integers(low, high + 1))):
        class_index = int(rng.integers(N_CLASSES))
        path = _draw_file(rng, files[class_index], duration_of)
        events.append(PlannedEvent(class_index, path, bool(rng.random() < settings.moving_probability)))
    deg = int(rng.integers(0, 360))
    return ClipPlan(room=room, events=tuple(events), deg=deg, global_seed=int(rng.integers(2**32)))


def _draw_file(rng: np.random.Generator, candidates: list[Path], duration_of: Callable[[Path], float]) -> Path:
    for _ in range(_FILE_DRAWS):
        path = candidates[int(rng.integers(len(candidates)))]
        if duration_of(path) >= MIN_EVENT_SECONDS:
            return path
    usable = [p for p in candidates if duration_of(p) >= MIN_EVENT_SECONDS]
    if not usable:
        raise InputError(
            candidates[0].parent,
            f"every source file of this class is shorter than {MIN_EVENT_SECONDS} s",
            field="audio",
        )
    return usable[int(rng.integers(len(usable)))]


def _duration(path: Path) -> float:
    try:
        return float(sf.info(str(path)).duration)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise InputError(path, f"cannot read audio ({exc})", field="audio") from exc


@dataclass(frozen=True)
class _Renderer:
    """Runs SpatialScaper for one clip at a time in a scratch folder and reads its output back."""

    ss: ModuleType
    rir_dir: Path
    scratch: Path
    bank_dir: str
    settings: MixtureSettings
    speed_limit_m_s: float

    def render(self, plan: ClipPlan, room_name: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        """SpatialScaper's FOA audio ``[4, n]`` (not yet rotated) and the clip's DCASE2025 rows (rotated by
        ``plan.deg``). A clipped render is repeated :data:`CLIP_RETRY_DB` lower with the same draws (the generators
        are re-seeded and the level changes no draw), at most :data:`CLIP_RETRIES` times."""
        settings = self.settings
        wav, labels = self.scratch.with_suffix(".wav"), self.scratch.with_suffix(".csv")
        ref_db = EVENT_LEVEL_DB - settings.snr_db[1]
        for attempt in range(CLIP_RETRIES + 1):
            events = self._generate(plan, room_name, ref_db)
            n_samples = settings.n_frames * settings.hop
            foa = read_audio(wav, sample_rate=settings.sample_rate, channels=FOA_CHANNELS, frames=n_samples)
            try:
                check_clipping(foa, wav)
            except InputError as exc:
                if attempt == CLIP_RETRIES:
                    lowered = CLIP_RETRIES * CLIP_RETRY_DB
                    message = f"SpatialScaper output clips even {lowered:g} dB lower: {exc.message}"
                    raise InputError(name, message, field="audio") from exc
                ref_db -= CLIP_RETRY_DB
                log.info("%s: SpatialScaper output clipped; rendering again %g dB lower", name, CLIP_RETRY_DB)
                continue
            rows = read_spatialscaper_labels(labels)
            _check_against_events(rows, events, labels)
            dcase = to_dcase2025_rows(
                rows,
                deg=plan.deg,
                n_frames=settings.n_frames,
                field_of_view_deg=settings.field_of_view_deg,
                path=labels,
            )
            return foa, dcase
        raise AssertionError("unreachable")

    def _generate(self, plan: ClipPlan, room_name: str, ref_db: float) -> list[Any]:
        """Write ``scratch.wav``/``scratch.csv`` with SpatialScaper; returns its placed events in onset order."""
        settings = self.settings
        random.seed(plan.global_seed)
        np.random.seed(plan.global_seed)
        scaper = self.ss.Scaper(
            duration=settings.clip_seconds,
            foreground_dir=self.bank_dir,
            rir_dir=str(self.rir_dir),
            fmt="foa",
            room=room_name,
            use_room_ambient_noise=False,
            sr=settings.sample_rate,
            DCASE_format=True,
            max_event_overlap=settings.max_polyphony,
            max_event_dur=settings.clip_seconds,
            ref_db=ref_db,
            speed_limit=self.speed_limit_m_s,
        )
        scaper.add_background()  # white noise in every channel at the reference level
        low, high = settings.snr_db
        with warnings.catch_warnings():
            # When an event fits nowhere SpatialScaper warns, then retries recursively without end: stop there.
            warnings.filterwarnings("error", message=_CLIP_FULL_WARNING, category=UserWarning)
            for event in plan.events:
                try:
                    scaper.add_event(
                        label=("const", CLASS_FOLDERS[event.class_index]),
                        source_file=("choose", [str(event.path)]),
                        event_position=("moving" if event.moving else "static", ("uniform", None, None)),
                        snr=("uniform", low, high),
                    )
                except UserWarning as exc:
                    if _CLIP_FULL_WARNING not in str(exc):
                        raise
        self.scratch.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.redirect_stderr(io.StringIO()):  # its per-clip progress bar
            scaper.generate(str(self.scratch), str(self.scratch))
        return list(scaper.fg_events)


def _check_against_events(rows: np.ndarray, events: list[Any], path: Path) -> None:
    """Every event SpatialScaper placed has label rows with its class, starting at its onset frame."""
    sources = np.unique(rows[:, SS_SOURCE]).astype(np.int64)
    if not np.array_equal(sources, np.arange(len(events))):
        raise InputError(path, f"SpatialScaper placed {len(events)} events but labelled sources {sources.tolist()}")
    for source, event in enumerate(events):
        event_rows = rows[rows[:, SS_SOURCE] == source]
        onset = round(event.event_time * 10.0)
        expected_class = CLASS_FOLDERS.index(event.label)
        if int(event_rows[0, SS_CLASS]) != expected_class or int(event_rows[:, SS_FRAME].min()) != onset:
            raise InputError(
                path,
                f"source {source}: labels start at frame {int(event_rows[:, SS_FRAME].min())} with class "
                f"{int(event_rows[0, SS_CLASS])}, but the event is {event.label} at {event.event_time:.1f} s",
            )


def _check_room(path: Path) -> None:
    """Our checks (FOA channel count) plus the SOFA validation SpatialScaper asserts, with a readable error."""
    room = read_sofa(path)
    if room.irs.shape[1] != FOA_CHANNELS:
        raise InputError(path, f"expected {FOA_CHANNELS} FOA channels, found {room.irs.shape[1]}", field="Data.IR")
    try:
        import pysofaconventions  # a SpatialScaper dependency
    except ImportError:
        return
    sofa = pysofaconventions.SOFAFile(str(path), "r")
    try:
        with warnings.catch_warnings(record=True) as caught:  # it reports the reason as a warning
            warnings.simplefilter("always")
            valid = sofa.isValid()
    finally:
        sofa.close()
    if not valid:
        details = "; ".join(str(w.message) for w in caught) or "no reason given"
        raise InputError(path, f"SpatialScaper's SOFA reader (pysofaconventions) rejects the file: {details}")


@contextlib.contextmanager
def _registered_rooms(ss: ModuleType, rooms: list[Path], rir_dir: Path) -> Iterator[list[str]]:
    """Stage each room as ``<rir_dir>/spatialscaper_RIRs/<name>_foa.sofa`` (a symlink, else a copy) and add
    ``name -> "<name>_{fmt}.sofa"`` to SpatialScaper's room registry for the duration of the block."""
    registry: dict[str, str] = vars(ss.core)["__ROOM_RIR_FILE__"]
    staged = rir_dir / vars(ss.core).get("__SPATIAL_SCAPER_RIRS_DIR__", "spatialscaper_RIRs")
    staged.mkdir(parents=True, exist_ok=True)
    names = [f"{_ROOM_PREFIX}{index}" for index in range(len(rooms))]
    previous = {name: registry.get(name) for name in names}
    try:
        for name, path in zip(names, rooms, strict=True):
            target = staged / f"{name}_foa.sofa"
            try:
                target.symlink_to(path.resolve())
            except OSError:
                shutil.copyfile(path, target)
            registry[name] = f"{name}_{{fmt}}.sofa"
        yield names
    finally:
        for name, value in previous.items():
            if value is None:
                registry.pop(name, None)
            else:
                registry[name] = value


@contextlib.contextmanager
def _global_rng_state() -> Iterator[None]:
    """Restore Python's and NumPy's global generators, which SpatialScaper re-seeds for every clip."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
