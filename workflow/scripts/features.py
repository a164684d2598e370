"""Snakemake adapter for rule features: one split's clips into one HDF5 file."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import torch

from seldflow.errors import exit_on_error
from seldflow.features import extract_split

torch.set_num_threads(snakemake.threads)
with exit_on_error():
    extract_split(
        snakemake.input.audio,
        snakemake.output.h5,
        metadata_dir=snakemake.input.metadata,
        lr_swap=snakemake.params.lr_swap,
        sample_rate=snakemake.params.sample_rate,
        **snakemake.params.features,
    )
