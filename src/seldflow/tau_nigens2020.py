"""TAU-NIGENS Spatial Sound Events 2020 (DCASE2020 Task 3, Zenodo 3870859): the development folders by fold, and
DOAnet's 2-source overlap augmentation of them.

The development set unpacks (``resources/datasets.tsv`` row ``tau_nigens2020``) into three flat folders:

* ``foa_dev/`` and ``mic_dev/``: the same 600 scenes in first-order Ambisonics and from the tetrahedral microphone
  array, 60-s, 4-channel, 24 kHz WAVs named ``fold{n}_room{r}_mix{k}_ov{o}.wav`` (n the fold 1–6, r the room, k the
  mixture number, o the most overlapping sources, 1 or 2);
* ``metadata_dev/``: one headerless ``frame,class,track,azimuth,elevation`` CSV per scene, same stem: 100-ms frames,
  14 NIGENS classes, degrees with azimuth positive to the left.

DOAnet (``sharathadavanne/doa-net``, ``doanet_parameters.py``) trains on folds 3–6, validates on fold 2 and tests on
fold 1 (:data:`SPLITS`); the fold is the number after ``fold``, as its data generator reads it.

:func:`overlap_augment` is ``augment_files.py`` of the same repository as a library function: within each training
fold and room, pairs of single-source (``ov1``) recordings are mixed, ``itertools.combinations`` of the room's
files in order, the first ``multiplier`` × (files in the room) pairs (all pairs if there are fewer). Audio is
``sox --combine mix``: each input scaled by 1/2 (sox's default for two inputs), summed sample by sample, as long as
the longer input (the shorter padded with silence), written in the first input's sample format. Metadata is the
first file's text followed by the second's, so every reader that groups rows by frame (the official label builder,
:mod:`seldflow.metrics.doa_mot`) sees the first file's source in slot 0 and the second's in slot 1, frame-aligned,
track and class columns unchanged. The output stem is the first file's with its mixture part replaced by
``aug<last 3 digits of the first mix><last 3 digits of the second>``, e.g. ``fold3_room1_aug001002_ov1``, exactly
as the official script names it (the name keeps ``ov1``; :attr:`Recording.augmented` tells such files apart).

Differences from the script, on purpose: files are taken in sorted name order instead of ``os.listdir``'s arbitrary
order (or, with ``seed``, in a seeded shuffle per room, which reproduces a different arbitrary order
deterministically); outputs go to new folders instead of next to the inputs; every input is checked (names,
pairing, audio headers, metadata rows, one source per frame in an ``ov1`` file) before anything is written; sox's
automatic dither when writing 16-bit output is not reproduced.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from seldflow.errors import InputError
from seldflow.formats.dcase2021 import read_events
from seldflow.formats.events import EV_FRAME
from seldflow.io import atomic_dir, read_audio, wav_samples, write_audio

ZENODO_RECORD = "3870859"
SAMPLE_RATE = 24000
CHANNELS = 4  # FOA (W, Y, Z, X ... as the dataset writes it) and MIC (4 capsules) alike
N_CLASSES = 14
RECORDING_SECONDS = 60
LABEL_HOP_SECONDS = 0.1
FORMATS: tuple[str, ...] = ("foa", "mic")
METADATA_FOLDER = "metadata_dev"
SPLITS: dict[str, tuple[int, ...]] = {"train": (3, 4, 5, 6), "validation": (2,), "test": (1,)}
# augment_files.py: the training folds, and pairs per single-source recording of a room.
AUGMENT_FOLDS: tuple[int, ...] = SPLITS["train"]
AUGMENT_MULTIPLIER = 4
# sox --combine mix scales each of n inputs by 1/n.
_MIX_INPUTS = 2
_NAME = re.compile(r"fold(?P<fold>\d+)_room(?P<room>\d+)_(?P<mix>(?:mix|aug)\d+)_ov(?P<overlap>\d+)")
_NAME_PATTERN = "fold<n>_room<r>_mix<k>_ov<o>"
_MIX_DIGITS = 3


@dataclass(frozen=True)
class Recording:
    """One scene: its stem's parts, its audio file and its metadata file."""

    stem: str
    fold: int
    room: int
    mix: str  # "mix001", or "aug001002" for an overlap-augmented scene
    overlap: int
    audio: Path
    metadata: Path

    @property
    def augmented(self) -> bool:
        return self.mix.startswith("aug")


def split_folds(split: str) -> tuple[int, ...]:
    """The folds of a DOAnet split: train 3–6, validation 2, test 1."""
    try:
        return SPLITS[split]
    except KeyError:
        raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})") from None


def audio_folder(root: str | os.PathLike[str], fmt: str) -> Path:
    """``<root>/<fmt>_dev``: the development audio of one format (``foa`` or ``mic``; a rule's ``{fmt}`` pattern)."""
    return Path(root) / f"{fmt}_dev"


