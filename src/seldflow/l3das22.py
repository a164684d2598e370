"""L3DAS22 Task 2 (3-D SELD) adapter: the challenge's folder tree as DCASE2021-style FOA clips with labels.

The dataset is published on Kaggle (``l3dasteam/l3das22``), not on Zenodo, so the user downloads and unpacks it.
Its Task 2 part is three folders, ``L3DAS22_Task2_train``, ``_dev`` and ``_test`` (the Kaggle archives add one
more level: ``L3DAS22_Task2_train/L3DAS22_Task2_train/data``), each holding

* ``data/split{N}_ov{K}_{i}_{A|B}.wav``: a 30-s, 32 kHz, 4-channel first-order Ambisonics recording of microphone
  A or B (B sits 20 cm from A); N is the dataset split (0-3 train, 4 dev, 5 test), K the most sources that overlap
  (1-3), i a counter;
* ``labels/label_split{N}_ov{K}_{i}.csv``: one row per sound event under a header naming at least ``Start`` and
  ``End`` (seconds), ``Class`` (one of :data:`CLASSES`) and ``X``, ``Y``, ``Z`` (metres: the source position
  relative to microphone A).

Where the facts come from: the official API ``l3das/L3DAS22`` (``preprocessing.py``: 32 kHz, 30-s files, the 14
class names and their indices, the ``data/``/``labels/`` pairing by name, 100-ms label frames), the challenge
sites (l3das.com: up to 3 overlapping events; positions in metres with microphone A at the origin) and PSELDNets
(``Jinbo-Hu/PSELDNets``: ``src/preproc/preprocess.py`` turns an event into the frames ``round(Start / 0.1)`` up
to, not including, ``round(End / 0.1)``, with azimuth ``atan2(Y, X)`` and elevation ``atan2(Z, hypot(X, Y))``,
i.e. X front, Y left, Z up, which is DCASE's convention; ``configs/data/l3das22``: splits 0-4 train, split 5 test,
and the FOA files fed as they are to its ACN logmelIV features). The recordings are therefore read as AmbiX (ACN
W, Y, Z, X; SN3D), the order the L3DAS23 documentation states for its files; ``channel_order`` names another
order, and the clips are reordered to ACN.

:func:`convert_split` checks everything first (names, pairing, audio headers, every label row) and raises one
:class:`InputError` listing every problem, then writes ``<stem>_start{frame:04d}.wav`` clips (ACN, the dataset's
rate) and their headerless ``frame,class,track,azimuth,elevation`` labels, both folders replaced atomically.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from seldflow.errors import InputError
from seldflow.formats.dcase2021 import write_events
from seldflow.formats.events import EV_CLASS, EV_FRAME, EV_TRACK, event_table, no_events
from seldflow.io import atomic_dir, read_audio, wav_samples, write_audio
from seldflow.labels import LABEL_HOP_SECONDS, read_csv_records
from seldflow.starss import window_stem

# Class index = position here: the official preprocessing numbers the classes alphabetically.
CLASSES: tuple[str, ...] = (
    "Chink_and_clink",
    "Computer_keyboard",
    "Cupboard_open_or_close",
    "Drawer_open_or_close",
    "Female_speech_and_woman_speaking",
    "Finger_snapping",
    "Keys_jangling",
    "Knock",
    "Laughter",
    "Male_speech_and_man_speaking",
    "Printer",
    "Scissors",
    "Telephone",
    "Writing",
)
CLASS_INDEX: dict[str, int] = {name: index for index, name in enumerate(CLASSES)}
SAMPLE_RATE = 32000
RECORDING_SECONDS = 30.0
MICS: tuple[str, ...] = ("A", "B")
FOA_CHANNELS = 4
# Channel order the workflow's FOA features read (ACN), and the default order of the files (AmbiX).
ACN_CHANNELS: tuple[str, ...] = ("W", "Y", "Z", "X")
LABEL_COLUMNS: tuple[str, ...] = ("Start", "End", "Class", "X", "Y", "Z")
_NUMBER_COLUMNS: tuple[str, ...] = ("Start", "End", "X", "Y", "Z")
_AUDIO_NAME = re.compile(r"split(?P<split>\d+)_ov(?P<ov>\d+)_(?P<index>\d+)_(?P<mic>[AB])\.wav")
_LABEL_NAME = re.compile(r"label_split(?P<split>\d+)_ov(?P<ov>\d+)_(?P<index>\d+)\.csv")
_AUDIO_PATTERN = "split<N>_ov<K>_<i>_<A|B>.wav"
_LABEL_PATTERN = "label_split<N>_ov<K>_<i>.csv"


@dataclass(frozen=True)
class Recording:
    """One recording of the chosen microphone and its label file; ``stem`` is ``split{N}_ov{K}_{i}``."""

    stem: str
    split: int
    audio: Path
    labels: Path


class Event(NamedTuple):
    """One label row: class index, times in seconds, direction in DCASE degrees, and its row order as track id."""

    track: int
    cls: int
    start: float
    end: float
    azimuth: float
    elevation: float


@dataclass(frozen=True)
class CheckedRecording:
    """A recording whose audio header and every label row passed the checks."""

    recording: Recording
    samples: int
    events: list[Event]


# --- names and folders ----------------------------------------------------------------------------------------


def find_sections(root: str | os.PathLike[str]) -> list[Path]:
    """The Task 2 folders under ``root``: those whose ``data/`` (beside a ``labels/``) holds a Task 2 recording.

    Searched at any depth, so ``root`` may hold the folders as unpacked (one level) or as Kaggle nests them (two);
    Task 1 folders, which also have ``data/`` and ``labels/``, are recognised by their file names and skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "L3DAS22 root folder not found")
    sections = [
        data.parent
        for data in sorted(root.glob("**/data"))
        if data.is_dir() and (data.parent / "labels").is_dir() and _holds_task2_audio(data)
    ]
    if not sections:
        raise InputError(root, f"no L3DAS22 Task 2 folder (data/{_AUDIO_PATTERN} beside labels/) below it")
    return sections


