"""Snakemake adapter for rule room: one simulated shoebox room as a first-order Ambisonics SOFA file."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.synthesize import simulate_room

spec, grid = snakemake.params.spec, snakemake.params.grid
with exit_on_error():
    simulate_room(
        snakemake.output.sofa,
        dims=spec["dims"],
        rt60=spec["rt60"],
        array=spec["array"],
        azimuth_step_deg=grid["azimuth_step_deg"],
        elevations_deg=grid["elevations_deg"],
        distances_m=grid["distances_m"],
        ir_seconds=grid["ir_seconds"],
        sample_rate=snakemake.params.sample_rate,
        name=snakemake.wildcards.room,
    )
