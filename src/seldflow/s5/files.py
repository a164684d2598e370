"""S5 file conventions shared by inference, scoring and the report: ``<soundscape>_<Label>.wav`` and ``tags.csv``.

The submission format names every separated source ``<soundscape>_<Label>.wav``; the oracle targets follow the
same pattern. Class names hold no underscore, so a name splits at its last one (soundscape names may hold some).
``tags.csv`` records what the tagger chose for each soundscape and every class probability.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seldflow.errors import InputError
from seldflow.io import atomic_file
from seldflow.s5.vocabulary import LABELS

TAGS_FILE = "tags.csv"


def source_file_name(soundscape: str, label: str) -> str:
    return f"{soundscape}_{label}.wav"


def split_source_name(path: Path, labels: Sequence[str] = LABELS) -> tuple[str, str]:
    """(soundscape, label) of a ``<soundscape>_<Label>.wav`` file; an unknown label is an error naming the file."""
    soundscape, sep, label = path.stem.rpartition("_")
    if not sep or label not in labels:
        raise InputError(path, f"file name does not end in _<Label> with a known class (got {label!r})", field="label")
    return soundscape, label


def oracle_labels(oracle_dir: str | Path, names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Each soundscape's reference classes, from the oracle targets' file names, in class-index order."""
    found: dict[str, list[str]] = {name: [] for name in names}
    for path in sorted(Path(oracle_dir).glob("*.wav")):
        soundscape, label = split_source_name(path)
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
