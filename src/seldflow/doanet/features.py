"""DOAnet features stage: one HDF5 file per audio format and split, features and label rows of every recording.

The features are the project's FOA (``foa``: 4 log-mel + 3 intensity channels) and microphone-array (``mic``:
4 log-mel + 6 GCC-PHAT channels) kinds of :mod:`seldflow.feature_kinds`, computed with ``doanet.features`` (the
reference: 40-ms window, 20-ms hop, 1024-point FFT, 64 mel bands). Each recording keeps its whole length, cut to
whole label frames: ``frames_per_label`` feature frames (the hop's share of 100 ms) per label frame, so a 60-s
recording of the real dataset and a 5-s embedded clip are stored alike, and training cuts its own sequences.

Layout: ``features/<stem>`` float32 ``(channels, label frames × frames_per_label, n_mels)``, ``labels/<stem>``
the event table of its metadata (:mod:`seldflow.formats.events`), attributes ``kind``, ``frames_per_label`` and
the feature settings. No standardisation here: the training stage fits it on the training folds only.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from seldflow.doanet.settings import AUGMENTED_SPLIT
from seldflow.doanet.store import FEATURES_GROUP, FRAMES_PER_LABEL, LABELS_GROUP
from seldflow.feature_kinds import feature_kind
from seldflow.io import atomic_file, read_audio
from seldflow.tau_nigens2020 import CHANNELS, LABEL_HOP_SECONDS, SAMPLE_RATE, Recording, dev_recordings, read_metadata

FEATURE_SETTINGS = ("n_fft", "win_length", "hop_length", "n_mels")


def frames_per_label(hop_length: int) -> int:
    """Feature frames per 100-ms label frame; a hop that does not divide it is an error."""
    hop = round(LABEL_HOP_SECONDS * SAMPLE_RATE)
    if hop % hop_length:
        raise ValueError(f"feature hop {hop_length} does not divide the {hop}-sample label frame")
    return hop // hop_length


def recording_features(audio: np.ndarray, kind: str, settings: Mapping[str, Any]) -> np.ndarray:
    """Features ``(channels, label frames × frames_per_label, n_mels)`` of one recording ``(4, samples)``."""
    per_label = frames_per_label(settings["hop_length"])
    label_frames = audio.shape[1] // (per_label * settings["hop_length"])
    function = functools.partial(
        feature_kind(kind).function, sample_rate=SAMPLE_RATE, **{key: settings[key] for key in FEATURE_SETTINGS}
    )
    return function(audio)[:, : label_frames * per_label]


def split_recordings(root: str | os.PathLike[str], fmt: str, split: str) -> list[Recording]:
    """The recordings of a DOAnet split (its folds) under ``root``; the augmented tree holds only its own scenes."""
    return dev_recordings(root, fmt, split=None if split == AUGMENTED_SPLIT else split)


def extract_features(
    recordings: Sequence[Recording], kind: str, settings: Mapping[str, Any], out_h5: str | os.PathLike[str]
) -> None:
    """Write the features and label rows of ``recordings`` (one format, one split) into ``out_h5`` atomically."""
    if not recordings:
        raise ValueError("no recordings to extract")
    with atomic_file(out_h5) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["kind"] = kind
        h5.attrs[FRAMES_PER_LABEL] = frames_per_label(settings["hop_length"])
        h5.attrs["settings"] = json.dumps({key: settings[key] for key in FEATURE_SETTINGS}, sort_keys=True)
        features, labels = h5.create_group(FEATURES_GROUP), h5.create_group(LABELS_GROUP)
        for recording in tqdm(recordings, desc=f"{kind} features", unit="recording"):
            audio = read_audio(recording.audio, sample_rate=SAMPLE_RATE, channels=CHANNELS)
            features.create_dataset(recording.stem, data=recording_features(audio, kind, settings), track_times=False)
            labels.create_dataset(recording.stem, data=read_metadata(recording.metadata), track_times=False)
