"""Snakemake adapter for rule pretrain_synthesis: one shard of a subset's mixtures (FOA, MIC, dry sum, labels)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.pretrain.synthesis import SynthesisSettings, synthesize_shard

settings = snakemake.params.settings
subset = snakemake.params.subset
with exit_on_error():
    synthesize_shard(
        bank_dir=snakemake.params.bank_split,
        out_dir=snakemake.output.shard,
        fold=subset["fold"],
        max_polyphony=subset["max_polyphony"],
        seed=snakemake.params.seed,
        events_per_class=settings["events_per_class"],
        quota_overrides=settings.get("class_quotas"),
        settings=SynthesisSettings.from_config(settings),
        **snakemake.params.shard,
    )
