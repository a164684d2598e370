"""Snakemake adapter for rule train: fit the configured model, keep the best checkpoint."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import torch

from seldflow.errors import exit_on_error
from seldflow.train import train

torch.set_num_threads(snakemake.threads)
with exit_on_error():
    train(
        train_h5=list(snakemake.input.features),
        checkpoint=snakemake.output.checkpoint,
        metrics_csv=snakemake.output.metrics,
        state_dir=snakemake.params.state_dir,
        seed=snakemake.params.seed,
        **snakemake.params.train,
    )
