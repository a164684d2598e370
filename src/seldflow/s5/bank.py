"""S5 source banks: per-class lists of mono clips, interferers, multichannel noise, and the rooms to spatialise in.

A bank is what the mixture generator draws from. It is read from a folder in the DCASE2025 Task 4 development-set
layout (the embedded procedural dataset writes the same layout, so one reader serves both)::

    <root>/sound_event/<split>/<Label>/*.wav     mono target clips, one folder per S5 class
    <root>/interference/<split>/<class>/*.wav    mono interferer clips, any class names
    <root>/noise/<split>/*.wav                   multichannel background noise (channel count = the rooms')
    <root>/room_ir/<split>/*.sofa                measured or simulated rooms (SingleRoomSRIR)

The official generator lists the files directly inside each class folder (no recursion) and reads the noise
files directly inside the split folder, so sub-folders are ignored here too. Clips must already be at the bank's
sample rate and mono (the cleaning step converts added data); a clip that is not is an input error naming it,
rather than being silently converted on every draw.

Added data (EARS speech, Semantic Hearing's FSD50K-style ``<class>/*.wav``) is scanned with
:func:`scan_single_class` or :func:`scan_class_folders`, cleaned by the S5 cleaning stage into a class-folder
tree, and joined to a split's targets or interferers with :func:`with_added` (or :meth:`S5Bank.with_targets`,
:meth:`S5Bank.with_interferers`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from seldflow.errors import InputError
from seldflow.s5.vocabulary import LABELS
from seldflow.synthesize.sofa import Room, read_sofa

SOUND_EVENT_DIR = "sound_event"
INTERFERENCE_DIR = "interference"
NOISE_DIR = "noise"
ROOM_DIR = "room_ir"
METADATA_DIR = "metadata"
AUDIO_SUFFIX = ".wav"
ROOM_SUFFIX = ".sofa"
# The roles of a bank's files: in soundscape metadata, and (targets, interferers) for added banks.
ROLE_TARGET = "target"
ROLE_INTERFERER = "interferer"
ROLE_NOISE = "noise"


@dataclass(frozen=True)
class ClipInfo:
    """Header facts of one bank file, read once when the bank is scanned (drawing needs the length)."""

    frames: int
    channels: int


@dataclass(frozen=True)
class S5Bank:
    """The clips a generator draws from.

    ``targets`` and ``interferers`` map a class name to its files; ``noise`` lists the background files. Paths
    are absolute; metadata stores them relative to ``root`` (see :meth:`relative`) so that a soundscape
    description stays valid when the whole data folder moves.
    """

    root: Path
    sample_rate: int
    targets: Mapping[str, tuple[Path, ...]]
    interferers: Mapping[str, tuple[Path, ...]]
    noise: tuple[Path, ...]
    info: Mapping[Path, ClipInfo] = field(repr=False)

    @property
    def target_labels(self) -> tuple[str, ...]:
        """Target classes present, in vocabulary order (classes outside the vocabulary last, sorted)."""
        return _vocabulary_order(self.targets)

    @property
    def interferer_labels(self) -> tuple[str, ...]:
        return tuple(sorted(self.interferers))

    def relative(self, path: Path) -> str:
        """``path`` as written in metadata: POSIX, relative to ``root`` (``..`` allowed for added folders)."""
        return Path(os.path.relpath(path, self.root)).as_posix()

    def resolve(self, name: str) -> Path:
        """The file a metadata entry names (inverse of :meth:`relative`)."""
        return Path(os.path.normpath(self.root / name))

    def clip_info(self, path: Path) -> ClipInfo:
        """Frames and channels of a bank file; files outside the bank (e.g. named by old metadata) are read now."""
        known = self.info.get(path)
        return known if known is not None else _check_clip(path, self.sample_rate, mono=None)

    def read(self, path: Path, start: int, frames: int) -> np.ndarray:
        """float64 ``[channels, frames]`` from sample ``start``; reading past the end is an input error."""
        total = self.clip_info(path).frames
        if start < 0 or frames < 0 or start + frames > total:
            raise InputError(path, f"samples {start}..{start + frames} requested, file holds {total}", field="audio")
        try:
            data, _ = sf.read(str(path), start=start, frames=frames, dtype="float64", always_2d=True)
        except (RuntimeError, sf.LibsndfileError, OSError) as exc:
            raise InputError(path, f"cannot read audio ({exc})", field="audio") from exc
        if data.shape[0] != frames or not np.all(np.isfinite(data)):
            raise InputError(path, "truncated audio or NaN/infinite samples", field="audio")
        return np.ascontiguousarray(data.T)

    def with_targets(self, extra: Mapping[str, Sequence[Path]]) -> S5Bank:
        """A bank with ``extra`` target files added to (or creating) their classes, each checked like the rest."""
        return self._joined("targets", extra)

    def with_interferers(self, extra: Mapping[str, Sequence[Path]]) -> S5Bank:
        """A bank with ``extra`` interferer files added to (or creating) their classes, checked like the rest."""
        return self._joined("interferers", extra)

    def _joined(self, role_field: str, extra: Mapping[str, Sequence[Path]]) -> S5Bank:
        clips = {label: list(files) for label, files in getattr(self, role_field).items()}
        info = dict(self.info)
        for label, files in extra.items():
            for path in files:
                path = Path(path).resolve()
                info[path] = _check_clip(path, self.sample_rate, mono=True)
                clips.setdefault(label, []).append(path)
        merged = {label: tuple(sorted(set(files))) for label, files in clips.items()}
        return dataclasses.replace(self, **{role_field: merged}, info=info)


# The roles an added bank can fill, and how a bank takes it on.
_JOINERS = {ROLE_TARGET: S5Bank.with_targets, ROLE_INTERFERER: S5Bank.with_interferers}
ADDED_ROLES = tuple(_JOINERS)


def with_added(bank: S5Bank, added: Mapping[str, Sequence[str | os.PathLike[str]]]) -> S5Bank:
    """``bank`` joined with cleaned added banks: ``added`` maps a role (:data:`ADDED_ROLES`) to folders holding
    ``<class>/**/*.wav`` (what the S5 cleaning stage writes), whose clips join that role's classes."""
    for role, folders in added.items():
        if role not in _JOINERS:
            raise ValueError(f"unknown added-bank role {role!r} (known: {', '.join(ADDED_ROLES)})")
        for folder in folders:
            bank = _JOINERS[role](bank, scan_class_folders(folder, recursive=True))
    return bank


