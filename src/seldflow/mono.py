"""AdapterBit's mono mode as a data source: single-source clips of the sound bank as pseudo-FOA at random directions.

PSELDNets adapts a pretrained network from mono recordings alone: each mono clip becomes a first-order Ambisonics
plane wave from a direction drawn at random (:func:`seldflow.augment.spatialize_mono`), and its labels are rewritten
to that direction. Here a ``mono`` split is rendered once, as a DCASE2021-style split (``foa_dev/<split>/*.wav`` and
``metadata_dev/<split>/*.csv``), so the features stage and training read it like any other split and an experiment
selects it as its training data with ``train.mono_splits``.

Clip k holds one event: a bank clip of class ``k mod n_classes`` (so every class gets the same share of a small
split), placed at a random onset within the clip, from one random direction for its whole length. Its content
depends only on (seed, fold, k), never on the clip count.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seldflow.augment import spatialize_mono
from seldflow.errors import ConfigError
from seldflow.formats import dcase2021
from seldflow.formats.events import event_table
from seldflow.io import atomic_dir, write_audio
from seldflow.labels import LABEL_HOP_SECONDS
from seldflow.pretrain.chain import MONO_KEY, mono_splits
from seldflow.synthesize.mixtures import clip_rng
from seldflow.synthesize.sources import CLASS_FOLDERS, list_bank, read_source


def check_mono(
    config: Mapping[str, Any], trains: Mapping[str, Mapping[str, Any]], *, n_classes: int, source: str = "config"
) -> None:
    """Refuse an experiment's ``mono_splits`` that cannot run, naming the key, before any job.

    ``n_classes`` is the dataset's class count as :func:`seldflow.config.dataset_classes` resolves it (passed in: the
    rule's env, torch.yaml, has none of the config module's yaml and jsonschema).

    The splits must be defined in the ``mono`` section; they hold FOA audio with DCASE2021 labels of the source
    bank's 13 classes, so the features must be ``foa`` and the dataset's labels ``dcase2021`` with 13 classes; the
    clips come from the synthesis source bank (the procedural one of a synthetic dataset, or
    ``source_bank.path``); and an experiment trains either on mono splits or on pretraining subsets.
    """
    defined = (config.get("mono") or {}).get("splits", {})
    for name, train in trains.items():
        splits = mono_splits(train)
        if not splits:
            continue
        key = f"{'train' if name == config['experiment'] else f'experiments.{name}'}.{MONO_KEY}"
        unknown = [split for split in splits if split not in defined]
        if unknown:
            raise ConfigError(source, key, f"not splits of mono.splits: {', '.join(unknown)}")
        if train.get("pretraining_subsets"):
            raise ConfigError(source, key, "an experiment trains on mono splits or on pretraining subsets, not both")
        if config["features"]["kind"] != "foa":
            message = (
                f"mono splits hold pseudo-FOA audio; features.kind '{config['features']['kind']}' does not read it"
            )
            raise ConfigError(source, key, message)
        if config["dataset"]["label_format"] != "dcase2021":
            message = (
                f"mono splits carry dcase2021 labels; dataset.label_format is '{config['dataset']['label_format']}'"
            )
            raise ConfigError(source, key, message)
        if n_classes != len(CLASS_FOLDERS):
            message = (
                f"mono clips are labelled with the source bank's {len(CLASS_FOLDERS)} classes; the dataset has "
                f"{n_classes} (dataset.n_classes)"
            )
            raise ConfigError(source, key, message)
        synthesis = config.get("synthesis") or {}
        if config["dataset"]["source"] != "synthetic" and not (synthesis.get("source_bank") or {}).get("path"):
            message = (
                "mono clips come from the synthesis source bank: a synthetic dataset or synthesis.source_bank.path"
            )
            raise ConfigError(source, key, message)


def clip_stem(fold: int, k: int) -> str:
    """The file stem of mono clip k (0-based; the name counts from 1)."""
    return f"fold{fold}_mono{k + 1:04d}"


def mono_clip(
    rng: np.random.Generator,
    files: Mapping[int, list[Path]],
    load: Callable[[Path], np.ndarray],
    class_index: int,
    *,
    n_samples: int,
    sample_rate: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One clip of ``n_samples``: a bank clip of ``class_index`` at a random onset, spatialised at a random direction.

    Returns the ``(4, n_samples)`` FOA audio and the clip's event table (track 0, every 100-ms label frame the
    event touches, the drawn direction in whole degrees, no distance).
    """
    source = load(files[class_index][int(rng.integers(len(files[class_index])))])[:n_samples]
    onset = int(rng.integers(n_samples - source.size + 1))
    mono = np.zeros(n_samples, dtype=np.float32)
    mono[onset : onset + source.size] = source
    hop = round(LABEL_HOP_SECONDS * sample_rate)
    n_frames = -(-n_samples // hop)
    frames = np.arange(onset // hop, min(n_frames, -(-(onset + source.size) // hop)))
    nothing = np.zeros(frames.size)
    events = event_table(frames, np.full(frames.size, class_index), nothing, nothing, nothing, nothing + np.nan)
    foa, events, _ = spatialize_mono(mono, events, rng)
    return foa, events


def render_mono_split(
    bank_dir: str | os.PathLike[str],
    out_root: str | os.PathLike[str],
    split: str,
    *,
    clips: int,
    fold: int,
    source_split: str,
    clip_seconds: float,
    sample_rate: int,
    seed: int,
) -> int:
    """Write ``clips`` mono clips of the bank's ``source_split`` as the DCASE2021-style split ``split`` under
    ``out_root`` (``foa_dev/<split>/`` and ``metadata_dev/<split>/``, each replaced atomically). Returns the count."""
    if clips < 1:
        raise ValueError(f"a mono split needs at least one clip, got {clips}")
    files = list_bank(bank_dir, source_split)
    classes = sorted(files)
    n_samples = round(clip_seconds * sample_rate)
    root = Path(out_root)
    with atomic_dir(root / "foa_dev" / split) as audio_tmp, atomic_dir(root / "metadata_dev" / split) as label_tmp:
        for k in range(clips):
            foa, events = mono_clip(
                clip_rng(seed, fold, k),
                files,
                lambda path: read_source(path, sample_rate),
                classes[k % len(classes)],
                n_samples=n_samples,
                sample_rate=sample_rate,
            )
            write_audio(audio_tmp / f"{clip_stem(fold, k)}.wav", foa, sample_rate)
            dcase2021.write_events(label_tmp / f"{clip_stem(fold, k)}.csv", events)
    return clips


__all__ = ["MONO_KEY", "check_mono", "clip_stem", "mono_clip", "render_mono_split"]
