"""PaSST as PSELDNets' SELD backbone: parameter count from the layer shapes, key layout, and the forward pass
against a step-by-step computation written from the architecture description (Jinbo-Hu/PSELDNets
``src/models/components/passt.py``, ``src/models/accdoa.py``)."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from seldflow.models import build_model, count_parameters

# PSELDNets' configs/model/passt.yaml with 7 logmelIV channels and STARSS23's 13 classes (mACCDOA: 117 outputs).
C_IN, MELS, FRAMES, D, DEPTH, PATCH, CLASSES = 7, 64, 1001, 768, 7, 16, 13
REFERENCE_PARAMETERS = 51_170_549
SMALL = {"embed_dim": 8, "depth": 2, "heads": 2, "frames": 1001}


def _layer_shape_count(outputs: int) -> int:
    """The parameters of the reference configuration, summed from its layer shapes."""
    scalars = C_IN * 2 * MELS  # one BatchNorm2d(64) per channel: weight and bias
    patch = D * C_IN * PATCH * PATCH + D  # Conv2d(7 -> 768, 16x16)
    grid_f, grid_t = MELS // 10, FRAMES // 10  # 6 x 100 positions
    tokens = D + D + 2 * D + D * grid_f + D * grid_t  # cls, dist, new_pos_embed, freq and time positions
    layer_norm = 2 * D
    block = layer_norm + (D * 3 * D + 3 * D) + (D * D + D) + layer_norm + (D * 4 * D + 4 * D) + (4 * D * D + D)
    final = layer_norm + layer_norm  # encoder norm and head.0
    fc = D * outputs + outputs
    return scalars + patch + tokens + DEPTH * block + final + fc


def test_parameter_count_is_the_reference_implementations() -> None:
    assert _layer_shape_count(3 * 3 * CLASSES) == REFERENCE_PARAMETERS
    with torch.device("meta"):
        maccdoa = build_model("passt", C_IN, n_classes=CLASSES, output="maccdoa_xyz")
        accdoa = build_model("passt", C_IN, n_classes=CLASSES, output="accdoa")
    assert count_parameters(maccdoa) == REFERENCE_PARAMETERS
    assert count_parameters(accdoa) == _layer_shape_count(3 * CLASSES)


def test_keys_and_shapes_follow_the_pseldnets_layout() -> None:
    with torch.device("meta"):
        model = build_model("passt", C_IN, n_classes=CLASSES, output="maccdoa_xyz")
    state = model.state_dict()
    block = {
        f"encoder.blocks.N.{part}.{kind}"
        for part in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
        for kind in ("weight", "bias")
    }
    scalar = {f"scalar.N.{kind}" for kind in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    expected = scalar | block
    expected |= {f"encoder.{name}" for name in ("cls_token", "dist_token", "new_pos_embed")}
    expected |= {"encoder.freq_new_pos_embed", "encoder.time_new_pos_embed"}
    expected |= {f"{module}.{kind}" for module in ("encoder.patch_embed.proj", "encoder.norm", "encoder.head.N", "fc")
                 for kind in ("weight", "bias")}  # fmt: skip
    assert {re.sub(r"\.\d+\.", ".N.", key) for key in state} == expected
    assert len([key for key in state if key.startswith("encoder.blocks.") and key.endswith("qkv.weight")]) == DEPTH
    assert state["encoder.patch_embed.proj.weight"].shape == (D, C_IN, PATCH, PATCH)
    assert state["encoder.freq_new_pos_embed"].shape == (1, D, 6, 1)
    assert state["encoder.time_new_pos_embed"].shape == (1, D, 1, 100)
    assert state["encoder.new_pos_embed"].shape == (1, 2, D)
    assert state["encoder.head.0.weight"].shape == (D,)  # head.0: the LayerNorm PSELDNets keeps of the AudioSet head
    assert state["fc.weight"].shape == (117, D)


def _layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _by_hand(state: dict[str, torch.Tensor], x: torch.Tensor, heads: int, depth: int) -> torch.Tensor:
    """The reference's forward pass written out step by step (evaluation mode, mACCDOA tanh output)."""
    batch, channels = x.shape[:2]
    scaled = torch.empty_like(x)
    for c in range(channels):  # BatchNorm2d(mels) per channel with its running statistics
        key = f"scalar.{c}."
        std = torch.sqrt(state[key + "running_var"] + 1e-5)
        scaled[:, c] = (x[:, c] - state[key + "running_mean"]) / std * state[key + "weight"] + state[key + "bias"]
    image = scaled.transpose(2, 3)  # (B, C, mels, frames)
    patches = F.conv2d(image, state["encoder.patch_embed.proj.weight"], state["encoder.patch_embed.proj.bias"],
                       stride=10, padding=3)  # fmt: skip
    rows, columns = patches.shape[2:]
    patches = patches + state["encoder.time_new_pos_embed"][..., :columns] + state["encoder.freq_new_pos_embed"]
    dim = patches.shape[1]
    sequence = [patches[:, :, f, t] for f in range(rows) for t in range(columns)]  # frequency-major
    cls = state["encoder.cls_token"][0, 0] + state["encoder.new_pos_embed"][0, 0]
    dist = state["encoder.dist_token"][0, 0] + state["encoder.new_pos_embed"][0, 1]
    h = torch.stack([cls.expand(batch, dim), dist.expand(batch, dim), *sequence], dim=1)
    head_dim = dim // heads
    for i in range(depth):
        p = f"encoder.blocks.{i}."
        y = _layer_norm(h, state[p + "norm1.weight"], state[p + "norm1.bias"], 1e-6)
        q, k, v = (y @ state[p + "attn.qkv.weight"].T + state[p + "attn.qkv.bias"]).split(dim, dim=-1)
        outputs = []
        for head in range(heads):
            part = slice(head * head_dim, (head + 1) * head_dim)
            weights = torch.softmax(q[..., part] @ k[..., part].transpose(1, 2) / math.sqrt(head_dim), dim=-1)
            outputs.append(weights @ v[..., part])
        h = h + torch.cat(outputs, dim=-1) @ state[p + "attn.proj.weight"].T + state[p + "attn.proj.bias"]
        y = _layer_norm(h, state[p + "norm2.weight"], state[p + "norm2.bias"], 1e-6)
        y = F.gelu(y @ state[p + "mlp.fc1.weight"].T + state[p + "mlp.fc1.bias"])
        h = h + y @ state[p + "mlp.fc2.weight"].T + state[p + "mlp.fc2.bias"]
    h = _layer_norm(h, state["encoder.norm.weight"], state["encoder.norm.bias"], 1e-6)[:, 2:]
    per_column = h.reshape(batch, rows, columns, dim).mean(dim=1)  # mean over the frequency rows
    per_column = _layer_norm(per_column, state["encoder.head.0.weight"], state["encoder.head.0.bias"], 1e-5)
    return torch.tanh(per_column @ state["fc.weight"].T + state["fc.bias"])


