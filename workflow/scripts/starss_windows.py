"""Snakemake adapter for rule starss_windows: one STARSS23 split's FOA or MIC recordings cut into 5-s clips."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.starss import foa_windows

folders = snakemake.params.folders
with exit_on_error():
    foa_windows(
        folders["audio"],
        folders["metadata"],
        snakemake.output.audio,
        snakemake.output.metadata,
        splits=[snakemake.wildcards.split],
        field_of_view_deg=snakemake.params.field_of_view_deg,
        label_format=snakemake.params.label_format,
    )
