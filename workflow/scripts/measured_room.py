"""Snakemake adapter for a measured room: one TAU-SRIR DB or METU SPARG room converted to a SOFA room file."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.synthesize import convert_measured

with exit_on_error():
    convert_measured(
        snakemake.params.source,
        snakemake.input.dataset,
        snakemake.output.sofa,
        room=snakemake.params.room,
        fmt=snakemake.params.fmt,
        sample_rate=snakemake.params.sample_rate,
    )
