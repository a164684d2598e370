"""Training state: what a run has done so far, saved after every epoch so a killed run resumes exactly.

After every epoch ``state_dir/last.pt`` stores the model, optimiser, scheduler, RNG states and history with a
fingerprint of the arguments and inputs; a rerun with the same fingerprint continues where it stopped and follows
exactly the batches of an uninterrupted run. ``epochs``, ``device``, ``num_workers`` and ``max_memory_mb`` are not
part of the fingerprint, so a finished run can be extended to more epochs; a state saved beyond the requested
number of epochs is discarded.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from seldflow import distributed
from seldflow.checkpoints import save_checkpoint
from seldflow.feature_files import FeatureFile
from seldflow.io import atomic_file

STATE_FILE = "last.pt"
# Per-epoch history of a run in progress, beside the state: the declared metrics.csv appears only with best.pt.
HISTORY_FILE = "metrics.csv"


@dataclass
class Progress:
    """Everything about the run so far that is not a module's own state."""

    epoch: int = 0
    best_score: float = -math.inf
    stale_epochs: int = 0
    best: dict[str, Any] | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def record(self, score: float) -> bool:
        """Account for an epoch's selection score; ``True`` when it becomes the best (ties go to the later).

        Only a strict improvement resets the early-stopping count, so a long plateau still stops the run.
        """
        self.stale_epochs = 0 if score > self.best_score else self.stale_epochs + 1
        if score < self.best_score:
            return False
        self.best_score = score
        return True


def fingerprint(arguments: Mapping[str, Any], files: Sequence[FeatureFile]) -> str:
    """sha256 of the training arguments and the inputs' attributes and sizes: equal means resumable."""
    payload = {"arguments": arguments, "inputs": [file.summary for file in files]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def rng_state() -> dict[str, Any]:
    """Global RNG states as tensors and plain types (numpy's key array is not loadable with weights_only)."""
    numpy_state = np.random.get_state(legacy=False)
    key = torch.from_numpy(numpy_state["state"]["key"].astype(np.int64))
    state = {
        "python": random.getstate(),
        "numpy": {**numpy_state, "state": {**numpy_state["state"], "key": key}},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    numpy_state = dict(state["numpy"])
    key = numpy_state["state"]["key"].numpy().astype(np.uint32)
    numpy_state["state"] = {**numpy_state["state"], "key": key}
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(
    path: Path,
    run_fingerprint: str,
    progress: Progress,
    modules: Mapping[str, Any],
    rng_ranks: list[dict[str, Any]] | None = None,
) -> None:
    state = {
        "fingerprint": run_fingerprint,
        "epoch": progress.epoch,
        "best_score": progress.best_score,
        "stale_epochs": progress.stale_epochs,
        "best": progress.best,
        "history": progress.history,
        "rng": rng_state(),
        **{name: module.state_dict() for name, module in modules.items()},
    }
    if rng_ranks is not None:  # a distributed run: every rank's RNG state, so each resumes its own streams
        state["rng_ranks"] = rng_ranks
    save_checkpoint(path, state)


def resume(
    path: Path,
    run_fingerprint: str,
    epochs: int,
    modules: Mapping[str, Any],
    *,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> Progress | None:
    """Load ``path`` into ``modules`` when it belongs to this run; ``None`` means start fresh.

    Rank ``r`` of a distributed run restores its own RNG state when the state was saved by as many ranks;
    otherwise rank 0's, and a rank > 0 then reseeds from ``(seed, rank, epoch)``.
    """
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged state file must not block a rerun: it is only a cache
        tqdm.write(f"ignoring unreadable training state {path} ({type(exc).__name__})", file=sys.stderr)
        return None
    if state.get("fingerprint") != run_fingerprint:
        tqdm.write(f"training state {path} belongs to other settings or inputs: starting fresh", file=sys.stderr)
        return None
    if state["epoch"] > epochs:
        tqdm.write(f"training state {path} is past epoch {epochs}: starting fresh", file=sys.stderr)
        return None
    for name, module in modules.items():
        if state[name]:  # a disabled GradScaler (CPU run) saves an empty state that it cannot load back
            module.load_state_dict(state[name])
    rng_ranks = state.get("rng_ranks") or []
    if world_size > 1 and len(rng_ranks) == world_size:
        restore_rng(rng_ranks[rank])
    else:
        restore_rng(state["rng"])
        if rank > 0:
            distributed.seed_rank(seed, rank, state["epoch"])
    tqdm.write(f"resuming after epoch {state['epoch']} from {path}", file=sys.stderr)
    return Progress(
        epoch=state["epoch"],
        best_score=state["best_score"],
        stale_epochs=state["stale_epochs"],
        best=state["best"],
        history=list(state["history"]),
    )


def write_metrics(path: Path, history: Sequence[Mapping[str, float]], columns: Sequence[str]) -> None:
    """The per-epoch history as CSV, one row per epoch in ``columns`` order."""
    with atomic_file(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
