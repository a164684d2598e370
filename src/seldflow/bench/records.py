"""The benchmark report's records: stage timings, derived figures, timed comparisons and the report holding them.

Plain frozen dataclasses shared by every part of :mod:`seldflow.bench`, so the measuring modules and the writer
depend on these shapes rather than on each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StageTiming:
    """One job's Snakemake benchmark: ``stage`` is the rule, ``job`` the benchmark file's path below the folder."""

    stage: str
    job: str
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    repeats: int = 1


@dataclass(frozen=True)
class Figure:
    """A derived figure (throughput, real-time factor, metric) with its unit and a one-line meaning."""

    name: str
    value: float
    unit: str
    meaning: str


@dataclass(frozen=True)
class Comparison:
    """Two timings of the same work; ``ratio = a_seconds / b_seconds`` and ``meaning`` says how to read it.

    Optionally what the measurement ran under and used: each side's peak resident memory (MB, each measured in a
    fresh process) and where it counts from (:func:`peak_origin`), the threads it ran on and the machine's 1-minute
    load average when it started (NaN / empty where not measured).
    """

    name: str
    work: str
    a_label: str
    a_seconds: float
    b_label: str
    b_seconds: float
    meaning: str
    check: str = ""
    a_peak_mb: float = math.nan
    b_peak_mb: float = math.nan
    peak_from: str = ""
    threads: str = ""
    load_average: float = math.nan

    @property
    def ratio(self) -> float:
        return self.a_seconds / self.b_seconds if self.b_seconds > 0 else math.nan


def peak_origin(warm_up: str | None) -> str:
    """Where a measuring child's peak counts from: after both sides ran ``warm_up`` (what they ran, e.g. "one
    clip"), or, where there was none or the peak could not be restarted, since the process started."""
    if warm_up:
        return f"after both sides ran {warm_up}"
    return "since the process started, imports of both sides included"


@dataclass
class BenchReport:
    """Everything ``benchmark.md`` and ``benchmark.csv`` hold."""

    title: str = "seldflow benchmark"
    environment: dict[str, str] = field(default_factory=dict)
    stages: list[StageTiming] = field(default_factory=list)
    throughput: list[Figure] = field(default_factory=list)
    metrics: list[Figure] = field(default_factory=list)
    memory: list[Figure] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
