"""Interleaved median timing, shared by every timed comparison of the report."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any


def median_times(functions: Mapping[str, Callable[[], Any]], *, repeats: int = 3, warmup: int = 1) -> dict[str, float]:
    """Median wall seconds of each function over ``repeats`` timed calls, after ``warmup`` untimed calls of each.

    The functions take turns (A, B, A, B, ...), so a change of machine load during the measurement (other jobs on
    a shared machine) affects both alike and their ratio stays meaningful.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