def _holds_task2_audio(data: Path) -> bool:
    return any(_AUDIO_NAME.fullmatch(path.name) for path in data.iterdir())


def recording_stem(match: re.Match[str]) -> str:
    """``split{N}_ov{K}_{i}``: the name a recording's two microphone files and its label file share."""
    return f"split{match['split']}_ov{match['ov']}_{match['index']}"


def scan_section(section: Path, mic: str, problems: list[InputError]) -> dict[str, Recording]:
    """Stem -> recording of microphone ``mic`` in one Task 2 folder; misnamed and unpaired files go to ``problems``.

    A recording without its label file, and a label file without the ``mic`` recording, are problems; the other
    microphone's files are only name-checked.
    """
    audio: dict[str, tuple[int, Path]] = {}
    for path in _visible_files(section / "data"):
        match = _AUDIO_NAME.fullmatch(path.name)
        if match is None:
            problems.append(InputError(path, f"not an L3DAS22 Task 2 recording name ({_AUDIO_PATTERN})"))
        elif match["mic"] == mic:
            audio[recording_stem(match)] = (int(match["split"]), path)
    labels: dict[str, Path] = {}
    for path in _visible_files(section / "labels"):
        match = _LABEL_NAME.fullmatch(path.name)
        if match is None:
            problems.append(InputError(path, f"not an L3DAS22 Task 2 label file name ({_LABEL_PATTERN})"))
        else:
            labels[recording_stem(match)] = path
    for stem in sorted(audio.keys() - labels.keys()):
        problems.append(InputError(audio[stem][1], f"recording has no label file labels/label_{stem}.csv"))
    for stem in sorted(labels.keys() - audio.keys()):
        problems.append(
            InputError(labels[stem], f"label file has no recording of microphone {mic}: data/{stem}_{mic}.wav")
        )
    return {
        stem: Recording(stem, audio[stem][0], audio[stem][1], labels[stem]) for stem in audio.keys() & labels.keys()
    }


def _visible_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if not path.name.startswith("."))


