"""AdapterBit: zero-initialised adapters leave the pretrained HTS-AT's output alone; only adapters, biases and the
head train; parameter counts; configuration errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from seldflow.config import check_train_options
from seldflow.errors import ConfigError
from seldflow.models import build_model
from seldflow.models.adapters import check_adapter, freeze_for_adapterbit, trainable_summary
from seldflow.models.htsat import HTSAT
from seldflow.models.parameters import adapterbit_parameter_counts
from seldflow.models.transfer import load_pseldnet

# A small HTS-AT: two stages of widths 8 and 16 on 16 mel bins, clips alone (no pairing).
SMALL = {
    "n_mels": 16,
    "spec_size": 64,
    "embed_dim": 8,
    "depths": (1, 2),
    "heads": (1, 2),
    "window_size": 4,
    "pair_clips": False,
    "output": "maccdoa_xyz",
    "n_classes": 3,
}
ADAPTED = {**SMALL, "adapter_ratio": 0.5, "adapter_scale": 0.1}
BLOCKS = 3  # Swin blocks of SMALL


def small(seed: int = 0, **args: object) -> HTSAT:
    torch.manual_seed(seed)
    return HTSAT(7, **{**SMALL, **args})


def features(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 7, 50, 16, generator=torch.Generator().manual_seed(seed))


def test_at_initialisation_the_adapted_model_computes_the_pretrained_one() -> None:
    pretrained = small().eval()
    adapted = small(seed=5, adapter_ratio=0.5, adapter_scale=0.1)
    missing, unexpected = adapted.load_state_dict(pretrained.state_dict(), strict=False)
    assert not unexpected
    # Two adapters per block, each fc1 and fc2 with weight and bias: nothing else is new.
    assert len(missing) == BLOCKS * 2 * 4 and all(".adapter." in key for key in missing)
    assert {key.split(".adapter.")[0].rsplit(".", 1)[1] for key in missing} == {"attn", "mlp"}
    adapted.eval()
    with torch.no_grad():
        assert torch.equal(adapted(features()), pretrained(features()))
    # Built with the same seed, the adapters come last and leave every other weight as it was.
    same_seed = small(adapter_ratio=0.5)
    for key, value in pretrained.state_dict().items():
        assert torch.equal(same_seed.state_dict()[key], value), key


def test_adapter_shapes_follow_the_block_widths() -> None:
    adapted = small(adapter_ratio=0.5)
    block = adapted.encoder.layers[1].blocks[0]
    for adapter in (block.attn.adapter, block.mlp.adapter):
        assert tuple(adapter.fc1.weight.shape) == (8, 16)  # d = 16 -> d / 2
        assert tuple(adapter.fc2.weight.shape) == (16, 8)
        assert not adapter.fc2.weight.any() and not adapter.fc2.bias.any()
        assert adapter.scale == 0.1


def test_a_pseldnets_checkpoint_fills_the_adapted_model_but_its_adapters(tmp_path: Path) -> None:
    """Loaded the way training loads `train.pretrained`: adapters keep their zero start, the output is the
    checkpoint's."""
    pretrained = small(seed=3).eval()
    path = tmp_path / "pseldnet.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in pretrained.state_dict().items()}}, path)
    adapted = small(seed=9, adapter_ratio=0.5)
    report = load_pseldnet(adapted, path)
    assert all(".adapter." in key or key.startswith("tscam_conv.") for key in report.initialised)
    assert sum(".adapter." in key for key in report.initialised) == BLOCKS * 2 * 4
    adapted.tscam_conv.load_state_dict(pretrained.tscam_conv.state_dict())  # the head is re-initialised by rule
    adapted.eval()
    with torch.no_grad():
        assert torch.equal(adapted(features()), pretrained(features()))


def test_gradients_reach_only_adapters_biases_and_head() -> None:
    net = small(adapter_ratio=0.5)
    freeze_for_adapterbit(net)
    frozen = {
        "scalar.0.weight",
        "encoder.patch_embed.proj.weight",
        "encoder.patch_embed.norm.weight",
        "encoder.layers.0.blocks.0.norm1.weight",
        "encoder.layers.0.blocks.0.attn.qkv.weight",
        "encoder.layers.0.blocks.0.attn.proj.weight",
        "encoder.layers.0.blocks.0.mlp.fc1.weight",
        "encoder.layers.0.downsample.norm.weight",
        "encoder.layers.0.downsample.reduction.weight",
        "encoder.norm.weight",
    }
    trained = {
        "scalar.0.bias",
        "encoder.patch_embed.proj.bias",
        "encoder.layers.0.blocks.0.norm1.bias",
        "encoder.layers.0.blocks.0.attn.qkv.bias",
        "encoder.layers.0.blocks.0.attn.relative_position_bias_table",  # named bias, as PSELDNets selects
        "encoder.layers.0.blocks.0.attn.adapter.fc1.weight",
        "encoder.layers.0.blocks.0.mlp.adapter.fc2.weight",
        "encoder.layers.0.blocks.0.mlp.fc2.bias",
        "encoder.norm.bias",
        "tscam_conv.weight",
        "tscam_conv.bias",
    }
    names = dict(net.named_parameters())
    assert frozen | trained <= names.keys()
    net.train()
    before = copy.deepcopy(net.state_dict())
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    net(features()).square().mean().backward()
    for name, parameter in names.items():
        is_trained = ".adapter." in name or "bias" in name or name.startswith("tscam_conv.")
        assert parameter.requires_grad == is_trained, name
        assert (parameter.grad is not None) == is_trained, name
    assert names["encoder.layers.0.blocks.0.mlp.adapter.fc2.weight"].grad.abs().sum() > 0
    optimizer.step()
    after = net.state_dict()
    for name in frozen:
        assert torch.equal(after[name], before[name]), name
    for name in ("tscam_conv.weight", "encoder.layers.0.blocks.0.attn.adapter.fc2.weight", "scalar.0.bias"):
        assert not torch.equal(after[name], before[name]), name


