"""SELDnet baseline: parameter count, output layout and activations, configurable widths, registry errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seldflow.errors import ConfigError
from seldflow.models import InputNorm, build_model, count_parameters, fit_input_norm

SMALL = {"conv_channels": 8, "rnn_size": 16, "fc_size": 12, "mhsa_heads": 2, "mhsa_layers": 1}


def expected_parameters(
    in_channels: int,
    *,
    n_mels: int = 64,
    conv_channels: int = 64,
    f_pool: tuple[int, ...] = (4, 4, 2),
    rnn_size: int = 128,
    rnn_layers: int = 2,
    mhsa_layers: int = 2,
    fc_size: int = 128,
    outputs: int = 117,
    **_: object,
) -> int:
    """Parameter count of the baseline architecture, derived layer by layer from its description."""
    total = 0
    channels = in_channels
    for _block in f_pool:
        total += 9 * channels * conv_channels + conv_channels  # conv 3x3 with bias
        total += 2 * conv_channels  # BatchNorm weight and bias
        channels = conv_channels
    gru_input = conv_channels * (n_mels // math.prod(f_pool))
    for layer in range(rnn_layers):
        width = gru_input if layer == 0 else 2 * rnn_size
        per_direction = 3 * (width * rnn_size + rnn_size * rnn_size + 2 * rnn_size)
        total += 2 * per_direction
    attention = 3 * rnn_size * rnn_size + 3 * rnn_size + rnn_size * rnn_size + rnn_size + 2 * rnn_size
    total += mhsa_layers * attention  # in/out projections with biases + LayerNorm
    total += rnn_size * fc_size + fc_size + fc_size * outputs + outputs
    return total


def test_baseline_parameter_count_matches_the_official_stereo_model() -> None:
    model = build_model("seldnet", 2)
    assert count_parameters(model) == 734_261
    assert expected_parameters(2) == 734_261


@pytest.mark.parametrize(
    ("in_channels", "args"), [(7, {}), (3, SMALL), (1, {**SMALL, "n_mels": 32, "f_pool": (2, 2, 2)})]
)
def test_parameter_count_follows_the_architecture(in_channels: int, args: dict) -> None:
    model = build_model("seldnet", in_channels, **args)
    assert count_parameters(model) == expected_parameters(in_channels, **args)


@pytest.mark.parametrize("in_channels", [2, 7])
def test_251_frames_pool_to_50_label_frames(in_channels: int) -> None:
    model = build_model("seldnet", in_channels, **SMALL).eval()
    with torch.no_grad():
        output = model(torch.randn(2, in_channels, 251, 64))
    assert output.shape == (2, 50, 117)


def test_output_layout_is_track_then_element_then_class_with_tanh_and_relu() -> None:
    """With a zero last layer the output is the activated bias, so every slot can be checked by position."""
    model = build_model("seldnet", 2, **SMALL).eval()
    bias = torch.zeros(3, 3, 13)  # track, element (x, y, dist), class
    bias[1, 0, 4] = 0.5  # x of track 1, class 4
    bias[2, 1, 12] = -3.0  # y of track 2, class 12
    bias[0, 2, 7] = 2.0  # distance of track 0, class 7
    bias[1, 2, 0] = -1.0  # a negative distance is clipped to 0
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(bias.flatten())
        output = model(torch.randn(1, 2, 251, 64))[0, 0]
    assert output[1 * 39 + 0 * 13 + 4].item() == pytest.approx(math.tanh(0.5))
    assert output[2 * 39 + 1 * 13 + 12].item() == pytest.approx(math.tanh(-3.0))
    assert output[0 * 39 + 2 * 13 + 7].item() == pytest.approx(2.0)
    assert output[1 * 39 + 2 * 13 + 0].item() == 0.0
    others = torch.ones(117, dtype=torch.bool)
    others[[43, 103, 33, 65]] = False
    assert torch.all(output[others] == 0)


def test_outputs_stay_in_their_ranges() -> None:
    model = build_model("seldnet", 2, **SMALL).eval()
    with torch.no_grad():
        output = model(10 * torch.randn(4, 2, 251, 64)).reshape(4, 50, 3, 3, 13)
    assert output[:, :, :, :2].abs().max() <= 1.0
    assert output[:, :, :, 2].min() >= 0.0


def test_wrong_input_shape_is_refused() -> None:
    model = build_model("seldnet", 7, **SMALL)
    with pytest.raises(ValueError, match=r"expected input \(batch, 7, frames, 64\)"):
        model(torch.randn(1, 2, 251, 64))


def test_registry_reports_unknown_models_and_arguments() -> None:
    with pytest.raises(ConfigError, match="unknown model 'cnn99'"):
        build_model("cnn99", 2)
    with pytest.raises(ConfigError, match="model_args"):
        build_model("seldnet", 2, hidden_units=5)
    with pytest.raises(ConfigError, match="pools 64 mel bins down to nothing"):
        build_model("seldnet", 2, f_pool=(8, 8, 2))


def test_input_norm_standardises_each_channel_and_bin_and_is_not_a_parameter() -> None:
    rng = np.random.default_rng(0)
    scales = np.array([5.0, 1e-3, 0.0])[:, None, None, None]  # log-mel-like, intensity-like, constant channel
    features = rng.standard_normal((3, 8, 251, 16)) * scales + np.array([-6.0, 0.0, -10.0])[:, None, None, None]
    features = features.transpose(1, 0, 2, 3).astype(np.float32)  # (clips, channels, frames, bins)
    model = build_model("seldnet", 3, **{"n_mels": 16, "f_pool": (2, 2, 2)})
    before = count_parameters(model)
    assert fit_input_norm(model, features.mean(axis=(0, 2)), features.std(axis=(0, 2)))
    normed = next(m for m in model.modules() if isinstance(m, InputNorm))(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(normed[:, :2].mean(axis=(0, 2)), 0.0, atol=1e-3)
    np.testing.assert_allclose(normed[:, :2].std(axis=(0, 2)), 1.0, atol=1e-3)
    np.testing.assert_allclose(normed[:, 2], 0.0, atol=1e-4)  # constant channel: centred, not blown up
    assert count_parameters(model) == before
    assert "input_norm.mean" in model.state_dict()
