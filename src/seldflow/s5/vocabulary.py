"""The S5 sound classes, the "silence" filler and the label encodings every S5 stage agrees on.

The 18 target classes are those of the DCASE2025 Task 4 baseline, in its index order; a soundscape holds at most
:data:`N_SLOTS` targets and its label list is padded with :data:`SILENCE` to that length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
# Frames per second of the sound event detector's strong labels: 250 frames (40 ms) per 10-s soundscape.
FRAME_RATE = 25.0


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


def frame_count(duration: float, frame_rate: float = FRAME_RATE) -> int:
    """Frames of a ``duration``-second clip on the detector's grid: ``round(duration * frame_rate)`` (250 per 10 s)."""
    return max(1, round(duration * frame_rate))


def frame_labels(
    on_offsets: Mapping[str, Sequence[float]],
    duration: float,
    classes: Sequence[str] = LABELS,
    frame_rate: float = FRAME_RATE,
    *,
    source: str = "on_offset",
) -> np.ndarray:
    """float32 [C, frames]: 1 where a target class is active, from its ``[onset, offset]`` seconds.

    ``frames`` is :func:`frame_count` of ``duration``. Each event covers the frames from ``round(onset / duration *
    frames)`` up to (excluding) ``round(offset / duration * frames)``, the rule of the second-place system's
    strong-label builder: its first frame is clipped into the clip and it covers at least that frame, so a very
    short event is never lost. Python's ``round`` (halves to even) as there. ``source`` names the metadata an
    unknown class came from.
    """
    frames = frame_count(duration, frame_rate)
    out = np.zeros((len(classes), frames), dtype=np.float32)
    for label, (onset, offset) in on_offsets.items():
        first = min(max(round(onset / duration * frames), 0), frames - 1)
        last = max(first + 1, min(round(offset / duration * frames), frames))
        out[class_index(label, classes, source=source), first:last] = 1.0
    return out
