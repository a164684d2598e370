"""Two training jobs side by side against one after the other: whether the jobs' thread settings hold up when the
machine is shared.

Each job is :mod:`seldflow.bench.train_child` (the demo's network, its batch, ``steps`` optimisation steps on
``threads`` threads, as the training rule runs it on the whole machine). One after the other: each job alone,
times added. Side by side: both started together (after their imports), the later finish counts. A ratio of at
least 1 means sharing the machine costs nothing in total. Run with the workflow's OpenMP spin count
(:mod:`seldflow.openmp`) and with OpenMP's own default, so the report shows what the setting is for.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Any

from seldflow.bench.memory import CHILD_TIMEOUT_S, child_environment
from seldflow.bench.records import Comparison
from seldflow.openmp import SPIN_VARIABLE

CHILD_MODULE = "seldflow.bench.train_child"


@dataclass(frozen=True)
class TrainingJob:
    """The work of one job: ``steps`` steps of ``model`` on batches of ``batch`` (channels, frames, mels) inputs."""

    model: str
    channels: int
    frames: int
    mels: int
    batch: int
    steps: int

    def arguments(self, threads: int) -> list[str]:
        values = (self.channels, self.frames, self.mels, self.batch, self.steps, threads)
        return [self.model, *map(str, values)]


def run_together(job: TrainingJob, threads: int, copies: int, environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """Start ``copies`` jobs, release them together once all are ready, return each one's result (``seconds``,
    ``spin_count``)."""
    command = [sys.executable, "-m", CHILD_MODULE, *job.arguments(threads)]
    with ExitStack() as stack:
        # stderr to files, not pipes: a child's warnings filling an unread pipe would block it before "ready"
        logs = [stack.enter_context(tempfile.TemporaryFile(mode="w+")) for _ in range(copies)]
        children = [
            subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=dict(environ)
            )
            for log in logs
        ]
        stack.callback(_kill_running, children)
        for child, log in zip(children, logs, strict=True):
            if child.stdout.readline().strip() != "ready":
                child.wait(timeout=CHILD_TIMEOUT_S)
                raise RuntimeError(f"{CHILD_MODULE} failed before its steps: {_tail(log)}")
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child, log in zip(children, logs, strict=True):
            out, _ = child.communicate(timeout=CHILD_TIMEOUT_S)
            if child.returncode != 0:
                raise RuntimeError(f"{CHILD_MODULE} failed (exit {child.returncode}): {_tail(log)}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results


def _tail(log: IO[str]) -> str:
    """The end of a child's stderr file."""
    log.seek(0)
    return log.read()[-2000:]


def _kill_running(children: Sequence[subprocess.Popen[str]]) -> None:
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()


def spin_environment(spin_count: int | None) -> dict[str, str]:
    """The children's environment with OpenMP spinning ``spin_count`` rounds (None: OpenMP's default)."""
    environ = child_environment()
    environ.pop(SPIN_VARIABLE, None)
    if spin_count is not None:
        environ[SPIN_VARIABLE] = str(spin_count)
    return environ


def side_by_side(job: TrainingJob, threads: int, spin_count: int | None, *, label: str) -> Comparison:
    """One row: two jobs one after the other (a) against the same two side by side (b); ``spin_count`` None runs
    them with OpenMP's default spin."""
    environ = spin_environment(spin_count)
    alone = [run_together(job, threads, 1, environ)[0]["seconds"] for _ in range(2)]
    together = [result["seconds"] for result in run_together(job, threads, 2, environ)]
    return Comparison(
        name=f"training side by side, {label}",
        work=f"{job.steps} training steps of {job.model} on batches of {job.batch}, {threads} threads a job, two jobs",
        a_label=f"one after the other ({alone[0]:.2f} + {alone[1]:.2f} s)",
        a_seconds=sum(alone),
        b_label=f"side by side ({together[0]:.2f} / {together[1]:.2f} s)",
        b_seconds=max(together),
        meaning="two jobs' total time one after the other / side by side (>= 1: sharing the machine costs nothing)",
        threads=f"{threads} per job",
    )


def concurrency_rows(job: TrainingJob, threads: int, spin_count: int) -> Sequence[Comparison]:
    """The row with the workflow's spin count and the row with OpenMP's default."""
    return [
        side_by_side(job, threads, spin_count, label=f"{SPIN_VARIABLE}={spin_count} (the workflow's)"),
        side_by_side(job, threads, None, label="OpenMP's default spin"),
    ]
