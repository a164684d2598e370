"""On-the-fly S5 soundscapes: the DCASE2025 Task 4 baseline's mixture recipe, drawn from a bank and a set of rooms.

One soundscape is one room (drawn once), 1-3 target events of distinct classes, 1-2 interferer events (classes
drawn with replacement) and exactly one multichannel noise file. Drawing (:meth:`S5Generator.sample`) and
rendering (:meth:`S5Generator.render`) are separate: the draw is a JSON-able description holding every random
choice, and rendering it is deterministic, so fixed validation sets are stored as descriptions and rebuilt
bit-exactly.

Rendering one event, as the official generator (SpatialScaper-based) does it:

1. read ``n_samples`` of the clip from ``offset`` (a clip longer than the maximum event length starts at a
   random offset) and peak-normalise it;
2. normalise the impulse response of the drawn position by the mean over channels of each channel's L2 norm;
3. convolve (full FFT convolution) on every channel and scale the whole wet signal to mean power
   ``ref_db + snr`` dB, then add it from ``onset``, cut at the end of the soundscape;
4. for a target, the dry reference is the clip convolved with channel 0 of the normalised response kept only in
   ``[peak - 6 ms, peak + 50 ms)`` around its (signed) maximum, with the same gain and onset: direct path and
   early reflections, mono.

The noise is read from a random whole-second offset when longer than the soundscape, tiled when shorter, and
scaled to mean power ``ref_db`` over all channels and samples, so the sampled SNRs are event-to-noise ratios.
Targets are ordered by onset and their labels padded with "silence" to the separator's slot count.

Every description also carries ``on_offset``: per target label, the ``[onset, offset]`` in seconds of its event in
the soundscape, the frame labels of a sound event detector are rasterised from (see
:func:`seldflow.s5.vocabulary.frame_labels`). As in the official generator of the second-place system, the extent
is that of the *wet* event: from its onset to the end of the full convolution of the excerpt with the room
response (excerpt length + response length - 1 samples), cut at the end of the soundscape; so a reverberant tail
counts as active and silent stretches inside the clip do too (it is the event's extent, not its active region).
It is derived, not drawn: :meth:`S5Generator.on_offsets` recomputes it for a description without it (the
official ``valid.json`` descriptions), and :meth:`S5Generator.render` always returns it in the mixture's metadata.

Two deliberate departures from the official code, both where it misbehaves outside its own settings: a short
noise file is tiled end to end (the official code repeats every sample instead, which slows the noise down),
and an event never outlasts the soundscape (the official onset draw turns negative when the maximum event
length exceeds the soundscape length, e.g. 10 s events in a 2 s demo soundscape).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from seldflow.errors import ConfigError, InputError
from seldflow.s5 import layout
from seldflow.s5.bank import (
    ROLE_INTERFERER,
    ROLE_NOISE,
    ROLE_TARGET,
    ROOM_DIR,
    S5Bank,
    read_dev_bank,
    read_rooms,
    with_added,
)
from seldflow.s5.vocabulary import N_SLOTS, SILENCE, pad_labels
from seldflow.synthesize.sofa import Room

METADATA_FORMAT = "seldflow-s5-soundscape"
METADATA_VERSION = 1


@dataclass(frozen=True)
class GeneratorSettings:
    """Every number of the mixture recipe; the defaults are the baseline's (all its configs agree).

    ``max_sample_attempts`` (onset draws per clip before another clip is tried) and ``overlap_step`` (the time
    grid of the overlap check, SpatialScaper's 100 ms label hop) are SpatialScaper's defaults.
    """

    sample_rate: int = 32000
    duration: float = 10.0
    nevent_range: tuple[int, int] = (1, 3)
    snr_range: tuple[float, float] = (5.0, 20.0)
    ninterference_range: tuple[int, int] = (1, 2)
    interference_snr_range: tuple[float, float] = (0.0, 15.0)
    ref_db: float = -50.0
    max_event_overlap: int = 3
    max_event_duration: float = 10.0
    direct_path_ms: tuple[float, float] = (6.0, 50.0)
    max_sample_attempts: int = 100
    overlap_step: float = 0.1
    n_slots: int = N_SLOTS

    def __post_init__(self) -> None:
        for name in ("nevent_range", "snr_range", "ninterference_range", "interference_snr_range"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"GeneratorSettings.{name}: lower bound {low} exceeds upper bound {high}")
        if self.sample_rate <= 0 or self.duration <= 0 or self.max_event_duration <= 0:
            raise ValueError("GeneratorSettings: sample_rate, duration and max_event_duration must be positive")
        if not 1 <= self.nevent_range[0] <= self.nevent_range[1] <= self.n_slots:
            raise ValueError(f"GeneratorSettings.nevent_range {self.nevent_range} must lie in 1..{self.n_slots}")
        if self.ninterference_range[0] < 0:
            raise ValueError("GeneratorSettings.ninterference_range must be non-negative")
        if min(self.direct_path_ms) < 0:
            raise ValueError("GeneratorSettings.direct_path_ms must be non-negative")
        if self.max_event_overlap < 1 or self.max_sample_attempts < 1 or self.overlap_step <= 0:
            raise ValueError("GeneratorSettings: max_event_overlap, max_sample_attempts and overlap_step must be > 0")

    @property
    def n_samples(self) -> int:
        """Soundscape length in samples (truncated, as the official ``int(duration * sr)``)."""
        return int(self.duration * self.sample_rate)

    @property
    def max_event_samples(self) -> int:
        """Longest clip excerpt: the maximum event length, capped at the soundscape length."""
        return min(int(self.max_event_duration * self.sample_rate), self.n_samples)


@dataclass
class S5Mixture:
    """One rendered soundscape: the multichannel mixture, one dry target per slot and the slot labels."""

    mixture: np.ndarray  # float32 [C, N]
    targets: np.ndarray  # float32 [n_slots, N]; zeros for silence
    labels: tuple[str, ...]  # n_slots entries, padded with "silence"
    metadata: dict


@dataclass
class S5Parts:
    """The components a mixture is the sum of (for checks and analysis): ``mixture = noise + Σ wet``."""

    noise: np.ndarray  # float64 [C, N]
    wet_targets: np.ndarray  # float64 [T, C, N], targets in onset order
    wet_interferers: np.ndarray  # float64 [I, C, N]
    dry_targets: np.ndarray  # float64 [T, N]
    target_labels: tuple[str, ...]


@dataclass(frozen=True)
class _Placed:
    """An already placed event of one role, for the overlap check (seconds)."""

    start: float
    duration: float


class S5Generator:
    """Draws and renders S5 soundscapes from ``bank`` in ``rooms`` (one random room per soundscape).

    The channel count of a soundscape is the receiver count R of its room; every noise file must have it. A
    room's impulse responses must be at ``settings.sample_rate`` (:func:`seldflow.s5.bank.read_rooms` resamples
    on loading); rooms are identified by ``Room.name`` in metadata, so names must be unique.
    """

    def __init__(self, bank: S5Bank, rooms: Sequence[Room], settings: GeneratorSettings) -> None:
        if bank.sample_rate != settings.sample_rate:
            raise ValueError(f"bank is at {bank.sample_rate} Hz, settings ask for {settings.sample_rate} Hz")
        if not rooms:
            raise ValueError("S5Generator needs at least one room")
        self.bank = bank
        self.settings = settings
        self.rooms: dict[str, Room] = {}
        for room in rooms:
            _check_room(room, settings.sample_rate)
            if room.name in self.rooms:
                raise ValueError(f"two rooms are named {room.name!r}; metadata could not tell them apart")
            self.rooms[room.name] = room
        self._room_names = tuple(self.rooms)
        self._target_labels = bank.target_labels
        self._interferer_labels = bank.interferer_labels
        if len(self._target_labels) < settings.nevent_range[1]:
            raise ValueError(
                f"{settings.nevent_range[1]} distinct targets per soundscape need as many target classes, "
                f"the bank has {len(self._target_labels)}"
            )
        if settings.ninterference_range[1] > 0 and not self._interferer_labels:
            raise ValueError("the settings ask for interferers but the bank has no interferer classes")
        if not bank.noise:
            raise ValueError("the bank has no noise files")
        self._check_noise_channels()

    def _check_noise_channels(self) -> None:
        channels = {room.irs.shape[1] for room in self.rooms.values()}
        if len(channels) != 1:
            raise ValueError(f"rooms differ in channel count {sorted(channels)}; one noise bank cannot serve them")
        for path in self.bank.noise:
            found = self.bank.clip_info(path).channels
            if found not in channels:
                raise InputError(path, f"noise has {found} channels, the rooms have {min(channels)}", field="channels")

    # --- drawing ---------------------------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> dict:
        """Draw one soundscape description (JSON-able; every random choice of the recipe is in it)."""
        s = self.settings
        room = self.rooms[self._room_names[int(rng.integers(len(self._room_names)))]]
        targets: list[dict] = []
        placed: list[_Placed] = []
        for _ in range(int(rng.integers(s.nevent_range[0], s.nevent_range[1] + 1))):
            used = {event["label"] for event in targets}
            remaining = [label for label in self._target_labels if label not in used]
            label = remaining[int(rng.integers(len(remaining)))]
            targets.append(self._draw_event(rng, ROLE_TARGET, label, room, s.snr_range, placed))
        interferers: list[dict] = []
        placed_interferers: list[_Placed] = []
        for _ in range(int(rng.integers(s.ninterference_range[0], s.ninterference_range[1] + 1))):
            label = self._interferer_labels[int(rng.integers(len(self._interferer_labels)))]
            interferers.append(
                self._draw_event(rng, ROLE_INTERFERER, label, room, s.interference_snr_range, placed_interferers)
            )
        targets.sort(key=lambda event: event["onset"])
        ir_samples = room.irs.shape[2]
        return {
            "format": METADATA_FORMAT,
            "version": METADATA_VERSION,
            "sample_rate": s.sample_rate,
            "n_samples": s.n_samples,
            "ref_db": float(s.ref_db),
            "direct_path_ms": [float(v) for v in s.direct_path_ms],
            "room": room.name,
            "labels": list(pad_labels([event["label"] for event in targets], s.n_slots)),
            "on_offset": {
                event["label"]: event_extent_seconds(event, ir_samples, s.n_samples, s.sample_rate) for event in targets
            },
            "events": [*targets, *interferers, self._draw_noise(rng)],
        }

    def _draw_event(
        self,
        rng: np.random.Generator,
        role: str,
        label: str,
        room: Room,
        snr_range: tuple[float, float],
        placed: list[_Placed],
    ) -> dict:
        """One event: a clip of ``label``, an excerpt, an onset satisfying the overlap limit, a position, an SNR.

        When no onset within ``max_sample_attempts`` draws satisfies the limit, another clip is tried, as in
        SpatialScaper; a bank whose clips never fit is an error rather than an endless loop.
        """
        s = self.settings
        files = (self.bank.targets if role == ROLE_TARGET else self.bank.interferers)[label]
        for _ in range(s.max_sample_attempts):
            path = files[int(rng.integers(len(files)))]
            frames = self.bank.clip_info(path).frames
            length = min(frames, s.max_event_samples)
            offset = int(rng.integers(0, frames - length + 1))
            onset = self._draw_onset(rng, length / s.sample_rate, placed)
            if onset is None:
                continue
            placed.append(_Placed(onset, length / s.sample_rate))
            ir_index = int(rng.integers(room.irs.shape[0]))
            return {
                "role": role,
                "label": label,
                "file": self.bank.relative(path),
                "offset": offset,
                "n_samples": length,
                "onset": int(onset * s.sample_rate),
                "snr": float(rng.uniform(*snr_range)),
                "ir_index": ir_index,
                "position": [float(v) for v in room.positions[ir_index]],
            }
        raise RuntimeError(
            f"no onset for a '{label}' {role} satisfies max_event_overlap={s.max_event_overlap} "
            f"after {s.max_sample_attempts} clips"
        )

    def _draw_onset(self, rng: np.random.Generator, seconds: float, placed: Sequence[_Placed]) -> float | None:
        """Uniform onset in ``[0, duration - seconds]`` not overlapping ``max_event_overlap`` placed events."""
        s = self.settings
        for _ in range(s.max_sample_attempts):
            start = float(rng.uniform(0.0, max(s.duration - seconds, 0.0)))
            if not _exceeds_overlap(start, seconds, placed, s.max_event_overlap, s.overlap_step):
                return start
        return None

    def _draw_noise(self, rng: np.random.Generator) -> dict:
        """The background: a random file, from a random whole second when longer than the soundscape."""
        s = self.settings
        path = self.bank.noise[int(rng.integers(len(self.bank.noise)))]
        frames = self.bank.clip_info(path).frames
        if frames > s.n_samples:
            offset = math.floor(rng.uniform(0.0, frames / s.sample_rate - s.duration)) * s.sample_rate
            length = s.n_samples
        else:
            offset, length = 0, frames
        return {
            "role": ROLE_NOISE,
            "label": None,
            "file": self.bank.relative(path),
            "offset": int(offset),
            "n_samples": int(length),
            "snr": 0.0,
        }

    # --- rendering -------------------------------------------------------------------------------------------

    def on_offsets(self, metadata: Mapping[str, Any]) -> dict[str, list[float]]:
        """Per target label its ``[onset, offset]`` seconds: the description's ``on_offset``, or derived from it.

        A description without the key (the official validation metadata, or one written before it existed) gets
        the extents computed from its events and its room's response length, as :meth:`sample` computes them.
        """
        if "on_offset" in metadata:
            return {str(label): [float(v) for v in extent] for label, extent in metadata["on_offset"].items()}
        where = str(metadata.get("name", "soundscape metadata"))
        self._check_header(metadata, where)
        ir_samples = self.rooms[metadata["room"]].irs.shape[2]
        n, rate = int(metadata["n_samples"]), int(metadata["sample_rate"])
        targets = sorted((e for e in metadata["events"] if e.get("role") == ROLE_TARGET), key=lambda e: int(e["onset"]))
        return {str(event["label"]): event_extent_seconds(event, ir_samples, n, rate) for event in targets}

    def render(self, metadata: Mapping[str, Any]) -> S5Mixture:
        """The soundscape a description stands for; deterministic (same description, same bits).

        The mixture's metadata is the description with ``on_offset`` (:meth:`on_offsets`) filled in.
        """
        parts = self.render_parts(metadata)
        mixture = parts.noise + parts.wet_targets.sum(axis=0) + parts.wet_interferers.sum(axis=0)
        n_slots = len(metadata["labels"]) if "labels" in metadata else self.settings.n_slots
        targets = np.zeros((n_slots, mixture.shape[1]), dtype=np.float32)
        targets[: len(parts.dry_targets)] = parts.dry_targets
        return S5Mixture(
            mixture=mixture.astype(np.float32),
            targets=targets,
            labels=pad_labels(parts.target_labels, n_slots),
            metadata={**metadata, "on_offset": self.on_offsets(metadata)},
        )

    def generate(self, rng: np.random.Generator) -> S5Mixture:
        """Draw and render one soundscape."""
        return self.render(self.sample(rng))

    def render_parts(self, metadata: Mapping[str, Any]) -> S5Parts:
        """Every component of a described soundscape, before summation (targets in onset order)."""
        where = str(metadata.get("name", "soundscape metadata"))
        self._check_header(metadata, where)
        room = self.rooms[metadata["room"]]
        n = int(metadata["n_samples"])
        ref_db = float(metadata["ref_db"])
        window = tuple(int(ms * self.settings.sample_rate / 1000) for ms in metadata["direct_path_ms"])
        events = list(metadata["events"])
        for row, event in enumerate(events):
            _check_event(event, where, row)
        noises = [event for event in events if event["role"] == ROLE_NOISE]
        if len(noises) != 1:
            raise InputError(where, f"expected exactly one noise event, found {len(noises)}", field="events")
        targets = sorted((e for e in events if e["role"] == ROLE_TARGET), key=lambda e: int(e["onset"]))
        interferers = [event for event in events if event["role"] == ROLE_INTERFERER]
        channels = room.irs.shape[1]
        wet_targets = np.zeros((len(targets), channels, n))
        dry_targets = np.zeros((len(targets), n))
        for k, event in enumerate(targets):
            self._spatialise(event, room, ref_db, window, wet_targets[k], dry_targets[k])
        wet_interferers = np.zeros((len(interferers), channels, n))
        for k, event in enumerate(interferers):
            self._spatialise(event, room, ref_db, None, wet_interferers[k], None)
        labels = tuple(str(event["label"]) for event in targets)
        if len(set(labels)) != len(labels) or SILENCE in labels:
            raise InputError(where, f"target labels must be distinct classes, found {list(labels)}", field="events")
        return S5Parts(
            noise=self._noise(noises[0], ref_db, channels, n),
            wet_targets=wet_targets,
            wet_interferers=wet_interferers,
            dry_targets=dry_targets,
            target_labels=labels,
        )

    def _check_header(self, metadata: Mapping[str, Any], where: str) -> None:
        for key in ("sample_rate", "n_samples", "ref_db", "direct_path_ms", "room", "events"):
            if key not in metadata:
                raise InputError(where, "missing key", field=key)
        if metadata.get("format", METADATA_FORMAT) != METADATA_FORMAT or metadata.get("version", 1) > METADATA_VERSION:
            raise InputError(where, f"not a {METADATA_FORMAT} description of version <= {METADATA_VERSION}")
        if int(metadata["sample_rate"]) != self.settings.sample_rate:
            raise InputError(
                where,
                f"described at {metadata['sample_rate']} Hz, the generator runs at {self.settings.sample_rate} Hz",
                field="sample_rate",
            )
        if metadata["room"] not in self.rooms:
            raise InputError(where, f"unknown room {metadata['room']!r} (known: {', '.join(self.rooms)})", field="room")

    def _clip(self, event: Mapping[str, Any]) -> np.ndarray:
        """The event's excerpt as float64 mono, peak-normalised (an all-zero excerpt is left as it is)."""
        path = self.bank.resolve(event["file"])
        audio = self.bank.read(path, int(event["offset"]), int(event["n_samples"]))
        if audio.shape[0] != 1:
            raise InputError(path, f"has {audio.shape[0]} channels, a source clip must be mono", field="channels")
        peak = np.max(np.abs(audio[0]))
        return audio[0] / peak if peak > 0 else audio[0]

    def _spatialise(
        self,
        event: Mapping[str, Any],
        room: Room,
        ref_db: float,
        window: tuple[int, ...] | None,
        wet_out: np.ndarray,
        dry_out: np.ndarray | None,
    ) -> None:
        """Add the event's wet signal to ``wet_out`` [C, N] and, with a ``window``, its dry target to ``dry_out``."""
        ir_index = int(event["ir_index"])
        if not 0 <= ir_index < room.irs.shape[0]:
            raise InputError(room.name, f"IR index {ir_index} outside 0..{room.irs.shape[0] - 1}", field="ir_index")
        clip = self._clip(event)
        ir = normalise_ir(room.irs[ir_index].astype(np.float64))
        wet = fftconvolve(clip[None, :], ir, mode="full", axes=-1)
        gain = gain_to_power(wet, ref_db + float(event["snr"]))
        _add_from(wet_out, wet * gain, int(event["onset"]))
        if window is not None and dry_out is not None:
            dry = fftconvolve(clip, direct_path(ir[0], window[0], window[1]), mode="full")
            _add_from(dry_out, dry * gain, int(event["onset"]))

    def _noise(self, event: Mapping[str, Any], ref_db: float, channels: int, n: int) -> np.ndarray:
        path = self.bank.resolve(event["file"])
        audio = self.bank.read(path, int(event["offset"]), int(event["n_samples"]))
        if audio.shape[0] != channels:
            raise InputError(path, f"noise has {audio.shape[0]} channels, the room has {channels}", field="channels")
        audio = np.tile(audio, (1, -(-n // audio.shape[1])))[:, :n]
        return audio * gain_to_power(audio, ref_db)


def _check_room(room: Room, sample_rate: int) -> None:
    if room.sample_rate != sample_rate:
        raise ValueError(
            f"room {room.name!r} is at {room.sample_rate} Hz, the generator at {sample_rate} Hz "
            "(load rooms with seldflow.s5.bank.read_rooms, which resamples)"
        )
    if room.irs.ndim != 3 or room.irs.shape[0] == 0:
        raise ValueError(f"room {room.name!r}: impulse responses must be a non-empty [M, R, N] array")


_EVENT_KEYS = {
    ROLE_TARGET: ("label", "file", "offset", "n_samples", "onset", "snr", "ir_index"),
    ROLE_INTERFERER: ("label", "file", "offset", "n_samples", "onset", "snr", "ir_index"),
    ROLE_NOISE: ("file", "offset", "n_samples"),
}


def _check_event(event: Mapping[str, Any], where: str, row: int) -> None:
    role = event.get("role")
    if role not in _EVENT_KEYS:
        known = ", ".join(_EVENT_KEYS)
        raise InputError(where, f"unknown role {role!r} (expected one of {known})", field="role", row=row)
    for key in _EVENT_KEYS[role]:
        if key not in event:
            raise InputError(where, f"missing key of a {role} event", field=key, row=row)


def _exceeds_overlap(start: float, seconds: float, placed: Sequence[_Placed], max_overlap: int, step: float) -> bool:
    """SpatialScaper's overlap test: at any grid time of the new event, are ``max_overlap`` placed events active?

    Placed events count as active from one step before their start to one step after their end. Only events of
    the same role are passed in, as in the official generator (targets and interferers are checked separately).
    """
    for t in np.arange(start, start + seconds, step):
        active = sum(1 for e in placed if e.start - step <= t <= e.start + e.duration + step)
        if active >= max_overlap:
            return True
    return False


def normalise_ir(ir: np.ndarray) -> np.ndarray:
    """``ir`` [R, N] divided by the mean over channels of each channel's L2 norm (SpatialScaper's normaliser)."""
    norm = float(np.mean(np.sqrt(np.sum(ir**2, axis=-1))))
    return ir / norm if norm > 0 else ir


def gain_to_power(signal: np.ndarray, target_db: float) -> float:
    """Gain that brings the mean power of ``signal`` (over all its values) to ``target_db`` dB (1 if silent)."""
    power = float(np.mean(np.square(signal)))
    return 10.0 ** ((target_db - 10.0 * np.log10(power)) / 20.0) if power > 0 else 1.0


def direct_path(ir: np.ndarray, before: int, after: int) -> np.ndarray:
    """``ir`` kept in ``[peak - before, peak + after)`` around its signed maximum, zero elsewhere."""
    peak = int(np.argmax(ir))
    kept = np.zeros_like(ir)
    low, high = max(peak - before, 0), min(peak + after, ir.size)
    kept[low:high] = ir[low:high]
    return kept


def event_extent_seconds(event: Mapping[str, Any], ir_samples: int, n_samples: int, sample_rate: int) -> list[float]:
    """``[onset, offset]`` seconds of a placed event's wet signal: ``onset`` up to the end of the full convolution of
    its ``n_samples`` excerpt with an ``ir_samples`` response, cut at the soundscape's end (what :func:`_add_from`
    adds it over)."""
    onset = int(event["onset"])
    end = min(onset + int(event["n_samples"]) + ir_samples - 1, n_samples)
    return [onset / sample_rate, end / sample_rate]


def _add_from(out: np.ndarray, signal: np.ndarray, onset: int) -> None:
    """Add ``signal`` (last axis = time) into ``out`` from sample ``onset``, cut at the end of ``out``."""
    end = min(onset + signal.shape[-1], out.shape[-1])
    if end > onset:
        out[..., onset:end] += signal[..., : end - onset]


def settings_from_config(values: Mapping[str, Any]) -> GeneratorSettings:
    """:class:`GeneratorSettings` from the config's ``s5.generator`` (YAML lists become the ranges' tuples)."""
    known = {field.name for field in dataclasses.fields(GeneratorSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError("s5", f"generator.{unknown[0]}", f"unknown setting (known: {', '.join(sorted(known))})")
    converted = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
    try:
        return GeneratorSettings(**converted)
    except ValueError as exc:
        raise ConfigError("s5", "generator", str(exc)) from None


# Split -> role (``target``, ``interferer``) -> folders of cleaned added clips (the S5 cleaning stage's output).
AddedBanks = Mapping[str, Mapping[str, Sequence[str | Path]]]


def open_generator(
    root: str | Path,
    split: str,
    settings: Mapping[str, Any] | GeneratorSettings,
    added: AddedBanks | None = None,
) -> S5Generator:
    """The generator of one bank split (``train``, ``valid``, or ``test`` in the embedded set) of a dataset root.

    ``root`` is the folder holding ``dev_set/`` (:mod:`seldflow.s5.layout`); the bank and the rooms are that
    split's. ``added`` maps a split to the cleaned added banks joined to it (role -> folders, see
    :func:`seldflow.s5.bank.with_added`); splits it does not name get none.
    """
    if not isinstance(settings, GeneratorSettings):
        settings = settings_from_config(settings)
    dev = layout.dev_dir(root)
    bank = with_added(read_dev_bank(dev, split, sample_rate=settings.sample_rate), (added or {}).get(split, {}))
    rooms = read_rooms(layout.bank_dir(root, ROOM_DIR) / split, sample_rate=settings.sample_rate)
    return S5Generator(bank, rooms, settings)


def generator_signature(generator: S5Generator) -> str:
    """Digest of the names, sizes and modification times of the generator's bank files, and its room names.

    Identifies the data a training run draws from without reading it (a real bank is tens of gigabytes).
    """
    digest = hashlib.sha256()
    for path in sorted(generator.bank.info):
        stat = path.stat()
        digest.update(f"{generator.bank.relative(path)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    digest.update("\n".join(sorted(generator.rooms)).encode())
    return digest.hexdigest()
