"""Snakemake adapter for rule mixtures: FOA and stereo clips with their labels for one shard of a split."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.synthesize import renderer

split = snakemake.params.split
with exit_on_error():
    render = renderer(snakemake.params.backend)
    render(
        rooms=list(snakemake.input.rooms),
        room_ids=list(snakemake.params.room_ids),
        bank_dir=snakemake.input.bank,
        source_split=split["source_split"],
        stereo_dir=snakemake.output.stereo,
        foa_dir=snakemake.output.foa,
        metadata_dir=snakemake.output.metadata,
        fold=split["fold"],
        seed=snakemake.params.seed,
        sample_rate=snakemake.params.sample_rate,
        label_format=snakemake.params.label_format,
        clip_seconds=snakemake.params.clip_seconds,
        **snakemake.params.shard,
        **snakemake.params.mixtures,
    )
