"""Snakemake adapter for checkpoint split_check: check a split's folders and list its clips for the shards."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.feature_kinds import input_channels
from seldflow.features import check_split
from seldflow.shards import write_manifest

folders = snakemake.params.folders
with exit_on_error():
    stems = check_split(
        folders["audio"],
        folders["metadata"],
        channels=input_channels(snakemake.params.kind),
        sample_rate=snakemake.params.sample_rate,
        clip_samples=snakemake.params.clip_samples,
    )
    write_manifest(snakemake.output.clips, stems)
    print(f"{folders['audio']}: {len(stems)} clips", file=sys.stderr)
