"""Snakemake adapter for rule doanet_infer: prediction CSVs of the test recordings."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import torch

from seldflow.doanet.infer import write_predictions
from seldflow.errors import exit_on_error

torch.set_num_threads(snakemake.threads)
with exit_on_error():
    write_predictions(
        snakemake.input.checkpoint,
        snakemake.input.features,
        snakemake.output.predictions,
        snakemake.params.infer,
        device=snakemake.params.device,
    )
