"""DOAnet synthesis stage: the embedded dataset, rendered by the built-in synthesizer in the TAU-NIGENS 2020 layout.

The real dataset (:mod:`seldflow.tau_nigens2020`) is about 10 GB; the embedded one lets the DOAnet branch run
offline on a laptop CPU. It reuses the synthesizer of the SELD branch: the procedural source bank
(:func:`seldflow.synthesize.make_source_bank`), shoebox rooms simulated on a grid of source positions
(:func:`seldflow.synthesize.simulate_room`, which writes the FOA and the tetrahedral-array responses of the same
positions) and its event placement, moving-source rendering and labels (:mod:`seldflow.synthesize.mixtures`):

* every clip holds events that never overlap more than ``max_sources`` at a time (2: DOAnet's Nmax), static or
  turning in azimuth along their ring of positions;
* each clip is rendered twice from the same events, through the FOA and through the microphone-array responses,
  with background noise of the same level (diffuse-like channel gains for FOA, equal for the capsules);
* labels are DCASE2020 CSVs (``frame,class,track,azimuth,elevation``, 100-ms frames, whole degrees, azimuth
  positive to the left), rows sorted by frame and, within a frame, by event onset, so slot 0 holds the earlier
  source (the order DOAnet's class-agnostic targets follow); ``track`` is the event's number in the clip and the
  class that of its procedural source (DOAnet ignores both).

Splits mirror the TAU-NIGENS folds (:data:`seldflow.tau_nigens2020.SPLITS`): test clips go to fold 1, validation
clips to fold 2 and training clips round-robin to folds 3-6, each split with rooms of its own, so the test rooms are
never heard in training. Files are named ``fold{f}_room{r}_mix{k:03d}_ov{o}`` (r the room's number in the
configuration, counted from 1, o the most sources active at once), so the adapter that reads the real dataset
reads this one too, and its overlap augmentation applies to it. Clip ``k`` of a split draws everything from
``SeedSequence(seed, spawn_key=(split number, k))``: the same configuration gives the same bytes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from seldflow.errors import InputError
from seldflow.formats.dcase2021 import write_events
from seldflow.formats.events import EV_FRAME, frame_slots
from seldflow.io import atomic_dir, write_audio
from seldflow.synthesize.mixtures import (
    DIFFUSE_GAINS,
    Event,
    MixtureSettings,
    RoomGrid,
    event_table_labels,
    place_events,
    render_events,
)
from seldflow.synthesize.rooms import simulate_room
from seldflow.synthesize.sofa import read_sofa
from seldflow.synthesize.sources import list_bank, make_source_bank, read_source
from seldflow.tau_nigens2020 import CHANNELS, SAMPLE_RATE, SPLITS

# Audio formats rendered, each from its own room responses; noise gains per channel of each.
NOISE_GAINS: dict[str, np.ndarray] = {"foa": DIFFUSE_GAINS, "mic": np.ones(CHANNELS)}
FORMATS: tuple[str, ...] = tuple(NOISE_GAINS)
# Split -> number in the clip seeds (train 0, validation 1, test 2).
SPLIT_NUMBERS: dict[str, int] = {split: number for number, split in enumerate(SPLITS)}
_SOURCE_CACHE_SIZE = 256


def make_bank(out_dir: str | os.PathLike[str], bank: Mapping[str, Any], seed: int) -> None:
    """The procedural source bank (``clips_per_class`` per bank split, durations in [min, max] seconds)."""
    make_source_bank(
        out_dir,
        clips_per_class=dict(bank["clips_per_class"]),
        min_seconds=bank["min_seconds"],
        max_seconds=bank["max_seconds"],
        seed=seed,
        sample_rate=SAMPLE_RATE,
    )


def make_room(
    foa_out: str | os.PathLike[str],
    mic_out: str | os.PathLike[str],
    spec: Mapping[str, Any],
    grid: Mapping[str, Any],
    name: str,
) -> None:
    """One simulated room: FOA and microphone-array responses of the same positions (``grid``), two SOFA files."""
    simulate_room(
        foa_out,
        dims=spec["dims"],
        rt60=spec["rt60"],
        array=spec["array"],
        azimuth_step_deg=grid["azimuth_step_deg"],
        elevations_deg=grid["elevations_deg"],
        distances_m=grid["distances_m"],
        ir_seconds=grid["ir_seconds"],
        sample_rate=SAMPLE_RATE,
        name=name,
        mic_path=mic_out,
    )


@dataclass(frozen=True)
class RenderedClip:
    """One clip: its file stem, audio per format ``(4, samples)`` and label rows (an event table)."""

    stem: str
    audio: dict[str, np.ndarray]
    events: np.ndarray


def mixture_settings(mixtures: Mapping[str, Any], clip_seconds: float) -> MixtureSettings:
    """The synthesizer's settings of the embedded clips (``max_sources`` is its polyphony limit)."""
    return MixtureSettings(
        clip_seconds=clip_seconds,
        sample_rate=SAMPLE_RATE,
        max_polyphony=int(mixtures["max_sources"]),
        events_per_clip=tuple(int(n) for n in mixtures["events_per_clip"]),
        moving_probability=mixtures["moving_probability"],
        angular_speed_deg_s=tuple(float(v) for v in mixtures["angular_speed_deg_s"]),
        snr_db=tuple(float(v) for v in mixtures["snr_db"]),
        noise_level_db=mixtures["noise_level_db"],
        peak_level=mixtures["peak_level"],
    )


