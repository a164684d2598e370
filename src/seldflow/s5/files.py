"""S5 file conventions shared by the stages and the CA-SDRi metric: ``<soundscape>_<Label>.wav`` and ``tags.csv``.

The submission format names every separated source ``<soundscape>_<Label>.wav``; the oracle targets follow the
same pattern. Class names hold no underscore, so a name splits at its last one (soundscape names may hold some).
This module is the one owner of that convention (no stage logic lives here, so stages and the CA-SDRi metric
import it alike). ``tags.csv`` records what the tagger chose for each soundscape and every class probability.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from seldflow.errors import InputError
from seldflow.io import atomic_file
from seldflow.s5.vocabulary import LABELS

TAGS_FILE = "tags.csv"
AUDIO_SUFFIX = ".wav"
# Separates the soundscape name from the class in ``<soundscape>_<Label>.wav``; class names never contain it.
NAME_SEPARATOR = "_"


def source_file_name(soundscape: str, label: str) -> str:
    """``<soundscape>_<Label>.wav``: the file name of one class's source (oracle target or estimate)."""
    return f"{soundscape}{NAME_SEPARATOR}{label}{AUDIO_SUFFIX}"


def split_source_name(path: Path, labels: Collection[str] = LABELS, *, role: str = "source") -> tuple[str, str]:
    """(soundscape, label) of a ``<soundscape>_<Label>.wav`` file, split at the last underscore.

    A name without an underscore, or whose label is not in ``labels``, is an :class:`InputError` naming the file;
    ``role`` (e.g. ``"estimate"``) says in the message which kind of file it was.
    """
    parts = source_stem_parts(path.stem)
    if parts is None:
        raise InputError(path, f"{role} file name is not <soundscape>{NAME_SEPARATOR}<Label>{AUDIO_SUFFIX}")
    soundscape, label = parts
    if label not in labels:
        known = ", ".join(labels)
        raise InputError(path, f"unknown class {label!r} in the {role} file name (known: {known})", field="label")
    return soundscape, label


def source_stem_parts(stem: str) -> tuple[str, str] | None:
    """(soundscape, label) of a ``<soundscape>_<Label>`` file stem, split at the last underscore; None without one.

    No checks and no path objects: for folders of thousands of files, whose names are checked by
    :func:`split_source_name` only where this finds no label it knows.
    """
    soundscape, separator, label = stem.rpartition(NAME_SEPARATOR)
    return (soundscape, label) if separator else None


def oracle_labels(oracle_dir: str | Path, names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Each soundscape's reference classes, from the oracle targets' file names, in class-index order."""
    found: dict[str, list[str]] = {name: [] for name in names}
    for path in sorted(Path(oracle_dir).glob(f"*{AUDIO_SUFFIX}")):
        soundscape, label = split_source_name(path, role="oracle target")
        if soundscape in found:
            found[soundscape].append(label)
    return {name: tuple(sorted(labels, key=LABELS.index)) for name, labels in found.items()}


def write_tags(path: str | Path, rows: Sequence[tuple[str, Sequence[str], np.ndarray]]) -> None:
    """One row per soundscape: its name, the chosen labels joined by ``;`` and every class probability."""
    with atomic_file(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["soundscape", "labels", *LABELS])
        for name, labels, probabilities in rows:
            writer.writerow([name, ";".join(labels), *(f"{p:.6f}" for p in probabilities)])


def read_tags(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Soundscape -> chosen labels of a ``tags.csv``."""
    with Path(path).open(newline="") as fh:
        return {row["soundscape"]: tuple(filter(None, row["labels"].split(";"))) for row in csv.DictReader(fh)}
