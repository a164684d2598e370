"""One training epoch's peak resident memory, measured in a process of its own.

Run as ``python -m seldflow.bench.memory_child INDEX BATCH_SIZE MAX_MEMORY_MB``; prints ``{"peak_rss_mb": ...}``
as the last line of stdout. :func:`seldflow.bench.memory.training_memory` starts it once per dataset size and mode,
so each figure starts from an empty heap.

An importable module entry point rather than a ``multiprocessing`` pool: a ``spawn`` child re-runs the parent's
main module, which inside a Snakemake rule is the rule's script; without Snakemake's preamble it dies on the
missing ``snakemake`` object, and the pool starts a replacement forever.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def epoch_peak_rss_mb(index: str | Path, batch_size: int, max_memory_mb: int) -> float:
    """Largest resident memory (MB) sampled while opening the store and reading one shuffled epoch of batches.

    Sampled current RSS rather than the process's lifetime peak: importing torch can briefly use more than a small
    dataset does (compiling bytecode in a fresh environment), which would hide what the epoch itself holds.
    """
    import psutil

    from seldflow.clipstore import ClipStore, epoch_batches
    from seldflow.feature_files import open_feature_file
    from seldflow.tasks import build_task

    process = psutil.Process()
    file = open_feature_file(Path(index))
    store = ClipStore([file], np.arange(len(file.names)), build_task(None), max_memory_mb=max_memory_mb)
    peak = process.memory_info().rss
    for batch in epoch_batches(len(store), batch_size, seed=0, epoch=0):
        store.batch(batch)
        peak = max(peak, process.memory_info().rss)
    store.close()
    return peak / 2**20


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, measure, print the result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m seldflow.bench.memory_child", description=__doc__.splitlines()[0])
    parser.add_argument("index", help="features file (a shard index) to read one epoch from")
    parser.add_argument("batch_size", type=int, help="clips per batch")
    parser.add_argument("max_memory_mb", type=int, help="ClipStore memory limit: 0 streams, a large value loads all")
    args = parser.parse_args(argv)
    print(json.dumps({"peak_rss_mb": epoch_peak_rss_mb(args.index, args.batch_size, args.max_memory_mb)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
