"""Snakemake adapter for rule doanet_check: check the dataset (and a given Hnet) before any DOAnet training."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.doanet.check import check_dataset
from seldflow.errors import exit_on_error

with exit_on_error():
    check_dataset(
        snakemake.params.root,
        formats=snakemake.params.formats,
        splits=snakemake.params.splits,
        n_max=snakemake.params.n_max,
        hnet_weights=snakemake.input.hnet[0] if snakemake.input.hnet else None,
        out_json=snakemake.output.report,
    )
