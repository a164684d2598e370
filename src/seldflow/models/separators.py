"""Separator registry of the S5 branch: the configuration names a separator and its arguments, built here.

Like :data:`seldflow.models.MODELS` for the SELD networks, a registry lets a checkpoint record only
``separator.model`` and ``separator.model_args`` and be rebuilt at inference without knowing the defining module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from seldflow.models.guided import GuidedResUNet, IterativeGuidedResUNet
from seldflow.models.registry import build_registered
from seldflow.models.resunet import ResUNet
from seldflow.s5.vocabulary import LABELS, N_SLOTS

# Configuration section the separator keys live in (the ``source`` of a ConfigError).
CONFIG_SOURCE = "s5"


def resunet(in_channels: int = 4, n_classes: int = len(LABELS), **args: Any) -> ResUNet:
    """The baseline's ResUNet: one target, queried by one class row; trained on one random non-silent source."""
    return ResUNet(in_channels, n_classes, 1, **args)


def resunetk(in_channels: int = 4, n_classes: int = len(LABELS), n_targets: int = N_SLOTS, **args: Any) -> ResUNet:
    """The baseline's ResUNetK: all ``n_targets`` slots in one pass, queried by the concatenated slot rows."""
    return ResUNet(in_channels, n_classes, n_targets, **args)


def guided_resunet(in_channels: int = 4, n_classes: int = len(LABELS), **args: Any) -> GuidedResUNet:
    """The second-place system's separator: a one-label 2048/160 ResUNet with the options of
    :class:`seldflow.models.guided.GuidedResUNet` (Stage-2 SED, embedding injection, Time-FiLM, DPRNN)."""
    return GuidedResUNet(in_channels, n_classes, **args)


def guided_resunet_iterative(in_channels: int = 4, n_classes: int = len(LABELS), **args: Any) -> IterativeGuidedResUNet:
    """:func:`guided_resunet` with iterative refinement (``max_iterations``, default 3)."""
    return IterativeGuidedResUNet(in_channels, n_classes, **args)


SEPARATORS: dict[str, Callable[..., nn.Module]] = {
    "resunet": resunet,
    "resunetk": resunetk,
    "guided_resunet": guided_resunet,
    "guided_resunet_iterative": guided_resunet_iterative,
}

# Reference name -> (registry name, arguments) of the configurations the Task 4 baseline trains (4-channel FOA).
REFERENCE_SEPARATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "ResUNet": ("resunet", {"in_channels": 4}),
    "ResUNetK": ("resunetk", {"in_channels": 4}),
}

# Trainable parameters estimated from the reference architecture (its authors state none): U-Net 21.39 M, FiLM
# 5.06 M (38 bias layers, 9,856 channels) and label MLP 0.27 M; ResUNetK's wider query and after_conv add 0.02 M.
REFERENCE_PARAMETER_ESTIMATES: dict[str, int] = {"ResUNet": 26_720_000, "ResUNetK": 26_740_000}


def build_separator(name: str, **args: Any) -> nn.Module:
    """Instantiate the registered separator ``name`` with ``args``; bad names or arguments are config errors."""
    return build_registered(SEPARATORS, name, source=CONFIG_SOURCE, section="separator.", what="separator", **args)


def separator_parameters_on_meta(name: str, **args: Any) -> int:
    """Trainable parameters of one separator configuration, built on the ``meta`` device (shapes, no storage)."""
    with torch.device("meta"):
        model = build_separator(name, **args)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def reference_separator_parameter_counts() -> dict[str, int]:
    """Trainable parameters of every :data:`REFERENCE_SEPARATORS` entry with its reference (default) arguments.

    Counted as the sum of ``numel`` over parameters with ``requires_grad``, on the ``meta`` device. Not counted:
    the STFT window (a buffer: the reference's frozen torchlibrosa DFT weights are not trained either) and the
    BatchNorm running statistics (buffers). Counted: the decoder's spare BatchNorms and their FiLM layers, which
    the reference builds, and its optimiser receives, but its forward pass never uses (see
    :class:`seldflow.models.resunet.DecoderLevel`). ResUNet: 26,721,747; ResUNetK: 26,740,971.
    """
    return {
        reference: separator_parameters_on_meta(name, **args)
        for reference, (name, args) in REFERENCE_SEPARATORS.items()
    }