def find_recordings(
    root: str | os.PathLike[str], dataset_splits: Iterable[int], mic: str, problems: list[InputError]
) -> list[Recording]:
    """Recordings of ``mic`` in the given dataset splits, sorted by stem, from every Task 2 folder under ``root``.

    Name and pairing problems of every folder, a recording found in two folders and a requested split without
    recordings are added to ``problems``.
    """
    if mic not in MICS:
        raise ValueError(f"microphone {mic!r} is not one of {', '.join(MICS)}")
    wanted = set(dataset_splits)
    found: dict[str, Recording] = {}
    for section in find_sections(root):
        for stem, recording in scan_section(section, mic, problems).items():
            if stem in found:
                problems.append(InputError(recording.audio, f"recording {stem} also exists as {found[stem].audio}"))
            found.setdefault(stem, recording)
    for split in sorted(wanted - {recording.split for recording in found.values()}):
        problems.append(InputError(root, f"dataset split {split} has no recordings of microphone {mic}"))
    return [found[stem] for stem in sorted(found) if found[stem].split in wanted]


# --- labels ---------------------------------------------------------------------------------------------------


def read_l3das_labels(
    path: str | os.PathLike[str],
    *,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    max_seconds: float | None = None,
) -> tuple[list[Event], list[InputError]]:
    """The events of an L3DAS22 label CSV and every problem found in it, each naming the row and the column.

    Columns are found by their header names (``Start``, ``End``, ``Class``, ``X``, ``Y``, ``Z``; others such as
    ``File`` are ignored), so the column order does not matter. The direction of each event is that of its
    position seen from ``origin`` (the microphone's position in the labels' frame, metres), in DCASE degrees. A
    row's problems are all reported: an unknown class, a value that is not a finite number, a negative start, an
    end before the start, a start at or after ``max_seconds`` (the recording, padded to whole clips), a source at
    the microphone itself (no direction). The track id of an event is its data row's order in the file, from 0.
    """
    path = Path(path)
    records = read_csv_records(path)
    if not records:
        return [], []
    header_line, header = records[0]
    columns = {name.strip(): index for index, name in enumerate(header)}
    missing = [name for name in LABEL_COLUMNS if name not in columns]
    if missing:
        message = f"header lacks the column(s) {', '.join(missing)}; expected {', '.join(LABEL_COLUMNS)}"
        return [], [InputError(path, message, row=header_line)]
    events: list[Event] = []
    problems: list[InputError] = []
    for track, (line, record) in enumerate(records[1:]):
        event, row_problems = _parse_event(path, line, record, columns, len(header), track, origin, max_seconds)
        problems += row_problems
        if event is not None:
            events.append(event)
    return events, problems


def _parse_event(
    path: Path,
    line: int,
    record: list[str],
    columns: Mapping[str, int],
    n_columns: int,
    track: int,
    origin: Sequence[float],
    max_seconds: float | None,
) -> tuple[Event | None, list[InputError]]:
    if len(record) != n_columns:
        return None, [InputError(path, f"expected {n_columns} columns, found {len(record)}", row=line)]
    problems: list[InputError] = []
    name = record[columns["Class"]].strip()
    if name not in CLASS_INDEX:
        problems.append(
            InputError(path, f"unknown class {name!r}; one of {', '.join(CLASSES)}", row=line, field="Class")
        )
    numbers = _row_numbers(path, line, record, columns, problems)
    problems += _time_problems(path, line, numbers, max_seconds)
    position = [numbers.get(axis, math.nan) - offset for axis, offset in zip("XYZ", origin, strict=True)]
    if all(math.isfinite(value) for value in position) and not any(position):
        problems.append(InputError(path, "source at the microphone position: no direction", row=line, field="X"))
    if problems:
        return None, problems
    azimuth, elevation = direction_deg(*position)
    return Event(track, CLASS_INDEX[name], numbers["Start"], numbers["End"], azimuth, elevation), []


def _row_numbers(
    path: Path, line: int, record: list[str], columns: Mapping[str, int], problems: list[InputError]
) -> dict[str, float]:
    """The finite numbers of a row's numeric columns; the others are added to ``problems``."""
    numbers: dict[str, float] = {}
    for name in _NUMBER_COLUMNS:
        text = record[columns[name]].strip()
        try:
            value = float(text)
        except ValueError:
            problems.append(InputError(path, f"not a number: {text!r}", row=line, field=name))
            continue
        if not math.isfinite(value):
            problems.append(InputError(path, f"not a finite number: {text!r}", row=line, field=name))
            continue
        numbers[name] = value
    return numbers


