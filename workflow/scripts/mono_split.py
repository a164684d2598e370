"""Snakemake adapter for rule mono_split: bank clips as pseudo-FOA at random directions, a DCASE2021-style split."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.mono import render_mono_split

with exit_on_error():
    split = snakemake.params.split
    clips = render_mono_split(
        snakemake.input.bank,
        Path(snakemake.output.metadata).parents[1],  # <root>/metadata_dev/<split>
        snakemake.wildcards.split,
        clips=split["clips"],
        fold=split["fold"],
        source_split=split["source_split"],
        clip_seconds=snakemake.params.clip_seconds,
        sample_rate=snakemake.params.sample_rate,
        seed=snakemake.params.seed,
    )
    print(f"{snakemake.wildcards.split}: {clips} mono clips as foa_dev and metadata_dev", file=sys.stderr)
