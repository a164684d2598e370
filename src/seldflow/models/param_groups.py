"""Optimiser parameter groups with their own learning rates, layer-wise decay and a cosine schedule with warm-up.

The second-place Task 4 system trains parts of one network at different rates: new modules at the base rate,
pretrained ones slower, and a pretrained transformer with *layer-wise decay* (the block nearest the output at
``lr * decay``, the next at ``lr * decay**2``, ..., the input embedding with the first block). Every group is split
into weights (two or more dimensions, with weight decay) and biases and norm parameters (without), as there.

A group is a plain ``dict`` as :class:`torch.optim.Optimizer` takes it, with a ``name`` beside ``params``, ``lr``
and ``weight_decay`` (optimisers keep extra keys), so logs and tests can tell the groups apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn


def split_weight_decay(name: str, params: Iterable[nn.Parameter], lr: float, weight_decay: float) -> list[dict]:
    """One named group (trainable parameters only) split into ``<name>`` (matrices and kernels, with weight decay)
    and ``<name>.no_decay`` (vectors: biases, norm scales); empty halves are left out."""
    trainable = [p for p in params if p.requires_grad]
    decayed = [p for p in trainable if p.ndim >= 2]
    plain = [p for p in trainable if p.ndim < 2]
    groups = []
    if decayed:
        groups.append({"name": name, "params": decayed, "lr": lr, "weight_decay": weight_decay})
    if plain:
        groups.append({"name": f"{name}.no_decay", "params": plain, "lr": lr, "weight_decay": 0.0})
    return groups


def layer_decay_groups(
    name: str, layers: Sequence[Sequence[nn.Parameter]], lr: float, decay: float, weight_decay: float
) -> list[dict]:
    """Groups of a layered network, ``layers`` ordered from input to output: layer ``k`` of ``n`` at
    ``lr * decay ** (n - k)``, so the last layer trains at ``lr * decay`` and the first at ``lr * decay ** n``."""
    groups = []
    for index, params in enumerate(layers):
        rate = lr * decay ** (len(layers) - index)
        groups += split_weight_decay(f"{name}.layer{index}", params, rate, weight_decay)
    return groups


def check_partition(model: nn.Module, groups: Sequence[dict[str, Any]]) -> None:
    """Every trainable parameter of ``model`` in exactly one group, and nothing else in any: a ValueError otherwise
    (a parameter left out would silently stop training, one listed twice would be stepped twice)."""
    names = {id(p): n for n, p in model.named_parameters()}
    seen: dict[int, str] = {}
    for group in groups:
        for p in group["params"]:
            if id(p) not in names:
                raise ValueError(f"group {group['name']!r} holds a parameter that is not the model's")
            if id(p) in seen:
                raise ValueError(f"{names[id(p)]} is in groups {seen[id(p)]!r} and {group['name']!r}")
            seen[id(p)] = group["name"]
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise ValueError(f"trainable parameters in no group: {', '.join(missing[:5])}")


def cosine_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate factor at ``step``: linear warm-up from 0 over ``warmup_steps``, then half a cosine down to 0
    at ``total_steps`` (and 0 after), the schedule ``transformers.get_cosine_schedule_with_warmup`` computes."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def cosine_with_warmup(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, lr_end: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: every group's rate follows :func:`cosine_factor`, lifted so it starts and ends at
    ``lr_end`` instead of 0 (``lr_end + (lr - lr_end) * factor``).

    ``lr_end`` is absolute, the same for every group (the reference configuration names 2e-7; its cosine schedule
    itself ignores the value and ends at 0, the default here). A group whose rate is below ``lr_end`` keeps
    ``lr_end`` as its end too.
    """
    if warmup_steps < 0 or total_steps < 1 or lr_end < 0:
        raise ValueError(f"bad schedule: warmup {warmup_steps}, total {total_steps}, lr_end {lr_end}")

    def factor_for(base_lr: float):
        floor = lr_end / base_lr if base_lr > 0 else 0.0
        return lambda step: floor + (1.0 - floor) * cosine_factor(step, warmup_steps, total_steps)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, [factor_for(g["lr"]) for g in optimizer.param_groups])
