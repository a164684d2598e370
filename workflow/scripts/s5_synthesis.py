"""Snakemake adapter for rule s5_synthesis: render one shard of the planned test soundscapes."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.s5.synthesis import render_shard

with exit_on_error():
    render_shard(
        snakemake.params.root,
        snakemake.params.generator,
        plan=snakemake.input.plan,
        shard=snakemake.params.shard,
        shard_soundscapes=snakemake.params.shard_soundscapes,
        out_dir=snakemake.output.shard,
        added=snakemake.params.added,
    )
