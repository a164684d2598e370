"""The training input pipeline against the model step: can the clip store feed the model as fast as it steps?

The store is timed alone over one epoch of shuffled batches of the demo's size, streamed from HDF5 shards (the
full-dataset mode, ``max_memory_mb`` 0) and held in memory, on synthetic shards written in seconds; the model
step comes from the side-by-side rows' lone jobs (:mod:`seldflow.bench.concurrency`). Streamed batches are read one
ahead in a thread while the model steps (:func:`seldflow.clipstore.iterate_batches`), so the step waits on the
files only where the store is the slower of the two.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from seldflow.bench.memory import write_synthetic_shards
from seldflow.bench.records import Comparison, Figure
from seldflow.clipstore import ClipStore, epoch_batches
from seldflow.feature_files import open_feature_file
from seldflow.tasks import build_task

# Clips per synthetic shard, as the workflow's default shard size.
SHARD_CLIPS = 128


def store_seconds_per_batch(index: Path, *, clips: int, batch: int, max_memory_mb: float) -> float:
    """Seconds per batch of one shuffled epoch read from a :class:`ClipStore` over the ``clips`` clips of
    ``index``, streamed (``max_memory_mb`` 0) or held in memory."""
    store = ClipStore([open_feature_file(index)], np.arange(clips), build_task(None), max_memory_mb=max_memory_mb)
    try:
        batches = epoch_batches(clips, batch, seed=0, epoch=0)
        start = time.perf_counter()
        for positions in batches:
            store.batch(positions)
        return (time.perf_counter() - start) / len(batches)
    finally:
        store.close()


def input_pipeline_rows(
    folder: str | Path, *, clips: int, batch: int, shape: tuple[int, int, int], step_seconds: float, threads: int
) -> tuple[Comparison, list[Figure]]:
    """The streamed store against the model step (ratio > 1: the store is faster), and samples/s of each; the
    synthetic shards are written once in ``folder`` for both modes and removed afterwards."""
    work = Path(folder) / f"store-{clips}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        index = write_synthetic_shards(work, clips, SHARD_CLIPS, shape)
        streamed, in_memory = (
            store_seconds_per_batch(index, clips=clips, batch=batch, max_memory_mb=limit) for limit in (0, 1 << 20)
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    comparison = Comparison(
        name="input pipeline: streamed clip store vs model step",
        work=f"one batch of {batch} clips {shape}: read from HDF5 shards (page cache) / one training step",
        a_label="training step (forward + backward + AdamW)",
        a_seconds=step_seconds,
        b_label="ClipStore.batch, streamed",
        b_seconds=streamed,
        meaning="how many batches the store reads in one step's time (> 1: the model, not the files, sets the pace)",
        threads=f"{threads} (step); 1 (store)",
    )
    figures = [
        Figure(
            f"clip store, {label}", batch / seconds, "samples/s", f"{clips} synthetic clips {shape}, batches of {batch}"
        )
        for label, seconds in (("streamed", streamed), ("in memory", in_memory))
    ]
    figures.append(Figure("training step", batch / step_seconds, "samples/s", f"batches of {batch}, {threads} threads"))
    return comparison, figures
