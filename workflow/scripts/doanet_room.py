"""Snakemake adapter for rule doanet_room: one simulated room, FOA and tetrahedral-array SOFA files."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.doanet.synthesis import make_room
from seldflow.errors import exit_on_error

with exit_on_error():
    make_room(
        snakemake.output.foa,
        snakemake.output.mic,
        snakemake.params.spec,
        snakemake.params.grid,
        snakemake.wildcards.room,
    )
