"""Snakemake adapter for rule score: the experiment's metric over the test splits as JSON."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.metrics import get_metric
from seldflow.score import score_dirs, write_metrics

params = snakemake.params.score
task = snakemake.params.task
configured = {
    "doa_threshold": params["doa_threshold_deg"],
    "reldist_threshold": params["reldist_threshold"],
    "onscreen": params["onscreen"],
    "jackknife": params["jackknife"],
}
with exit_on_error():
    metric = get_metric(task["metric"])
    # Each metric takes only its own options (DCASE2021-2023 have no distance, only DCASE2025 has on-screen flags).
    options = {key: value for key, value in configured.items() if key in metric.options}
    metrics = score_dirs(
        list(snakemake.params.references),
        list(snakemake.input.predictions),
        metric=metric.name,
        n_classes=task["n_classes"],
        **options,
    )
    write_metrics(snakemake.output.metrics, metrics)
