"""Snakemake adapter for rule starss_stereo: DCASE2025-style stereo clips drawn from STARSS23 FOA recordings."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.starss import stereo_clips

folders, spec = snakemake.params.folders, snakemake.params.spec
with exit_on_error():
    stereo_clips(
        folders["foa"],
        folders["metadata"],
        snakemake.output.stereo,
        snakemake.output.metadata,
        n_clips=spec["clips"],
        splits=spec["splits"],
        seed=snakemake.params.seed,
        field_of_view_deg=snakemake.params.field_of_view_deg,
    )
