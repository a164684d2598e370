"""Snakemake adapter for rule download: fetch, verify and unpack one Zenodo dataset, then write its marker."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.download import DEFAULTS, DatasetSpec, download_dataset
from seldflow.errors import exit_on_error

options = {**DEFAULTS, **snakemake.config.get("download", {})}
with exit_on_error():
    download_dataset(
        DatasetSpec.from_dict(snakemake.params.spec),
        snakemake.params.dest,
        api_url=options["api_url"],
        retries=options["retries"],
        backoff_s=options["backoff_s"],
        timeout_s=options["timeout_s"],
        marker=snakemake.output.marker,
    )
