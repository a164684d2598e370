"""Inference stage: run a trained checkpoint over an HDF5 feature file and write one prediction file per clip.

The checkpoint names its task (:mod:`seldflow.tasks`), which decodes the network outputs (e.g. multi-ACCDOA with
the baseline's activity threshold and track merging) and writes the task's prediction files.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from seldflow.checkpoints import checkpoint_task, load_checkpoint, load_inference_checkpoint, model_from_checkpoint
from seldflow.errors import InputError
from seldflow.feature_files import LR_SWAP_SUFFIX, read_clip_names
from seldflow.feature_kinds import FEATURE_KINDS, input_channels
from seldflow.io import atomic_dir, read_audio
from seldflow.labels import CLIP_SAMPLES, LABEL_HOP_SECONDS, SAMPLE_RATE
from seldflow.models.runtime import predict_features


def _check_compatible(checkpoint_path: Path, checkpoint: Mapping[str, Any], features_h5: Path, h5: h5py.File) -> None:
    """Refuse features the model was not trained on, rather than producing meaningless predictions."""
    shape = h5["features"].shape
    if len(shape) != 4:
        raise InputError(features_h5, f"features must be (clips, channels, frames, bins), got {shape}")
    if shape[1] != int(checkpoint["in_channels"]):
        raise InputError(
            features_h5,
            f"has {shape[1]} feature channels but {checkpoint_path} was trained on {checkpoint['in_channels']}",
            field="features",
        )
    bins = checkpoint["model_args"].get("n_mels")
    if bins is not None and shape[3] != int(bins):
        raise InputError(
            features_h5, f"has {shape[3]} frequency bins but {checkpoint_path} expects {bins}", field="features"
        )
    kind = h5.attrs.get("kind")
    if kind is not None and str(kind) != str(checkpoint["feature_kind"]):
        raise InputError(
            features_h5,
            f"feature kind {kind!r} differs from {checkpoint['feature_kind']!r} used to train {checkpoint_path}",
            field="kind",
        )


def infer_split(
    *,
    checkpoint: Path,
    features_h5: Path,
    out_dir: Path,
    batch_size: int = 64,
    device: str = "auto",
    **decoding: float,
) -> None:
    """Write the task's prediction file for every original clip of ``features_h5`` (LR-swap twins are skipped).

    ``decoding`` holds the method's thresholds (``activity_threshold``, ``unify_deg``, ``sed_threshold``; config
    ``infer``); ones the method does not use are ignored. A clip without detections still gets a (header-only)
    file: the official scorers silently skip references that lack a prediction file, which would hide their
    missed events. The directory appears only when complete.
    """
    checkpoint, features_h5 = Path(checkpoint), Path(features_h5)
    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(checkpoint, state)
    task = checkpoint_task(checkpoint, state)
    if not features_h5.is_file():
        raise InputError(features_h5, "feature file not found")
    with h5py.File(features_h5, "r") as h5, atomic_dir(out_dir) as tmp:
        _check_compatible(checkpoint, state, features_h5, h5)
        names = read_clip_names(features_h5, h5)
        keep = [i for i, name in enumerate(names) if not name.endswith(LR_SWAP_SUFFIX)]
        features = h5["features"]
        progress = tqdm(total=len(keep), desc=f"infer {features_h5.stem}", unit="clip")
        for start in range(0, len(keep), batch_size):
            index = keep[start : start + batch_size]
            outputs = predict_features(model, features[index], batch_size, device)
            for i, output in zip(index, outputs, strict=True):
                task.write_prediction(tmp / task.prediction_name(names[i]), task.decode(output, decoding))
            progress.update(len(index))
        progress.close()


def _feature_settings(path: Path, checkpoint: Mapping[str, Any]) -> tuple[Callable[..., np.ndarray], dict, int]:
    """The feature function, its keyword arguments and the clip length the model was trained on."""
    config = dict(checkpoint.get("feature_config") or {})
    kind = str(checkpoint["feature_kind"])
    if kind not in FEATURE_KINDS:
        raise InputError(path, f"unknown feature kind {kind!r}", field="feature_kind")
    function = FEATURE_KINDS[kind].function
    accepted = inspect.signature(function).parameters
    settings = {key: value for key, value in config.items() if key in accepted}
    return function, settings, int(config.get("clip_samples", CLIP_SAMPLES))


def predict_file(
    wav: Path,
    checkpoint: Path,
    *,
    device: str = "auto",
    **decoding: float,
) -> np.ndarray:
    """Prediction rows of the checkpoint's task for one recording of any length (stereo, FOA or MIC).

    ``checkpoint`` is a seldflow checkpoint or a released stereo one (converted in memory, see
    :func:`seldflow.checkpoints.load_inference_checkpoint`).

    The recording is cut into consecutive windows of the training clip length (the last one zero-padded), each
    window gets the training features (so PFOA's peak normalisation applies per window, as in training), and the
    decoded frames are offset by the window position; frames past the end of the recording are dropped.
    """
    wav, checkpoint = Path(wav), Path(checkpoint)
    state = load_inference_checkpoint(checkpoint)
    model = model_from_checkpoint(checkpoint, state)
    task = checkpoint_task(checkpoint, state)
    function, settings, window = _feature_settings(checkpoint, state)
    sample_rate = int(settings.get("sample_rate", SAMPLE_RATE))
    channels = input_channels(str(state["feature_kind"]))
    audio = read_audio(wav, sample_rate=sample_rate, channels=channels)
    if audio.shape[1] == 0:
        raise InputError(wav, "empty recording", field="length")
    frames_per_window = round(window / sample_rate / LABEL_HOP_SECONDS)
    total_frames = math.ceil(audio.shape[1] / (sample_rate * LABEL_HOP_SECONDS))
    padded = np.zeros((channels, math.ceil(audio.shape[1] / window) * window), dtype=np.float32)
    padded[:, : audio.shape[1]] = audio
    windows = padded.reshape(channels, -1, window).transpose(1, 0, 2)
    features = np.stack([function(w, **settings) for w in windows])
    if features.shape[1] != int(state["in_channels"]):
        raise InputError(checkpoint, f"model expects {state['in_channels']} feature channels", field="in_channels")
    outputs = predict_features(model, features, batch_size=8, device=device)
    rows = []
    for index, output in enumerate(outputs):
        rows.append(task.shift_frames(task.decode(output, decoding), index * frames_per_window))
    table = np.concatenate(rows)
    return table[task.frame_of(table) < total_frames]


__all__ = ["infer_split", "predict_file"]
