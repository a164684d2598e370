"""Snakemake adapter for rule s5_plan: the validation and test soundscapes of the embedded dataset, as metadata."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.s5.synthesis import plan_soundscapes

with exit_on_error():
    for split in ("valid", "test"):
        plan_soundscapes(
            snakemake.params.root,
            snakemake.params.generator,
            split=split,
            count=snakemake.params.counts[split],
            seed=snakemake.params.seed,
            out_json=snakemake.output[split],
            added=snakemake.params.added,
        )
