"""Snakemake adapter for rule s5_score: CA-SDRi and label accuracy per label source, as one JSON object."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.s5.score import score_label_sources

with exit_on_error():
    score_label_sources(
        snakemake.params.soundscapes,
        snakemake.params.oracle,
        dict(zip(snakemake.params.label_sources, snakemake.input.estimates, strict=True)),
        snakemake.output.metrics,
    )