def split_folds(split: str) -> tuple[int, ...]:
    """The folds a split's clips are spread over (round-robin)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    return SPLITS[split]


def clip_stem(fold: int, room_number: int, k: int, overlap: int) -> str:
    """TAU-NIGENS 2020 name of clip ``k`` (0-based; the name counts from 1)."""
    return f"fold{fold}_room{room_number}_mix{k + 1:03d}_ov{overlap}"


def render_split(
    *,
    split: str,
    rooms: Mapping[str, Mapping[str, str | os.PathLike[str]]],
    room_numbers: Sequence[int],
    bank_dir: str | os.PathLike[str],
    source_split: str,
    out_dirs: Mapping[str, str | os.PathLike[str]],
    n_clips: int,
    clip_seconds: float,
    mixtures: Mapping[str, Any],
    seed: int,
) -> list[str]:
    """Render the ``n_clips`` clips of ``split`` in the rooms ``rooms`` (name -> format -> SOFA path, numbered
    ``room_numbers``); write ``out_dirs["foa"]``, ``out_dirs["mic"]`` and ``out_dirs["metadata"]`` atomically,
    all or none, and return the stems."""
    if len(rooms) != len(room_numbers) or not rooms:
        raise ValueError(f"need one number per room, got {len(rooms)} rooms and {len(room_numbers)} numbers")
    settings = mixture_settings(mixtures, clip_seconds)
    grids = [{fmt: _load_grid(Path(paths[fmt])) for fmt in FORMATS} for paths in rooms.values()]
    _check_same_positions(rooms, grids)
    files = list_bank(bank_dir, source_split)
    load = functools.lru_cache(maxsize=_SOURCE_CACHE_SIZE)(functools.partial(read_source, sample_rate=SAMPLE_RATE))
    folds = split_folds(split)
    stems = []
    with (
        atomic_dir(out_dirs["foa"]) as foa,
        atomic_dir(out_dirs["mic"]) as mic,
        atomic_dir(out_dirs["metadata"]) as meta,
    ):
        folders = {"foa": foa, "mic": mic}
        for k in tqdm(range(n_clips), desc=f"{split} clips", unit="clip"):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLIT_NUMBERS[split], k)))
            clip = render_clip(rng, grids, room_numbers, files, load, settings, fold=folds[k % len(folds)], k=k)
            for fmt, audio in clip.audio.items():
                write_audio(folders[fmt] / f"{clip.stem}.wav", audio, SAMPLE_RATE)
            write_events(meta / f"{clip.stem}.csv", clip.events)
            stems.append(clip.stem)
    return stems


def render_clip(
    rng: np.random.Generator,
    grids: Sequence[Mapping[str, RoomGrid]],
    room_numbers: Sequence[int],
    files: Mapping[int, list[Path]],
    load: Any,
    settings: MixtureSettings,
    *,
    fold: int,
    k: int,
) -> RenderedClip:
    """Draw a room and its events, render them in every format (each scaled to the peak level), label them."""
    room = int(rng.integers(len(grids)))
    positions = grids[room]["foa"]
    events = place_events(rng, dict(files), load, positions, settings)
    n_samples = settings.n_frames * settings.hop
    audio = {}
    for fmt, grid in grids[room].items():
        scene = render_events(
            rng, events, grid, load, n_samples, SAMPLE_RATE, settings.noise_level_db, NOISE_GAINS[fmt]
        )
        audio[fmt] = scene * (settings.peak_level / max(float(np.max(np.abs(scene))), np.finfo(float).tiny))
    table = clip_events(events, positions, settings)
    return RenderedClip(clip_stem(fold, room_numbers[room], k, max_overlap(table)), audio, table)


def clip_events(events: list[Event], grid: RoomGrid, settings: MixtureSettings) -> np.ndarray:
    """The clip's label rows: the synthesizer's 3-D labels (no rotation), sorted by frame, onset order within."""
    table = event_table_labels(
        events, grid, deg=0, hop=settings.hop, n_frames=settings.n_frames, sample_rate=settings.sample_rate
    )
    return table[np.argsort(table[:, EV_FRAME], kind="stable")]


def max_overlap(table: np.ndarray) -> int:
    """The most sources active in one frame (the ``ov`` of the name); 1 for a clip without events."""
    return int(frame_slots(table).max()) + 1 if len(table) else 1


def _load_grid(path: Path) -> RoomGrid:
    room = read_sofa(path)
    if room.sample_rate != SAMPLE_RATE:
        raise InputError(
            path, f"sampled at {room.sample_rate} Hz, the dataset at {SAMPLE_RATE} Hz", field="Data.SamplingRate"
        )
    if room.irs.shape[1] != CHANNELS:
        raise InputError(path, f"expected {CHANNELS} channels, found {room.irs.shape[1]}", field="Data.IR")
    return RoomGrid.from_room(room)


def _check_same_positions(rooms: Mapping[str, Mapping[str, Any]], grids: Sequence[Mapping[str, RoomGrid]]) -> None:
    """Both formats of a room must hold the same positions, or the two renders would differ in direction."""
    for (name, paths), formats in zip(rooms.items(), grids, strict=True):
        reference = formats["foa"]
        for fmt, grid in formats.items():
            same = np.allclose(grid.azimuth_deg, reference.azimuth_deg) and np.allclose(
                grid.elevation_deg, reference.elevation_deg
            )
            if not same:
                raise InputError(
                    paths[fmt], f"positions differ from the FOA responses of room {name}", field="SourcePosition"
                )
