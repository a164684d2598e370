"""Snakemake adapter for rule features: one shard of a split's clips into one HDF5 file."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import torch

from seldflow.errors import exit_on_error
from seldflow.features import extract_split
from seldflow.shards import read_manifest, shard_range
from seldflow.tasks import build_task

torch.set_num_threads(snakemake.threads)
folders = snakemake.params.folders
with exit_on_error():
    stems = read_manifest(snakemake.input.clips)
    shard = shard_range(snakemake.params.shard, snakemake.params.shard_clips, len(stems))
    extract_split(
        folders["audio"],
        snakemake.output.h5,
        metadata_dir=folders["metadata"],
        clips=[stems[i] for i in shard],
        lr_swap=snakemake.params.lr_swap,
        sample_rate=snakemake.params.sample_rate,
        clip_samples=snakemake.params.clip_samples,
        task=build_task(snakemake.params.labels),
        **snakemake.params.features,
    )
