"""The S5 sound classes, the "silence" filler and the label encodings every S5 stage agrees on.

The 18 target classes are those of the DCASE2025 Task 4 baseline, in its index order; a soundscape holds at most
:data:`N_SLOTS` targets and its label list is padded with :data:`SILENCE` to that length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seldflow.errors import InputError

LABELS: tuple[str, ...] = (
    "AlarmClock",
    "BicycleBell",
    "Blender",
    "Buzzer",
    "Clapping",
    "Cough",
    "CupboardOpenClose",
    "Dishes",
    "Doorbell",
    "FootSteps",
    "HairDryer",
    "MechanicalFans",
    "MusicalKeyboard",
    "Percussion",
    "Pour",
    "Speech",
    "Typing",
    "VacuumCleaner",
)
SILENCE = "silence"
# Targets per soundscape: the separators have this many output slots and label lists are padded to it.
N_SLOTS = 3


def class_index(label: str, labels: Sequence[str] = LABELS, *, source: str = "labels") -> int:
    """Index of a class name; an unknown name is an input error naming it and ``source`` (the file it came from)."""
    try:
        return list(labels).index(label)
    except ValueError:
        raise InputError(source, f"unknown S5 class {label!r} (known: {', '.join(labels)})", field="label") from None


def pad_labels(labels: Sequence[str], n_slots: int = N_SLOTS) -> tuple[str, ...]:
    """``labels`` padded with :data:`SILENCE` to ``n_slots`` entries."""
    if len(labels) > n_slots:
        raise ValueError(f"{len(labels)} labels do not fit {n_slots} slots: {list(labels)}")
    return (*labels, *([SILENCE] * (n_slots - len(labels))))


def multihot(labels: Sequence[str], classes: Sequence[str] = LABELS) -> np.ndarray:
    """float32 [C] with 1 for every non-silent label (the tagger's target)."""
    out = np.zeros(len(classes), dtype=np.float32)
    for label in labels:
        if label != SILENCE:
            out[class_index(label, classes)] = 1.0
    return out


def onehot_slots(labels: Sequence[str], classes: Sequence[str] = LABELS) -> np.ndarray:
    """float32 [S, C]: one row per slot, one-hot of its class, all zeros for a silent slot.

    Flattened it is the baseline's ``concat`` encoding (3 x 18 = 54 values), the ResUNetK query; one row is the
    ResUNet query of one slot.
    """
    out = np.zeros((len(labels), len(classes)), dtype=np.float32)
    for slot, label in enumerate(labels):
        if label != SILENCE:
            out[slot, class_index(label, classes)] = 1.0
    return out


def source_mask(labels: Sequence[str]) -> np.ndarray:
    """float32 [S]: 1 for a slot holding a class, 0 for silence (zeroes the separator's output and its loss)."""
    return np.asarray([label != SILENCE for label in labels], dtype=np.float32)
