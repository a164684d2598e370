"""Snakemake adapter for rule report: the figures embedded in the HTML report and the TensorBoard page."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.report import plot_azimuth_tracks, plot_classwise_f, plot_training_curves, write_tensorboard_page

with exit_on_error():
    plot_training_curves(snakemake.input.train_metrics, snakemake.output.curves)
    task = snakemake.params.task
    plot_classwise_f(snakemake.input.metrics, snakemake.output.classwise, n_classes=task["n_classes"])
    plot_azimuth_tracks(
        snakemake.params.references,
        snakemake.input.predictions,
        snakemake.output.tracks,
        n_clips=snakemake.params.clips,
        doa_threshold=snakemake.params.doa_threshold,
        label_format=task["label_format"],
        n_classes=task["n_classes"],
    )
    write_tensorboard_page(snakemake.params.tensorboard, snakemake.output.tensorboard)
