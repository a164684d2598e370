"""Snakemake adapter for rule s5_summary: rank the summary experiments' runs by CA-SDRi per label column."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.s5.score import summarise_runs

with exit_on_error():
    summarise_runs(
        dict(zip(snakemake.params.runs, snakemake.input.metrics, strict=True)),
        snakemake.params.runs,
        snakemake.output.table,
    )
