"""Snakemake adapter for rule s5_gather: the rendered shards joined into the Task 4 test layout."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.s5.synthesis import gather_test

with exit_on_error():
    gather_test(list(snakemake.input.shards), snakemake.output.test)
