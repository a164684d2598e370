"""Multi-process (DistributedDataParallel) training support: launching, sharding, synchronised BatchNorm.

:func:`seldflow.train.train` with ``processes > 1`` calls :func:`launch`, which starts one process per rank with
:func:`torch.multiprocessing.spawn` (start method ``spawn``, so CUDA and HDF5 state are never forked) and joins
them with an optional deadline. Rendezvous is TCP on ``127.0.0.1`` at a free port chosen by the parent; the
backend is ``nccl`` on CUDA (rank ``r`` uses ``cuda:r``) and ``gloo`` on CPU. Each process runs ``train`` again
with the same arguments; inside a process group ``train`` takes the distributed path.

Equivalence with a single process rests on three rules:

* every rank trains on a disjoint slice of each batch of the global order (:func:`shard`), so the union over ranks
  of a step's clips is the single-process batch;
* a rank's loss (a mean over its slice) is weighted by ``world_size * len(slice) / len(batch)`` so that DDP's
  gradient *average* equals the gradient of the mean over the whole batch, also for uneven slices;
* BatchNorm statistics are computed over the whole batch: :func:`convert_sync_batchnorm` uses
  :class:`torch.nn.SyncBatchNorm` on CUDA and :class:`CPUSyncBatchNorm` (same maths, differentiable all-reduce)
  on CPU, where PyTorch's own SyncBatchNorm refuses to run.

What remains are float rounding differences (other summation orders) and dropout: each rank draws its own masks,
so with ``dropout > 0`` a multi-process run is statistically, not numerically, equivalent to one process.
"""

from __future__ import annotations

import datetime
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

# How long ranks wait for each other in a collective before failing (a dead peer must not hang the job forever).
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)
# Deadline for a whole distributed training run, in seconds (None: none); tests lower it.
JOIN_TIMEOUT_S: float | None = None


def is_active() -> bool:
    """True inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_active() else 0


def world_size() -> int:
    return dist.get_world_size() if is_active() else 1


def free_port() -> int:
    """A TCP port that is free on the loopback interface now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    processes: int,
    *,
    cuda: bool,
    timeout_s: float | None = None,
) -> None:
    """Run ``fn(**kwargs)`` in ``processes`` spawned processes forming one process group; wait for all of them.

    With ``cuda`` the backend is nccl and rank ``r`` gets ``device="cuda:r"`` (``kwargs["device"]`` is
    replaced); otherwise gloo. Torch's intra-op threads are split evenly between the processes. A failure in any
    process terminates the others and is raised here (:class:`torch.multiprocessing.ProcessRaisedException`);
    past ``timeout_s`` every process is terminated and :class:`TimeoutError` is raised.
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    if cuda and torch.cuda.device_count() < processes:
        raise ValueError(f"{processes} processes need {processes} CUDA devices, found {torch.cuda.device_count()}")
    threads = max(1, torch.get_num_threads() // processes)
    args = (fn, dict(kwargs), processes, "nccl" if cuda else "gloo", free_port(), threads)
    context = mp.spawn(_worker, args=args, nprocs=processes, join=False)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while not context.join(timeout=1.0):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"distributed run did not finish within {timeout_s} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
        for process in context.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


def _worker(
    local_rank: int, fn: Callable[..., Any], kwargs: dict[str, Any], processes: int, backend: str, port: int,
    threads: int,
) -> None:  # fmt: skip
    torch.set_num_threads(threads)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(port))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        kwargs = {**kwargs, "device": f"cuda:{local_rank}"}
    dist.init_process_group(
        backend, init_method=f"tcp://127.0.0.1:{port}", rank=local_rank, world_size=processes,
        timeout=COLLECTIVE_TIMEOUT,
    )  # fmt: skip
    try:
        fn(**kwargs)
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------------------------
# Sharding
# ---------------------------------------------------------------------------------------------------------------


def shard(batch: np.ndarray, rank: int, world_size: int) -> tuple[np.ndarray, float]:
    """This rank's contiguous slice of ``batch`` and its loss weight ``world_size * len(slice) / len(batch)``.

    Slices differ in length by at most one and together are exactly ``batch``; the weights make DDP's gradient
    average the gradient of the batch mean. Every rank needs at least one clip (``len(batch) >= world_size``).
    """
    if len(batch) < world_size:
        raise ValueError(f"a batch of {len(batch)} clips cannot be split over {world_size} processes")
    part = np.array_split(batch, world_size)[rank]
    return part, world_size * len(part) / len(batch)


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum of ``values`` over all ranks (float64), the identity outside a process group."""
    if not is_active():
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast_object(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (the identity outside a process group)."""
    if not is_active():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather_objects(value: Any) -> list[Any] | None:
    """Every rank's ``value`` as a list on rank 0 (``None`` elsewhere); ``[value]`` outside a process group."""
    if not is_active():
        return [value]
    gathered: list[Any] | None = [None] * world_size() if rank() == 0 else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


# ---------------------------------------------------------------------------------------------------------------
# BatchNorm over the whole batch
# ---------------------------------------------------------------------------------------------------------------


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward sums the gradients over ranks (every rank's output uses every input)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class CPUSyncBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics cover the batches of all ranks; works on CPU (gloo).

    Mean and variance are reduced in two passes (sum, then sum of squared deviations from the global mean) with
    a differentiable all-reduce whose backward all-reduces the gradient, so the gradient is that of BatchNorm on
    the concatenated batch. Running statistics are updated as BatchNorm does (unbiased
    variance over the global count). Evaluation, and use outside a process group, is plain BatchNorm.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_active() and world_size() > 1):
            return super().forward(input)
        all_reduce = _AllReduceSum.apply
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        local_count = torch.full((1,), input.numel() / input.size(1), dtype=input.dtype, device=input.device)
        totals = all_reduce(torch.cat([input.sum(dims), local_count]))
        count = totals[-1]
        mean = totals[:-1] / count
        centred = input - mean.reshape(shape)
        var = all_reduce(centred.square().sum(dims)) / count
        output = centred * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            output = output * self.weight.reshape(shape) + self.bias.reshape(shape)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var.detach() * count / torch.clamp(count - 1, min=1)
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        return output


def convert_sync_batchnorm(module: nn.Module, *, cuda: bool) -> nn.Module:
    """``module`` with every BatchNorm synchronised over the process group; parameters and buffers are shared.

    The converted layers keep the original parameter and buffer objects, so an optimiser created before the
    conversion still updates them and state dicts keep their keys.
    """
    if cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, _BatchNorm) and not isinstance(module, nn.SyncBatchNorm | CPUSyncBatchNorm):
        converted = CPUSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            converted.weight = module.weight
            converted.bias = module.bias
        converted.running_mean = module.running_mean
        converted.running_var = module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.training = module.training
        return converted
    for name, child in module.named_children():
        new_child = convert_sync_batchnorm(child, cuda=False)
        if new_child is not child:
            module.add_module(name, new_child)
    return module


def seed_rank(seed: int, rank: int, epoch: int) -> None:
    """Give a rank > 0 its own global RNG streams (dropout), a function of (seed, rank, epoch)."""
    import random

    entropy = np.random.SeedSequence([seed, rank, epoch]).generate_state(2)
    random.seed(int(entropy[0]))
    np.random.seed(int(entropy[1]))
    torch.manual_seed(int(entropy[0]) << 32 | int(entropy[1]))
