"""Snakemake adapter for rules synthetic_split and doanet_gather: link every shard's files into the folders of
the dataset tree, one output folder per named input (stereo, foa, mic, metadata)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.shards import gather_files

with exit_on_error():
    for name in snakemake.output.keys():  # noqa: SIM118 (a Namedlist iterates over its values)
        count = gather_files(snakemake.input[name], snakemake.output[name])
        print(f"{snakemake.output[name]}: {count} files", file=sys.stderr)
