"""Snakemake adapter for rule score: official DCASE2025 metrics over the test splits as JSON."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.score import score_dirs, write_metrics

params = snakemake.params.score
with exit_on_error():
    metrics = score_dirs(
        list(snakemake.params.references),
        list(snakemake.input.predictions),
        doa_threshold=params["doa_threshold_deg"],
        reldist_threshold=params["reldist_threshold"],
        onscreen=params["onscreen"],
        jackknife=params["jackknife"],
    )
    write_metrics(snakemake.output.metrics, metrics)
