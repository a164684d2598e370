"""SELD label formats: how one dataset's CSVs are read, written and converted to the task's event table.

Feature files keep a format's *native* rows (so the scorer sees exactly what the dataset says, onscreen flags and
integer rounding included) and the task converts them to events for targets, and decoded events back to native rows
for prediction files. :data:`LABEL_FORMATS` is the registry ``dataset.label_format`` names:

* ``dcase2025`` — the DCASE2025 stereo CSV with header ``frame,class,source,azimuth,distance,onscreen`` (integers;
  distance in cm; azimuth folded to the front; no elevation), scored by the DCASE2025 metric.
* ``dcase2021`` — the headerless DCASE2021–2023 CSV ``frame,class,track,azimuth,elevation``, scored by the
  DCASE2021–2023 metric (``dcase2023`` macro by default; ``score.metric`` chooses).
* ``dcase2024`` — the DCASE2024 CSV ``frame,class,track,azimuth,elevation,distance`` (distance in cm).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seldflow import labels
from seldflow.errors import ConfigError, InputError
from seldflow.formats import dcase2021  # the DCASE2021-2024 files (a submodule of this package)
from seldflow.formats.events import (
    EV_AZIMUTH,
    EV_CLASS,
    EV_DISTANCE,
    EV_FRAME,
    EV_TRACK,
    EVENT_COLUMNS,
    event_table,
    mirror_events,
)

# The stereo DCASE2025 format: folded azimuths and on-screen flags, a view of the scene rather than the 3-D scene.
STEREO_FORMAT = "dcase2025"


@dataclass(frozen=True)
class LabelFormat:
    """One label CSV convention: reading and writing native rows, and their conversion to events."""

    name: str
    columns: tuple[str, ...]
    dtype: type
    n_classes: int  # the dataset family's class count, the default of ``dataset.n_classes``
    method: str  # the method used when ``train.method`` is not set
    metric: str  # the official metric of the format's datasets, the default of ``score.metric``
    read: Callable[..., np.ndarray]  # (path, *, n_classes, n_frames) -> native rows
    write: Callable[[Path, np.ndarray], None]
    to_events: Callable[[np.ndarray], np.ndarray]
    from_events: Callable[[np.ndarray], np.ndarray]
    mirror: Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------------------------------------------
# DCASE2025 stereo


def _dcase2025_read(path: Path, *, n_classes: int, n_frames: int | None) -> np.ndarray:
    return labels.read_labels(path, n_frames=n_frames, n_classes=n_classes)


def _dcase2025_to_events(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, len(labels.CSV_COLUMNS))
    return event_table(
        rows[:, labels.COL_FRAME],
        rows[:, labels.COL_CLASS],
        rows[:, labels.COL_SOURCE],
        rows[:, labels.COL_AZIMUTH],
        np.zeros(len(rows)),
        rows[:, labels.COL_DISTANCE] / 100.0,
    )


def _dcase2025_from_events(events: np.ndarray) -> np.ndarray:
    """Integer rows as the DCASE2025 baseline writes them: rounded degrees in (-180, 180], centimetres, onscreen 0."""
    if len(events) == 0:
        return labels.empty_rows()
    azimuth = np.rint(events[:, EV_AZIMUTH])
    azimuth[azimuth == -180.0] = 180.0  # atan2 of (-0, -1); the DCASE output range is (-180, 180]
    distance = np.rint(np.nan_to_num(events[:, EV_DISTANCE]) * 100.0)
    zeros = np.zeros(len(events))
    columns = (events[:, EV_FRAME], events[:, EV_CLASS], events[:, EV_TRACK], azimuth, distance, zeros)
    rows = np.stack(columns, axis=1).astype(np.int64)
    order = np.lexsort((rows[:, labels.COL_SOURCE], rows[:, labels.COL_CLASS], rows[:, labels.COL_FRAME]))
    return rows[order]


def _dcase2025_mirror(rows: np.ndarray) -> np.ndarray:
    """Left and right exchange, so azimuth changes sign (distance, flags kept)."""
    mirrored = np.array(rows, copy=True)
    mirrored[:, labels.COL_AZIMUTH] = -mirrored[:, labels.COL_AZIMUTH]
    return mirrored


# --------------------------------------------------------------------------------------------------------------
# DCASE2021-2024 (3-D): the native rows are the event table itself


def _dcase2021_reader(with_distance: bool | None) -> Callable[..., np.ndarray]:
    """Reader of reference files; ``with_distance`` None accepts STARSS23's extra distance column as well."""

    def read(path: Path, *, n_classes: int, n_frames: int | None) -> np.ndarray:
        events = dcase2021.read_events(path, n_classes=n_classes, with_distance=with_distance)
        _check_frames(path, events, n_frames)
        return events

    return read


def _check_frames(path: Path, events: np.ndarray, n_frames: int | None) -> None:
    """A label past the clip's last frame would be dropped from the targets: refuse it instead."""
    late = events[:, EV_FRAME] >= n_frames if n_frames is not None else np.zeros(len(events), dtype=bool)
    if late.any():
        frame = int(events[late, EV_FRAME].max())
        raise InputError(path, f"frame {frame} is past the clip's {n_frames} label frames", field="frame")


def _dcase2021_writer(with_distance: bool) -> Callable[[Path, np.ndarray], None]:
    def write(path: Path, events: np.ndarray) -> None:
        dcase2021.write_events(path, events, with_distance=with_distance)

    return write


def _sorted_events(events: np.ndarray) -> np.ndarray:
    events = np.asarray(events, dtype=np.float64)
    return events[np.lexsort((events[:, EV_TRACK], events[:, EV_CLASS], events[:, EV_FRAME]))]


def _identity(events: np.ndarray) -> np.ndarray:
    return np.asarray(events, dtype=np.float64)


def _event_format(name: str, *, n_classes: int, method: str, metric: str, distance: bool | None) -> LabelFormat:
    """A DCASE2021-2024 format: its rows are the event table itself. ``distance`` None reads files with or without
    the distance column (STARSS23 adds one to the DCASE2022-2023 layout) and writes none."""
    return LabelFormat(
        name=name,
        columns=EVENT_COLUMNS,
        dtype=np.float64,
        n_classes=n_classes,
        method=method,
        metric=metric,
        read=_dcase2021_reader(with_distance=distance),
        write=_dcase2021_writer(with_distance=bool(distance)),
        to_events=_identity,
        from_events=_sorted_events,
        mirror=mirror_events,
    )


LABEL_FORMATS: dict[str, LabelFormat] = {
    "dcase2025": LabelFormat(
        name="dcase2025",
        columns=labels.CSV_COLUMNS,
        dtype=np.int64,
        n_classes=labels.N_CLASSES,
        method="maccdoa_xyd",
        metric="dcase2025",
        read=_dcase2025_read,
        write=labels.write_labels,
        to_events=_dcase2025_to_events,
        from_events=_dcase2025_from_events,
        mirror=_dcase2025_mirror,
    ),
    "dcase2021": _event_format("dcase2021", n_classes=12, method="maccdoa", metric="dcase2023", distance=None),
    "dcase2024": _event_format("dcase2024", n_classes=13, method="maccdoa_dist", metric="dcase2024", distance=True),
}


def get_label_format(name: str) -> LabelFormat:
    """The registered label format ``name`` (``dataset.label_format``)."""
    try:
        return LABEL_FORMATS[name]
    except KeyError:
        known = ", ".join(LABEL_FORMATS)
        raise ConfigError("dataset", "label_format", f"unknown label format {name!r} (known: {known})") from None
