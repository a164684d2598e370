"""Snakemake adapter for rule s5_cleaning: clean one added S5 source bank into class folders."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.s5.cleaning import run_cleaning

with exit_on_error():
    run_cleaning(
        snakemake.params.bank,
        generator=snakemake.params.generator,
        cleaning=snakemake.params.cleaning,
        out_dir=snakemake.output.bank,
        statuses_out=snakemake.output.statuses,
    )
