"""Snakemake adapter for rule doanet_clips: render one split of the embedded DOAnet dataset (FOA, MIC, labels)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.doanet.synthesis import render_split
from seldflow.errors import exit_on_error

split = snakemake.params.split
with exit_on_error():
    render_split(
        split=snakemake.wildcards.dsplit,
        rooms=snakemake.params.rooms,
        room_numbers=snakemake.params.room_numbers,
        bank_dir=snakemake.input.bank,
        source_split=split["source_split"],
        out_dirs={name: snakemake.output[name] for name in ("foa", "mic", "metadata")},
        n_clips=split["clips"],
        clip_seconds=snakemake.params.clip_seconds,
        mixtures=snakemake.params.mixtures,
        seed=snakemake.params.seed,
    )
