"""Features stage: a split's clips to model inputs, written as one HDF5 file per split or per shard of a split.

The kinds themselves (functions, channel counts, audio formats) are :mod:`seldflow.feature_kinds`; the file layout
is :mod:`seldflow.feature_files`. :func:`check_split` lists and checks a split's folders (names, pairing, audio
formats, label contents) before any feature work; :func:`extract_split` streams a folder of clips (or a shard of
them) and optionally their label files into that layout.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import soundfile as sf
from tqdm import tqdm

from seldflow.errors import InputError
from seldflow.feature_files import LR_SWAP_SUFFIX
from seldflow.feature_kinds import feature_channels, feature_frames, feature_kind, input_channels, mirror_audio
from seldflow.formats import get_label_format
from seldflow.io import atomic_file, read_audio
from seldflow.labels import CLIP_SAMPLES, LABEL_HOP_SECONDS, SAMPLE_RATE, read_csv_records
from seldflow.shards import content_digest, files_digest
from seldflow.tasks import Task, build_task

# --------------------------------------------------------------------------------------------------------------
# Split extraction


def extract_split(
    audio_dir: str | os.PathLike[str],
    out_h5: str | os.PathLike[str],
    *,
    metadata_dir: str | os.PathLike[str] | None,
    kind: str,
    lr_swap: bool,
    n_fft: int,
    win_length: int,
    hop_length: int,
    n_mels: int,
    sample_rate: int = SAMPLE_RATE,
    clip_samples: int = CLIP_SAMPLES,
    clips: Sequence[str] | None = None,
    task: Task | None = None,
) -> None:
    """Extract features (and label rows) of every ``*.wav`` in ``audio_dir`` into one HDF5 file.

    ``clips`` restricts the file to those stems (a shard of the split, in the given order); every one must exist.

    Clips must have the channel count of ``kind`` (:func:`input_channels`: stereo for ``pfoa`` and ``logmel``,
    4 channels for ``foa`` and ``mic``), the sample rate and ``clip_samples`` samples; any other clip is an
    :class:`InputError` naming the file.

    The layout is :mod:`seldflow.feature_files` (one uncompressed chunk per clip for fast random access; clips
    sorted by name; ``digest`` is :func:`seldflow.shards.content_digest` of the arrays, so an index over shards
    sees changes). ``task`` (default: stereo DCASE2025 SELD) reads the label files in its label format.

    ``label_rows`` exist only when ``metadata_dir`` is given; then every clip needs
    ``<stem>.csv`` there and every CSV needs its clip. With ``lr_swap`` each clip gets a twin
    ``<stem>_LRswap`` whose audio is :func:`mirror_audio` of the clip and whose azimuths are negated (the seed
    system's augmentation: mirroring the scene across the front axis; stereo exchanges L and R, FOA negates Y,
    MIC exchanges microphones 1/2 and 3/4). Clips are streamed, so memory stays at one clip whatever the split size;
    the file appears only when complete and carries no timestamps, so identical inputs give identical bytes.
    """
    task = task or build_task(None)
    function = feature_kind(kind).function
    audio_dir = Path(audio_dir)
    audio_paths = _list_audio(audio_dir) if clips is None else _shard_audio(audio_dir, clips)
    n_frames = label_frames(clip_samples, sample_rate)
    rows = None
    if metadata_dir is not None:
        rows = _read_split_labels(Path(metadata_dir), audio_paths, task, n_frames, whole=clips is None)
    names = _clip_names(audio_dir, audio_paths, lr_swap)
    params = {"n_fft": n_fft, "win_length": win_length, "hop_length": hop_length, "n_mels": n_mels}
    config = {**params, "kind": kind, "lr_swap": lr_swap, "sample_rate": sample_rate}
    config["clip_samples"] = clip_samples
    extract = functools.partial(function, sample_rate=sample_rate, **params)
    shape = (feature_channels(kind), feature_frames(clip_samples, hop_length), n_mels)

    # No chunk cache: every write is one whole clip's chunk, which a cache would only copy and hold.
    with atomic_file(out_h5) as tmp, h5py.File(tmp, "w", rdcc_nbytes=0) as h5:
        _write_header(h5, kind=kind, sample_rate=sample_rate, channels=shape[0], config=config, label_frames=n_frames)
        _write_clip_names(h5, names)
        features = _per_clip_dataset(h5, "features", len(names), shape)
        if rows is not None:
            h5.attrs["label_format"] = task.spec()["label_format"]
            table = _label_table([_versions_of(r, lr_swap, task) for r in rows], task)
            h5.create_dataset("label_rows", data=table, track_times=False)
        index = 0
        audio_channels = input_channels(kind)
        for path in tqdm(audio_paths, desc=f"features {audio_dir.name}", unit="clip"):
            clip_audio = read_audio(path, sample_rate=sample_rate, channels=audio_channels, frames=clip_samples)
            for audio in _audio_versions(clip_audio, lr_swap, kind):
                features[index] = extract(audio)
                index += 1
        h5.attrs["digest"] = content_digest(h5)


def label_frames(clip_samples: int, sample_rate: int) -> int:
    """Label frames (100 ms) of a clip: 50 for 5 s, 600 for the 60-s DCASE2021 recordings."""
    return round(clip_samples / sample_rate / LABEL_HOP_SECONDS)


def check_split(
    audio_dir: str | os.PathLike[str],
    metadata_dir: str | os.PathLike[str] | None,
    *,
    channels: int,
    sample_rate: int = SAMPLE_RATE,
    clip_samples: int = CLIP_SAMPLES,
    task: Task | None = None,
    azimuth_limit: float | None = None,
) -> list[str]:
    """Clip stems of a split, after checking the whole folder: file names, audio headers and label contents.

    Runs before any shard so a dataset with missing, extra or malformed files fails in seconds, naming every
    offending file, instead of after hours of feature extraction (or, worse, halfway through it): audio without
    labels, labels without audio, files that are neither, WAVs with the wrong channel count, rate or length, and
    every label file the feature jobs would refuse or misread are all reported in one error. Labels are read by
    ``task`` (default: stereo DCASE2025 SELD), exactly as the feature jobs read them, so each problem names the
    file, row and field; see :func:`_label_problems` for the checks beyond the reader's.
    ``azimuth_limit`` (:func:`label_azimuth_limit`) bounds label azimuths.
    """
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise InputError(audio_dir, "audio folder not found")
    audio = sorted(p.name for p in audio_dir.iterdir() if not p.name.startswith("."))
    stems = [name[: -len(".wav")] for name in audio if name.endswith(".wav")]
    problems = []
    extra = [name for name in audio if not name.endswith(".wav")]
    if extra:
        problems.append(f"{audio_dir}: files that are not *.wav clips: {_listed(extra)}")
    if not stems:
        problems.append(f"{audio_dir}: no *.wav files in the audio folder")
    if metadata_dir is not None:
        problems += _pairing_problems(Path(metadata_dir), set(stems))
    problems += _format_problems(audio_dir, stems, channels=channels, sample_rate=sample_rate, frames=clip_samples)
    if metadata_dir is not None:
        n_frames = label_frames(clip_samples, sample_rate)
        problems += _label_problems(Path(metadata_dir), stems, task or build_task(None), n_frames, azimuth_limit)
    if problems:
        raise InputError(audio_dir, f"{len(problems)} problem(s) in the split:\n  " + "\n  ".join(problems))
    return stems


def label_azimuth_limit(kind: str) -> float | None:
    """Largest label azimuth magnitude for clips of feature kind ``kind``: 90 degrees for stereo, else none.

    A stereo pair cannot tell front from back, so stereo labels are folded to the front half; an azimuth beyond
    90 degrees there is a label made for another format, which would train the model on directions it cannot hear.
    """
    return 90.0 if feature_kind(kind).audio_format == "stereo" else None


def clip_signatures(
    audio_dir: str | os.PathLike[str], metadata_dir: str | os.PathLike[str] | None, stems: Sequence[str]
) -> dict[str, str]:
    """Per clip, :func:`seldflow.shards.files_digest` of its audio file and (when labelled) its label file.

    The split check writes these into the manifest, so each feature shard reruns when one of its own files
    changes, even in place, and no other shard does; content digests keep the manifest byte-identical for the same
    data.
    """
    folders = [(Path(audio_dir), ".wav")] + ([(Path(metadata_dir), ".csv")] if metadata_dir is not None else [])
    return {stem: files_digest([folder / f"{stem}{suffix}" for folder, suffix in folders]) for stem in stems}


def _pairing_problems(metadata_dir: Path, stems: set[str]) -> list[str]:
    if not metadata_dir.is_dir():
        return [f"{metadata_dir}: metadata folder not found"]
    names = sorted(p.name for p in metadata_dir.iterdir() if not p.name.startswith("."))
    labelled = {name[: -len(".csv")] for name in names if name.endswith(".csv")}
    problems = []
    missing = sorted(f"{stem}.csv" for stem in stems - labelled)
    if missing:
        problems.append(f"{metadata_dir}: label files missing for clips: {_listed(missing)}")
    orphans = sorted(f"{stem}.csv" for stem in labelled - stems)
    if orphans:
        problems.append(f"{metadata_dir}: label files without a clip: {_listed(orphans)}")
    extra = [name for name in names if not name.endswith(".csv")]
    if extra:
        problems.append(f"{metadata_dir}: files that are not *.csv labels: {_listed(extra)}")
    return problems


def _format_problems(audio_dir: Path, stems: list[str], *, channels: int, sample_rate: int, frames: int) -> list[str]:
    problems = []
    for stem in tqdm(stems, desc=f"check {audio_dir.name}", unit="clip"):
        path = audio_dir / f"{stem}.wav"
        try:
            info = sf.info(str(path))
        except (RuntimeError, sf.LibsndfileError, OSError) as exc:
            problems.append(f"{path}: cannot read audio header ({exc})")
            continue
        found = (info.channels, info.samplerate, info.frames)
        if found != (channels, sample_rate, frames):
            problems.append(
                f"{path}: {info.channels} channels, {info.samplerate} Hz, {info.frames} samples;"
                f" expected {channels}, {sample_rate} Hz, {frames}"
            )
    return problems


# Columns that identify one event in a label frame, and those that place it, in every SELD label format.
_EVENT_KEY = ("frame", "class", "source", "track")
_POSITION = ("azimuth", "elevation", "distance")


def _label_problems(
    metadata_dir: Path, stems: Sequence[str], task: Task, n_frames: int, azimuth_limit: float | None
) -> list[str]:
    """One message per bad label file of the split, each naming the file, row and field.

    A file is read with the task's own reader (what a feature job would do, refusing the same things: unknown
    classes, non-numbers, missing columns, an empty DCASE2025 file, out-of-range values); the rows it returns are
    then checked for what no single row shows (:func:`_row_problems`). Files without a clip were already reported.
    """
    columns = get_label_format(task.spec()["label_format"]).columns
    problems = []
    for stem in tqdm(stems, desc=f"labels {metadata_dir.name}", unit="file"):
        path = metadata_dir / f"{stem}.csv"
        if not path.is_file():
            continue  # reported by the pairing check
        try:
            rows = task.read_labels(path, n_frames)
        except InputError as exc:
            problems.append(str(exc))
            continue
        problems += _row_problems(path, np.asarray(rows, dtype=np.float64), columns, azimuth_limit)
    return problems


def _row_problems(path: Path, rows: np.ndarray, columns: Sequence[str], azimuth_limit: float | None) -> list[str]:
    """Azimuths beyond ``azimuth_limit`` and events listed twice at different positions, first of each kind.

    A repeated (frame, class, source or track) with another position is two contradicting answers for one event:
    the targets would keep whichever comes first in the frame. Identical repeats are harmless and pass.
    """
    outside = _outside_azimuth(rows, columns, azimuth_limit)
    conflicts = _conflicting_repeats(rows, columns)
    if not len(outside) and not conflicts:
        return []
    lines = _row_lines(path, len(rows))
    problems = []
    if len(outside):
        index = int(outside[0])
        message = f"azimuth {rows[index, columns.index('azimuth')]:g} outside -{azimuth_limit:g}..{azimuth_limit:g}"
        message += " (stereo labels are folded to the front)" + _more_rows(len(outside))
        problems.append(str(InputError(path, message, row=lines[index], field="azimuth")))
    if conflicts:
        index, other, field = conflicts[0]
        event = ", ".join(f"{name} {rows[index, columns.index(name)]:g}" for name in columns if name in _EVENT_KEY)
        column = columns.index(field)
        message = f"{event} also on row {lines[other]} at another position"
        message += f" ({field} {rows[other, column]:g} there, {rows[index, column]:g} here)"
        problems.append(str(InputError(path, message + _more_rows(len(conflicts)), row=lines[index], field=field)))
    return problems


def _outside_azimuth(rows: np.ndarray, columns: Sequence[str], limit: float | None) -> np.ndarray:
    if limit is None or "azimuth" not in columns:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.abs(rows[:, columns.index("azimuth")]) > limit)


def _conflicting_repeats(rows: np.ndarray, columns: Sequence[str]) -> list[tuple[int, int, str]]:
    """(row, earlier row with the same event key, first differing position column) of every contradiction."""
    key = [i for i, name in enumerate(columns) if name in _EVENT_KEY]
    position = [i for i, name in enumerate(columns) if name in _POSITION]
    table = np.nan_to_num(rows[:, key + position], nan=np.inf)  # no distance (NaN) equals no distance
    distinct = np.unique(table, axis=0)
    if len(np.unique(distinct[:, : len(key)], axis=0)) == len(distinct):
        return []  # every event key has one position: the common case, decided without a Python loop
    first: dict[tuple[float, ...], int] = {}
    conflicts = []
    for index, row in enumerate(table):
        other = first.setdefault(tuple(row[: len(key)]), index)
        differing = np.flatnonzero(row[len(key) :] != table[other, len(key) :])
        if len(differing):
            conflicts.append((index, other, columns[position[differing[0]]]))
    return conflicts


def _row_lines(path: Path, n_rows: int) -> list[int]:
    """1-based file lines of a reader's ``n_rows`` rows.

    Every SELD label reader returns one row per non-blank record, in file order, after at most a header line, so
    the rows are the file's last ``n_rows`` records.
    """
    records = read_csv_records(path)
    return [line for line, _ in records[len(records) - n_rows :]]


def _more_rows(count: int) -> str:
    return f" (and {count - 1} more row(s) like it)" if count > 1 else ""


def _list_audio(audio_dir: Path) -> list[Path]:
    if not audio_dir.is_dir():
        raise InputError(audio_dir, "audio folder not found")
    paths = sorted(audio_dir.glob("*.wav"), key=lambda p: p.name)
    if not paths:
        raise InputError(audio_dir, "no *.wav files in the audio folder")
    return paths


def _shard_audio(audio_dir: Path, clips: Sequence[str]) -> list[Path]:
    if not audio_dir.is_dir():
        raise InputError(audio_dir, "audio folder not found")
    paths = [audio_dir / f"{stem}.wav" for stem in clips]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise InputError(audio_dir, f"clips of this shard not found: {_listed(missing)}")
    return paths


def _listed(names: Sequence[str], limit: int = 10) -> str:
    """Names for an error message: all of them up to ``limit``, then a count, so the user knows the extent."""
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _read_split_labels(
    metadata_dir: Path, audio_paths: list[Path], task: Task, n_frames: int, *, whole: bool = True
) -> list[np.ndarray]:
    """Label rows of every clip, in clip order; clips and CSVs must pair up exactly, nothing is dropped.

    A shard (``whole`` False) reads only its own CSVs: the pairing of the whole split was checked by
    :func:`check_split` before any shard ran.
    """
    if not metadata_dir.is_dir():
        raise InputError(metadata_dir, "metadata folder not found")
    stems = {path.stem for path in audio_paths}
    orphans = sorted(p.name for p in metadata_dir.glob("*.csv") if p.stem not in stems) if whole else []
    if orphans:
        raise InputError(metadata_dir, f"label files without a matching clip in the audio folder: {_listed(orphans)}")
    rows = []
    for path in audio_paths:
        csv_path = metadata_dir / f"{path.stem}.csv"
        if not csv_path.is_file():
            raise InputError(csv_path, f"label file for clip {path.name} not found")
        rows.append(task.read_labels(csv_path, n_frames))
    return rows


def _clip_names(audio_dir: Path, audio_paths: list[Path], lr_swap: bool) -> list[str]:
    """Output clip names; refuses a folder whose own names would collide with the LR-swap twins."""
    names = []
    for path in audio_paths:
        names.append(path.stem)
        if lr_swap:
            names.append(path.stem + LR_SWAP_SUFFIX)
    if len(set(names)) != len(names):
        raise InputError(audio_dir, f"clip names ending in {LR_SWAP_SUFFIX} collide with the LR-swap twins")
    return names


def _audio_versions(audio: np.ndarray, lr_swap: bool, kind: str) -> list[np.ndarray]:
    """The clip, then (with ``lr_swap``) its mirror image (:func:`mirror_audio`)."""
    return [audio, mirror_audio(audio, kind)] if lr_swap else [audio]


def _versions_of(rows: np.ndarray, lr_swap: bool, task: Task) -> list[np.ndarray]:
    """The clip's label rows, then (with ``lr_swap``) those of its mirror image, as the task mirrors them."""
    return [rows, task.mirror_labels(rows)] if lr_swap else [rows]


