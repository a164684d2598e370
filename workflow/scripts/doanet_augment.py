"""Snakemake adapter for rule doanet_augment: the overlap augmentation of one audio format's training folds."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.doanet.augment import augment_format
from seldflow.errors import exit_on_error

with exit_on_error():
    stems = augment_format(
        snakemake.params.root,
        snakemake.wildcards.fmt,
        snakemake.params.out_root,
        multiplier=snakemake.params.multiplier,
        seed=None,
    )
    print(f"{len(stems)} augmented scenes", file=sys.stderr)
