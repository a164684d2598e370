"""Snakemake adapter for rule feature_index: join a split's feature shards into one virtual HDF5 file."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.shards import write_index

with exit_on_error():
    write_index(list(snakemake.input.shards), snakemake.output.h5)
