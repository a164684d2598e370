"""Parameters and multiply-accumulates (MACs) of the model zoo, for the comparison table of the report.

MACs come from PyTorch's ``FlopCounterMode`` divided by two (one MAC is one multiply plus one add): convolutions and
matrix products, GRU gates included; element-wise operations are not counted, nor are the score and weighting
products inside ``nn.MultiheadAttention``'s fused CPU kernel (about 1 % of SELDnet's total). The seed
system's ptflops script divides ptflops' result, which is already in MACs, by two again and so reports half the
true value; nothing here is halved twice. Models are traced on the ``meta`` device: shapes only, so even the
338-M-parameter model costs no memory or time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from seldflow.models import REFERENCE_MODELS, build_model, count_parameters

# One 5-s clip of 20-ms frames: the (frames, mel bins) of the reference features.
CLIP_FRAMES, CLIP_BINS = 251, 64
TABLE_COLUMNS = ("model", "registry_name", "in_channels", "parameters", "macs_per_clip", "gmacs_per_clip")


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """MACs of one forward pass of ``model`` on an input of ``input_shape`` (batch included)."""
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(*input_shape, device=device))
    return counter.get_total_flops() // 2


def _clips_per_pass(name: str) -> int:
    """HTSAT pairs clips, so its smallest batch holds two; its figures are per clip like every other model's."""
    return 2 if name == "htsat" else 1


def complexity_table() -> list[dict[str, int | float | str]]:
    """One row per reference configuration: parameters and MACs per 5-s clip."""
    rows = []
    for reference_name, (name, channels) in REFERENCE_MODELS.items():
        clips = _clips_per_pass(name)
        with torch.device("meta"):
            model = build_model(name, channels).eval()
        macs = count_macs(model, (clips, channels, CLIP_FRAMES, CLIP_BINS)) // clips
        rows.append(
            {
                "model": reference_name,
                "registry_name": name,
                "in_channels": channels,
                "parameters": count_parameters(model),
                "macs_per_clip": macs,
                "gmacs_per_clip": round(macs / 1e9, 3),
            }
        )
    return rows


__all__ = ["TABLE_COLUMNS", "complexity_table", "count_macs"]
