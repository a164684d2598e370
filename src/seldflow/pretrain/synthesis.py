"""Pretraining synthesis stage: PSELDNets-style mixtures, one random room each, in shards of the DataSynthSELD layout.

A *subset* (``train20000_ov1_1`` in the released data) is ``clips`` mixtures whose polyphony never exceeds its
``max_polyphony`` (ov1/ov2/ov3): each mixture has that many *tracks*, and a track plays events one after another
(a pause of ``gap_seconds`` before each, onsets on the 100-ms label grid), so no label frame holds more events than
tracks. Events come from an *event pool* (:func:`event_pool`): per-class quotas spread evenly over each class's
subclasses, as PSELDNets' generator spreads ``nb_events_per_classes``; a mixture draws its events uniformly from the
pool, so classes and subclasses occur in the quotas' proportions however the subset is sharded.

Every mixture draws its own shoebox room, array position, RT60 and static source positions
(:mod:`seldflow.pretrain.rooms`) and is written in three formats of the same scene: ``foa`` (ACN W, Y, Z, X; SN3D),
``mic`` (DCASE tetrahedral array) and ``sum`` (the dry superposition of the events, mono), one common gain bringing
the loudest to ``peak_level``; labels are headerless DCASE2021 CSVs ``frame,class,track,azimuth,elevation`` with
the track column naming the event's track. Audio is 16-bit FLAC, as released.

Clip k is drawn from its own seed (``SeedSequence(seed, spawn_key=(fold, k))``, as the DCASE synthesizer), so a
shard renders exactly the clips a single job would. A shard writes ``{foa,mic,sum,metadata}/`` and
``cls_indices.tsv`` (per class: events and their seconds); :func:`gather_subset` links the shards into the
released layout and sums the counts.
"""

from __future__ import annotations

import csv
import functools
import os
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from seldflow.errors import ConfigError, InputError
from seldflow.formats import dcase2021
from seldflow.formats.events import event_table, no_events
from seldflow.io import atomic_dir, write_audio
from seldflow.labels import LABEL_HOP_SECONDS
from seldflow.pretrain.bank import PROCEDURAL_CLASSES, Bank, read_bank
from seldflow.pretrain.rooms import (
    FORMAT_CHANNELS,
    RoomSettings,
    ShoeboxRoom,
    convolve,
    draw_room,
    draw_sources,
    room_responses,
)
from seldflow.shards import gather_files
from seldflow.synthesize.mixtures import clip_rng
from seldflow.synthesize.sources import read_source

# The released layout: one folder per format plus the labels, FLAC audio, DCASE2021 CSV labels.
AUDIO_FOLDERS = ("foa", "mic", "sum")
METADATA_FOLDER = "metadata"
AUDIO_SUFFIX = ".flac"
CLASS_TABLE = "cls_indices.tsv"
CLASS_TABLE_COLUMNS = ("id", "label", "num_clip", "total_duration")
# Released subset names, ``train20000_ov1_1``: split, clip count, maximum polyphony, part.
SUBSET_NAME = re.compile(r"^(?P<split>[A-Za-z]+)(?P<clips>\d+)_ov(?P<ov>\d+)(?:_(?P<part>\d+))?$")
_SOURCE_CACHE_SIZE = 256


