"""Adapter for the released PSELDNets data ("DataSynthSELD") and for subsets this project renders in its layout.

The release holds subsets such as ``train20000_ov1_1`` (20,000 one-minute mixtures, at most one event at a time),
each with ``foa/`` (ACN/SN3D), ``mic/`` (tetrahedral), ``sum/`` (dry superposition) FLAC files and ``metadata/``
DCASE2021 CSVs of the same stems, and a class table ``cls_indices_{train,test}.tsv`` (id, mid, label, num_clip,
total_duration) at the top, 170 classes. :func:`open_subset` checks a subset folder from file headers alone (every
clip in every format and in the labels, channels and rates, all files of a clip equally long) and takes the
vocabulary from its class table; :func:`export_dcase` writes clips of it as a DCASE2021-style split
(``<fmt>_dev/<split>/*.wav`` and ``metadata_dev/<split>/*.csv``), the layout the features stage reads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from seldflow.errors import InputError
from seldflow.formats import dcase2021
from seldflow.formats.events import EV_FRAME
from seldflow.io import atomic_dir, write_audio
from seldflow.pretrain.synthesis import (
    AUDIO_FOLDERS,
    CLASS_TABLE,
    METADATA_FOLDER,
    SUBSET_NAME,
    read_class_table,
)

# Channels of each format's files.
FORMAT_CHANNELS = {"foa": 4, "mic": 4, "sum": 1}
# Audio files the adapter accepts (the release is FLAC; WAV copies read the same).
AUDIO_SUFFIXES = (".flac", ".wav")
# Problems listed in one error before it is cut short.
_MAX_LISTED = 10


@dataclass(frozen=True)
class DataSynthClip:
    """One mixture: its stem, its file per format and its label CSV."""

    stem: str
    audio: dict[str, Path]
    metadata: Path


@dataclass(frozen=True)
class DataSynthSubset:
    """A checked subset: its clips (sorted by stem), vocabulary, sample rate and maximum polyphony (None when the
    folder name does not say)."""

    path: Path
    labels: tuple[str, ...]
    sample_rate: int
    max_polyphony: int | None
    clips: tuple[DataSynthClip, ...]

    def read_events(self, clip: DataSynthClip) -> np.ndarray:
        """The clip's DCASE2021 labels as an event table, refusing frames with more events than the subset's ovN."""
        events = dcase2021.read_events(clip.metadata, n_classes=len(self.labels))
        if self.max_polyphony is not None and len(events):
            frames, counts = np.unique(events[:, EV_FRAME], return_counts=True)
            if counts.max() > self.max_polyphony:
                frame = int(frames[np.argmax(counts)])
                raise InputError(
                    clip.metadata,
                    f"frame {frame} holds {counts.max()} events, more than the subset's ov{self.max_polyphony}",
                )
        return events


def find_class_table(subset_dir: Path) -> Path:
    """The subset's own ``cls_indices.tsv`` (this project's), else the release's ``cls_indices_<split>.tsv`` next to
    the subset folder, ``<split>`` read from its name (``train20000_ov1_1`` -> train)."""
    own = subset_dir / CLASS_TABLE
    if own.is_file():
        return own
    match = SUBSET_NAME.match(subset_dir.name)
    shared = subset_dir.parent / f"cls_indices_{match['split']}.tsv" if match else None
    if shared is not None and shared.is_file():
        return shared
    looked = [str(own)] + ([str(shared)] if shared is not None else [])
    raise InputError(subset_dir, f"no class table (looked for {', '.join(looked)})")


def open_subset(
    subset_dir: str | os.PathLike[str],
    *,
    formats: Sequence[str] = AUDIO_FOLDERS,
    class_table: str | os.PathLike[str] | None = None,
) -> DataSynthSubset:
    """Check a subset folder and list its clips; every problem found is reported in one :class:`InputError`."""
    path = Path(subset_dir)
    if not path.is_dir():
        raise InputError(path, "DataSynthSELD subset folder not found")
    unknown = [fmt for fmt in formats if fmt not in FORMAT_CHANNELS]
    if unknown or not formats:
        raise ValueError(f"formats must be some of {', '.join(FORMAT_CHANNELS)}, got {list(formats)}")
    labels = tuple(row["label"] for row in read_class_table(class_table or find_class_table(path)))
    listings = {fmt: _listing(path / fmt, AUDIO_SUFFIXES) for fmt in formats}
    metadata = _listing(path / METADATA_FOLDER, (".csv",))
    problems = _unpaired(listings, metadata)
    stems = sorted(metadata)
    rates = set()
    for stem in stems:
        if any(stem not in listing for listing in listings.values()):
            continue
        found = _check_clip_headers(stem, {fmt: listings[fmt][stem] for fmt in formats}, problems)
        rates |= found
    if len(rates) > 1:
        problems.append(f"files at different sample rates: {sorted(rates)} Hz")
    if not stems:
        problems.append(f"{path / METADATA_FOLDER}: no label files")
    if problems:
        listed = "; ".join(problems[:_MAX_LISTED])
        more = f" (and {len(problems) - _MAX_LISTED} more)" if len(problems) > _MAX_LISTED else ""
        raise InputError(path, f"{len(problems)} problem(s): {listed}{more}")
    match = SUBSET_NAME.match(path.name)
    clips = tuple(DataSynthClip(stem, {fmt: listings[fmt][stem] for fmt in formats}, metadata[stem]) for stem in stems)
    return DataSynthSubset(path, labels, rates.pop(), int(match["ov"]) if match else None, clips)


def _listing(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    """Stem -> file of the visible files with one of ``suffixes`` in ``folder``; refuses a missing folder, a stray
    file and two files of one stem (``a.flac`` and ``a.wav``)."""
    if not folder.is_dir():
        raise InputError(folder, "folder of the DataSynthSELD layout not found")
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.suffix.lower() not in suffixes or not entry.is_file():
            raise InputError(entry, f"not a {' or '.join(suffixes)} file")
        if entry.stem in found:
            raise InputError(entry, f"second file of clip {entry.stem} (also {found[entry.stem].name})")
        found[entry.stem] = entry
    return found


def _unpaired(listings: dict[str, dict[str, Path]], metadata: dict[str, Path]) -> list[str]:
    problems = []
    for fmt, listing in listings.items():
        for stem in sorted(set(metadata) - set(listing)):
            problems.append(f"{metadata[stem]}: no {fmt} audio for these labels")
        for stem in sorted(set(listing) - set(metadata)):
            problems.append(f"{listing[stem]}: no label file {stem}.csv")
    return problems


def _check_clip_headers(stem: str, files: dict[str, Path], problems: list[str]) -> set[int]:
    """Channels per format and one length for all of a clip's files; the rates found."""
    rates, lengths = set(), set()
    for fmt, file in files.items():
        try:
            info = sf.info(str(file))
        except (RuntimeError, sf.LibsndfileError, OSError) as exc:
            problems.append(f"{file}: cannot read audio ({exc})")
            continue
        if info.channels != FORMAT_CHANNELS[fmt]:
            problems.append(f"{file}: {info.channels} channels, {fmt} has {FORMAT_CHANNELS[fmt]}")
        if info.frames <= 0:
            problems.append(f"{file}: holds no samples")
        rates.add(int(info.samplerate))
        lengths.add(int(info.frames))
    if len(lengths) > 1:
        problems.append(f"{stem}: formats of different lengths {sorted(lengths)} samples")
    return rates


