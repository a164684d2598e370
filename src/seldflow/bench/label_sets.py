"""Synthetic label folders for the scorer rows of ``make bench``: thousands of small seeded clips per metric.

The scorer comparisons time whole folders, file reading included, because that is what scoring costs: the
official scorers read every CSV line by line. :func:`write_label_set` writes ``n_files`` reference files and as
many prediction files in the file format a registered metric reads, from one seed:

* each clip has ``lanes`` event lanes (at most one event per lane and frame), so up to ``lanes`` sources overlap
  and two lanes may hold the same class at once (what the Hungarian step is for); events last 5-30 frames,
  static or moving, with integer angles and distances as datasets write them;
* a prediction misses some reference rows, errs by a few degrees (sometimes by more than the 20-degree threshold)
  and a few per cent in distance, confuses a class now and then and adds false alarms, some past the reference's
  last frame; its angles and distances are floats (integers in the DCASE2025 format, which has no others).

The files are plain writes to a scratch folder (no atomic replacement: they are benchmark input, not outputs).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seldflow.formats import STEREO_FORMAT, get_label_format
from seldflow.formats.dcase2021 import write_events_to
from seldflow.formats.events import EV_AZIMUTH, EV_CLASS, EV_DISTANCE, EV_ELEVATION, EV_FRAME, event_table
from seldflow.labels import N_CLASSES, write_labels_to
from seldflow.metrics import get_metric
from seldflow.metrics.doa_mot import METRIC_NAME as DOA_MOT
from seldflow.metrics.doa_mot import N_SLOTS, rank_within

# The split folder of the references (the official scorers read every sub-folder of the reference root).
REFERENCE_SPLIT = "test"
# How the rows of an event table become file text, per registered metric.
EventText = Callable[[np.ndarray], str]


@dataclass(frozen=True)
class LabelSet:
    """Reference and prediction folders of ``n_files`` clips in ``metric``'s file format."""

    metric: str
    ref_dir: Path
    pred_dir: Path
    n_files: int


def _stereo_text(events: np.ndarray) -> str:
    buffer = io.StringIO()
    write_labels_to(buffer, get_label_format(STEREO_FORMAT).from_events(events))
    return buffer.getvalue()


def _event_text(with_distance: bool) -> EventText:
    def text(events: np.ndarray) -> str:
        buffer = io.StringIO()
        write_events_to(buffer, events, with_distance=with_distance)
        return buffer.getvalue()

    return text


# Metric -> (file text of an event table, event lanes per clip). DOAnet's format holds two directions per frame.
FILE_FORMATS: dict[str, tuple[EventText, int]] = {
    "dcase2021": (_event_text(False), 3),
    "dcase2022": (_event_text(False), 3),
    "dcase2023": (_event_text(False), 3),
    "dcase2024": (_event_text(True), 3),
    "dcase2025": (_stereo_text, 3),
    DOA_MOT: (_event_text(False), N_SLOTS),
}


def write_label_set(folder: str | os.PathLike[str], metric: str, n_files: int, *, seed: int, frames: int) -> LabelSet:
    """Write ``n_files`` reference CSVs to ``folder/ref/test/`` and predictions to ``folder/pred/`` for ``metric``.

    References sit in a split folder, as the official scorers expect them (``metadata_dev/<split>/``).

    Clips are ``frames`` label frames long; the same seed writes the same files.
    """
    if metric not in FILE_FORMATS:
        raise ValueError(f"no synthetic label format for metric {metric!r} (have: {', '.join(FILE_FORMATS)})")
    if n_files < 1 or frames < 2:
        raise ValueError(f"need at least one file of two frames, got {n_files} files of {frames} frames")
    text, lanes = FILE_FORMATS[metric]
    n_classes = get_metric(metric).n_classes or N_CLASSES  # DOAnet's metric ignores classes
    ref_dir, pred_dir = Path(folder) / "ref", Path(folder) / "pred"
    (ref_dir / REFERENCE_SPLIT).mkdir(parents=True, exist_ok=True)
    pred_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width = len(str(n_files - 1))
    for index in range(n_files):
        reference = clip_events(rng, frames, lanes, n_classes)
        prediction = predicted_events(rng, reference, frames, n_classes, max_per_frame=lanes)
        name = f"clip{index:0{width}d}.csv"
        (ref_dir / REFERENCE_SPLIT / name).write_text(text(reference))
        (pred_dir / name).write_text(text(prediction))
    return LabelSet(metric, ref_dir, pred_dir, n_files)


