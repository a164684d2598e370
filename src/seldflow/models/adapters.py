"""AdapterBit (PSELDNets): fine-tune a pretrained HTS-AT through small adapters and its biases only.

Adapter + BitFit, as PSELDNets' ``adapt: adapter`` configuration does it:

1. every weight of the pretrained network is frozen;
2. every parameter whose name contains ``bias`` trains again: the biases of the LayerNorms, attention and MLP
   projections, patch embedding and BatchNorm scalars, and, since PSELDNets selects by name, the Swin blocks'
   relative-position bias tables;
3. two bottleneck adapters per Swin block train from scratch (:class:`Adapter`: Linear d -> ``ratio`` d, GELU,
   Linear back to d, times ``scale``, the last layer zero-initialised): the *spatial* adapter adds its output to
   the attention's output projection (``attn.adapter``), the *MLP* adapter runs beside the MLP on the same
   LayerNorm output and the two outputs are summed (``mlp.adapter``);
4. the head (``tscam_conv``) trains.

Zero-initialised adapters add exactly nothing, so before the first step the adapted network computes what the
pretrained one does. The adapters are built into the network (:class:`seldflow.models.htsat.HTSAT`'s
``adapter_ratio`` and ``adapter_scale``, kept in the checkpoint's model arguments), so inference rebuilds them;
the freezing is training's business (``train.adapter``). Only HTSAT has Swin blocks to adapt: an adapter
setting for any other model is a :class:`ConfigError` before any job runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seldflow.errors import ConfigError

# Registry names of the models that take adapters (the Swin blocks of HTS-AT).
ADAPTABLE_MODELS: tuple[str, ...] = ("htsat",)
# Name parts that keep a parameter trainable under AdapterBit, as PSELDNets selects them.
ADAPTER_WORD = "adapter"
BIAS_WORD = "bias"
HEAD_PREFIXES: tuple[str, ...] = ("tscam_conv.",)


@dataclass(frozen=True)
class AdapterSettings:
    """``train.adapter``: bottleneck width as a fraction of the block width, and the fixed output scale."""

    ratio: float = 0.5
    scale: float = 0.1

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> AdapterSettings:
        known = {f.name for f in fields(cls)}
        for key in spec:
            if key not in known:
                raise ConfigError("train", f"adapter.{key}", f"unknown key (known: {', '.join(sorted(known))})")
        settings = cls(**dict(spec))
        if not 0 < settings.ratio <= 1:
            raise ConfigError("train", "adapter.ratio", f"must be in (0, 1], got {settings.ratio}")
        return settings

    def spec(self) -> dict[str, Any]:
        return asdict(self)

    def model_args(self) -> dict[str, float]:
        """The network's arguments that build the adapters."""
        return {"adapter_ratio": self.ratio, "adapter_scale": self.scale}


class Adapter(nn.Module):
    """Bottleneck ``fc1`` (d -> ratio·d), GELU, ``fc2`` (back to d, zero-initialised), times ``scale``."""

    def __init__(self, dim: int, ratio: float, scale: float) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        if hidden < 1:
            raise ValueError(f"adapter ratio {ratio} leaves no hidden unit for width {dim}")
        self.scale = scale
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x))) * self.scale


def check_adapter(model: str, spec: Mapping[str, Any] | None) -> AdapterSettings | None:
    """The settings of a ``train.adapter`` value for ``model``; ``None`` when there is none."""
    if spec is None:
        return None
    if model not in ADAPTABLE_MODELS:
        raise ConfigError(
            "train", "adapter", f"AdapterBit adapts the Swin blocks of {', '.join(ADAPTABLE_MODELS)}; "
            f"model {model!r} has none (remove train.adapter or use model htsat)"
        )  # fmt: skip
    return AdapterSettings.from_spec(spec)


def adapterbit_trainable(name: str) -> bool:
    """Whether parameter ``name`` trains under AdapterBit: adapters, anything named bias, and the head."""
    return ADAPTER_WORD in name or BIAS_WORD in name or name.startswith(HEAD_PREFIXES)


def freeze_for_adapterbit(net: nn.Module) -> None:
    """Freeze every parameter of ``net`` except the adapters, the biases and the head (``requires_grad``)."""
    if not any(ADAPTER_WORD in name for name, _ in net.named_parameters()):
        raise ConfigError("train", "adapter", f"{type(net).__name__} was built without adapters")
    for name, parameter in net.named_parameters():
        parameter.requires_grad_(adapterbit_trainable(name))


def trainable_summary(net: nn.Module) -> dict[str, int]:
    """Parameters of ``net``: ``total`` and ``trainable`` (requires_grad), and the trainable ones split into
    ``adapters``, ``biases`` (outside the adapters and the head) and ``head``."""
    counts = {"total": 0, "trainable": 0, "adapters": 0, "biases": 0, "head": 0}
    for name, parameter in net.named_parameters():
        counts["total"] += parameter.numel()
        if not parameter.requires_grad:
            continue
        counts["trainable"] += parameter.numel()
        if ADAPTER_WORD in name:
            counts["adapters"] += parameter.numel()
        elif name.startswith(HEAD_PREFIXES):
            counts["head"] += parameter.numel()
        elif BIAS_WORD in name:
            counts["biases"] += parameter.numel()
    return counts


__all__ = [
    "ADAPTABLE_MODELS",
    "Adapter",
    "AdapterSettings",
    "adapterbit_trainable",
    "check_adapter",
    "freeze_for_adapterbit",
    "trainable_summary",
]
