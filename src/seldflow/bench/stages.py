"""Stage costs: the Snakemake ``benchmark:`` TSV of every job, per job and summed per rule.

Snakemake writes wall time ``s``, ``cpu_time`` and ``max_rss`` of each job it benchmarks under
``results/benchmarks/`` and ``results/<experiment>/benchmarks/``; this module reads them back into
:class:`~seldflow.bench.records.StageTiming` records, in the workflow's order.
"""

from __future__ import annotations

import csv
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

from seldflow.bench.records import StageTiming


def _number(text: str) -> float:
    """A benchmark cell as a float; Snakemake writes ``NA`` (or '-') for what it could not measure."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def read_benchmark_tsv(path: str | os.PathLike[str]) -> dict[str, float]:
    """Wall seconds ``s``, ``cpu_time`` and ``max_rss`` (MB) of one Snakemake benchmark TSV.

    A file with several rows (``repeat()``) gives the mean wall and CPU time and the largest peak RSS; ``repeats``
    counts the rows. Missing columns or ``NA`` cells give NaN.
    """
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: benchmark file has no data row")

    def column(name: str) -> list[float]:
        return [_number(row.get(name, "")) for row in rows]

    def mean(values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return statistics.fmean(finite) if finite else math.nan

    rss = [v for v in column("max_rss") if math.isfinite(v)]
    return {
        "s": mean(column("s")),
        "cpu_time": mean(column("cpu_time")),
        "max_rss": max(rss) if rss else math.nan,
        "repeats": float(len(rows)),
    }


def collect_stage_timings(
    benchmark_dirs: Iterable[str | os.PathLike[str]], *, exclude: Iterable[str | os.PathLike[str]] = ()
) -> list[StageTiming]:
    """Every ``*.tsv`` below each folder, as :class:`StageTiming` sorted by stage then job.

    The stage is the first path component below the folder without ``.tsv`` (``room/room1.tsv`` -> ``room``,
    ``train.tsv`` -> ``train``), the rule name under seldflow's benchmark layout. Files in ``exclude`` (e.g. the
    benchmark rule's own file) are skipped; missing folders are skipped too.
    """
    skipped = {Path(p).resolve() for p in exclude}
    timings = []
    for folder in map(Path, benchmark_dirs):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.tsv")):
            if path.resolve() in skipped:
                continue
            relative = path.relative_to(folder).with_suffix("")
            values = read_benchmark_tsv(path)
            timings.append(
                StageTiming(
                    stage=relative.parts[0],
                    job=relative.as_posix(),
                    wall_s=values["s"],
                    cpu_s=values["cpu_time"],
                    max_rss_mb=values["max_rss"],
                    repeats=int(values["repeats"]),
                )
            )
    return sorted(timings, key=lambda t: (t.stage, t.job))


def stage_totals(timings: Sequence[StageTiming]) -> list[StageTiming]:
    """Per-stage sums of wall and CPU time and the largest peak RSS (``job`` holds the job count)."""
    stages = sorted({t.stage for t in timings}, key=_stage_order)
    return [sum_jobs(stage, [t for t in timings if t.stage == stage]) for stage in stages]


def sum_jobs(stage: str, jobs: Sequence[StageTiming]) -> StageTiming:
    """Jobs as one timing: wall and CPU seconds added, the largest peak RSS; ``job`` says how many jobs."""
    rss = [t.max_rss_mb for t in jobs if math.isfinite(t.max_rss_mb)]
    return StageTiming(
        stage=stage,
        job=f"{len(jobs)} job{'s' if len(jobs) != 1 else ''}",
        wall_s=_nansum(t.wall_s for t in jobs),
        cpu_s=_nansum(t.cpu_s for t in jobs),
        max_rss_mb=max(rss) if rss else math.nan,
    )


# Workflow order of seldflow's rules; unknown stages follow alphabetically.
_STAGE_ORDER = (
    "download",
    "source_bank",
    "room",
    "measured_room",
    "mixtures",
    "synthetic_split",
    "starss_stereo",
    "starss_windows",
    "split_check",
    "features",
    "feature_index",
    "train",
    "infer",
    "score",
    "report",
)


def _stage_order(stage: str) -> tuple[int, str]:
    return (_STAGE_ORDER.index(stage) if stage in _STAGE_ORDER else len(_STAGE_ORDER), stage)


def _nansum(values: Iterable[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return math.fsum(finite) if finite else math.nan
