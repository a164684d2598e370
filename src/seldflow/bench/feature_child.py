"""One feature-extraction job in a process of its own: its time and its peak resident memory.

Run as ``python -m seldflow.bench.feature_child SIDE KIND AUDIO_DIR OUT SETTINGS_JSON THREADS``; prints
``{"seconds": ..., "peak_rss_mb": ..., "peak_after_warm_up": ...}`` as the last line of stdout. ``plain`` is the
per-file script of the reference recipes (read each WAV with soundfile, the plain per-channel features of
:mod:`seldflow.bench.features`, one ``.npy`` per clip into the folder OUT); ``seldflow`` is the workflow's feature
job (:func:`seldflow.features.extract_split` into the HDF5 file OUT); both on THREADS threads (torch's and the
BLAS pools, as the feature rule sets them). Before the measured job, both sides run once over the folder's first clip
and the process's peak starts afresh (:func:`seldflow.process_memory.reset_peak`): imports, first-call code pages
and cached filters are then the same on either side, and the peaks differ by what the job holds.
:func:`seldflow.bench.feature_jobs.feature_job_memory` starts it.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from seldflow.bench.features import NAIVE_FEATURES, thread_limit
from seldflow.features import extract_split
from seldflow.process_memory import peak_rss_mb, reset_peak

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


def warm_up(kind: str, audio_dir: Path, settings: dict[str, Any]) -> bool:
    """Run both sides over the first clip of ``audio_dir`` (outputs in a temporary folder), then start the peak
    afresh; True when it could be reset (Linux)."""
    first = min(audio_dir.glob("*.wav"))
    with tempfile.TemporaryDirectory(prefix="seldflow-warm-up-") as scratch:
        one_clip = Path(scratch) / "audio"
        one_clip.mkdir()
        (one_clip / first.name).symlink_to(first.resolve())
        plain_job(kind, one_clip, Path(scratch) / "plain", settings)
        seldflow_job(kind, one_clip, Path(scratch) / "features.h5", settings)
    gc.collect()
    return reset_peak()


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
    with thread_limit(args.threads):
        warmed = warm_up(args.kind, args.audio_dir, settings)
        start = time.perf_counter()
        job(args.kind, args.audio_dir, args.out, settings)
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "peak_after_warm_up": warmed}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
