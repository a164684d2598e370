"""Snakemake adapter for rule doanet_report: DOA tracks of a few test recordings and the training curves."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.doanet.report import plot_tracks, plot_training
from seldflow.errors import exit_on_error
from seldflow.tau_nigens2020 import dev_recordings

title = f"{snakemake.wildcards.doanet_experiment} ({snakemake.params.description})"
with exit_on_error():
    references = dev_recordings(snakemake.params.root, snakemake.params.fmt, split="test", check_audio=False)
    plot_tracks(
        references,
        snakemake.input.predictions,
        snakemake.output.tracks,
        n_recordings=snakemake.params.clips,
        title=title,
    )
    plot_training(snakemake.input.training, snakemake.output.training, title=title)
