"""Model zoo: CNN14 family (Conformer, BiMamba, BiMamba-AC, ConBiMamba, ConBiMamba-AC) and HTSAT.

Reference parameter counts are checked on models built on the ``meta`` device (no storage); forward passes and
the overfitting checks use scaled-down widths and depths so the whole file runs in well under a minute on CPU.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from seldflow.errors import ConfigError
from seldflow.loss import ADPITLoss
from seldflow.models import (
    MODELS,
    REFERENCE_MODELS,
    build_model,
    count_parameters,
    fit_input_norm,
    reference_parameter_counts,
)
from seldflow.models.cnn14 import ChannelScalars
from seldflow.models.conformer import RelativePositionSelfAttention
from seldflow.tasks import build_task
from seldflow.tasks.seld_methods import METHODS, get_method

REFERENCE_COUNTS = {
    "SELDnet": 734_261,
    "CNN14_Conformer": 210_078_389,
    "CNN14_BiMamba": 178_113_205,
    "CNN14_BiMambaAC": 76_083_414,
    "CNN14_ConBiMamba": 338_247_349,
    "CNN14_ConBiMambaAC": 235_819_543,
    "HTSAT": 28_083_725,
    "PaSST": 51_170_549,  # PSELDNets' multi_accdoa.PASST, 7 channels, 13 classes (see tests/test_passt.py)
}
CNN14_ENCODER_AND_SCALARS = 75_481_664
HTSAT_ENCODER_AND_SCALARS = 27_544_472

WIDTHS = (8, 8, 16, 16, 16, 16)
MAMBA = {"d_state": 8, "headdim": 8, "chunk_size": 16}
AXIAL = {"mamba_dim": 8, "freq_dim": 4}
SMALL = {
    "cnn14_conformer": {"widths": WIDTHS, "layers": 1, "heads": 2},
    "cnn14_bimamba": {"widths": WIDTHS, "layers": 1, **MAMBA},
    "cnn14_bimamba_ac": {"widths": WIDTHS, "layers": 2, **MAMBA, **AXIAL},  # layer 2 has the residual path
    "cnn14_conbimamba": {"widths": WIDTHS, "layers": 1, "ff_expansion": 2, "conv_kernel": 7, **MAMBA},
    "cnn14_conbimamba_ac": {"widths": WIDTHS, "layers": 1, "ff_expansion": 2, "conv_kernel": 7, **MAMBA, **AXIAL},
    "htsat": {"patch_size": 8, "embed_dim": 8, "depths": (2, 2, 2), "heads": (1, 1, 2)},
    # 20-ms frames: a 5-frame time stride gives one token column per label frame.
    "passt": {"embed_dim": 16, "depth": 1, "heads": 2, "frames": 251, "stride": (10, 5), "frames_per_label": 5},
}
CNN14_NAMES = [name for name in SMALL if name.startswith("cnn14")]


pytestmark = pytest.mark.usefixtures("single_thread")


def test_reference_parameter_counts_are_exact() -> None:
    assert reference_parameter_counts() == REFERENCE_COUNTS
    assert set(MODELS) == {"seldnet", *SMALL}
    assert {name for name, _ in REFERENCE_MODELS.values()} == set(MODELS)


@pytest.mark.parametrize("name", CNN14_NAMES)
def test_cnn14_encoder_and_scalars_hold_the_reference_share(name: str) -> None:
    with torch.device("meta"):
        model = build_model(name, 7)
    assert model.encoder_parameters() == CNN14_ENCODER_AND_SCALARS
    fc = model.fc.weight.numel() + model.fc.bias.numel()
    assert count_parameters(model) == count_parameters(model.decoder) + CNN14_ENCODER_AND_SCALARS + fc


def test_htsat_encoder_scalars_and_head_split() -> None:
    with torch.device("meta"):
        model = build_model("htsat", 7)
    assert model.encoder_parameters() == HTSAT_ENCODER_AND_SCALARS
    assert count_parameters(model.tscam_conv) == 768 * 117 * 2 * 3 + 117
    assert count_parameters(model) == REFERENCE_COUNTS["HTSAT"]


@pytest.mark.parametrize("name", list(SMALL))
def test_scaled_models_map_251_frames_to_50_label_frames(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, 7, **SMALL[name]).eval()
    with torch.no_grad():
        output = model(torch.randn(2, 7, 251, 64))
    assert output.shape == (2, 50, 117)
    assert torch.isfinite(output).all()
    slots = output.reshape(2, 50, 3, 3, 13)
    assert slots[:, :, :, :2].abs().max() <= 1  # tanh on x, y
    assert slots[:, :, :, 2].min() >= 0  # ReLU on distance
    # The models standardise their input themselves (BatchNorm scalars): nothing to fit.
    assert not fit_input_norm(model, None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "channels", "frames"), [("cnn14_conformer", 2, 256), ("htsat", 4, 100)])
def test_any_channel_count_and_clip_length(name: str, channels: int, frames: int) -> None:
    model = build_model(name, channels, **SMALL[name]).eval()
    with torch.no_grad():
        output = model(torch.randn(2, channels, frames, 64))
    assert output.shape == (2, frames // 5, 117)


def _overfit_target(batch: int, frames: int) -> torch.Tensor:
    """A fixed ADPIT target: one event per clip on a clip-dependent class, direction and distance."""
    generator = torch.Generator().manual_seed(1)
    target = torch.zeros(batch, frames, 6, 4, 13)
    for clip in range(batch):
        cls = int(torch.randint(13, (1,), generator=generator))
        azimuth = float(torch.rand(1, generator=generator)) * math.pi - math.pi / 2
        active = slice(clip % 3, frames)
        target[clip, active, 0, 0, cls] = 1.0
        target[clip, active, 0, 1, cls] = math.cos(azimuth)
        target[clip, active, 0, 2, cls] = math.sin(azimuth)
        target[clip, active, 0, 3, cls] = 1.0 + clip / 4
    return target


@pytest.mark.parametrize("name", list(SMALL))
def test_scaled_models_overfit_a_fixed_batch(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, 7, **SMALL[name]).train()
    features = torch.randn(4, 7, 51, 64)  # 10 label frames keep the steps cheap
    target = _overfit_target(4, 10)
    loss_fn = ADPITLoss()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        optimiser.zero_grad()
        loss = loss_fn(model(features), target)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(math.isfinite(value) for value in losses)
    assert min(losses[-5:]) < 0.5 * losses[0], losses


def test_htsat_rejects_an_odd_batch_when_pairing_clips() -> None:
    model = build_model("htsat", 7, **SMALL["htsat"])
    with pytest.raises(ValueError, match="batch size must be even; got 3"):
        model(torch.randn(3, 7, 251, 64))
    unpaired = build_model("htsat", 7, **SMALL["htsat"], pair_clips=False).eval()
    with torch.no_grad():
        assert unpaired(torch.randn(3, 7, 251, 64)).shape == (3, 50, 117)


def test_htsat_pairs_clip_i_with_clip_i_plus_half_batch() -> None:
    torch.manual_seed(0)
    model = build_model("htsat", 7, **SMALL["htsat"]).eval()
    features = torch.randn(4, 7, 251, 64)
    changed = features.clone()
    changed[1] += 1.0  # partner of clip 3
    with torch.no_grad():
        before, after = model(features), model(changed)
    assert torch.equal(before[[0, 2]], after[[0, 2]])
    assert not torch.allclose(before[3], after[3])


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("cnn14_conformer", {"widths": (8, 8)}),
        ("cnn14_conformer", {"heads": 3}),
        ("cnn14_conformer", {"conv_kernel": 4}),
        ("cnn14_bimamba", {"d_model": 64}),
        ("htsat", {"spec_size": 250}),
        ("htsat", {"depths": (2, 2), "heads": (1,)}),
        ("passt", {"stride": 10, "frames_per_label": 5}),
        ("passt", {"n_mels": 60, "patch_size": 15}),
        ("passt", {"freq_patchout": 6}),
    ],
)
def test_invalid_model_arguments_are_config_errors(name: str, args: dict) -> None:
    with pytest.raises(ConfigError, match="model_args"), torch.device("meta"):
        build_model(name, 7, **args)


def test_channel_scalars_equal_one_batchnorm_per_channel() -> None:
    """The fused forward gives the per-channel BatchNorm2d(n_mels) results and running statistics."""
    torch.manual_seed(0)
    scalars = ChannelScalars(3, 8)
    for norm in scalars:
        norm.weight.data.uniform_(0.5, 2.0)
        norm.bias.data.normal_()
    separate = copy.deepcopy(scalars)

    def one_by_one(x: torch.Tensor) -> torch.Tensor:
        parts = [
            norm(x[:, c].transpose(1, 2).unsqueeze(3)).squeeze(3).transpose(1, 2) for c, norm in enumerate(separate)
        ]
        return torch.stack(parts, dim=1)

    for _ in range(2):
        x = 3 * torch.randn(4, 3, 10, 8) + 1
        torch.testing.assert_close(scalars(x), one_by_one(x))
    scalars.eval()
    separate.eval()
    x = torch.randn(4, 3, 10, 8)
    torch.testing.assert_close(scalars(x), one_by_one(x))
    for fused, single in zip(scalars, separate, strict=True):
        torch.testing.assert_close(fused.running_var, single.running_var)
        assert int(fused.num_batches_tracked) == int(single.num_batches_tracked) == 2


def test_relative_attention_scores_depend_on_query_key_distance() -> None:
    """Compare with the Transformer-XL formula evaluated pair by pair."""
    torch.manual_seed(0)
    d_model, heads, length = 8, 2, 5
    attention = RelativePositionSelfAttention(d_model, heads, 0.0).eval()
    x = torch.randn(1, length, d_model)
    d_head = d_model // heads
    with torch.no_grad():
        normed = attention.norm(x)[0]
        q, k, v = (
            layer(normed).reshape(length, heads, d_head) for layer in (attention.query, attention.key, attention.value)
        )
        expected = torch.zeros(length, heads, d_head)
        for h in range(heads):
            scores = torch.zeros(length, length)
            for i in range(length):
                for j in range(length):
                    frequencies = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
                    encoding = torch.stack((torch.sin((i - j) * frequencies), torch.cos((i - j) * frequencies)), 1)
                    position = attention.position(encoding.flatten()).reshape(heads, d_head)[h]
                    content = (q[i, h] + attention.content_bias[h]) @ k[j, h]
                    scores[i, j] = (content + (q[i, h] + attention.position_bias[h]) @ position) / math.sqrt(d_head)
            expected[:, h] = scores.softmax(-1) @ v[:, h]
        expected = attention.out(expected.reshape(length, d_model))
        torch.testing.assert_close(attention(x)[0], expected)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", list(SMALL))
def test_every_architecture_takes_every_method(name: str, method: str) -> None:
    """The method's output layout on FOA (7-ch) features, and a finite loss whose gradient reaches every weight."""
    _trains_with(name, method, channels=7)


@pytest.mark.parametrize("name", list(SMALL))
def test_every_architecture_reads_mic_features(name: str) -> None:
    """MIC features (4 log-mel + 6 GCC-PHAT = 10 channels), with the DCASE2021-style 3-D multi-ACCDOA."""
    _trains_with(name, "maccdoa", channels=10)


def _trains_with(name: str, method: str, *, channels: int) -> None:
    torch.manual_seed(0)
    task = build_task({"name": "seld", "label_format": "dcase2021", "method": method})
    model = build_model(name, channels, **SMALL[name], **task.model_args()).train()
    output = model(torch.randn(2, channels, 251, 64))
    assert output.shape == (2, 50, get_method(method).layout.size(task.n_classes))
    events = np.array([[0, 1, 0, 30.0, 10.0, np.nan], [20, 11, 1, -120.0, -5.0, np.nan]])
    target = torch.from_numpy(np.stack([task.targets(events, 50)] * 2))
    loss = task.loss()(output, target)
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