@dataclass(frozen=True)
class SynthesisSettings:
    """How mixtures are made. Defaults: PSELDNets' 24 kHz and start delays below 3 s, and the released 1-min clips.

    ``level_db`` is the range of each event's RMS level before the common peak gain (relative levels matter only).
    """

    clip_seconds: float = 60.0
    sample_rate: int = 24000
    gap_seconds: tuple[float, float] = (0.0, 3.0)
    level_db: tuple[float, float] = (-20.0, 0.0)
    peak_level: float = 0.9
    rooms: RoomSettings = field(default_factory=RoomSettings)

    def __post_init__(self) -> None:
        frames = self.clip_seconds / LABEL_HOP_SECONDS
        if frames < 1 or abs(frames - round(frames)) > 1e-9:
            raise ValueError(f"clip_seconds must be a multiple of {LABEL_HOP_SECONDS} s, got {self.clip_seconds}")
        if abs(LABEL_HOP_SECONDS * self.sample_rate - self.hop) > 1e-9:
            raise ValueError(f"sample_rate {self.sample_rate} does not give whole samples per label frame")
        if not 0 <= self.gap_seconds[0] <= self.gap_seconds[1]:
            raise ValueError(f"gap_seconds must be (low, high) with 0 <= low <= high, got {self.gap_seconds}")
        if self.level_db[0] > self.level_db[1] or not 0 < self.peak_level <= 1:
            raise ValueError(
                f"need level_db low <= high and 0 < peak_level <= 1, got {self.level_db}, {self.peak_level}"
            )

    @property
    def hop(self) -> int:
        """Samples per 100-ms label frame."""
        return round(LABEL_HOP_SECONDS * self.sample_rate)

    @property
    def n_frames(self) -> int:
        return round(self.clip_seconds / LABEL_HOP_SECONDS)

    @classmethod
    def from_config(cls, section: Mapping) -> SynthesisSettings:
        """Settings from the ``pretraining`` config section (its ``mixtures`` and ``rooms`` keys)."""
        mixtures = section.get("mixtures", {})
        rooms = {key: _tuple(value) for key, value in section.get("rooms", {}).items()}
        return cls(
            clip_seconds=float(section["clip_seconds"]),
            sample_rate=int(section["sample_rate"]),
            rooms=RoomSettings(**rooms),
            **{key: _tuple(value) for key, value in mixtures.items()},
        )


