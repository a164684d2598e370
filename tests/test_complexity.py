"""MAC counts: one multiply-accumulate per weight use, never halved twice."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seldflow.models import build_model
from seldflow.models.complexity import complexity_table, count_macs


def test_linear_and_conv_macs_match_hand_counts() -> None:
    assert count_macs(nn.Linear(10, 20), (1, 5, 10)) == 5 * 10 * 20
    # 3x3 conv, 2 -> 4 channels, padding 1 on 6x8: every output value costs 2 * 3 * 3 MACs.
    assert count_macs(nn.Conv2d(2, 4, 3, padding=1), (1, 2, 6, 8)) == 4 * 6 * 8 * 2 * 3 * 3


def test_seldnet_macs_match_a_hand_count() -> None:
    model = build_model("seldnet", 2).eval()
    # Conv blocks on (251, 64) -> pooled (50, 16) -> (50, 4): each conv runs at its input resolution.
    convs = 64 * 251 * 64 * 2 * 9 + 64 * 50 * 16 * 64 * 9 + 64 * 50 * 4 * 64 * 9
    # BiGRU, 50 steps, 3 gates: layer 1 reads 64 channels x 2 bins, layer 2 both directions (256).
    gru = 2 * 50 * (3 * 128 * 128 + 3 * 128 * 128) + 2 * 50 * (3 * 128 * 256 + 3 * 128 * 128)
    projections = 2 * 50 * (4 * 128 * 128)  # q, k, v and output projections of the two attention layers
    heads = 50 * (128 * 128 + 128 * 117)
    assert count_macs(model, (1, 2, 251, 64)) == convs + gru + projections + heads


@pytest.mark.parametrize("row", complexity_table(), ids=lambda row: row["model"])
def test_table_has_positive_macs_and_reference_parameters(row: dict) -> None:
    assert row["macs_per_clip"] > 0
    assert row["gmacs_per_clip"] == pytest.approx(row["macs_per_clip"] / 1e9, abs=1e-3)
    with torch.device("meta"):
        model = build_model(row["registry_name"], row["in_channels"])
    assert row["parameters"] == sum(p.numel() for p in model.parameters())