def clip_events(rng: np.random.Generator, frames: int, lanes: int, n_classes: int) -> np.ndarray:
    """A reference event table: ``lanes`` sequences of events with gaps, integer angles and distances (cm / 100),
    rows sorted by frame (lane order within a frame)."""
    parts = []
    for lane in range(lanes):
        frame = int(rng.integers(0, 10))
        while frame < frames:
            span = np.arange(frame, min(frames, frame + int(rng.integers(5, 31))))
            speed = float(rng.choice([0.0, rng.uniform(-5.0, 5.0)]))  # degrees per frame
            azimuth = (rng.uniform(-180.0, 180.0) + speed * (span - frame) + 180.0) % 360.0 - 180.0
            elevation = np.full(len(span), rng.uniform(-40.0, 40.0))
            distance = np.full(len(span), rng.uniform(50.0, 400.0))
            cls = np.full(len(span), int(rng.integers(0, n_classes)))
            parts.append(event_table(span, cls, np.full(len(span), lane), azimuth, elevation, distance))
            frame = int(span[-1]) + 1 + int(rng.integers(0, 10))
    table = np.concatenate(parts) if parts else np.zeros((0, 6))
    table[:, EV_AZIMUTH] = np.clip(np.rint(table[:, EV_AZIMUTH]), -180.0, 180.0)
    table[:, EV_ELEVATION] = np.rint(table[:, EV_ELEVATION])
    table[:, EV_DISTANCE] = np.rint(table[:, EV_DISTANCE]) / 100.0
    return table[np.argsort(table[:, EV_FRAME], kind="stable")]


def predicted_events(
    rng: np.random.Generator, reference: np.ndarray, frames: int, n_classes: int, *, max_per_frame: int
) -> np.ndarray:
    """A system's output for ``reference``: misses, angle and distance errors, class confusions, false alarms
    (some past the last frame), at most ``max_per_frame`` rows per frame, sorted by frame."""
    kept = reference[rng.random(len(reference)) >= 0.1].copy()
    error = rng.choice([2.0, 6.0, 12.0, 30.0], size=len(kept), p=[0.4, 0.3, 0.2, 0.1])
    direction = rng.uniform(0.0, 2.0 * np.pi, len(kept))
    kept[:, EV_AZIMUTH] = (kept[:, EV_AZIMUTH] + error * np.cos(direction) + 180.0) % 360.0 - 180.0
    kept[:, EV_ELEVATION] = np.clip(kept[:, EV_ELEVATION] + error * np.sin(direction), -89.0, 89.0)
    kept[:, EV_DISTANCE] *= rng.uniform(0.7, 1.3, len(kept))
    confused = rng.random(len(kept)) < 0.03
    kept[confused, EV_CLASS] = rng.integers(0, n_classes, int(confused.sum()))
    n_false = int(rng.poisson(3.0))
    false_alarms = event_table(
        rng.integers(0, frames + 5, n_false),
        rng.integers(0, n_classes, n_false),
        np.zeros(n_false),
        rng.uniform(-180.0, 180.0, n_false),
        rng.uniform(-60.0, 60.0, n_false),
        rng.uniform(0.5, 4.0, n_false),
    )
    table = np.concatenate([kept, false_alarms])
    table = table[np.argsort(table[:, EV_FRAME], kind="stable")]
    return table[rank_within(table[:, EV_FRAME].astype(np.int64)) < max_per_frame]
