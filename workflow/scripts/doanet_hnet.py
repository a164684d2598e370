"""Snakemake adapter for rule doanet_hnet: generate Hnet's data, train it, write the frozen checkpoint."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import torch

from seldflow.doanet.hnet import run_hnet
from seldflow.errors import exit_on_error

torch.set_num_threads(snakemake.threads)
with exit_on_error():
    result = run_hnet(
        dict(snakemake.params.hnet), snakemake.params.seed, snakemake.output.checkpoint, snakemake.output.metrics
    )
    print(f"selected epoch {result.epoch}: held-out weighted F1 {result.weighted_f1:.4f}", file=sys.stderr)