def _vocabulary_order(classes: Mapping[str, object]) -> tuple[str, ...]:
    known = [label for label in LABELS if label in classes]
    return (*known, *sorted(label for label in classes if label not in LABELS))


def _check_clip(path: Path, sample_rate: int, *, mono: bool | None) -> ClipInfo:
    """Header check of one bank file: readable, at ``sample_rate``, not empty, mono (True) or multichannel (False)."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise InputError(path, f"cannot read audio ({exc})", field="audio") from exc
    if info.samplerate != sample_rate:
        raise InputError(
            path,
            f"sample rate is {info.samplerate} Hz, the bank is {sample_rate} Hz (run the S5 cleaning step to resample)",
            field="sample_rate",
        )
    if info.frames <= 0:
        raise InputError(path, "audio file holds no samples", field="audio")
    if mono is True and info.channels != 1:
        raise InputError(path, f"has {info.channels} channels, a source clip must be mono", field="channels")
    if mono is False and info.channels < 2:
        raise InputError(path, "has 1 channel, a noise file needs one channel per room channel", field="channels")
    return ClipInfo(frames=int(info.frames), channels=int(info.channels))


def _wav_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    pattern = f"**/*{AUDIO_SUFFIX}" if recursive else f"*{AUDIO_SUFFIX}"
    return sorted(p.resolve() for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_class_folders(
    folder: str | os.PathLike[str],
    *,
    class_map: Mapping[str, str] | None = None,
    recursive: bool = False,
) -> dict[str, tuple[Path, ...]]:
    """Files of a ``<class>/*.wav`` tree, keyed by class name.

    ``class_map`` renames folders to S5 labels (e.g. an FSD50K-style ``Alarm_clock`` to ``AlarmClock``); with a
    map, folders it does not name are skipped, so a larger collection can be pointed at as is. A class folder
    without ``.wav`` files is an error: an empty class would otherwise vanish from the bank unnoticed.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(root, "class folder tree not found")
    found: dict[str, list[Path]] = {}
    for sub in _class_folders(root):
        if class_map is not None and sub.name not in class_map:
            continue
        label = class_map[sub.name] if class_map is not None else sub.name
        files = _wav_files(sub, recursive=recursive)
        if not files:
            raise InputError(sub, f"class folder of '{label}' holds no {AUDIO_SUFFIX} files")
        found.setdefault(label, []).extend(files)
    if class_map is not None:
        missing = sorted(set(class_map) - {sub.name for sub in _class_folders(root)})
        if missing:
            raise InputError(root, f"class folders named in the class map are missing: {', '.join(missing)}")
    if not found:
        raise InputError(root, "no class folders found")
    return {label: tuple(files) for label, files in found.items()}


def scan_single_class(folder: str | os.PathLike[str], label: str) -> dict[str, tuple[Path, ...]]:
    """Every ``.wav`` under ``folder`` (recursively) as one class: the EARS layout (``p001/*.wav``, all speech)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(root, "folder not found")
    files = _wav_files(root, recursive=True)
    if not files:
        raise InputError(root, f"no {AUDIO_SUFFIX} files for class '{label}'")
    return {label: tuple(files)}


def read_dev_bank(
    root: str | os.PathLike[str],
    split: str,
    *,
    sample_rate: int,
    classes: Sequence[str] = LABELS,
) -> S5Bank:
    """The bank of one split of a Task 4 development-set folder (or of the embedded dataset).

    Every class in ``classes`` needs a non-empty ``sound_event/<split>/<Label>/`` folder; an unknown class folder
    is an error (a typo would otherwise drop a class). Interference classes are whatever folders exist.
    """
    base = Path(root).resolve()
    events_dir = base / SOUND_EVENT_DIR / split
    if not events_dir.is_dir():
        raise InputError(events_dir, f"target folder of split '{split}' not found")
    for sub in _class_folders(events_dir):
        if sub.name not in classes:
            raise InputError(sub, f"unknown target class folder '{sub.name}' (expected one of: {', '.join(classes)})")
    targets: dict[str, tuple[Path, ...]] = {}
    for label in classes:
        sub = events_dir / label
        files = _wav_files(sub) if sub.is_dir() else []
        if not files:
            raise InputError(sub, f"no {AUDIO_SUFFIX} files for target class '{label}' in split '{split}'")
        targets[label] = tuple(files)
    interferers = scan_class_folders(base / INTERFERENCE_DIR / split)
    noise_dir = base / NOISE_DIR / split
    noise = tuple(_wav_files(noise_dir)) if noise_dir.is_dir() else ()
    if not noise:
        raise InputError(noise_dir, f"no {AUDIO_SUFFIX} noise files in split '{split}'")
    info: dict[Path, ClipInfo] = {}
    for files in (*targets.values(), *interferers.values()):
        for path in files:
            info[path] = _check_clip(path, sample_rate, mono=True)
    for path in noise:
        info[path] = _check_clip(path, sample_rate, mono=False)
    return S5Bank(root=base, sample_rate=sample_rate, targets=targets, interferers=interferers, noise=noise, info=info)


def read_rooms(folder: str | os.PathLike[str], *, sample_rate: int) -> list[Room]:
    """Every ``*.sofa`` room of a folder (e.g. ``room_ir/<split>``), named by file name, at ``sample_rate``.

    The file name is the room's identity in soundscape metadata (as in the official metadata), so it is unique by
    construction. Rooms stored at another rate are resampled here, once, with a polyphase filter: the official
    loader resamples too, and doing it at load time keeps the generator's rate check strict.
    """
    base = Path(folder)
    paths = sorted(base.glob(f"*{ROOM_SUFFIX}")) if base.is_dir() else []
    if not paths:
        raise InputError(base, f"no {ROOM_SUFFIX} room files found")
    return [resample_room(dataclasses.replace(read_sofa(path), name=path.name), sample_rate) for path in paths]


def resample_room(room: Room, sample_rate: int) -> Room:
    """``room`` with its impulse responses at ``sample_rate`` (unchanged if already there)."""
    if room.sample_rate == sample_rate:
        return room
    common = int(np.gcd(room.sample_rate, sample_rate))
    irs = signal.resample_poly(room.irs.astype(np.float64), sample_rate // common, room.sample_rate // common, axis=-1)
    return dataclasses.replace(room, irs=irs.astype(np.float32), sample_rate=sample_rate)


def dev_test_paths(root: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(soundscape folder, oracle_target folder)`` of the development set's fixed test split."""
    base = Path(root) / "test"
    return base / "soundscape", base / "oracle_target"


def valid_metadata_path(root: str | os.PathLike[str], split: str = "valid") -> Path:
    """Index JSON of the fixed validation soundscapes (``metadata/<split>.json``)."""
    return Path(root) / METADATA_DIR / f"{split}.json"
