"""Training memory over growing datasets: peak RSS of an epoch streamed from feature shards, versus loaded.

Each measurement runs ``python -m seldflow.bench.memory_child`` in a fresh interpreter (see that module for why not
a process pool), on synthetic shards written in seconds at any size.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import seldflow
from seldflow.bench.records import Figure
from seldflow.shards import shard_count, shard_range, write_index

# The child's module, run with `python -m`.
CHILD_MODULE = "seldflow.bench.memory_child"
# ClipStore memory limits of the two modes: 0 streams every batch from disk, 1 TB holds any split in memory.
MODES = (("streamed", 0), ("in memory", 1 << 20))
# A child reading a few GB takes well under a minute; past this it is stuck, and the benchmark must not hang.
CHILD_TIMEOUT_S = 900.0


def write_synthetic_shards(folder: Path, n_clips: int, shard_clips: int, shape: tuple[int, int, int]) -> Path:
    """Feature shards of random clips plus their index: the layout training reads, at any size, in seconds."""
    rng = np.random.default_rng(0)
    shards = []
    for shard in range(shard_count(n_clips, shard_clips)):
        clips = shard_range(shard, shard_clips, n_clips)
        path = folder / f"shard-{shard:04d}.h5"
        with h5py.File(path, "w") as h5:
            h5.attrs["kind"] = "pfoa"
            h5.attrs["config"] = json.dumps({"kind": "pfoa"})
            h5.attrs["label_frames"] = 50
            h5.attrs["label_format"] = "dcase2025"
            names = np.array([f"clip{i:06d}" for i in clips], dtype=object)
            h5.create_dataset("clips", data=names, dtype=h5py.string_dtype())
            h5.create_dataset("label_rows", data=np.zeros((0, 7), dtype=np.int64))
            features = h5.create_dataset("features", (len(clips), *shape), np.float32, chunks=(1, *shape))
            for start in range(0, len(clips), 16):
                count = min(16, len(clips) - start)
                features[start : start + count] = rng.standard_normal((count, *shape), dtype=np.float32)
        shards.append(path)
    index = folder / "split.h5"
    write_index(shards, index)
    return index


def child_environment() -> dict[str, str]:
    """This process's environment with the folder holding ``seldflow`` first on ``PYTHONPATH``.

    The child must import the same library as its parent, also where seldflow is not installed (a rule script finds
    it on the search path Snakemake hands it, which a new interpreter would not inherit).
    """
    root = str(Path(seldflow.__file__).resolve().parents[1])
    inherited = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, inherited]) if inherited else root}


def epoch_peak_in_child(
    index: Path, batch_size: int, max_memory_mb: int, *, timeout_s: float = CHILD_TIMEOUT_S
) -> float:
    """Peak RSS (MB) of one epoch over ``index``, measured by :mod:`seldflow.bench.memory_child` in a new process."""
    result = child_result(CHILD_MODULE, [str(index), str(batch_size), str(max_memory_mb)], timeout_s=timeout_s)
    return float(result["peak_rss_mb"])


def child_result(module: str, args: Sequence[str], *, timeout_s: float = CHILD_TIMEOUT_S) -> dict[str, Any]:
    """The JSON object a measuring child (``python -m module args...``) prints as its last line of stdout.

    A failing or stuck child is an error naming its exit status and the end of its stderr, never a silent retry.
    """
    command = [sys.executable, "-m", module, *args]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=child_environment(), timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{module} did not finish within {timeout_s:.0f} s ({' '.join(args)})") from exc
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"{module} failed on {' '.join(args)} (exit {result.returncode}): {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def training_memory(
    folder: str | os.PathLike[str],
    *,
    sizes: Sequence[int] = (256, 1024),
    shard_clips: int = 128,
    batch_size: int = 32,
    shape: tuple[int, int, int] = (7, 251, 64),
) -> list[Figure]:
    """Peak RSS of a training epoch streamed from shards, for growing datasets, each in a fresh process.

    Streaming (``max_memory_mb`` 0) should stay flat as the dataset grows: one batch and the HDF5 chunk cache are
    resident, not the split. Loading into memory is measured alongside for contrast. The shards are written to
    ``folder`` and deleted afterwards.
    """
    figures = []
    for n_clips in sizes:
        work = Path(folder) / f"memory-{n_clips}"
        work.mkdir(parents=True, exist_ok=True)
        try:
            index = write_synthetic_shards(work, n_clips, shard_clips, shape)
            gigabytes = n_clips * 4 * math.prod(shape) / 2**30
            shards = shard_count(n_clips, shard_clips)
            for mode, limit in MODES:
                figures.append(
                    Figure(
                        f"training epoch, {n_clips} clips, {mode}",
                        epoch_peak_in_child(index, batch_size, limit),
                        "MB RSS (peak)",
                        f"{gigabytes:.2f} GB of features in {shards} shards, batches of {batch_size}",
                    )
                )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return figures
