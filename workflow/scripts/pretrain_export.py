"""Snakemake adapter for rule pretrain_export: a DataSynthSELD subset written as a DCASE2021-style split."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from seldflow.errors import exit_on_error
from seldflow.pretrain.datasynth import export_dcase, open_subset

with exit_on_error():
    fmt = snakemake.params.audio_format
    subset = open_subset(snakemake.input.subset, formats=[fmt])
    name = snakemake.wildcards.subset
    root = Path(snakemake.output.metadata).parents[1]  # <root>/metadata_dev/<subset>
    clips = export_dcase(subset, root, name, formats=[fmt], stem_suffix=f"_{name}")
    print(f"{snakemake.input.subset}: {clips} clips as {fmt}_dev and metadata_dev", file=sys.stderr)
