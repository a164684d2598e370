"""Snakemake adapter for rule infer: DCASE2025 CSVs for every clip of one split."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import torch

from seldflow.errors import exit_on_error
from seldflow.infer import infer_split

torch.set_num_threads(snakemake.threads)
with exit_on_error():
    infer_split(
        checkpoint=snakemake.input.checkpoint,
        features_h5=snakemake.input.features,
        out_dir=snakemake.output.predictions,
        device=snakemake.params.device,
        **snakemake.params.infer,
    )