@pytest.mark.parametrize("frames", [1001, 501])
def test_forward_equals_the_step_by_step_computation(frames: int) -> None:
    """10-s input: 100 columns, one per 100-ms label frame; 5-s input: the first 50 time positions."""
    torch.manual_seed(0)
    model = build_model("passt", C_IN, n_classes=2, output="maccdoa_xyz", **SMALL).eval()
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if key.endswith(("running_mean", "running_var", "scalar.0.weight", "scalar.0.bias")):
                value.uniform_(0.5, 1.5)
        x = torch.randn(2, C_IN, frames, MELS)
        output = model(x)
        expected = _by_hand(model.state_dict(), x, heads=2, depth=2)
    assert output.shape == (2, frames // 10, 3 * 3 * 2)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=1e-4)


def test_too_long_an_input_is_an_error_and_patchout_only_acts_in_training() -> None:
    torch.manual_seed(0)
    model = build_model("passt", C_IN, n_classes=2, output="accdoa", **{**SMALL, "frames": 501})
    with pytest.raises(ValueError, match="101 time patches exceed the 50 time positions"):
        model(torch.randn(2, C_IN, 1010, MELS))
    dropped = build_model("passt", C_IN, n_classes=2, output="accdoa", **{**SMALL, "frames": 501}, freq_patchout=3)
    dropped.load_state_dict(model.state_dict())
    x = torch.randn(2, C_IN, 501, MELS)
    with torch.no_grad():
        torch.testing.assert_close(dropped.eval()(x), model.eval()(x))  # no patchout at evaluation
        dropped.train()
        trained = dropped(x)
    assert trained.shape == (2, 50, 6) and torch.isfinite(trained).all()
