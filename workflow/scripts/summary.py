"""Snakemake adapter for rule summary: rank the run's experiments by their test scores."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.report import summarise_experiments

with exit_on_error():
    summarise_experiments(
        dict(zip(snakemake.params.experiments, snakemake.input.metrics, strict=True)),
        dict(zip(snakemake.params.experiments, snakemake.params.models, strict=True)),
        snakemake.output.table,
    )
