"""Snakemake adapter for rule doanet_bank: the procedural source bank of the embedded DOAnet dataset."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.doanet.synthesis import make_bank
from seldflow.errors import exit_on_error

with exit_on_error():
    make_bank(snakemake.output.bank, snakemake.params.bank, snakemake.params.seed)
