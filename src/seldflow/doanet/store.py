"""The DOAnet feature file (written by the features stage, read by training and inference) and its standardisation.

``features/<stem>`` float32 ``(channels, frames, n_mels)`` and ``labels/<stem>`` (an event table,
:mod:`seldflow.formats.events`) per recording; the attribute ``frames_per_label`` says how many feature frames
make one 100-ms label frame. The :class:`Scaler` is fitted by training on the training recordings only and stored
in the DOAnet checkpoint, so inference standardises with the same statistics.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import h5py
import numpy as np

from seldflow.errors import InputError

FEATURES_GROUP = "features"
LABELS_GROUP = "labels"
FRAMES_PER_LABEL = "frames_per_label"
# Guards the standardisation of a constant feature (a silent channel): divide by 1 instead of 0.
MIN_STD = 1e-8


@dataclass(frozen=True)
class FeatureSplit:
    """One feature file in memory: features and label rows keyed by recording stem, and its frames per label."""

    features: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    frames_per_label: int

    @property
    def channels(self) -> int:
        return next(iter(self.features.values())).shape[0]


def read_split(path: str | os.PathLike[str]) -> FeatureSplit:
    """Every recording of a DOAnet feature file, stems in sorted order."""
    try:
        with h5py.File(path, "r") as h5:
            stems = sorted(h5[FEATURES_GROUP])
            if not stems:
                raise InputError(path, "feature file holds no recordings", field=FEATURES_GROUP)
            return FeatureSplit(
                {stem: h5[FEATURES_GROUP][stem][()] for stem in stems},
                {stem: h5[LABELS_GROUP][stem][()] for stem in stems},
                int(h5.attrs[FRAMES_PER_LABEL]),
            )
    except (OSError, KeyError) as exc:
        raise InputError(path, f"not a DOAnet feature file ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Scaler:
    """Per channel and mel band mean and standard deviation, ``(channels, 1, n_mels)`` each."""

    mean: np.ndarray
    std: np.ndarray

    def apply(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std).astype(np.float32)


def fit_scaler(splits: Sequence[FeatureSplit]) -> Scaler:
    """Statistics over every frame of the given (training) recordings, accumulated in float64."""
    total, squares, count = 0.0, 0.0, 0
    for split in splits:
        for features in split.features.values():
            values = features.astype(np.float64)
            total = total + values.sum(axis=1, keepdims=True)
            squares = squares + (values**2).sum(axis=1, keepdims=True)
            count += values.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return Scaler(mean.astype(np.float32), np.maximum(std, MIN_STD).astype(np.float32))