def _label_table(versions: list[list[np.ndarray]], task: Task) -> np.ndarray:
    """All label rows with the output clip index prepended, ``(M, 1 + columns)``, in output clip order."""
    tables = []
    index = 0
    for clip_versions in versions:
        for version in clip_versions:
            clip = np.full((len(version), 1), index, dtype=task.label_dtype)
            tables.append(np.concatenate([clip, np.asarray(version, dtype=task.label_dtype)], axis=1))
            index += 1
    return np.concatenate(tables).astype(task.label_dtype).reshape(-1, 1 + task.label_columns)


def _write_header(
    h5: h5py.File, *, kind: str, sample_rate: int, channels: int, config: dict, label_frames: int
) -> None:
    h5.attrs["kind"] = kind
    h5.attrs["sample_rate"] = sample_rate
    h5.attrs["label_frames"] = label_frames
    h5.attrs["channels"] = channels
    h5.attrs["config"] = json.dumps(config, sort_keys=True)


def _write_clip_names(h5: h5py.File, names: list[str]) -> None:
    data = np.array(names, dtype=object)
    h5.create_dataset("clips", data=data, dtype=h5py.string_dtype(), track_times=False)


def _per_clip_dataset(h5: h5py.File, name: str, n_clips: int, item_shape: tuple[int, ...]) -> h5py.Dataset:
    """float32 dataset with one chunk per clip; no timestamps, so reruns are byte-identical."""
    shape = (n_clips, *item_shape)
    return h5.create_dataset(name, shape=shape, dtype=np.float32, chunks=(1, *item_shape), track_times=False)
