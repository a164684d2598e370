"""Inference stage: run a trained checkpoint over an HDF5 feature file and write one DCASE2025 CSV per clip.

Multi-ACCDOA decoding follows the reference baseline: a track is active when its DOA vector is longer than the
activity threshold, and active tracks of one class pointing (almost) the same way are merged into one event,
since ADPIT trains all three tracks to copy a lone event.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from seldflow.errors import ConfigError, InputError
from seldflow.features import FEATURE_KINDS, input_channels
from seldflow.io import atomic_dir, read_audio
from seldflow.labels import (
    CLIP_SAMPLES,
    COL_FRAME,
    LABEL_HOP_SECONDS,
    N_CLASSES,
    N_TRACKS,
    SAMPLE_RATE,
    empty_rows,
    write_labels,
)
from seldflow.models import build_model
from seldflow.shards import check_sources

LR_SWAP_SUFFIX = "_LRswap"
CHECKPOINT_KEYS = ("model_state", "model_name", "model_args", "in_channels", "feature_kind")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when present; anything else is passed to :class:`torch.device` as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConfigError("config", "device", f"invalid device {device!r} ({exc})") from None


def predict_features(
    model: nn.Module,
    features: np.ndarray,
    batch_size: int,
    device: str | torch.device,
) -> np.ndarray:
    """Run ``model`` in eval mode over ``(N, C, T, F)`` features in batches; returns float32 ``(N, T', 117)``.

    The model is moved to ``device`` (in place) and its train/eval mode is restored afterwards, so training can
    validate mid-run. ``features`` may also be an h5py dataset: only one batch is read into memory at a time.
    A model that needs batches of a multiple of ``batch_multiple`` clips (HTSAT pairs clips) gets a short batch
    padded with silent clips whose outputs are dropped.
    """
    multiple = int(getattr(model, "batch_multiple", 1))
    device = resolve_device(device) if isinstance(device, str) else device
    model.to(device)
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with torch.inference_mode():
            for start in range(0, len(features), batch_size):
                batch = np.asarray(features[start : start + batch_size], dtype=np.float32)
                padding = -len(batch) % multiple
                padded = np.concatenate([batch, np.zeros((padding, *batch.shape[1:]), dtype=np.float32)])
                output = model(torch.from_numpy(padded).to(device)).float().cpu().numpy()
                outputs.append(output[: len(batch)])
    finally:
        model.train(was_training)
    if not outputs:
        return np.zeros((0, 0, 0), dtype=np.float32)
    return np.concatenate(outputs)


def decode_multiaccdoa(
    output: np.ndarray,
    *,
    activity_threshold: float = 0.5,
    unify_deg: float = 15.0,
) -> np.ndarray:
    """Turn one clip's ``(T, 117)`` multi-ACCDOA output into int64 label rows ``(n, 6)``.

    Per frame and class, a track is active when ``sqrt(x² + y²) > activity_threshold``. Active tracks whose
    azimuths differ by less than ``unify_deg`` are linked, and each connected group is emitted once with its
    (x, y, distance) averaged, under the lowest track index of the group as ``source``. For three active tracks
    this means: no close pair -> three events; one close pair -> that pair merged plus the third track; two or
    three close pairs -> all three merged (a chain 0~1~2 is one group even if 0 and 2 are further apart), which
    is what the reference decoder does. Rows are sorted by frame, class, source; onscreen is always 0.
    """
    output = np.asarray(output, dtype=np.float64)
    expected = N_TRACKS * 3 * N_CLASSES
    if output.ndim != 2 or output.shape[1] != expected:
        raise ValueError(f"expected a (frames, {expected}) multi-ACCDOA output, got {output.shape}")
    n_frames = output.shape[0]
    tracks = output.reshape(n_frames, N_TRACKS, 3, N_CLASSES).transpose(0, 3, 1, 2)  # (T, class, track, xyd)
    active = np.hypot(tracks[..., 0], tracks[..., 1]) > activity_threshold  # (T, class, track)
    azimuth = np.degrees(np.arctan2(tracks[..., 1], tracks[..., 0]))
    linked = _linked_tracks(active, azimuth, unify_deg)  # (T, class, track, track)
    # A track leads its group when no lower-indexed track is linked to it.
    lower = np.tril(np.ones((N_TRACKS, N_TRACKS), dtype=bool), k=-1)
    leads = active & ~np.any(linked & lower, axis=-1)
    members = linked.sum(axis=-1, keepdims=True)
    merged = np.einsum("fcij,fcjk->fcik", linked.astype(np.float64), tracks) / np.maximum(members, 1)
    frame, cls, source = np.nonzero(leads)
    return _rows(frame, cls, source, merged[frame, cls, source])


def _linked_tracks(active: np.ndarray, azimuth: np.ndarray, unify_deg: float) -> np.ndarray:
    """Reflexive-transitive closure of "both active and closer than ``unify_deg``" over the tracks of a class."""
    difference = np.abs((azimuth[..., :, None] - azimuth[..., None, :] + 180.0) % 360.0 - 180.0)
    both = active[..., :, None] & active[..., None, :]
    linked = both & (difference < unify_deg)  # the diagonal is set for every active track
    for _ in range(N_TRACKS - 2):  # each squaring doubles the path length covered; 3 tracks need one
        steps = linked.astype(np.int64)
        linked = linked | (np.einsum("...ij,...jk->...ik", steps, steps) > 0)
    return linked


def _rows(frame: np.ndarray, cls: np.ndarray, source: np.ndarray, xyd: np.ndarray) -> np.ndarray:
    if len(frame) == 0:
        return empty_rows()
    azimuth = np.rint(np.degrees(np.arctan2(xyd[:, 1], xyd[:, 0])))
    azimuth[azimuth == -180.0] = 180.0  # atan2 of (-0, -1); the DCASE output range is (-180, 180]
    distance = np.rint(np.maximum(xyd[:, 2], 0.0) * 100.0)
    rows = np.stack([frame, cls, source, azimuth, distance, np.zeros_like(frame)], axis=1).astype(np.int64)
    order = np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))
    return rows[order]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint safely (tensors and plain types only) and check it has what inference needs."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (pickle, zip, runtime) for a damaged file
        raise InputError(path, f"cannot read checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(checkpoint, Mapping):
        raise InputError(path, "not a seldflow checkpoint (expected a dictionary)")
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise InputError(path, f"not a seldflow checkpoint: missing {', '.join(missing)}", field=missing[0])
    return dict(checkpoint)


def model_from_checkpoint(path: Path, checkpoint: Mapping[str, Any]) -> nn.Module:
    """Rebuild the registered network recorded in ``checkpoint`` and load its weights."""
    model = build_model(checkpoint["model_name"], int(checkpoint["in_channels"]), **checkpoint["model_args"])
    try:
        model.load_state_dict(checkpoint["model_state"])
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit model {checkpoint['model_name']!r} ({exc})") from None
    return model


def read_clip_names(path: Path, h5: h5py.File) -> list[str]:
    """Clip stems of a feature file (or shard index), checked against the feature rows and the shard files."""
    if "clips" not in h5 or "features" not in h5:
        raise InputError(path, "not a feature file: needs datasets 'features' and 'clips'")
    check_sources(path, h5)
    names = [c.decode("utf-8") if isinstance(c, bytes) else str(c) for c in h5["clips"][()]]
    if len(names) != h5["features"].shape[0]:
        raise InputError(path, f"{len(names)} clip names for {h5['features'].shape[0]} feature rows", field="clips")
    return names


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
    activity_threshold: float = 0.5,
    unify_deg: float = 15.0,
    device: str = "auto",
) -> None:
    """Write ``<out_dir>/<stem>.csv`` for every original clip of ``features_h5`` (LR-swap twins are skipped).

    A clip without detections still gets a header-only CSV: the official scorer silently skips references that
    lack a prediction file, which would hide their missed events. The directory appears only when complete.
    """
    checkpoint, features_h5 = Path(checkpoint), Path(features_h5)
    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(checkpoint, state)
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
                rows = decode_multiaccdoa(output, activity_threshold=activity_threshold, unify_deg=unify_deg)
                write_labels(tmp / f"{names[i]}.csv", rows)
            progress.update(len(index))
        progress.close()


def _feature_settings(path: Path, checkpoint: Mapping[str, Any]) -> tuple[Callable[..., np.ndarray], dict, int]:
    """The feature function, its keyword arguments and the clip length the model was trained on."""
    config = dict(checkpoint.get("feature_config") or {})
    kind = str(checkpoint["feature_kind"])
    if kind not in FEATURE_KINDS:
        raise InputError(path, f"unknown feature kind {kind!r}", field="feature_kind")
    function = FEATURE_KINDS[kind]
    accepted = inspect.signature(function).parameters
    settings = {key: value for key, value in config.items() if key in accepted}
    return function, settings, int(config.get("clip_samples", CLIP_SAMPLES))


def predict_file(
    wav: Path,
    checkpoint: Path,
    *,
    activity_threshold: float = 0.5,
    unify_deg: float = 15.0,
    device: str = "auto",
) -> np.ndarray:
    """DCASE2025 label rows for one recording of any length (stereo, or FOA / MIC for those feature kinds).

    The recording is cut into consecutive windows of the training clip length (the last one zero-padded), each
    window gets the training features (so PFOA's peak normalisation applies per window, as in training), and the
    decoded frames are offset by the window position; frames past the end of the recording are dropped.
    """
    wav, checkpoint = Path(wav), Path(checkpoint)
    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(checkpoint, state)
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
        decoded = decode_multiaccdoa(output, activity_threshold=activity_threshold, unify_deg=unify_deg)
        decoded[:, COL_FRAME] += index * frames_per_window
        rows.append(decoded)
    table = np.concatenate(rows) if rows else empty_rows()
    return table[table[:, COL_FRAME] < total_frames]


__all__ = [
    "decode_multiaccdoa",
    "infer_split",
    "load_checkpoint",
    "model_from_checkpoint",
    "predict_features",
    "predict_file",
    "read_clip_names",
    "resolve_device",
]
