"""One DOAnet optimisation step on a batch, with the loss of a :class:`~seldflow.doanet.loss.DOAnetLossConfig`.

The reference trains with Adam (lr 1e-3) on batches of 64 sequences of 250 feature frames (50 label frames); the
stage that loops over epochs and selects on validation LE builds on this step.
"""

from __future__ import annotations

import torch
from torch import nn

from seldflow.doanet.loss import DOAnetLossConfig, LossValue, doanet_loss


def check_network_fits_loss(model: nn.Module, config: DOAnetLossConfig) -> None:
    """The activity-branch loss needs the activity head, and the other losses leave it untrained: refuse both
    mismatches before training rather than fail (or waste parameters) later."""
    has_head = getattr(model, "activity_head", None) is not None
    if config.activity != has_head:
        need = "with" if config.activity else "without"
        raise ValueError(f"the {config.mode} loss (activity={config.activity}) needs a network {need} activity head")


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    reference_doa: torch.Tensor,
    reference_activity: torch.Tensor,
    config: DOAnetLossConfig,
    hnet: nn.Module | None = None,
) -> LossValue:
    """Forward ``features (B, C, T, mel)``, loss against the label-frame targets, backward, one optimiser step."""
    model.train()
    optimizer.zero_grad()
    value = doanet_loss(model(features), reference_doa, reference_activity, config, hnet)
    value.loss.backward()
    optimizer.step()
    return value
