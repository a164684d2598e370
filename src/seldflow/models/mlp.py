"""The transformer feed-forward shared by the ViT-style encoders (HTSAT's Swin blocks, M2D's ViT blocks).

One module, because both load third-party weights whose keys name it ``fc1`` and ``fc2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Mlp(nn.Module):
    """Two-layer GELU feed-forward (``fc1``, ``fc2``).

    ``adapter`` (None unless set): a module run beside the MLP on the same input, its output added (AdapterBit's
    MLP adapter, :mod:`seldflow.models.adapters`); PSELDNets names it ``mlp.adapter`` too.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.adapter: nn.Module | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc2(F.gelu(self.fc1(x)))
        return out if self.adapter is None else out + self.adapter(x)
