"""How long an idle OpenMP thread spins before it sleeps, for every job the workflow starts.

torch's CPU kernels run on GNU OpenMP, whose idle threads spin for some 300,000 rounds after each parallel region
before sleeping. Alone on the machine that saves a wake-up; beside another job the spinning threads take the cores
the other job's threads are waiting for, and both crawl. Measured on the 2-core machine (ten training steps of the
stereo demo's SELDnet, two threads each, ``make bench``'s concurrency rows): alone 4.4-4.7 s; two such jobs side
by side 19-31 s each with the default spin, against 8.0 s each with 1,000 rounds (alone 4.3-4.9 s), so two jobs
side by side finish sooner than one after the other. The Snakefile sets it before any job starts, so every job
inherits it (on a cluster too: each job re-reads the Snakefile); a value already in the environment is kept.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

SPIN_VARIABLE = "GOMP_SPINCOUNT"


def set_spin_count(rounds: int, environ: MutableMapping[str, str] | None = None) -> str:
    """Set ``GOMP_SPINCOUNT`` to ``rounds`` in ``environ`` (default ``os.environ``) unless it is set; returns the
    value in effect."""
    if rounds < 0:
        raise ValueError(f"an OpenMP spin count is a number of rounds >= 0, not {rounds}")
    environ = os.environ if environ is None else environ
    return environ.setdefault(SPIN_VARIABLE, str(rounds))
