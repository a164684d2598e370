"""Snakemake adapter for rule pretrain_bank: the procedural large-vocabulary bank, one FSD50K-style tree per split."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.pretrain.bank import make_pretrain_bank

bank = snakemake.params.bank
with exit_on_error():
    make_pretrain_bank(
        snakemake.output.bank,
        clips_per_subclass=bank["clips_per_subclass"],
        min_seconds=bank["min_seconds"],
        max_seconds=bank["max_seconds"],
        classes=bank.get("classes"),
        seed=snakemake.params.seed,
        sample_rate=snakemake.params.sample_rate,
    )
