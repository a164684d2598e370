"""Feature-extraction jobs side by side, each in a fresh process: peak resident memory and time of the plain
per-file script and of the workflow's feature job over the same WAV folders, at growing folder sizes.

The per-core timings of :func:`seldflow.bench.features.compare_features` run on clips in memory; this adds what a
job holds while it reads files and writes features, and whether that grows with the number of clips.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seldflow.bench.feature_child import SIDES
from seldflow.bench.memory import child_result
from seldflow.bench.records import Figure, peak_origin
from seldflow.io import write_audio

CHILD_MODULE = "seldflow.bench.feature_child"
# How the report names each side's job.
SIDE_LABELS = {"plain": "plain per-file script", "seldflow": "seldflow feature job"}


@dataclass(frozen=True)
class JobRun:
    """One job: its side, feature kind, clip count, seconds and peak RSS (MB), and whether that peak was taken
    after the child's warm-up (False where the system could not reset it: then it counts from the start)."""

    side: str
    kind: str
    clips: int
    seconds: float
    peak_rss_mb: float
    after_warm_up: bool


def write_clip_folder(folder: Path, clips: Sequence[np.ndarray], count: int, sample_rate: int) -> Path:
    """``count`` float32 WAV files cycling through ``clips`` (each ``(channels, samples)``), named in order."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        write_audio(folder / f"clip{index:05d}.wav", clips[index % len(clips)], sample_rate, subtype="FLOAT")
    return folder


def feature_job_memory(
    scratch: str | Path,
    clips_by_kind: dict[str, Sequence[np.ndarray]],
    settings_by_kind: dict[str, dict[str, Any]],
    *,
    sizes: Sequence[int],
    threads: int = 1,
) -> list[JobRun]:
    """Run both sides of every kind at every size in ``sizes`` (clips), one fresh process each, on ``threads``
    threads (the feature rule's one); the scratch folders are removed afterwards."""
    runs = []
    for kind, clips in clips_by_kind.items():
        settings = json.dumps(settings_by_kind[kind])
        for size in sizes:
            work = Path(scratch) / f"{kind}-{size}"
            try:
                audio_dir = write_clip_folder(work / "audio", clips, size, settings_by_kind[kind]["sample_rate"])
                for side in SIDES:
                    out = work / ("plain" if side == "plain" else "features.h5")
                    result = child_result(CHILD_MODULE, [side, kind, str(audio_dir), str(out), settings, str(threads)])
                    runs.append(
                        JobRun(
                            side,
                            kind,
                            size,
                            float(result["seconds"]),
                            float(result["peak_rss_mb"]),
                            bool(result["peak_after_warm_up"]),
                        )
                    )
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return runs


def job_figures(runs: Sequence[JobRun]) -> list[Figure]:
    """One memory figure per job, for the report's memory table."""
    return [
        Figure(
            f"{run.kind} features, {run.clips} clips, {SIDE_LABELS[run.side]}",
            run.peak_rss_mb,
            "MB RSS (peak)",
            f"fresh process, peak {peak_from([run])}; {run.seconds:.2f} s for the folder",
        )
        for run in runs
    ]


def peak_from(runs: Sequence[JobRun]) -> str:
    """Where the peaks of ``runs`` count from: after the one-clip warm-up when every run could restart there."""
    return peak_origin("one clip" if all(run.after_warm_up for run in runs) else None)


def peaks_at(runs: Sequence[JobRun], kind: str, clips: int) -> tuple[float, float]:
    """(plain, seldflow) peak RSS of ``kind``'s jobs over ``clips`` clips."""
    found = {run.side: run.peak_rss_mb for run in runs if run.kind == kind and run.clips == clips}
    return found["plain"], found["seldflow"]
