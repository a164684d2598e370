"""Snakemake adapter for rule doanet_train: train one DOAnet experiment."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import torch

from seldflow.doanet.train import run_training
from seldflow.errors import exit_on_error

torch.set_num_threads(snakemake.threads)
with exit_on_error():
    run_training(
        train_features=list(snakemake.input.train),
        validation_features=snakemake.input.validation,
        hnet=snakemake.input.hnet[0] if snakemake.input.hnet else None,
        experiment=snakemake.params.experiment,
        model_args=snakemake.params.model_args,
        feature_settings=snakemake.params.features,
        infer=snakemake.params.infer,
        seed=snakemake.params.seed,
        checkpoint_out=snakemake.output.checkpoint,
        metrics_out=snakemake.output.metrics,
        state_dir=snakemake.params.state_dir,
    )