def _time_problems(path: Path, line: int, numbers: Mapping[str, float], max_seconds: float | None) -> list[InputError]:
    problems = []
    start, end = numbers.get("Start"), numbers.get("End")
    if start is not None and start < 0:
        problems.append(InputError(path, f"negative start {start:g} s", row=line, field="Start"))
    if start is not None and max_seconds is not None and start >= max_seconds:
        message = f"starts at {start:g} s, after the recording's end ({max_seconds:g} s)"
        problems.append(InputError(path, message, row=line, field="Start"))
    if start is not None and end is not None and end < start:
        problems.append(InputError(path, f"ends at {end:g} s, before its start {start:g} s", row=line, field="End"))
    return problems


def direction_deg(x: float, y: float, z: float) -> tuple[float, float]:
    """DCASE azimuth (counter-clockwise from the front, positive to the left) and elevation (positive up) in degrees
    of a position in the L3DAS22 labels' frame (X front, Y left, Z up, as PSELDNets converts them)."""
    return math.degrees(math.atan2(y, x)), math.degrees(math.atan2(z, math.hypot(x, y)))


def event_frames(event: Event, n_frames: int) -> np.ndarray:
    """The 100-ms frames an event is active in: ``round(start / 0.1)`` up to, not including, ``round(end / 0.1)``.

    An event shorter than half a frame keeps the frame it starts in rather than vanishing; frames past
    ``n_frames`` (an end after the recording) are dropped.
    """
    first = round(event.start / LABEL_HOP_SECONDS)
    stop = max(round(event.end / LABEL_HOP_SECONDS), first + 1)
    return np.arange(first, min(stop, n_frames))


def recording_events(events: Sequence[Event], n_frames: int) -> np.ndarray:
    """The event table of a whole recording: one row per event and active frame, sorted by frame, class, track."""
    tables = []
    for event in events:
        frames = event_frames(event, n_frames)
        ones = np.ones(len(frames))
        tables.append(
            event_table(
                frames,
                ones * event.cls,
                ones * event.track,
                ones * event.azimuth,
                ones * event.elevation,
                ones * np.nan,
            )
        )
    table = np.concatenate(tables) if tables else no_events()
    return table[np.lexsort((table[:, EV_TRACK], table[:, EV_CLASS], table[:, EV_FRAME]))]


def window_events(table: np.ndarray, start: int, clip_frames: int) -> np.ndarray:
    """The rows of frames ``[start, start + clip_frames)``, renumbered from 0 at the window start."""
    inside = (table[:, EV_FRAME] >= start) & (table[:, EV_FRAME] < start + clip_frames)
    window = table[inside].copy()
    window[:, EV_FRAME] -= start
    return window


# --- checks ---------------------------------------------------------------------------------------------------


def clip_frames_of(sample_rate: int, clip_seconds: float) -> int:
    """Label frames per clip; the rate must give whole samples per frame and the clip whole frames."""
    hop = sample_rate * LABEL_HOP_SECONDS
    frames = clip_seconds / LABEL_HOP_SECONDS
    if sample_rate <= 0 or abs(hop - round(hop)) > 1e-9:
        raise ValueError(f"sample_rate {sample_rate} does not give whole samples per {LABEL_HOP_SECONDS} s frame")
    if clip_seconds <= 0 or abs(frames - round(frames)) > 1e-6:
        raise ValueError(f"clip_seconds {clip_seconds} is not a whole number of {LABEL_HOP_SECONDS} s frames")
    return round(frames)


def check_recordings(
    recordings: Sequence[Recording],
    problems: list[InputError],
    *,
    sample_rate: int,
    clip_frames: int,
    origin: Sequence[float],
) -> list[CheckedRecording]:
    """Audio header (4 channels, the rate, not truncated) and every label row of each recording.

    Problems are added to ``problems``; recordings without any are returned. Label starts are bounded by the
    recording padded to whole clips, the audio the clips will hold.
    """
    hop = round(sample_rate * LABEL_HOP_SECONDS)
    clip_samples = clip_frames * hop
    checked = []
    for recording in tqdm(recordings, desc="check L3DAS22", unit="recording"):
        samples = None
        try:
            samples = wav_samples(recording.audio, sample_rate=sample_rate, channels=FOA_CHANNELS)
        except InputError as exc:
            problems.append(exc)
        padded = None if samples is None else math.ceil(samples / clip_samples) * clip_samples / sample_rate
        try:
            events, label_problems = read_l3das_labels(recording.labels, origin=origin, max_seconds=padded)
        except InputError as exc:
            events, label_problems = [], [exc]
        problems += label_problems
        if samples is not None and not label_problems:
            checked.append(CheckedRecording(recording, samples, events))
    return checked


