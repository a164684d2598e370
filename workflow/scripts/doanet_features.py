"""Snakemake adapter for rule doanet_features: features and label rows of one split in one audio format."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import torch

from seldflow.doanet.features import extract_features, split_recordings
from seldflow.errors import exit_on_error

torch.set_num_threads(snakemake.threads)
with exit_on_error():
    fmt, split = snakemake.wildcards.fmt, snakemake.wildcards.dsplit
    recordings = split_recordings(snakemake.params.root, fmt, split)
    extract_features(recordings, fmt, snakemake.params.features, snakemake.output.h5)
