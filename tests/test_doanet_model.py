"""DOAnet CRNN and Hnet architecture: shapes, layout and parameter counts worked out by hand from the layer shapes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from seldflow.doanet.hnet import HungarianNet
from seldflow.doanet.model import DOAnet, build_doanet, doa_tracks
from seldflow.errors import ConfigError
from seldflow.models import count_parameters


def gru_parameters(inputs: int, hidden: int) -> int:
    """One GRU direction of one layer: 3 gates × (input weights + hidden weights + two biases)."""
    return 3 * (hidden * inputs + hidden * hidden + 2 * hidden)


def test_hnet_has_100098_parameters() -> None:
    # GRU(2 → 128): 3·(128·2 + 128·128 + 2·128) = 50,688; Q, K, V 1×1 convs without bias: 3·128·128 = 49,152;
    # Linear(128 → 2): 258.
    assert gru_parameters(2, 128) == 50_688
    assert count_parameters(HungarianNet(n_max=2)) == 50_688 + 49_152 + 258 == 100_098


def doanet_by_hand(in_channels: int, activity: bool = True) -> int:
    conv = lambda cin: 9 * cin * 128 + 128 + 2 * 128  # noqa: E731  3×3 kernel, bias, BatchNorm γ and β
    cnn = conv(in_channels) + 2 * conv(128)
    # BiGRU: layer 1 reads 128 maps × 8 mel bins = 1024 features, layer 2 both directions (256); ×2 directions
    gru = 2 * gru_parameters(1024, 128) + 2 * gru_parameters(256, 128)
    hidden = 2 * (128 * 128 + 128)
    doa = hidden + 128 * 6 + 6
    act = hidden + 128 * 2 + 2
    return cnn + gru + doa + (act if activity else 0)


@pytest.mark.parametrize(("channels", "estimate"), [(7, 1.554e6), (10, 1.557e6)], ids=["foa", "mic"])
def test_doanet_parameter_counts_match_the_arithmetic_and_the_reference_estimate(
    channels: int, estimate: float
) -> None:
    # FOA: CNN 8,448 + 2·147,840 = 304,128; GRU 886,272 + 296,448 = 1,182,720; DOA 33,798; activity 33,282
    assert doanet_by_hand(7) == 1_553_928
    with torch.device("meta"):
        model = DOAnet(in_channels=channels)
        without = DOAnet(in_channels=channels, activity=False)
    count = count_parameters(model)
    assert count == doanet_by_hand(channels)
    assert count_parameters(without) == doanet_by_hand(channels, activity=False)
    assert abs(count - estimate) / estimate < 0.005


def test_doanet_maps_20ms_frames_to_100ms_label_frames() -> None:
    model = DOAnet(in_channels=10, n_mels=64, filters=8, rnn_size=8, fnn_size=8).eval()
    output = model(torch.randn(3, 10, 250, 64))
    assert output.doa.shape == (3, 50, 6) and output.activity.shape == (3, 50, 2)
    assert output.doa.abs().max() <= 1  # tanh
    assert output.activity.abs().max() <= 1  # tanh, as the reference (then read as logits)
    assert DOAnet(filters=8, rnn_size=8, fnn_size=8, activity=False)(torch.randn(1, 7, 50, 64)).activity is None


def test_doa_output_layout_is_x_then_y_then_z() -> None:
    """Reference layout [x1, x2, y1, y2, z1, z2] → track rows (x1, y1, z1) and (x2, y2, z2)."""
    flat = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert doa_tracks(flat, 2).tolist() == [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]


def test_registry_errors_name_the_config_key() -> None:
    with pytest.raises(ConfigError, match="'model'"):
        build_doanet("crnn9000")
    with pytest.raises(ConfigError, match="'model_args'"):
        build_doanet("doanet", n_mels=4)  # 4 mel bins do not survive three halvings
    assert isinstance(build_doanet("doanet", filters=4, rnn_size=4, fnn_size=4), DOAnet)


def test_params_cli_reports_hnet_and_doanet() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "seldflow", "params", "--task", "doanet"], capture_output=True, text=True, check=True
    )
    table = json.loads(result.stdout)
    assert table["hnet"]["parameters"] == 100_098
    assert table["doanet"]["foa"]["parameters"] == 1_553_928 and table["doanet"]["foa"]["in_channels"] == 7
    assert table["doanet"]["mic"]["parameters"] == 1_557_384 and table["doanet"]["mic"]["in_channels"] == 10
    assert table["doanet"]["foa"]["without_activity_head"] == 1_553_928 - 33_282
    assert "trainable" in table["counted"]