def acn_permutation(channel_order: Sequence[str]) -> list[int]:
    """Indices that take a file's channels (named by ``channel_order``) to ACN W, Y, Z, X."""
    order = [name.upper() for name in channel_order]
    if sorted(order) != sorted(ACN_CHANNELS):
        raise ValueError(f"channel_order {list(channel_order)} must name W, X, Y and Z once each")
    return [order.index(name) for name in ACN_CHANNELS]


# --- conversion -----------------------------------------------------------------------------------------------


def convert_split(
    root: str | os.PathLike[str],
    audio_out: str | os.PathLike[str],
    metadata_out: str | os.PathLike[str],
    *,
    dataset_splits: Iterable[int],
    mic: str = "A",
    channel_order: Sequence[str] = ACN_CHANNELS,
    mic_offset_m: Sequence[float] = (0.0, 0.0, 0.0),
    sample_rate: int = SAMPLE_RATE,
    clip_seconds: float = RECORDING_SECONDS,
) -> None:
    """Write the recordings of ``dataset_splits`` (numbers N of ``split{N}_...``) as one DCASE2021-style split.

    Each recording of microphone ``mic`` is cut into consecutive clips of ``clip_seconds``; the last is
    zero-padded, so every sample and label frame lands in exactly one clip (with 30-s clips, one clip per 30-s
    recording). Clips are named :func:`seldflow.starss.window_stem` (``<stem>_start{frame:04d}``), their channels
    put in ACN order (:func:`acn_permutation` of ``channel_order``, the file's own order) and written as 16-bit
    WAV at the dataset's rate; their labels go to ``<clip>.csv`` through
    :func:`seldflow.formats.dcase2021.write_events`: per event and 100-ms frame (:func:`event_frames`) the class
    index, the event's track id, azimuth and elevation in degrees seen from ``mic_offset_m`` (microphone B's
    position relative to A, since the labels are relative to A; zero for A).

    Every folder name, pairing, audio header and label row is checked before anything is written; all problems
    are raised together as one :class:`InputError`. Both output folders are replaced atomically, all or none.
    """
    clip_frames = clip_frames_of(sample_rate, clip_seconds)
    permutation = acn_permutation(channel_order)
    problems: list[InputError] = []
    recordings = find_recordings(root, dataset_splits, mic, problems)
    checked = check_recordings(
        recordings, problems, sample_rate=sample_rate, clip_frames=clip_frames, origin=tuple(mic_offset_m)
    )
    if problems:
        listing = "\n  ".join(str(problem) for problem in problems)
        raise InputError(root, f"{len(problems)} problem(s) in the L3DAS22 Task 2 tree:\n  {listing}")
    with atomic_dir(audio_out) as audio_tmp, atomic_dir(metadata_out) as meta_tmp:
        for item in tqdm(checked, desc="L3DAS22 clips", unit="recording"):
            write_clips(
                item, audio_tmp, meta_tmp, clip_frames=clip_frames, sample_rate=sample_rate, permutation=permutation
            )


def write_clips(
    item: CheckedRecording,
    audio_dir: Path,
    metadata_dir: Path,
    *,
    clip_frames: int,
    sample_rate: int,
    permutation: Sequence[int],
) -> None:
    """The clips of one checked recording and their label files."""
    hop = round(sample_rate * LABEL_HOP_SECONDS)
    clip_samples = clip_frames * hop
    n_clips = math.ceil(item.samples / clip_samples)
    audio = read_audio(item.recording.audio, sample_rate=sample_rate, channels=FOA_CHANNELS, frames=item.samples)
    padded = np.zeros((FOA_CHANNELS, n_clips * clip_samples), dtype=audio.dtype)
    padded[:, : item.samples] = audio[permutation]
    table = recording_events(item.events, n_clips * clip_frames)
    for index in range(n_clips):
        start = index * clip_frames
        stem = window_stem(item.recording.stem, start)
        write_audio(audio_dir / f"{stem}.wav", padded[:, start * hop : start * hop + clip_samples], sample_rate)
        write_events(metadata_dir / f"{stem}.csv", window_events(table, start, clip_frames))
