"""Snakemake adapter for rule doanet_score: score one experiment's test predictions."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.doanet.score import score_predictions
from seldflow.errors import exit_on_error
from seldflow.tau_nigens2020 import dev_recordings

with exit_on_error():
    report = score_predictions(
        dev_recordings(snakemake.params.root, snakemake.params.fmt, split="test", check_audio=False),
        snakemake.input.predictions,
        snakemake.output.metrics,
        doa_threshold=snakemake.params.doa_threshold,
        experiment=snakemake.wildcards.doanet_experiment,
        description=snakemake.params.description,
    )
    print(f"LE {report['LE']}, MOTA {report['MOTA']}", file=sys.stderr)
