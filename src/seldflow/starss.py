"""STARSS23 adapters: real recordings into DCASE2025-style stereo clips and into 5-s FOA/MIC windows.

STARSS23 ships minutes-long 4-channel recordings (``foa_dev/<split>/<stem>.wav`` in first-order Ambisonics,
ACN W, Y, Z, X with SN3D, or ``mic_dev/<split>/<stem>.wav`` from the tetrahedral array, 24 kHz) with one
header-less metadata CSV per recording (``metadata_dev/<split>/<stem>.csv``, rows
``frame,class,source,azimuth,elevation,distance``: 100-ms frame index from the recording start, class 0..12,
source id, degrees with azimuth positive to the left, distance in cm).

* :func:`stereo_clips` draws extra stereo training clips the way the DCASE2025 stereo dataset itself was made from
  the FOA recordings (random recording, start and viewing angle; rotated FOA turned into L = W + Y', R = W - Y'),
  so the extra clips carry exactly the spatial cues and label conventions of the official ones.
* :func:`foa_windows` cuts every recording into consecutive 5-s windows with labels in the DCASE2025 CSV format
  (full, unfolded azimuth), the 4-channel clips that the ``foa`` and ``mic`` feature kinds read.

Every recording, CSV and pairing is checked before anything is written, and outputs replace their folders
atomically, so a bad file never leaves half a dataset behind.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from seldflow.errors import InputError
from seldflow.formats import STEREO_FORMAT, LabelFormat, get_label_format
from seldflow.formats.events import event_table

# wav_samples checks minutes-long recordings' headers without reading them.
from seldflow.io import atomic_dir, wav_samples, write_audio
from seldflow.labels import (
    CSV_COLUMNS,
    LABEL_HOP_SECONDS,
    N_CLASSES,
    SAMPLE_RATE,
    check_event_fields,
    fold_azimuth,
    onscreen_flags,
    parse_numbers,
    read_csv_records,
    write_labels,
)
from seldflow.synthesize.mixtures import foa_to_stereo, rotate_foa

log = logging.getLogger(__name__)

STARSS_COLUMNS: tuple[str, ...] = ("frame", "class", "source", "azimuth", "elevation", "distance")
S_FRAME, S_CLASS, S_SOURCE, S_AZIMUTH, S_ELEVATION, S_DISTANCE = range(6)

SPLITS: tuple[str, ...] = ("dev-train-sony", "dev-train-tau", "dev-test-sony", "dev-test-tau")
# The 12 STARSS23 recordings without 360-degree video; the official stereo generator leaves them out because it
# cuts video alongside the audio. Audio-only clips could use them, but the default follows the official data.
NO_VIDEO_RECORDINGS: tuple[str, ...] = tuple(f"fold3_room21_mix{k:03d}" for k in range(1, 13))
# The official generator discards (and redraws) stereo clips whose peak exceeds this: they would clip as 16-bit.
PEAK_LIMIT = 0.9999
FOA_CHANNELS = 4
VIEW_ANGLES = 360

# SeedSequence spawn keys: the split's plan and each clip's redraws come from separate, fixed streams.
_PLAN_STREAM = 0
_REDRAW_STREAM = 1
# Redraw attempts of one clip before the recordings are declared too loud to give a clip below PEAK_LIMIT.
MAX_REDRAWS = 100
# Rejected duplicate draws tolerated in a row before a plan is declared impossible (the sampling space is full).
_MAX_REJECTIONS = 100_000


@dataclass(frozen=True)
class Recording:
    """One validated STARSS23 recording: its audio file, its metadata file, length in samples and label rows."""

    stem: str
    audio: Path
    metadata: Path
    samples: int
    rows: np.ndarray


@dataclass(frozen=True)
class ClipDraw:
    """Where a stereo clip comes from: recording index, start frame (100-ms units) and viewing angle (degrees)."""

    recording: int
    start: int
    deg: int


# --- metadata -------------------------------------------------------------------------------------------------


def read_starss_labels(
    path: str | os.PathLike[str], *, n_classes: int = N_CLASSES, n_frames: int | None = None
) -> np.ndarray:
    """Read and validate a STARSS23 metadata CSV into ``int64`` rows ``(n, 6)``: frame, class, source, azimuth,
    elevation, distance.

    The official files have no header; a first line that names the six columns is tolerated (hand-edited or
    re-exported files), any other text is an error. Every malformed value raises :class:`InputError` naming the
    file, the 1-based row and the column, because one silently skipped row would be a wrong label forever.
    ``n_frames`` (optional) bounds the frame index, e.g. to the frames the recording's audio covers.
    """
    path = Path(path)
    rows = [
        _parse_starss_row(path, line, record, n_classes, n_frames)
        for line, record in read_csv_records(path, "metadata file")
        if not (line == 1 and _is_header(record))
    ]
    if not rows:
        return np.zeros((0, len(STARSS_COLUMNS)), dtype=np.int64)
    return np.asarray(rows, dtype=np.int64)


def _is_header(record: list[str]) -> bool:
    return [value.strip().lower() for value in record] == list(STARSS_COLUMNS)


def _parse_starss_row(path: Path, line: int, record: list[str], n_classes: int, n_frames: int | None) -> list[int]:
    numbers = parse_numbers(path, line, record, STARSS_COLUMNS, integers=STARSS_COLUMNS)
    values = [round(number) for number in numbers]
    frame, cls, source, azimuth, elevation, distance = values
    if frame < 0:
        raise InputError(path, f"negative frame {frame}", row=line, field="frame")
    if n_frames is not None and frame >= n_frames:
        raise InputError(path, f"frame {frame} lies beyond the recording's {n_frames} frames", row=line, field="frame")
    check_event_fields(
        path, line, cls=cls, source=source, azimuth=azimuth, elevation=elevation, distance=distance, n_classes=n_classes
    )
    return values


# --- recordings -----------------------------------------------------------------------------------------------


def find_recordings(
    audio_dir: str | os.PathLike[str],
    metadata_dir: str | os.PathLike[str],
    *,
    sample_rate: int,
    channels: int,
    splits: Sequence[str] = (),
    exclude: Iterable[str] = (),
    clip_frames: int | None = None,
) -> list[Recording]:
    """Pair, check and load every recording (sorted by stem) before any output exists.

    With ``splits`` the recordings are read from ``audio_dir/<split>`` and ``metadata_dir/<split>`` for each split
    (e.g. both training splits into one output); without, the two folders hold them directly. A recording without
    its CSV, a CSV without its recording, a stem in two splits, a wrong channel count or sample rate, a truncated
    WAV or a malformed CSV raises :class:`InputError` naming the file. Stems in ``exclude`` are ignored entirely.
    With ``clip_frames`` every label frame must lie inside the recording once padded to whole clips of that many
    frames (labels past it would fall into no clip). Only WAV headers are read here (recordings are minutes
    long); the samples are read clip by clip later.
    """
    excluded = set(exclude)
    folders = [(Path(audio_dir) / s, Path(metadata_dir) / s) for s in splits] if splits else [(audio_dir, metadata_dir)]
    pairs: dict[str, tuple[Path, Path]] = {}
    for audio_folder, metadata_folder in folders:
        for stem, pair in _pair_folder(Path(audio_folder), Path(metadata_folder), excluded).items():
            if stem in pairs:
                raise InputError(pair[0], f"recording {stem} also exists as {pairs[stem][0]}")
            pairs[stem] = pair
    if not pairs:
        raise InputError(audio_dir, "no recordings (*.wav) to use")
    recordings = []
    for stem in sorted(pairs):
        audio, metadata = pairs[stem]
        samples = wav_samples(audio, sample_rate=sample_rate, channels=channels)
        n_frames = None
        if clip_frames is not None:
            window = clip_frames * _label_hop(sample_rate)
            n_frames = math.ceil(samples / window) * clip_frames
        recordings.append(Recording(stem, audio, metadata, samples, read_starss_labels(metadata, n_frames=n_frames)))
    return recordings


def _pair_folder(audio_folder: Path, metadata_folder: Path, excluded: set[str]) -> dict[str, tuple[Path, Path]]:
    """Stem -> (WAV, CSV) of one folder pair; every file must have its partner."""
    for folder, what in ((audio_folder, "audio"), (metadata_folder, "metadata")):
        if not folder.is_dir():
            raise InputError(folder, f"{what} folder not found")
    wavs = {p.stem: p for p in audio_folder.glob("*.wav") if p.stem not in excluded}
    csvs = {p.stem: p for p in metadata_folder.glob("*.csv") if p.stem not in excluded}
    lonely_wavs = sorted(set(wavs) - set(csvs))
    if lonely_wavs:
        stem = lonely_wavs[0]
        raise InputError(wavs[stem], f"recording has no metadata file {metadata_folder / (stem + '.csv')}")
    lonely_csvs = sorted(set(csvs) - set(wavs))
    if lonely_csvs:
        stem = lonely_csvs[0]
        raise InputError(csvs[stem], f"metadata file has no recording {audio_folder / (stem + '.wav')}")
    return {stem: (wavs[stem], csvs[stem]) for stem in wavs}


def read_segment(recording: Recording, start: int, length: int, *, pad: bool = False) -> np.ndarray:
    """Samples ``[start, start + length)`` of a recording as float64 ``(channels, length)``.

    Reading only the window keeps memory at one clip whatever the recording length. With ``pad`` a window that
    runs past the end is zero-filled; without, a short read means the file changed since it was checked.
    """
    try:
        with sf.SoundFile(str(recording.audio)) as fh:
            fh.seek(start)
            data = fh.read(length, dtype="float64", always_2d=True, fill_value=0.0 if pad else None)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise InputError(recording.audio, f"cannot read audio ({exc})", field="audio") from exc
    if data.shape[0] != length:
        raise InputError(recording.audio, f"read {data.shape[0]} of {length} samples from sample {start}")
    return np.ascontiguousarray(data.T)


# --- labels ---------------------------------------------------------------------------------------------------


def window_rows(rows: np.ndarray, start: int, clip_frames: int) -> np.ndarray:
    """STARSS rows of frames ``[start, start + clip_frames)``, renumbered from 0 at the window start."""
    inside = (rows[:, S_FRAME] >= start) & (rows[:, S_FRAME] < start + clip_frames)
    window = rows[inside].copy()
    window[:, S_FRAME] -= start
    return window


def dcase_rows(rows: np.ndarray, *, deg: int, fold: bool, field_of_view_deg: float) -> np.ndarray:
    """DCASE2025 CSV rows (frame, class, source, azimuth, distance, onscreen) of STARSS rows seen at angle ``deg``.

    The scene turns by ``deg`` (azimuth a becomes a + deg, wrapped to [-180, 180]); ``fold`` maps the rear half
    onto the front as for stereo, whose L/R pair cannot tell front from back. The onscreen flag is judged on the
    unfolded direction, because a source behind the camera must stay offscreen. Distance (cm) and source carry over.
    """
    rotated = rows[:, S_AZIMUTH] + deg
    rotated = np.where(rotated > 180, rotated - 360, rotated)
    azimuth = np.rint(fold_azimuth(rotated)).astype(np.int64) if fold else rotated
    out = np.empty((len(rows), len(CSV_COLUMNS)), dtype=np.int64)
    out[:, 0] = rows[:, S_FRAME]
    out[:, 1] = rows[:, S_CLASS]
    out[:, 2] = rows[:, S_SOURCE]
    out[:, 3] = azimuth
    out[:, 4] = rows[:, S_DISTANCE]
    out[:, 5] = onscreen_flags(rotated, rows[:, S_ELEVATION], field_of_view_deg)
    return out


# --- stereo clips ---------------------------------------------------------------------------------------------


def clip_stem(stem: str, deg: int, start: int) -> str:
    """The DCASE2025 stereo clip name: ``<recording>_deg{deg:03d}_start{start:04d}``."""
    return f"{stem}_deg{deg:03d}_start{start:04d}"


def plan_clips(
    label_frames: Sequence[int],
    n_clips: int,
    *,
    seed: int,
    clip_frames: int = 50,
    rng: np.random.Generator | None = None,
    taken: set[tuple[int, int, int]] | None = None,
) -> list[ClipDraw]:
    """Draw ``n_clips`` distinct (recording, start, deg) triples, as the official generator samples.

    A recording is chosen with probability proportional to its length in label frames, the start frame uniformly
    among those that keep the whole window inside it, the viewing angle uniformly among 0..359; a triple already
    drawn (or in ``taken``) is drawn again. Draws are sequential, so the first k clips of a longer plan equal a
    plan of k clips. Recordings shorter than one clip are never chosen. ``rng`` replaces the split's own stream
    (used for redraws).
    """
    frames = np.asarray(label_frames, dtype=np.int64)
    starts = np.where(frames >= clip_frames, frames - clip_frames + 1, 0)
    weights = np.where(starts > 0, frames, 0).astype(np.float64)
    if weights.sum() <= 0:
        raise ValueError(f"no recording is long enough for a {clip_frames}-frame clip")
    seen = set() if taken is None else set(taken)
    if n_clips + len(seen) > int(starts[weights > 0].sum()) * VIEW_ANGLES:
        raise ValueError(f"cannot draw {n_clips} distinct clips: too few (recording, start, deg) triples")
    cumulative = np.cumsum(weights) / weights.sum()
    if rng is None:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_PLAN_STREAM,)))
    plan: list[ClipDraw] = []
    while len(plan) < n_clips:
        for _ in range(_MAX_REJECTIONS):
            recording = min(int(np.searchsorted(cumulative, rng.random(), side="right")), len(frames) - 1)
            if weights[recording] <= 0:
                continue  # only reachable through floating-point rounding at a zero-weight edge
            draw = ClipDraw(recording, int(rng.integers(starts[recording])), int(rng.integers(VIEW_ANGLES)))
            key = (draw.recording, draw.start, draw.deg)
            if key not in seen:
                break
        else:
            raise ValueError(f"gave up after {_MAX_REJECTIONS} duplicate draws in a row")
        seen.add(key)
        plan.append(draw)
    return plan


def stereo_clips(
    foa_dir: str | os.PathLike[str],
    metadata_dir: str | os.PathLike[str],
    stereo_out: str | os.PathLike[str],
    metadata_out: str | os.PathLike[str],
    *,
    n_clips: int,
    seed: int,
    first_clip: int = 0,
    total_clips: int | None = None,
    clip_frames: int = 50,
    sample_rate: int = SAMPLE_RATE,
    field_of_view_deg: float = 100.0,
    splits: Sequence[str] = (),
    exclude: Iterable[str] = NO_VIDEO_RECORDINGS,
) -> None:
    """Make DCASE2025-style stereo clips ``first_clip .. first_clip + n_clips - 1`` of a plan of ``total_clips``
    (default: ``first_clip + n_clips``, i.e. the whole run) from STARSS23 FOA recordings.

    As the official stereo dataset was made: :func:`plan_clips` draws (recording, start, deg) for the whole split
    from ``seed``; the FOA window ``[start * hop, (start + clip_frames) * hop)`` is rotated by ``deg``
    (:func:`rotate_foa`) and turned into L = W + Y', R = W - Y' (:func:`foa_to_stereo`, no scaling) and written as
    16-bit WAV. Labels keep the frames inside the window, renumbered from its start, with azimuth
    ``fold(wrap(az + deg))``, distance in cm, the source id, and the onscreen flag of a ``field_of_view_deg``
    camera on the rotated, unfolded direction (see :func:`dcase_rows`). Files are named :func:`clip_stem`.

    A clip whose stereo peak exceeds :data:`PEAK_LIMIT` is redrawn (logged) from its own stream
    ``SeedSequence(seed, spawn_key=(1, k, attempt))``, never onto a triple of the whole plan; since neither the
    plan nor a redraw depends on the other clips' audio, a shard renders byte for byte the files the whole run
    renders for those clips, provided ``total_clips`` is the whole plan's size. ``exclude`` defaults to the 12
    recordings without video (:data:`NO_VIDEO_RECORDINGS`), as the official data; ``splits`` picks subfolders
    (see :func:`find_recordings`). Inputs are checked before anything is written; both output folders are
    replaced atomically, all or none.
    """
    total = first_clip + n_clips if total_clips is None else total_clips
    if n_clips < 0 or first_clip < 0 or first_clip + n_clips > total:
        raise ValueError(f"clips {first_clip}..{first_clip + n_clips - 1} do not lie in a plan of {total} clips")
    hop = _label_hop(sample_rate)
    recordings = find_recordings(
        foa_dir, metadata_dir, sample_rate=sample_rate, channels=FOA_CHANNELS, splits=splits, exclude=exclude
    )
    label_frames = [r.samples // hop for r in recordings]
    for recording, frames in zip(recordings, label_frames, strict=True):
        if frames < clip_frames:
            log.warning("%s: %d frames, shorter than one clip; never drawn", recording.audio, frames)
    plan = plan_clips(label_frames, total, seed=seed, clip_frames=clip_frames)
    taken = {(d.recording, d.start, d.deg) for d in plan}
    with atomic_dir(stereo_out) as stereo_tmp, atomic_dir(metadata_out) as meta_tmp:
        for k in tqdm(range(first_clip, first_clip + n_clips), desc="STARSS23 stereo clips", unit="clip"):
            draw, stereo = _clip_below_peak(k, plan[k], recordings, label_frames, taken, seed, clip_frames, hop)
            recording = recordings[draw.recording]
            stem = clip_stem(recording.stem, draw.deg, draw.start)
            rows = window_rows(recording.rows, draw.start, clip_frames)
            write_audio(stereo_tmp / f"{stem}.wav", stereo, sample_rate)
            write_labels(
                meta_tmp / f"{stem}.csv",
                dcase_rows(rows, deg=draw.deg, fold=True, field_of_view_deg=field_of_view_deg),
            )


def render_stereo(recording: Recording, draw: ClipDraw, clip_frames: int, hop: int) -> np.ndarray:
    """Stereo ``(2, clip_frames * hop)`` of one draw: the FOA window rotated by ``deg``, L = W + Y', R = W - Y'."""
    foa = read_segment(recording, draw.start * hop, clip_frames * hop)
    return foa_to_stereo(rotate_foa(foa, draw.deg))


def _clip_below_peak(
    k: int,
    draw: ClipDraw,
    recordings: list[Recording],
    label_frames: list[int],
    taken: set[tuple[int, int, int]],
    seed: int,
    clip_frames: int,
    hop: int,
) -> tuple[ClipDraw, np.ndarray]:
    """Clip k's draw and stereo audio, redrawn from the clip's own stream while its peak exceeds PEAK_LIMIT."""
    for attempt in range(1, MAX_REDRAWS + 1):
        stereo = render_stereo(recordings[draw.recording], draw, clip_frames, hop)
        peak = float(np.max(np.abs(stereo)))
        if peak <= PEAK_LIMIT:
            return draw, stereo
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_REDRAW_STREAM, k, attempt)))
        (redraw,) = plan_clips(label_frames, 1, seed=seed, clip_frames=clip_frames, rng=rng, taken=taken)
        log.warning(
            "clip %d: %s peaks at %.5f > %s; redrawn (attempt %d) as %s",
            k,
            clip_stem(recordings[draw.recording].stem, draw.deg, draw.start),
            peak,
            PEAK_LIMIT,
            attempt,
            clip_stem(recordings[redraw.recording].stem, redraw.deg, redraw.start),
        )
        draw = redraw
    raise InputError(
        recordings[draw.recording].audio.parent,
        f"clip {k}: {MAX_REDRAWS} draws in a row peak above {PEAK_LIMIT}; are the recordings normalised to clip?",
    )


# --- windows --------------------------------------------------------------------------------------------------


def window_stem(stem: str, start: int) -> str:
    """The window name: ``<recording>_start{start:04d}`` with the start in 100-ms frames."""
    return f"{stem}_start{start:04d}"


def foa_windows(
    audio_dir: str | os.PathLike[str],
    metadata_dir: str | os.PathLike[str],
    audio_out: str | os.PathLike[str],
    metadata_out: str | os.PathLike[str],
    *,
    clip_frames: int = 50,
    sample_rate: int = SAMPLE_RATE,
    channels: int = 4,
    field_of_view_deg: float = 100.0,
    splits: Sequence[str] = (),
    exclude: Iterable[str] = (),
    label_format: str = "dcase2025",
) -> None:
    """Cut every STARSS23 recording (FOA or MIC, same code; ``channels`` checked) into consecutive windows of
    ``clip_frames`` label frames, named :func:`window_stem`, with labels in ``label_format`` (see
    :func:`window_labels`).

    Nothing is dropped: the last, partial window is zero-padded to full length and keeps its labels, so every
    sample and label row of a recording lands in exactly one window; a label frame past the end of that last
    window is an :class:`InputError` naming row and field. Labels keep the full (unfolded) azimuth in
    [-180, 180], since 4-channel formats resolve front from back, the distance in cm, the source id, and the
    onscreen flag of a ``field_of_view_deg`` camera looking at azimuth 0. The samples are copied unchanged
    (16-bit in, 16-bit out).
    Inputs are checked before anything is written; both output folders are replaced atomically, all or none.
    """
    fmt = get_label_format(label_format)
    hop = _label_hop(sample_rate)
    window = clip_frames * hop
    recordings = find_recordings(
        audio_dir,
        metadata_dir,
        sample_rate=sample_rate,
        channels=channels,
        splits=splits,
        exclude=exclude,
        clip_frames=clip_frames,
    )
    counts = [math.ceil(r.samples / window) for r in recordings]
    with (
        atomic_dir(audio_out) as audio_tmp,
        atomic_dir(metadata_out) as meta_tmp,
        tqdm(total=sum(counts), desc="STARSS23 windows", unit="clip") as progress,
    ):
        for recording, count in zip(recordings, counts, strict=True):
            for index in range(count):
                start = index * clip_frames
                stem = window_stem(recording.stem, start)
                audio = read_segment(recording, start * hop, window, pad=True)
                rows = window_rows(recording.rows, start, clip_frames)
                write_audio(audio_tmp / f"{stem}.wav", audio, sample_rate)
                fmt.write(meta_tmp / f"{stem}.csv", window_labels(rows, fmt, field_of_view_deg))
                progress.update()


def window_labels(rows: np.ndarray, label_format: LabelFormat, field_of_view_deg: float) -> np.ndarray:
    """A window's STARSS rows in ``label_format``: DCASE2025 CSV rows (unfolded azimuth, on-screen flag), or the
    3-D event table of the DCASE2021-2024 formats (azimuth and elevation in degrees, distance cm -> m)."""
    if label_format.name == STEREO_FORMAT:
        return dcase_rows(rows, deg=0, fold=False, field_of_view_deg=field_of_view_deg)
    events = event_table(
        rows[:, S_FRAME],
        rows[:, S_CLASS],
        rows[:, S_SOURCE],
        rows[:, S_AZIMUTH],
        rows[:, S_ELEVATION],
        rows[:, S_DISTANCE] / 100.0,
    )
    return label_format.from_events(events)


def _label_hop(sample_rate: int) -> int:
    """Samples per 100-ms label frame; the rate must give a whole number."""
    hop = sample_rate * LABEL_HOP_SECONDS
    if sample_rate <= 0 or abs(hop - round(hop)) > 1e-9:
        raise ValueError(f"sample_rate {sample_rate} does not give whole samples per {LABEL_HOP_SECONDS} s frame")
    return round(hop)
