"""Figures read from the workflow's outputs: synthesis and feature clips/s, inference real-time factor, metrics.

Clip counts come from the outputs themselves (WAVs per split, clips per features HDF5 file) and times from the
stage timings of :mod:`seldflow.bench.stages`, so the figures describe the run that last produced each output.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py

from seldflow.bench.records import Figure, StageTiming
from seldflow.bench.stages import sum_jobs


def count_wavs(folder: str | os.PathLike[str]) -> int:
    """Number of ``*.wav`` files directly in ``folder`` (0 when it does not exist)."""
    path = Path(folder)
    return sum(1 for _ in path.glob("*.wav")) if path.is_dir() else 0


def h5_clip_info(path: str | os.PathLike[str]) -> dict[str, float]:
    """Clips in a features file (LR-swap twins included), twins among them and the seconds of audio of one clip."""
    with h5py.File(path, "r") as h5:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in h5["clips"][()]]
        config = json.loads(h5.attrs["config"])
        sample_rate = float(h5.attrs["sample_rate"])
    twins = sum(1 for n in names if n.endswith("_LRswap"))
    clip_samples = float(config.get("clip_samples", 5 * sample_rate))
    return {"clips": float(len(names)), "twins": float(twins), "clip_seconds": clip_samples / sample_rate}


def _split_jobs(timings: Sequence[StageTiming], stage: str, split: str) -> StageTiming | None:
    """The jobs of one stage and split (its shards, or the single job), summed into one timing; None if none."""
    jobs = [t for t in timings if t.stage == stage and split in t.job.split("/")[1:]]
    return sum_jobs(stage, jobs) if jobs else None


def throughput(
    timings: Sequence[StageTiming],
    *,
    audio_dirs: Mapping[str, str | os.PathLike[str]],
    feature_files: Mapping[str, str | os.PathLike[str]],
    test_splits: Sequence[str],
) -> list[Figure]:
    """Synthesis and feature clips/s per split and inference real-time factor per test split.

    ``audio_dirs`` / ``feature_files`` map each split to its WAV folder and features HDF5 file. Synthesis counts the
    split's WAVs over the summed wall time of its ``mixtures`` shard jobs (absent when the dataset was not
    synthesized); features count the clips of the split's file (twins included, each is a feature extraction) over
    its ``features`` shard jobs: per job-second, so shards running side by side finish sooner than this suggests.
    Inference divides the ``infer`` job's wall time (model loading included) by the seconds of audio it read.
    """
    figures = []
    for split, folder in audio_dirs.items():
        job = _split_jobs(timings, "mixtures", split)
        n_wavs = count_wavs(folder)
        if job is not None and n_wavs and job.wall_s > 0:
            figures.append(
                Figure(
                    f"synthesis {split}",
                    n_wavs / job.wall_s,
                    "clips/s",
                    f"{n_wavs} mixtures (FOA + stereo + labels) in {job.wall_s:.1f} s, {job.job}",
                )
            )
    for split, path in feature_files.items():
        job = _split_jobs(timings, "features", split)
        if job is None or not Path(path).is_file() or job.wall_s <= 0:
            continue
        info = h5_clip_info(path)
        twins = f", {int(info['twins'])} of them LR-swap twins" if info["twins"] else ""
        figures.append(
            Figure(
                f"features {split}",
                info["clips"] / job.wall_s,
                "clips/s",
                f"{int(info['clips'])} clips{twins}, in {job.wall_s:.1f} s of {job.job} (reading + extraction)",
            )
        )
    for split in test_splits:
        job = _split_jobs(timings, "infer", split)
        path = feature_files.get(split)
        if job is None or path is None or not Path(path).is_file():
            continue
        info = h5_clip_info(path)
        audio_seconds = (info["clips"] - info["twins"]) * info["clip_seconds"]
        if audio_seconds > 0:
            figures.append(
                Figure(
                    f"inference RTF {split}",
                    job.wall_s / audio_seconds,
                    "s/s",
                    f"{job.wall_s:.1f} s of inference job (model loading included) / {audio_seconds:.0f} s of audio;"
                    " below 1 is faster than real time",
                )
            )
    return figures


def metric_figures(metrics: Mapping[str, Any]) -> list[Figure]:
    """F, DOAE, RDE (and DistE) of a ``metrics.json``; missing or null values are NaN."""
    spec = [
        ("F", "", "macro F (20°, relative distance 1.0), fraction"),
        ("DOAE", "°", "DOA error of paired tracks"),
        ("RDE", "", "relative distance error of paired tracks"),
        ("DistE", "cm", "absolute distance error of paired tracks"),
    ]
    return [
        Figure(name, math.nan if metrics.get(name) is None else float(metrics[name]), unit, meaning)
        for name, unit, meaning in spec
    ]