def metadata_folder(root: str | os.PathLike[str]) -> Path:
    """``<root>/metadata_dev``: the development labels, shared by both formats."""
    return Path(root) / METADATA_FOLDER


def dev_folders(root: str | os.PathLike[str], fmt: str = "foa") -> tuple[Path, Path]:
    """``(<root>/<fmt>_dev, <root>/metadata_dev)``; a missing folder is an :class:`InputError` saying what to fetch."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    folders = (audio_folder(root, fmt), metadata_folder(root))
    for folder in folders:
        if not folder.is_dir():
            raise InputError(
                folder,
                f"folder not found: unpack the TAU-NIGENS Spatial Sound Events 2020 development set (Zenodo "
                f"{ZENODO_RECORD}, dataset tau_nigens2020) into {root}",
            )
    return folders


def parse_stem(stem: str, path: str | os.PathLike[str]) -> tuple[int, int, str, int]:
    """``(fold, room, mix, overlap)`` of a scene name; any other name is an :class:`InputError` on ``path``."""
    match = _NAME.fullmatch(stem)
    if match is None:
        raise InputError(path, f"name {stem!r} does not follow {_NAME_PATTERN} (TAU-NIGENS 2020 naming)")
    return int(match["fold"]), int(match["room"]), match["mix"], int(match["overlap"])


def find_recordings(
    audio_dir: str | os.PathLike[str],
    metadata_dir: str | os.PathLike[str],
    *,
    folds: Iterable[int] | None = None,
    check_audio: bool = True,
) -> list[Recording]:
    """Every scene of ``folds`` (all folds if ``None``) with its metadata, sorted by stem.

    Audio and metadata are paired by stem within the selected folds: a WAV without its CSV, a CSV without its WAV,
    a name off the pattern or (with ``check_audio``) a WAV that is not 24 kHz 4-channel or is truncated raises
    :class:`InputError` naming the file. A selection without any scene is an error too.
    """
    audio_dir, metadata_dir = Path(audio_dir), Path(metadata_dir)
    wanted = None if folds is None else set(folds)
    wavs = _scenes(audio_dir, ".wav", wanted)
    csvs = _scenes(metadata_dir, ".csv", wanted)
    lonely_wavs, lonely_csvs = sorted(set(wavs) - set(csvs)), sorted(set(csvs) - set(wavs))
    if lonely_wavs:
        stem = lonely_wavs[0]
        raise InputError(wavs[stem][0], f"recording has no metadata file {metadata_dir / (stem + '.csv')}")
    if lonely_csvs:
        stem = lonely_csvs[0]
        raise InputError(csvs[stem][0], f"metadata file has no recording {audio_dir / (stem + '.wav')}")
    if not wavs:
        chosen = "any fold" if wanted is None else f"fold(s) {', '.join(map(str, sorted(wanted)))}"
        raise InputError(audio_dir, f"no recordings of {chosen}")
    recordings = []
    for stem in sorted(wavs):
        audio, (fold, room, mix, overlap) = wavs[stem]
        if check_audio:
            wav_samples(audio, sample_rate=SAMPLE_RATE, channels=CHANNELS)
        recordings.append(Recording(stem, fold, room, mix, overlap, audio, csvs[stem][0]))
    return recordings


def _scenes(folder: Path, suffix: str, folds: set[int] | None) -> dict[str, tuple[Path, tuple[int, int, str, int]]]:
    """Stem -> (file, parsed name) of the folder's files with ``suffix`` in the selected folds."""
    if not folder.is_dir():
        raise InputError(folder, "folder not found")
    scenes = {}
    for path in sorted(folder.iterdir()):
        if path.suffix != suffix or path.name.startswith(".") or not path.is_file():
            continue
        parts = parse_stem(path.stem, path)
        if folds is None or parts[0] in folds:
            scenes[path.stem] = (path, parts)
    return scenes


def dev_recordings(
    root: str | os.PathLike[str], fmt: str = "foa", *, split: str | None = None, check_audio: bool = True
) -> list[Recording]:
    """The development scenes of one format (``foa`` or ``mic``), of a DOAnet split or all of them."""
    audio_dir, metadata_dir = dev_folders(root, fmt)
    folds = None if split is None else split_folds(split)
    return find_recordings(audio_dir, metadata_dir, folds=folds, check_audio=check_audio)


def read_metadata(path: str | os.PathLike[str]) -> np.ndarray:
    """A scene's metadata as an event table (``seldflow.formats.events``), validated strictly: integer frame,
    class 0–13 and track, azimuth in [-180, 180], elevation in [-90, 90]; errors name file, row and field."""
    return read_events(path, n_classes=N_CLASSES, reference=True)


# --------------------------------------------------------------------------------------------------------------
# Overlap augmentation (augment_files.py)
# --------------------------------------------------------------------------------------------------------------