def check_pretraining(section: Mapping, source: str = "config") -> None:
    """Refuse a ``pretraining`` section that would fail (or silently mislabel) a synthesis job, naming the key:
    settings out of range, a subset whose released-style name contradicts its clips or polyphony, a procedural
    bank without the split a subset draws from, quotas for classes the procedural bank does not have."""
    key = "pretraining"
    try:
        RoomSettings(**{name: _tuple(value) for name, value in section.get("rooms", {}).items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(source, f"{key}.rooms", str(exc)) from exc
    try:
        SynthesisSettings(clip_seconds=section["clip_seconds"], sample_rate=section["sample_rate"])
    except ValueError as exc:
        # The message starts with the field it is about: clip_seconds or sample_rate.
        raise ConfigError(source, f"{key}.{str(exc).split()[0]}", str(exc)) from exc
    try:
        SynthesisSettings.from_config(section)
    except (TypeError, ValueError) as exc:
        raise ConfigError(source, f"{key}.mixtures", str(exc)) from exc
    bank = section["bank"]
    if bank["min_seconds"] > bank["max_seconds"]:
        raise ConfigError(source, f"{key}.bank.min_seconds", "must not exceed bank.max_seconds")
    for name, subset in section["subsets"].items():
        where = f"{key}.subsets.{name}"
        match = SUBSET_NAME.match(name)
        if match and int(match["ov"]) != subset["max_polyphony"]:
            raise ConfigError(source, f"{where}.max_polyphony", f"the name says ov{match['ov']}")
        if match and int(match["clips"]) != subset["clips"]:
            raise ConfigError(source, f"{where}.clips", f"the name says {match['clips']} clips")
        if bank.get("path") is None and subset["source_split"] not in bank["clips_per_subclass"]:
            splits = ", ".join(bank["clips_per_subclass"])
            raise ConfigError(source, f"{where}.source_split", f"the procedural bank has splits {splits}")
    if bank.get("path") is None:
        known = set(list(PROCEDURAL_CLASSES)[: bank.get("classes")])
        unknown = sorted(set(section.get("class_quotas", {})) - known)
        if unknown:
            raise ConfigError(
                source, f"{key}.class_quotas", f"not classes of the procedural bank: {', '.join(unknown)}"
            )


def _tuple(value: object) -> object:
    """Config lists as tuples, nested (the settings are frozen and hashable)."""
    return tuple(_tuple(v) for v in value) if isinstance(value, list) else value


# --- the event pool --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolEntry:
    """One event of the pool: its class index, subclass name and audio file."""

    class_index: int
    subclass: str
    path: Path


def class_quotas(bank: Bank, events_per_class: int, overrides: Mapping[str, int] | None = None) -> list[int]:
    """Events of each class in the pool: ``events_per_class``, or the class's own count in ``overrides``.

    An override naming a class the bank does not have is an error (a misspelt class would silently be ignored).
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(bank.labels))
    if unknown:
        raise InputError(bank.root, f"quotas name classes the bank does not have: {', '.join(unknown)}")
    quotas = [int(overrides.get(label, events_per_class)) for label in bank.labels]
    if any(q < 0 for q in quotas) or sum(quotas) == 0:
        raise ValueError(f"quotas must be >= 0 and not all zero, got {quotas}")
    return quotas


def event_pool(bank: Bank, quotas: Sequence[int], seed: int) -> list[PoolEntry]:
    """The pool: each class's quota spread evenly over its subclasses (the first ``quota % S`` get one more), each
    subclass cycling through its files in a seeded random order; the pool itself in a seeded random order."""
    if len(quotas) != len(bank.classes):
        raise ValueError(f"need one quota per class ({len(bank.classes)}), got {len(quotas)}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(b"event_pool")]))
    pool = []
    for class_index, (sound_class, quota) in enumerate(zip(bank.classes, quotas, strict=True)):
        share, extra = divmod(int(quota), len(sound_class.subclasses))
        for number, (subclass, files) in enumerate(sound_class.subclasses.items()):
            count = share + (number < extra)
            order = rng.permutation(len(files))
            pool += [PoolEntry(class_index, subclass, files[order[i % len(files)]]) for i in range(count)]
    return [pool[i] for i in rng.permutation(len(pool))]


# --- one mixture -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacedEvent:
    """One event of a mixture: what plays (class, file) on which track, when (samples), where and how loud."""

    class_index: int
    subclass: str
    path: Path
    track: int
    onset: int
    length: int
    level_db: float
    position: np.ndarray = field(compare=False)


@dataclass(frozen=True)
class PretrainClip:
    """One rendered mixture: its room, events, the audio of each format (scaled by one gain) and its labels."""

    room: ShoeboxRoom
    events: tuple[PlacedEvent, ...]
    audio: dict[str, np.ndarray]
    labels: np.ndarray


def place_events(
    rng: np.random.Generator,
    pool: Sequence[PoolEntry],
    load: Callable[[Path], np.ndarray],
    max_polyphony: int,
    settings: SynthesisSettings,
) -> list[tuple[PoolEntry, int, int, int, float]]:
    """(entry, track, onset, length, level) of every event, track by track.

    On each track an event starts ``gap_seconds`` (rounded up to the label grid) after the label frame where the
    previous one ended, plays its whole file (cut at the clip end), and the track stops when the next onset falls
    past the clip: each track's events occupy disjoint label frames, so polyphony never exceeds the track count.
    """
    hop, n_frames = settings.hop, settings.n_frames
    placed = []
    for track in range(max_polyphony):
        frame = 0
        while True:
            frame += int(np.ceil(rng.uniform(*settings.gap_seconds) / LABEL_HOP_SECONDS - 1e-9))
            if frame >= n_frames:
                break
            entry = pool[int(rng.integers(len(pool)))]
            length = min(load(entry.path).size, (n_frames - frame) * hop)
            placed.append((entry, track, frame * hop, length, float(rng.uniform(*settings.level_db))))
            frame += -(-length // hop)
    return placed


def render_clip(
    rng: np.random.Generator,
    pool: Sequence[PoolEntry],
    load: Callable[[Path], np.ndarray],
    max_polyphony: int,
    settings: SynthesisSettings,
) -> PretrainClip:
    """Draw a room and events, simulate only the events' positions, render FOA, MIC and the dry sum."""
    room = draw_room(rng, settings.rooms)
    placed = place_events(rng, pool, load, max_polyphony, settings)
    positions = draw_sources(rng, room, settings.rooms, len(placed))
    events = tuple(
        PlacedEvent(entry.class_index, entry.subclass, entry.path, track, onset, length, level, position)
        for (entry, track, onset, length, level), position in zip(placed, positions, strict=True)
    )
    responses = room_responses(
        room, positions, rng, sample_rate=settings.sample_rate, tail_range_db=settings.rooms.tail_range_db
    )
    n_samples = settings.n_frames * settings.hop
    dry_sum = np.zeros(n_samples, dtype=np.float32)
    wet = np.zeros((responses.early.shape[1], n_samples), dtype=np.float32)
    for index, event in enumerate(events):
        dry = load(event.path)[: event.length].astype(np.float64)
        dry *= 10.0 ** (event.level_db / 20.0) / max(float(np.sqrt(np.mean(dry**2))), 1e-12)
        dry_sum[event.onset : event.onset + event.length] += dry.astype(np.float32)
        _add(wet, event.onset, convolve(dry, responses.early[index]))
    if responses.tail.size and events:
        _add(wet, responses.tail_start, convolve(dry_sum, responses.tail))
    audio = {name: wet[channels] for name, channels in FORMAT_CHANNELS.items()}
    audio["sum"] = dry_sum[None, :]
    peak = max(float(np.max(np.abs(a))) for a in audio.values())
    if peak > 0:
        audio = {name: a * (settings.peak_level / peak) for name, a in audio.items()}
    return PretrainClip(room, events, audio, clip_labels(events, room, settings))


def _add(out: np.ndarray, start: int, segment: np.ndarray) -> None:
    """Add ``segment`` [C, m] into ``out`` [C, n] from sample ``start``, cut at the end of ``out``."""
    end = min(out.shape[-1], start + segment.shape[-1])
    if end > start:
        out[:, start:end] += segment[:, : end - start]


def clip_labels(events: Sequence[PlacedEvent], room: ShoeboxRoom, settings: SynthesisSettings) -> np.ndarray:
    """The mixture's event table: every label frame an event touches, its whole-degree azimuth and elevation seen
    from the array (azimuth = atan2(y, x), elevation = atan2(z, |(x, y)|)), sorted by frame then track."""
    tables = []
    for event in events:
        frames = np.arange(
            event.onset // settings.hop, min(settings.n_frames, -(-(event.onset + event.length) // settings.hop))
        )
        x, y, z = event.position - room.array
        azimuth = np.rint(np.rad2deg(np.arctan2(y, x)))
        elevation = np.rint(np.rad2deg(np.arctan2(z, np.hypot(x, y))))
        ones = np.ones(frames.size)
        tables.append(
            event_table(
                frames, event.class_index * ones, event.track * ones, azimuth * ones, elevation * ones, np.nan * ones
            )
        )
    if not tables:
        return no_events()
    table = np.concatenate(tables)
    return table[np.lexsort((table[:, 2], table[:, 0]))]


# --- shards ----------------------------------------------------------------------------------------------------


def clip_stem(fold: int, k: int) -> str:
    """The released file stem of clip k (0-based): every simulated mixture is ``room0`` of its fold."""
    return f"fold{fold}_room0_mix{k + 1:06d}"


def synthesize_shard(
    *,
    bank_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    fold: int,
    max_polyphony: int,
    first_clip: int,
    n_clips: int,
    seed: int,
    events_per_class: int,
    quota_overrides: Mapping[str, int] | None = None,
    settings: SynthesisSettings | None = None,
) -> None:
    """Render clips ``first_clip .. first_clip + n_clips - 1`` of a subset into ``out_dir`` (replaced atomically):
    ``foa/``, ``mic/``, ``sum/`` FLAC files, ``metadata/`` CSVs and ``cls_indices.tsv`` of these clips."""
    settings = settings or SynthesisSettings()
    if max_polyphony < 1 or n_clips < 0 or first_clip < 0 or fold < 0:
        raise ValueError(f"need max_polyphony >= 1 and non-negative clips and fold, got {max_polyphony}, {n_clips}")
    bank = read_bank(bank_dir)
    pool = event_pool(bank, class_quotas(bank, events_per_class, quota_overrides), seed)
    load = functools.lru_cache(maxsize=_SOURCE_CACHE_SIZE)(
        functools.partial(read_source, sample_rate=settings.sample_rate)
    )
    counts = np.zeros(len(bank.classes), dtype=np.int64)
    seconds = np.zeros(len(bank.classes))
    with atomic_dir(out_dir) as tmp:
        for k in tqdm(range(first_clip, first_clip + n_clips), desc=f"ov{max_polyphony} mixtures", unit="clip"):
            clip = render_clip(clip_rng(seed, fold, k), pool, load, max_polyphony, settings)
            write_clip(tmp, clip_stem(fold, k), clip, settings.sample_rate)
            for event in clip.events:
                counts[event.class_index] += 1
                seconds[event.class_index] += event.length / settings.sample_rate
        for folder in (*AUDIO_FOLDERS, METADATA_FOLDER):
            (tmp / folder).mkdir(exist_ok=True)  # an empty shard still has the layout
        write_class_table(tmp / CLASS_TABLE, bank.labels, counts, seconds)


def write_clip(out_dir: Path, stem: str, clip: PretrainClip, sample_rate: int) -> None:
    """One mixture's three FLAC files and its label CSV into ``out_dir``'s format folders."""
    for name in AUDIO_FOLDERS:
        write_audio(out_dir / name / f"{stem}{AUDIO_SUFFIX}", clip.audio[name], sample_rate, container="FLAC")
    dcase2021.write_events(out_dir / METADATA_FOLDER / f"{stem}.csv", clip.labels)


def write_class_table(
    path: str | os.PathLike[str], labels: Sequence[str], counts: Sequence[int], seconds: Sequence[float]
) -> None:
    """``cls_indices.tsv``: a header, then per class its index, label, events and their total seconds."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(CLASS_TABLE_COLUMNS)
        for index, (label, count, total) in enumerate(zip(labels, counts, seconds, strict=True)):
            writer.writerow([index, label, int(count), f"{float(total):.3f}"])


def read_class_table(path: str | os.PathLike[str]) -> list[dict[str, object]]:
    """Rows of a ``cls_indices`` table (ours, or the released one with its extra ``mid`` column), by index.

    Ids must run 0, 1, 2, ... in order: they are the class indices of the label files.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "class table not found")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in CLASS_TABLE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(path, f"missing columns {', '.join(missing)} (expected {', '.join(CLASS_TABLE_COLUMNS)})")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                parsed = {
                    "id": int(row["id"]),
                    "label": row["label"],
                    "num_clip": int(row["num_clip"]),
                    "total_duration": float(row["total_duration"]),
                }
            except (TypeError, ValueError) as exc:
                raise InputError(path, f"not a number ({exc})", row=line) from exc
            if parsed["id"] != len(rows):
                raise InputError(path, f"id {parsed['id']} out of order (expected {len(rows)})", row=line, field="id")
            rows.append(parsed)
    if not rows:
        raise InputError(path, "class table lists no classes")
    return rows


def gather_subset(shard_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]) -> int:
    """The released layout of a subset from its shards: each format folder's files hard-linked side by side
    (:func:`seldflow.shards.gather_files`) and the shards' ``cls_indices.tsv`` summed. Returns the clip count."""
    if not shard_dirs:
        raise ValueError("gather_subset needs at least one shard")
    tables = [read_class_table(Path(shard) / CLASS_TABLE) for shard in shard_dirs]
    labels = [row["label"] for row in tables[0]]
    for shard, table in zip(shard_dirs, tables, strict=True):
        if [row["label"] for row in table] != labels:
            raise InputError(Path(shard) / CLASS_TABLE, f"vocabulary differs from shard {shard_dirs[0]}")
    with atomic_dir(out_dir) as tmp:
        clips = 0
        for folder in (*AUDIO_FOLDERS, METADATA_FOLDER):
            found = gather_files([Path(shard) / folder for shard in shard_dirs], tmp / folder)
            clips = found if folder == METADATA_FOLDER else clips
        counts = np.sum([[row["num_clip"] for row in table] for table in tables], axis=0)
        seconds = np.sum([[row["total_duration"] for row in table] for table in tables], axis=0)
        write_class_table(tmp / CLASS_TABLE, labels, counts, seconds)
    return clips
