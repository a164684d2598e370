"""Snakemake adapter for rule synthetic_split: link every shard's files into the split folders of the DCASE tree."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.shards import gather_files

with exit_on_error():
    for name in ("stereo", "foa", "metadata"):
        count = gather_files(snakemake.input[name], snakemake.output[name])
        print(f"{snakemake.output[name]}: {count} files", file=sys.stderr)
