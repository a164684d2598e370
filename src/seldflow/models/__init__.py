"""Model registry: stages name a network in the configuration and build it here with its keyword arguments.

A registry (rather than importing classes in each stage) lets a checkpoint record only ``model_name`` and
``model_args`` and be rebuilt by inference without knowing which module defines the network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from seldflow.models.cnn14 import (
    cnn14_bimamba,
    cnn14_bimamba_ac,
    cnn14_conbimamba,
    cnn14_conbimamba_ac,
    cnn14_conformer,
)
from seldflow.models.htsat import HTSAT
from seldflow.models.normalization import InputNorm, fit_input_norm, has_input_norm
from seldflow.models.passt import PaSST
from seldflow.models.registry import build_registered
from seldflow.models.seldnet import SELDnet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "seldnet": SELDnet,
    "cnn14_conformer": cnn14_conformer,
    "cnn14_bimamba": cnn14_bimamba,
    "cnn14_bimamba_ac": cnn14_bimamba_ac,
    "cnn14_conbimamba": cnn14_conbimamba,
    "cnn14_conbimamba_ac": cnn14_conbimamba_ac,
    "htsat": HTSAT,
    "passt": PaSST,
}

# Reference name -> (registry name, input channels) of the configurations whose parameter counts the DCASE2025
# stereo seed system and the official baseline report (2-channel log-mel for SELDnet, 7-channel PFOA otherwise),
# and PSELDNets' PaSST (7-channel logmelIV; counted with PSELDNets' own classes, see seldflow.models.passt).
REFERENCE_MODELS: dict[str, tuple[str, int]] = {
    "SELDnet": ("seldnet", 2),
    "CNN14_Conformer": ("cnn14_conformer", 7),
    "CNN14_BiMamba": ("cnn14_bimamba", 7),
    "CNN14_BiMambaAC": ("cnn14_bimamba_ac", 7),
    "CNN14_ConBiMamba": ("cnn14_conbimamba", 7),
    "CNN14_ConBiMambaAC": ("cnn14_conbimamba_ac", 7),
    "HTSAT": ("htsat", 7),
    "PaSST": ("passt", 7),
}


def build_model(name: str, in_channels: int, **model_args: Any) -> nn.Module:
    """Instantiate the registered network ``name`` for ``in_channels`` input feature channels."""
    return build_registered(MODELS, name, in_channels, source="train", section="", **model_args)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters, the figure the DCASE reports and technical reports quote."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def reference_parameter_counts() -> dict[str, int]:
    """Parameters of every :data:`REFERENCE_MODELS` entry built with its default (reference) arguments.

    The models are built on PyTorch's ``meta`` device: shapes without storage, so even the 338-M-parameter
    CNN14-ConBiMamba costs neither memory nor initialisation time.
    """
    return {reference: parameters_on_meta(name, channels) for reference, (name, channels) in REFERENCE_MODELS.items()}


def parameters_on_meta(name: str, channels: int, **model_args: Any) -> int:
    """Parameters of one configuration, built without storage (see :func:`reference_parameter_counts`)."""
    with torch.device("meta"):
        return count_parameters(build_model(name, channels, **model_args))


__all__ = [
    "MODELS",
    "REFERENCE_MODELS",
    "InputNorm",
    "build_model",
    "count_parameters",
    "fit_input_norm",
    "has_input_norm",
    "parameters_on_meta",
    "reference_parameter_counts",
]
