"""Snakemake adapter for rule s5_infer: detector (or oracle) labels -> separator -> <soundscape>_<Label>.wav."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import torch

from seldflow.errors import exit_on_error
from seldflow.s5.infer import infer_s5

torch.set_num_threads(snakemake.threads)
with exit_on_error():
    infer_s5(
        snakemake.params.soundscapes,
        snakemake.input.separator,
        snakemake.output.estimates,
        detector_checkpoint=snakemake.input.detector[0] if snakemake.input.detector else None,
        oracle_dir=snakemake.params.oracle,
        threshold=snakemake.params.threshold,
        inference_iterations=snakemake.params.inference_iterations,
    )
