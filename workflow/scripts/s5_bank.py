"""Snakemake adapter for rule s5_bank: the embedded S5 source banks and simulated FOA rooms."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.s5.synthesis import make_embedded_banks

with exit_on_error():
    make_embedded_banks(
        snakemake.params.root,
        snakemake.params.embedded,
        sample_rate=snakemake.params.sample_rate,
        seed=snakemake.params.seed,
    )
