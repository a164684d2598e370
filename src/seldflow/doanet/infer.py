"""DOAnet inference stage: a trained DOAnet over the test recordings, one DCASE2020-style prediction CSV each.

Each recording is standardised with the scaler the checkpoint carries (fitted on the training folds), read whole,
and its active slots written as ``frame,class,track,azimuth,elevation`` rows (:mod:`seldflow.doanet.outputs`: class
0, track = slot, activity by the network's rule, the head's at ``sigmoid > 0.5``). A recording with no active slot
gets an empty file, so every reference has its prediction file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from seldflow.doanet.model import model_from_doanet_checkpoint
from seldflow.doanet.outputs import recording_rows
from seldflow.doanet.store import Scaler, read_split
from seldflow.errors import InputError
from seldflow.formats.dcase2021 import write_events
from seldflow.io import atomic_dir
from seldflow.models.runtime import resolve_device


def write_predictions(
    checkpoint: str | os.PathLike[str],
    features: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    infer: Mapping[str, Any],
    device: str = "auto",
) -> list[str]:
    """Predict every recording of the feature file ``features``; write ``<stem>.csv`` files into ``out_dir``
    (replaced atomically) and return the stems."""
    model, state = model_from_doanet_checkpoint(checkpoint)
    split = read_split(features)
    channels = int(state["model_args"]["in_channels"])
    if split.channels != channels or split.frames_per_label != state["frames_per_label"]:
        raise InputError(
            features,
            f"{split.channels}-channel features at {split.frames_per_label} frames per label frame; the network "
            f"of {checkpoint} reads {channels} channels at {state['frames_per_label']}",
            field="features",
        )
    scaler = Scaler(np.asarray(state["scaler_mean"]), np.asarray(state["scaler_std"]))
    target = resolve_device(device)
    model.to(target)
    with atomic_dir(out_dir) as tmp:
        for stem, values in tqdm(split.features.items(), desc="DOAnet inference", unit="recording"):
            rows = recording_rows(model, scaler.apply(values), state["activity_rule"], infer, target)
            write_events(Path(tmp) / f"{stem}.csv", rows)
    return list(split.features)
