"""Snakemake adapter for checkpoint split_check: check a split's folders and list its clips for the shards.

The manifest carries each clip's file signature, so every feature shard depends on its own files only.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.feature_kinds import input_channels
from seldflow.features import check_split, clip_signatures, label_azimuth_limit
from seldflow.shards import write_manifest
from seldflow.tasks import build_task

folders = snakemake.params.folders
kind = snakemake.params.kind
with exit_on_error():
    stems = check_split(
        folders["audio"],
        folders["metadata"],
        channels=input_channels(kind),
        sample_rate=snakemake.params.sample_rate,
        clip_samples=snakemake.params.clip_samples,
        task=build_task(snakemake.params.labels),
        azimuth_limit=label_azimuth_limit(kind),
    )
    write_manifest(snakemake.output.clips, stems, clip_signatures(folders["audio"], folders["metadata"], stems))
    print(f"{folders['audio']}: {len(stems)} clips", file=sys.stderr)