def plan_overlap_pairs(
    recordings: Sequence[Recording],
    *,
    folds: Iterable[int] = AUGMENT_FOLDS,
    multiplier: int = AUGMENT_MULTIPLIER,
    seed: int | None = None,
) -> list[tuple[Recording, Recording]]:
    """The (first, second) pairs to mix: per (fold, room) of ``folds``, its single-source, non-augmented scenes in
    stem order (``seed``: a shuffle seeded by (seed, fold, room)), their ``itertools.combinations`` in that order,
    the first ``multiplier`` × (number of scenes) of them."""
    if multiplier < 1:
        raise ValueError(f"multiplier must be at least 1, got {multiplier}")
    wanted = set(folds)
    rooms: dict[tuple[int, int], list[Recording]] = {}
    for recording in sorted(recordings, key=lambda r: r.stem):
        if recording.fold in wanted and recording.overlap == 1 and not recording.augmented:
            rooms.setdefault((recording.fold, recording.room), []).append(recording)
    pairs: list[tuple[Recording, Recording]] = []
    for (fold, room), scenes in sorted(rooms.items()):
        if seed is not None:
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(fold, room)))
            scenes = [scenes[i] for i in rng.permutation(len(scenes))]
        pairs.extend(itertools.islice(itertools.combinations(scenes, 2), multiplier * len(scenes)))
    return pairs


def overlap_stem(first: Recording, second: Recording) -> str:
    """The official name of a mixed pair: the first stem with its mixture part ``aug<first 3><second 3>``."""
    mix = f"aug{first.mix[-_MIX_DIGITS:]}{second.mix[-_MIX_DIGITS:]}"
    return f"fold{first.fold}_room{first.room}_{mix}_ov{first.overlap}"


def overlap_augment(
    audio_dir: str | os.PathLike[str],
    metadata_dir: str | os.PathLike[str],
    audio_out: str | os.PathLike[str],
    metadata_out: str | os.PathLike[str],
    *,
    folds: Iterable[int] = AUGMENT_FOLDS,
    multiplier: int = AUGMENT_MULTIPLIER,
    seed: int | None = None,
) -> list[str]:
    """Mix single-source pairs into 2-source scenes (see the module docstring) and return their stems.

    ``audio_out`` and ``metadata_out`` receive only the new scenes (train on them beside the originals) and are
    replaced atomically, both or neither. Inputs are read from the flat ``audio_dir`` / ``metadata_dir`` (FOA or
    MIC alike); every scene taking part is checked first, so a bad file writes nothing.
    """
    folds = tuple(folds)
    recordings = find_recordings(audio_dir, metadata_dir, folds=folds)
    pairs = plan_overlap_pairs(recordings, folds=folds, multiplier=multiplier, seed=seed)
    stems = [overlap_stem(first, second) for first, second in pairs]
    repeated = sorted(stem for stem, count in Counter(stems).items() if count > 1)
    if repeated:
        raise InputError(audio_dir, f"mixture numbers sharing their last 3 digits name two mixes {repeated[0]}")
    for recording in {r.stem: r for pair in pairs for r in pair}.values():
        _check_single_source(recording.metadata)
    with atomic_dir(audio_out) as audio_tmp, atomic_dir(metadata_out) as metadata_tmp:
        for stem, (first, second) in zip(stems, pairs, strict=True):
            audio, subtype = mix_pair(first.audio, second.audio)
            write_audio(audio_tmp / f"{stem}.wav", audio, SAMPLE_RATE, subtype=subtype)
            (metadata_tmp / f"{stem}.csv").write_text(_concatenated(first.metadata, second.metadata))
    return stems


def _check_single_source(path: Path) -> None:
    """An ``ov1`` scene's metadata must be valid and hold one source per frame, or its mix would hold three."""
    frames = read_metadata(path)[:, EV_FRAME]
    values, counts = np.unique(frames, return_counts=True)
    if (counts > 1).any():
        frame = int(values[counts > 1][0])
        raise InputError(path, f"single-source (ov1) scene has {counts.max()} sources in frame {frame}")


def mix_pair(first: Path, second: Path) -> tuple[np.ndarray, str]:
    """``sox --combine mix`` of two WAVs: ``(channels, samples)`` float audio and the first file's sample format."""
    a = read_audio(first, sample_rate=SAMPLE_RATE, channels=CHANNELS).astype(np.float64)
    b = read_audio(second, sample_rate=SAMPLE_RATE, channels=CHANNELS).astype(np.float64)
    mixed = np.zeros((CHANNELS, max(a.shape[1], b.shape[1])))
    mixed[:, : a.shape[1]] += a / _MIX_INPUTS
    mixed[:, : b.shape[1]] += b / _MIX_INPUTS
    return mixed, sf.info(str(first)).subtype


def _concatenated(first: Path, second: Path) -> str:
    """The first file's text, then the second's (a missing final newline of the first is added)."""
    head = first.read_text(encoding="utf-8-sig")
    if head and not head.endswith("\n"):
        head += "\n"
    return head + second.read_text(encoding="utf-8-sig")
