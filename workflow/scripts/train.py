"""Snakemake adapter for rule train: fit the configured model, keep the best checkpoint.

``train.processes`` > 1 trains in that many DDP processes, spawned by ``seldflow.train.train`` with
``torch.multiprocessing.spawn``; without the key, a job granted more than one GPU (``resources.gpu``) on a CUDA
device runs one process per GPU (nccl). Spawned processes re-import this file as ``__mp_main__``: everything
runs under the ``__main__`` guard so that they neither reopen the log nor start training again.
"""

import os
import sys

if __name__ == "__main__":
    sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115
    os.dup2(sys.stderr.fileno(), 2)  # spawned processes inherit file descriptor 2, not the Python object

    import torch

    from seldflow.errors import exit_on_error
    from seldflow.models.runtime import resolve_device
    from seldflow.train import train

    torch.set_num_threads(snakemake.threads)  # shared evenly between the processes of a distributed run
    settings = dict(snakemake.params.train)
    gpus = int(getattr(snakemake.resources, "gpu", 0) or 0)
    with exit_on_error():
        if "processes" not in settings and gpus > 1 and resolve_device(settings.get("device", "auto")).type == "cuda":
            settings["processes"] = gpus
        train(
            train_h5=list(snakemake.input.features),
            checkpoint=snakemake.output.checkpoint,
            metrics_csv=snakemake.output.metrics,
            state_dir=snakemake.params.state_dir,
            seed=snakemake.params.seed,
            task=snakemake.params.task,
            **settings,
        )