def read_clip_audio(clip: DataSynthClip, fmt: str) -> np.ndarray:
    """One format of a clip as float32 ``(channels, samples)``."""
    try:
        data, _ = sf.read(str(clip.audio[fmt]), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise InputError(clip.audio[fmt], f"cannot read audio ({exc})", field="audio") from exc
    return np.ascontiguousarray(data.T)


def export_dcase(
    subset: DataSynthSubset,
    out_root: str | os.PathLike[str],
    split: str,
    *,
    formats: Sequence[str] = ("foa", "mic"),
    max_clips: int | None = None,
    stem_suffix: str = "",
) -> int:
    """Write the first ``max_clips`` clips (all by default) as the DCASE2021-style split ``split`` under ``out_root``:
    ``<fmt>_dev/<split>/<stem><stem_suffix>.wav`` (16-bit, as the FLAC holds) and ``metadata_dev/<split>/...csv``
    (labels read and checked, then written in the same format). Each folder is replaced atomically. Returns the clip
    count. ``stem_suffix`` keeps clip names unique across subsets, whose stems repeat (``fold0_room0_mix000001`` is
    in every subset of a fold), when several train one model.
    """
    missing = [fmt for fmt in formats if fmt not in subset.clips[0].audio] if subset.clips else []
    if missing:
        raise ValueError(f"the subset was opened without the formats {missing}")
    clips = subset.clips[: max_clips if max_clips is not None else None]
    root = Path(out_root)
    for fmt in formats:
        with atomic_dir(root / f"{fmt}_dev" / split) as tmp:
            for clip in clips:
                write_audio(tmp / f"{clip.stem}{stem_suffix}.wav", read_clip_audio(clip, fmt), subset.sample_rate)
    with atomic_dir(root / "metadata_dev" / split) as tmp:
        for clip in clips:
            dcase2021.write_events(tmp / f"{clip.stem}{stem_suffix}.csv", subset.read_events(clip))
    return len(clips)
