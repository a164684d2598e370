"""One feature-extraction job in a process of its own: its time and its peak resident memory.

Run as ``python -m seldflow.bench.feature_child SIDE KIND AUDIO_DIR OUT SETTINGS_JSON THREADS``; prints
``{"seconds": ..., "peak_rss_mb": ...}`` as the last line of stdout. ``plain`` is the per-file script of the
reference recipes (read each WAV with soundfile, the plain per-channel features of :mod:`seldflow.bench.features`,
one ``.npy`` per clip into the folder OUT); ``seldflow`` is the workflow's feature job
(:func:`seldflow.features.extract_split` into the HDF5 file OUT); both on THREADS threads (torch's and the BLAS
pools, as the feature rule sets them). Both sides import both implementations, so their peaks differ by what the
job holds, not by imports. :func:`seldflow.bench.feature_jobs.feature_job_memory` starts it.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from seldflow.bench.features import NAIVE_FEATURES, thread_limit
from seldflow.features import extract_split
from seldflow.process_memory import peak_rss_mb

SIDES = ("plain", "seldflow")


def plain_job(kind: str, audio_dir: Path, out_dir: Path, settings: dict[str, Any]) -> None:
    """Per file: read, compute the plain features, save them as ``<stem>.npy``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    naive = NAIVE_FEATURES[kind]
    for path in sorted(audio_dir.glob("*.wav")):
        audio, _ = sf.read(path, dtype="float32", always_2d=True)
        np.save(out_dir / f"{path.stem}.npy", naive(audio.T, **settings))


def seldflow_job(kind: str, audio_dir: Path, out_h5: Path, settings: dict[str, Any]) -> None:
    """The workflow's feature job over the whole folder, without labels or twins."""
    extract_split(audio_dir, out_h5, metadata_dir=None, kind=kind, lr_swap=False, **settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the job once, print the result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m seldflow.bench.feature_child", description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=SIDES)
    parser.add_argument("kind", choices=sorted(NAIVE_FEATURES))
    parser.add_argument("audio_dir", type=Path, help="folder of WAV clips of the kind's channel count")
    parser.add_argument("out", type=Path, help="output folder (plain) or HDF5 file (seldflow)")
    parser.add_argument("settings", help="JSON object: sample_rate, n_fft, win_length, hop_length, n_mels")
    parser.add_argument("threads", type=int, help="torch and BLAS threads")
    args = parser.parse_args(argv)
    settings = json.loads(args.settings)
    job = plain_job if args.side == "plain" else seldflow_job
    gc.collect()
    start = time.perf_counter()
    with thread_limit(args.threads):
        job(args.kind, args.audio_dir, args.out, settings)
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
