"""Snakemake adapter for rule s5_report: per-class SDRi, tagger confusion, spectrograms and a markdown summary."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.s5.report import write_s5_report

with exit_on_error():
    write_s5_report(
        metrics=snakemake.input.metrics,
        estimates=snakemake.input.estimates,
        soundscapes=snakemake.params.soundscapes,
        oracle=snakemake.params.oracle,
        count=snakemake.params.shown,
        outputs=dict(snakemake.output.items()),
    )
