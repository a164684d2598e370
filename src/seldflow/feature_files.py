"""The HDF5 feature-file layout: written by the features stage, read by training and inference.

One owner for the layout so writer and readers cannot drift apart:

* ``features`` float32 ``(N, C, T, F)``, one chunk per clip;
* ``clips`` ``(N,)`` UTF-8 stems, each LR-swap twin (:data:`LR_SWAP_SUFFIX`) right after its original;
* ``label_rows`` ``(M, 1 + columns)`` for labelled splits: the clip index followed by the label format's native
  columns (int64 for DCASE2025, float64 for the DCASE2021-2024 formats), one row per label row;
* attributes ``kind``, ``sample_rate``, ``label_frames`` (label frames per clip), ``label_format``, ``channels``,
  ``config`` (JSON) and ``digest``.

Training targets are not stored: they depend on the experiment's method, so the task builds them from
``label_rows`` when the clips are read (:mod:`seldflow.clipstore`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from seldflow.errors import InputError
from seldflow.shards import check_sources

# Suffix of the left/right-swapped twin of a clip (same spelling as the seed system's feature files).
LR_SWAP_SUFFIX = "_LRswap"
# Label format of files written before the attribute existed.
DEFAULT_LABEL_FORMAT = "dcase2025"


@dataclass(frozen=True)
class FeatureFile:
    """What training needs to know about one labelled HDF5 feature file, read without loading the arrays."""

    path: Path
    names: tuple[str, ...]
    feature_shape: tuple[int, int, int]  # (channels, frames, bins) of one clip
    kind: str
    config: dict[str, Any]
    label_rows: np.ndarray  # (M, 1 + columns): clip index followed by the native label columns
    label_frames: int
    label_format: str
    summary: dict[str, Any]  # attributes and dataset shapes, for the resume fingerprint
    _starts: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros(1, dtype=np.int64))

    def clip_rows(self, clip: int) -> np.ndarray:
        """Native label rows of local clip ``clip`` (rows are stored in clip order)."""
        return self.label_rows[self._starts[clip] : self._starts[clip + 1], 1:]


def read_clip_names(path: Path, h5: h5py.File) -> list[str]:
    """Clip stems of a feature file (or shard index), checked against the feature rows and the shard files."""
    if "clips" not in h5 or "features" not in h5:
        raise InputError(path, "not a feature file: needs datasets 'features' and 'clips'")
    check_sources(path, h5)
    names = [c.decode("utf-8") if isinstance(c, bytes) else str(c) for c in h5["clips"][()]]
    if len(names) != h5["features"].shape[0]:
        raise InputError(path, f"{len(names)} clip names for {h5['features'].shape[0]} feature rows", field="clips")
    return names


def open_feature_file(path: Path) -> FeatureFile:
    """Check that ``path`` is a labelled feature file with consistent datasets; read its small parts."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "feature file not found")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, f"cannot open as HDF5 ({exc})") from None
    with h5:
        names = read_clip_names(path, h5)
        if "label_rows" not in h5:
            raise InputError(path, "has no 'label_rows' dataset: training needs labelled features", field="label_rows")
        features = h5["features"]
        if features.ndim != 4:
            raise InputError(path, f"features must be (clips, channels, frames, bins), got {features.shape}")
        label_rows = np.asarray(h5["label_rows"][()])
        if label_rows.ndim != 2 or label_rows.shape[1] < 2:
            raise InputError(
                path, f"label_rows must be (rows, 1 + columns), got {label_rows.shape}", field="label_rows"
            )
        clip_column = label_rows[:, 0].astype(np.int64)
        if len(clip_column) and (clip_column.min() < 0 or clip_column.max() >= len(names)):
            raise InputError(path, "label_rows refers to clips that do not exist", field="label_rows")
        if np.any(np.diff(clip_column) < 0):
            raise InputError(path, "label_rows are not in clip order", field="label_rows")
        attrs = {key: _plain(value) for key, value in sorted(h5.attrs.items())}
        try:
            config = json.loads(attrs.get("config", "{}"))
        except json.JSONDecodeError as exc:
            raise InputError(path, f"attribute is not valid JSON ({exc})", field="config") from None
        if "label_frames" not in attrs:
            raise InputError(path, "has no 'label_frames' attribute", field="label_frames")
        summary = {
            "name": path.name,
            "size": path.stat().st_size,
            "attrs": attrs,
            "shapes": {name: list(h5[name].shape) for name in sorted(h5.keys())},
        }
        return FeatureFile(
            path=path,
            names=tuple(names),
            feature_shape=tuple(features.shape[1:]),
            kind=str(attrs.get("kind", "")),
            config=config,
            label_rows=label_rows,
            label_frames=int(attrs["label_frames"]),
            label_format=str(attrs.get("label_format", DEFAULT_LABEL_FORMAT)),
            summary=summary,
            _starts=np.searchsorted(clip_column, np.arange(len(names) + 1), side="left"),
        )


def _plain(value: Any) -> Any:
    """HDF5 attribute as a JSON-friendly value (numpy scalars and bytes become Python types)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_consistent(files: Sequence[FeatureFile]) -> None:
    """All inputs must share feature kind, shape and label format, and clip stems must be unique across them."""
    first = files[0]
    for other in files[1:]:
        if (other.kind, other.feature_shape, other.label_frames) != (
            first.kind,
            first.feature_shape,
            first.label_frames,
        ):
            raise InputError(
                other.path,
                f"features {other.kind!r} {other.feature_shape} differ from {first.kind!r} {first.feature_shape} "
                f"in {first.path}",
                field="features",
            )
        if other.label_format != first.label_format:
            raise InputError(
                other.path,
                f"label format {other.label_format!r} differs from {first.label_format!r} in {first.path}",
                field="label_format",
            )
    seen: dict[str, Path] = {}
    for file in files:
        for name in file.names:
            if name in seen:
                raise InputError(file.path, f"clip {name!r} also appears in {seen[name]}", field="clips")
            seen[name] = file.path
