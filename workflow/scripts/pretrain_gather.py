"""Snakemake adapter for rule pretrain_subset: a subset's shards linked into the DataSynthSELD layout."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.pretrain.synthesis import gather_subset

with exit_on_error():
    clips = gather_subset(list(snakemake.input.shards), snakemake.output.subset)
    print(f"{snakemake.output.subset}: {clips} mixtures", file=sys.stderr)
