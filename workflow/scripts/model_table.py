"""Snakemake adapter for rule model_table: parameters and MACs of the model zoo."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.report import write_complexity_table

write_complexity_table(snakemake.output.table)
