"""Training steps in a process of their own, started on a signal, for the side-by-side rows.

Run as ``python -m seldflow.bench.train_child MODEL CHANNELS FRAMES MELS BATCH STEPS THREADS``: builds the network,
takes one warm-up step on a random batch, prints ``ready`` and waits for a line on stdin, then times ``STEPS``
optimisation steps (:func:`seldflow.train.train_step`, AdamW, a mean-square loss) and prints ``{"seconds": ...,
"spin_count": ...}`` (the OpenMP spin count it ran with, null for OpenMP's default) as the last line of stdout. The
start signal lets two children start their timed steps together, after both paid for their imports.
:mod:`seldflow.bench.concurrency` starts them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import torch
from torch import nn

from seldflow.heap import keep_freed_memory
from seldflow.models import build_model
from seldflow.openmp import SPIN_VARIABLE
from seldflow.train import train_step


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, build, signal ``ready``, wait, time the steps, print the result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m seldflow.bench.train_child", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a registered network (seldflow.models)")
    for name in ("channels", "frames", "mels", "batch", "steps", "threads"):
        parser.add_argument(name, type=int)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the workflow's training does
    torch.manual_seed(0)
    model = build_model(args.model, args.channels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    features = torch.randn(args.batch, args.channels, args.frames, args.mels)
    with torch.no_grad():
        labels = torch.zeros_like(model(features))

    def step() -> None:
        train_step(model, features, labels, loss_fn=nn.MSELoss(), optimizer=optimizer, scaler=scaler, use_amp=False)

    step()
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "spin_count": os.environ.get(SPIN_VARIABLE)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
