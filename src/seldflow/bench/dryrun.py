"""The no-op dry run: what every ``snakemake`` call costs once the workflow is finished.

The DAG grows with shards rather than clips, so this figure should stay around a second or two at thousands of
clips; a regression here makes every interactive call slow.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from seldflow.bench.records import Figure


def noop_dry_run(
    workdir: str | os.PathLike[str] = ".", *, snakefile: str | os.PathLike[str] = "Snakefile", repeats: int = 3
) -> Figure:
    """Seconds a dry run of the finished default target takes (median): the cost of every `snakemake` call.

    The DAG grows with shards rather than clips, so this should stay around a second or two at thousands of clips.
    ``--nolock`` because the benchmark job runs inside the workflow's own (locked) run.
    """
    command = [str(Path(sys.executable).parent / "snakemake"), "--snakefile", str(Path(snakefile).resolve())]
    command += ["--directory", str(Path(workdir).resolve()), "-n", "--nolock", "--cores", "1", "all"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode != 0 or "Nothing to be done" not in result.stdout + result.stderr:
            tail = (result.stdout + result.stderr)[-500:]
            return Figure("no-op dry run", math.nan, "s", f"workflow not finished or dry run failed: {tail}")
    return Figure("no-op dry run", statistics.median(times), "s", f"median of {repeats} `snakemake -n all` calls")
