"""Snakemake adapter for rule l3das22_split: L3DAS22 Task 2 recordings of some dataset splits as one FOA split."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.l3das22 import convert_split

params = snakemake.params
with exit_on_error():
    convert_split(
        snakemake.input.root,
        snakemake.output.audio,
        snakemake.output.metadata,
        dataset_splits=params.dataset_splits,
        mic=params.mic,
        channel_order=params.channel_order,
        mic_offset_m=params.mic_offset_m,
        sample_rate=params.sample_rate,
        clip_seconds=params.clip_seconds,
    )