def test_freezing_a_model_without_adapters_is_an_error() -> None:
    with pytest.raises(ConfigError, match="without adapters"):
        freeze_for_adapterbit(small())


def test_trainable_summary_counts_by_hand() -> None:
    net = small(adapter_ratio=0.5)
    freeze_for_adapterbit(net)
    counts = trainable_summary(net)
    # Adapters: d*(d/2) + d/2 + (d/2)*d + d = d^2 + 1.5 d each, two per block: one block of 8, two of 16.
    adapters = 2 * (8 * 8 + 12) + 2 * 2 * (16 * 16 + 24)
    assert counts["adapters"] == adapters
    # Head: Conv2d(16 -> 3 tracks x 3 x 3 classes = 27, kernel (freq_rows 2, 3)) = 27 * 16 * 6 + 27.
    assert counts["head"] == 27 * 16 * 6 + 27
    # Biases per block 11 d (norm1 d, qkv 3d, proj d, norm2 d, fc1 4d, fc2 d) + (2w - 1)^2 heads = 49 heads;
    # patch embedding 8 + 8, merging norm 4 * 8, final norm 16, seven BatchNorm scalars of 16 bins.
    biases = (11 * 8 + 49 * 1) + 2 * (11 * 16 + 49 * 2) + 16 + 32 + 16 + 7 * 16
    assert counts["biases"] == biases
    assert counts["trainable"] == adapters + 27 * 16 * 6 + 27 + biases
    assert counts["total"] == sum(p.numel() for p in small().parameters()) + adapters


def test_reference_adapterbit_parameter_counts() -> None:
    """PSELDNets' FOA HTS-AT (widths 96, 192, 384, 768; depths 2, 2, 6, 2; heads 4, 8, 16, 32; window 8) with the
    13-class multi-ACCDOA head: 28,083,725 parameters without adapters (the reference count)."""
    counts = adapterbit_parameter_counts("htsat")
    widths, depths, heads = (96, 192, 384, 768), (2, 2, 6, 2), (4, 8, 16, 32)
    adapters = sum(n * 2 * (d * d + 3 * d // 2) for d, n in zip(widths, depths, strict=True))
    biases = sum(n * (11 * d + 225 * h) for d, n, h in zip(widths, depths, heads, strict=True))
    biases += sum(4 * d for d in widths[:-1]) + 96 + 96 + 768 + 7 * 64
    head = 117 * 768 * 2 * 3 + 117
    assert counts["adapters"] == adapters == 4_326_336
    assert counts["total"] == 28_083_725 + adapters
    assert counts["biases"] == biases and counts["head"] == head
    assert counts["trainable"] == adapters + biases + head
    assert (counts["feature_kind"], counts["method"], counts["n_classes"]) == ("foa", "maccdoa", 13)


def test_an_adapter_on_another_model_is_one_config_error() -> None:
    assert check_adapter("htsat", None) is None
    assert check_adapter("htsat", {}).ratio == 0.5
    with pytest.raises(ConfigError, match="seldnet") as error:
        check_adapter("seldnet", {"ratio": 0.5})
    assert error.value.key == "adapter"
    with pytest.raises(ConfigError) as error:
        check_adapter("htsat", {"ratio": 0.0})
    assert error.value.key == "adapter.ratio"
    with pytest.raises(ConfigError):
        build_model("seldnet", 7, adapter_ratio=0.5)


def test_workflow_check_names_the_experiment_key() -> None:
    config = {
        "features": {"kind": "foa", "n_mels": 64},
        "dataset": {"label_format": "dcase2021"},
        "train": {"model": "htsat", "adapter": {"ratio": 0.5}},
        "experiments": {"cnn": {"model": "cnn14_conformer", "adapter": {"ratio": 0.5}}},
    }
    with pytest.raises(ConfigError) as error:
        check_train_options(config)
    assert error.value.key == "experiments.cnn.adapter"
    config["experiments"] = {"rot": {"augment": {"types": ["rotate"]}, "method": "maccdoa_xyd"}}
    with pytest.raises(ConfigError) as error:
        check_train_options(config)
    assert error.value.key == "experiments.rot.augment.types"
    config["experiments"] = {"ok": {"augment": {"types": ["rotate", "wavmix"], "augmix": True}}}
    check_train_options(config)
