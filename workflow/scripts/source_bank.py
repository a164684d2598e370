"""Snakemake adapter for rule source_bank: procedural stand-ins for the 13 DCASE classes."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.synthesize import make_source_bank

bank = snakemake.params.bank
with exit_on_error():
    make_source_bank(
        snakemake.output.bank,
        clips_per_class=bank["clips_per_class"],
        min_seconds=bank["min_seconds"],
        max_seconds=bank["max_seconds"],
        seed=snakemake.params.seed,
        sample_rate=snakemake.params.sample_rate,
    )
