"""Snakemake adapter for rules s5_tagger, s5_sed and s5_separator: train one S5 network on generated mixtures."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import torch

from seldflow.errors import exit_on_error
from seldflow.s5.train import WEIGHT_INPUTS, run_training

torch.set_num_threads(snakemake.threads)
with exit_on_error():
    run_training(
        root=snakemake.params.root,
        generator=snakemake.params.generator,
        network=snakemake.params.network,
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
        validation=snakemake.params.validation,
        checkpoint_out=snakemake.output.checkpoint,
        metrics_out=snakemake.output.metrics,
        state_dir=snakemake.params.state_dir,
        init_from=snakemake.input.get("init") or None,
        weights={name: snakemake.input.get(name) for name in WEIGHT_INPUTS},
        added=snakemake.params.added,
    )
