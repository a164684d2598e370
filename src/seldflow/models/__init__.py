"""Model registry: stages name a network in the configuration and build it here with its keyword arguments.

A registry (rather than importing classes in each stage) lets a checkpoint record only ``model_name`` and
``model_args`` and be rebuilt by inference without knowing which module defines the network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from seldflow.errors import ConfigError
from seldflow.models.normalization import InputNorm, fit_input_norm
from seldflow.models.seldnet import SELDnet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "seldnet": SELDnet,
}


def build_model(name: str, in_channels: int, **model_args: Any) -> nn.Module:
    """Instantiate the registered network ``name`` for ``in_channels`` input feature channels."""
    try:
        factory = MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ConfigError("train", "model", f"unknown model {name!r} (known: {known})") from None
    try:
        return factory(in_channels, **model_args)
    except (TypeError, ValueError) as exc:
        raise ConfigError("train", "model_args", f"invalid arguments for {name!r}: {exc}") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters, the figure the DCASE reports and technical reports quote."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["MODELS", "InputNorm", "build_model", "count_parameters", "fit_input_norm"]
