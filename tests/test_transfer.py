"""Checkpoint transfer: PSELDNets Lightning checkpoints into fresh models, released stereo models into inference.

Source checkpoints are written with the reference key layouts (read from Jinbo-Hu/PSELDNets ``src/models`` and the
seed's ``model.py`` / ``main.py``), from scaled-down seldflow models renamed into those layouts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seldflow.checkpoints import load_checkpoint, model_from_checkpoint
from seldflow.errors import InputError
from seldflow.models import build_model
from seldflow.models.htsat import relative_position_index, shift_attention_mask
from seldflow.models.runtime import predict_features
from seldflow.models.transfer import (
    convert_released_checkpoint,
    detect_released_model,
    load_pseldnet,
    load_released_stereo,
)

CNN14_ARGS = {"widths": [4, 4, 4, 4, 4, 8], "heads": 2, "layers": 2}
HTSAT_ARGS = {
    "n_mels": 16,
    "spec_size": 64,
    "patch_size": 4,
    "embed_dim": 8,
    "depths": [2, 2],
    "heads": [1, 2],
    "window_size": 4,
    "pair_clips": False,
}
PSELDNET_OUTPUTS = 170 * 9  # DataSynthSELD: 170 classes x 3 tracks x xyz


def _model(name: str, seed: int, **args) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(name, 7, **args)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so copying them is visible
        for key, value in model.state_dict().items():
            if key.endswith(("running_mean", "running_var")):
                value.uniform_(0.5, 1.5)
    return model.eval()


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in model.state_dict().items()}


def _htsat_buffers(prefix: str, args: dict) -> dict[str, torch.Tensor]:
    """The derived buffers the reference HTSAT stores: relative-position indices and shifted-window masks."""
    buffers = {}
    side = args["spec_size"] // args["patch_size"]
    for stage, depth in enumerate(args["depths"]):
        resolution = side // 2**stage
        window = min(args["window_size"], resolution)
        for block in range(depth):
            name = f"{prefix}encoder.layers.{stage}.blocks.{block}."
            buffers[name + "attn.relative_position_index"] = relative_position_index(window)
            if block % 2 and resolution > args["window_size"]:
                buffers[name + "attn_mask"] = shift_attention_mask(resolution, resolution, window, window // 2)
    return buffers


def _pseld_conformer_decoder(prefix: str, width: int) -> dict[str, torch.Tensor]:
    """A few PSELDNets ConvConformer decoder keys (``decoder`` = ``ConformerBlocks``, ``sequential`` blocks)."""
    block = f"{prefix}decoder.layers.0.sequential."
    return {
        block + "0.module.sequential.0.weight": torch.ones(width),
        block + "0.module.sequential.1.weight": torch.randn(4 * width, width),
        block + "1.module.attention.query_proj.weight": torch.randn(width, width),
        block + "1.module.attention.u_bias": torch.randn(8, width // 8 or 1),
        block + "2.module.sequential.2.conv.weight": torch.randn(2 * width, width, 1),
        block + "4.weight": torch.ones(width),
    }


def _lightning(state: dict[str, torch.Tensor]) -> dict:
    return {
        "epoch": 99,
        "global_step": 12345,
        "pytorch-lightning_version": "2.1.0",
        "state_dict": state,
        "optimizer_states": [],
        "lr_schedulers": [],
    }


@pytest.mark.parametrize("prefix", ["net.", "net._orig_mod."])
def test_cnn14_conformer_gets_scalars_and_encoder_only(tmp_path: Path, prefix: str) -> None:
    source = _model("cnn14_conformer", 1, **CNN14_ARGS)
    state = {prefix + k: v for k, v in source.state_dict().items() if k.startswith(("scalar.", "convs."))}
    state |= _pseld_conformer_decoder(prefix, 8)
    state[prefix + "fc.weight"] = torch.randn(PSELDNET_OUTPUTS, 8)
    state[prefix + "fc.bias"] = torch.randn(PSELDNET_OUTPUTS)
    path = tmp_path / "mACCDOA-CNN14-Conformer-0.582.ckpt"
    torch.save(_lightning(state), path)

    target = _model("cnn14_conformer", 2, **CNN14_ARGS)
    before = _snapshot(target)
    report = load_pseldnet(target, path)

    after = target.state_dict()
    expected = {k for k in after if k.startswith(("scalar.", "convs."))}
    assert set(report.loaded) == expected
    for key, value in after.items():
        if key in expected:
            assert torch.equal(value, source.state_dict()[key]), key
        else:  # decoder and fc keep their fresh initialisation
            assert torch.equal(value, before[key]), key
    assert set(report.initialised) == set(after) - expected
    assert {prefix + k for k in report.skipped} == {
        k for k in state if not k.removeprefix(prefix).startswith(("scalar.", "convs."))
    }
    assert report.missing == [] and report.unused == []
    summary = report.summary()
    assert (
        f"loaded {len(expected)} tensors" in summary and f"{len(report.skipped)} checkpoint tensors skipped" in summary
    )


def test_htsat_gets_everything_but_the_head(tmp_path: Path) -> None:
    source = _model("htsat", 1, **HTSAT_ARGS)
    state = {"net." + k: v for k, v in source.state_dict().items() if not k.startswith("tscam_conv.")}
    state |= _htsat_buffers("net.", HTSAT_ARGS)
    state["net.tscam_conv.weight"] = torch.randn(PSELDNET_OUTPUTS, 16, 2, 3)  # 170-class head: never copied
    state["net.tscam_conv.bias"] = torch.randn(PSELDNET_OUTPUTS)
    state["net.head.weight"] = torch.randn(5, 16)
    lora = "net.encoder.layers.0.blocks.0.attn.qkv.lora_A"
    state[lora] = torch.randn(2, 8)
    path = tmp_path / "mACCDOA-HTSAT-0.567.ckpt"
    torch.save(_lightning(state), path)

    target = _model("htsat", 2, **HTSAT_ARGS)
    before = _snapshot(target)
    report = load_pseldnet(target, path)

    after = target.state_dict()
    for key, value in after.items():
        if key.startswith("tscam_conv."):
            assert torch.equal(value, before[key]), key
        else:
            assert torch.equal(value, source.state_dict()[key]), key
    assert set(report.loaded) == {k for k in after if not k.startswith("tscam_conv.")}
    assert set(report.skipped) == {"tscam_conv.weight", "tscam_conv.bias", "head.weight", lora[len("net.") :]}
    assert set(report.unused) == {k[len("net.") :] for k in _htsat_buffers("net.", HTSAT_ARGS)}
    assert report.initialised == ["tscam_conv.weight", "tscam_conv.bias"]


def test_passt_gets_everything_but_fc(tmp_path: Path) -> None:
    """mACCDOA-PaSST-0.562.ckpt: PSELDNets' PASST.load_ckpts copies every key but ``fc.*``."""
    args = {"embed_dim": 8, "depth": 1, "heads": 2, "frames": 501}
    source = _model("passt", 1, **args)
    state = {"net." + k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    state["net.fc.weight"] = torch.randn(PSELDNET_OUTPUTS, 8)  # 170-class multi-ACCDOA: never copied
    state["net.fc.bias"] = torch.randn(PSELDNET_OUTPUTS)
    path = tmp_path / "mACCDOA-PaSST-0.562.ckpt"
    torch.save(_lightning(state), path)

    target = _model("passt", 2, **args)
    before = _snapshot(target)
    report = load_pseldnet(target, path)

    after = target.state_dict()
    for key, value in after.items():
        expected = before[key] if key.startswith("fc.") else source.state_dict()[key]
        assert torch.equal(value, expected), key
    assert report.initialised == ["fc.weight", "fc.bias"]
    assert set(report.skipped) == {"fc.weight", "fc.bias"}
    assert set(report.loaded) == set(after) - {"fc.weight", "fc.bias"}
    assert report.missing == [] and report.unused == []


def test_bare_state_dict_and_missing_keys_are_reported(tmp_path: Path) -> None:
    source = _model("cnn14_conformer", 1, **CNN14_ARGS)
    state = {k: v for k, v in source.state_dict().items() if k.startswith(("scalar.", "convs."))}
    dropped = "convs.conv_block6.bn2.running_var"
    del state[dropped]
    path = tmp_path / "bare.pt"
    torch.save(state, path)
    target = _model("cnn14_conformer", 2, **CNN14_ARGS)
    report = load_pseldnet(target, path)
    assert report.missing == [dropped]
    assert len(report.loaded) == len(state)
    assert "missing: " + dropped in report.summary()


def test_shape_mismatch_names_file_key_and_shapes(tmp_path: Path) -> None:
    source = _model("cnn14_conformer", 1, widths=[4, 4, 4, 4, 4, 16], heads=2)
    path = tmp_path / "wide.ckpt"
    torch.save(_lightning({"net." + k: v for k, v in source.state_dict().items()}), path)
    target = _model("cnn14_conformer", 2, **CNN14_ARGS)
    before = _snapshot(target)
    with pytest.raises(InputError) as error:
        load_pseldnet(target, path)
    message = str(error.value)
    assert str(path) in message and "convs.conv_block6.conv1.weight" in message
    assert "(16, 4, 3, 3)" in message and "(8, 4, 3, 3)" in message
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())  # nothing half-copied


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"this is not a checkpoint at all", "cannot read checkpoint"),
        ({"epoch": 3, "state_dict": {"net.x": "text"}}, "not a tensor"),
        ([1, 2, 3], "not a PSELDNets checkpoint"),
        ({"state_dict": {"net.unrelated.weight": torch.zeros(2)}}, "no tensor of this checkpoint fits"),
    ],
)
def test_unreadable_or_foreign_files_fail_naming_the_file(tmp_path: Path, content: object, fragment: str) -> None:
    path = tmp_path / "broken.ckpt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(InputError, match=fragment) as error:
        load_pseldnet(_model("cnn14_conformer", 2, **CNN14_ARGS), path)
    assert str(path) in str(error.value)


def test_missing_file_and_truncated_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_pseldnet(_model("htsat", 2, **HTSAT_ARGS), tmp_path / "absent.ckpt")
    good = tmp_path / "good.ckpt"
    torch.save(_lightning({"net." + k: v for k, v in _model("htsat", 1, **HTSAT_ARGS).state_dict().items()}), good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match="cannot read checkpoint") as error:
        load_pseldnet(_model("htsat", 2, **HTSAT_ARGS), truncated)
    assert str(truncated) in str(error.value)


# ---------------------------------------------------------------------------------------------------------------
# Released stereo checkpoints (seed main.py: {"seld_model": model.state_dict(), "opt": ..., "epoch": ..., ...})
# ---------------------------------------------------------------------------------------------------------------


def _seed_conformer_layout(state: dict[str, torch.Tensor], width: int, layers: int) -> dict[str, torch.Tensor]:
    """Rename a seldflow CNN14-Conformer state dict into the seed's ``ConvConformer_Multi`` layout (hand-written)."""
    out = {k: v for k, v in state.items() if not k.startswith("decoder.")}
    for i in range(layers):
        ours = f"decoder.blocks.{i}."
        ref = f"decoder.decoder.layers.{i}.sequential."
        names = {}
        for ff_ours, ff_ref in (("ff_in", "0"), ("ff_out", "3")):
            for j in ("0", "1", "4"):
                names[f"{ff_ours}.net.{j}"] = f"{ff_ref}.module.sequential.{j}"
        names |= {
            "mixer.norm": "1.module.layer_norm",
            "mixer.query": "1.module.attention.query_proj",
            "mixer.key": "1.module.attention.key_proj",
            "mixer.value": "1.module.attention.value_proj",
            "mixer.position": "1.module.attention.pos_proj",
            "mixer.out": "1.module.attention.out_proj",
            "conv.norm": "2.module.sequential.0",
            "conv.pointwise_in": "2.module.sequential.2.conv",
            "conv.depthwise": "2.module.sequential.4.conv",
            "conv.batch_norm": "2.module.sequential.5",
            "conv.pointwise_out": "2.module.sequential.7.conv",
            "norm": "4",
        }
        for key, value in state.items():
            if not key.startswith(ours):
                continue
            rest = key[len(ours) :]
            if rest == "mixer.content_bias":
                out[ref + "1.module.attention.u_bias"] = value
                continue
            if rest == "mixer.position_bias":
                out[ref + "1.module.attention.v_bias"] = value
                continue
            module, _, param = rest.rpartition(".")
            if module in ("conv.pointwise_in", "conv.pointwise_out") and param == "weight":
                value = value.unsqueeze(-1)  # the reference's kernel-1 Conv1d
            out[f"{ref}{names[module]}.{param}"] = value
        out[ref + "1.module.positional_encoding.pe"] = torch.randn(1, 64, width)  # fixed table, dropped
    return out


def _seed_checkpoint(path: Path, state: dict[str, torch.Tensor]) -> None:
    torch.save(
        {
            "seld_model": state,
            "opt": {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0, 1]}]},
            "epoch": 17,
            "best_f_score": np.float64(0.41),  # the seed stores numpy scalars from its metrics
            "best_ang_err": np.float64(21.5),
            "best_rel_dist_err": np.float32(0.3),
        },
        path,
    )


def _features(frames: int, bins: int, batch: int = 4) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(batch, 7, frames, bins)).astype(np.float32)


def _round_trip(tmp_path: Path, source: torch.nn.Module, seed_state: dict, frames: int, bins: int, **kw) -> dict:
    released = tmp_path / "best_model.pth"
    _seed_checkpoint(released, seed_state)
    converted = convert_released_checkpoint(released, tmp_path / "converted" / "best.pt", **kw)
    checkpoint = load_checkpoint(converted)
    model = model_from_checkpoint(converted, checkpoint)
    features = _features(frames, bins)
    expected = predict_features(source, features, batch_size=2, device="cpu")
    np.testing.assert_array_equal(predict_features(model, features, batch_size=2, device="cpu"), expected)
    assert checkpoint["epoch"] == 17 and checkpoint["feature_kind"] == "pfoa"
    return checkpoint


def test_released_cnn14_conformer_round_trips_through_inference(tmp_path: Path) -> None:
    source = _model("cnn14_conformer", 3, **CNN14_ARGS)
    seed_state = _seed_conformer_layout(source.state_dict(), width=8, layers=2)
    assert detect_released_model(seed_state) == "cnn14_conformer"
    checkpoint = _round_trip(tmp_path, source, seed_state, frames=40, bins=64)
    assert checkpoint["model_name"] == "cnn14_conformer"
    args = checkpoint["model_args"]
    assert args["widths"] == [4, 4, 4, 4, 4, 8] and args["heads"] == 2 and args["layers"] == 2
    assert args["conv_kernel"] == 7 and args["ff_expansion"] == 2 and args["n_mels"] == 64


def test_released_htsat_round_trips_through_inference(tmp_path: Path) -> None:
    source = _model("htsat", 3, **HTSAT_ARGS)
    seed_state = {**source.state_dict(), **_htsat_buffers("", HTSAT_ARGS)}  # fc is an Identity: no tensors
    checkpoint = _round_trip(tmp_path, source, seed_state, frames=50, bins=16)
    assert checkpoint["model_name"] == "htsat"
    args = checkpoint["model_args"]
    for key in ("spec_size", "patch_size", "embed_dim", "depths", "heads", "window_size", "pair_clips"):
        assert args[key] == HTSAT_ARGS[key], key


def test_released_bimamba_with_dataparallel_prefix(tmp_path: Path) -> None:
    mamba = {"layers": 1, "headdim": 4, "d_state": 4, "expand": 2, "widths": [4, 4, 4, 4, 4, 8]}
    source = _model("cnn14_bimamba", 3, **mamba)
    seed_state = {}
    for key, value in source.state_dict().items():  # Decoder wrapper; nn.DataParallel's "module."
        key = "decoder.decoder." + key[len("decoder.") :] if key.startswith("decoder.") else key
        seed_state["module." + key] = value
    checkpoint = _round_trip(tmp_path, source, seed_state, frames=40, bins=64)
    assert checkpoint["model_name"] == "cnn14_bimamba"
    assert {k: checkpoint["model_args"][k] for k in ("layers", "headdim", "d_state", "expand")} == {
        "layers": 1,
        "headdim": 4,
        "d_state": 4,
        "expand": 2,
    }


def test_released_checkpoint_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    source = _model("cnn14_conformer", 3, **CNN14_ARGS)
    seed_state = _seed_conformer_layout(source.state_dict(), width=8, layers=2)
    del seed_state["fc.bias"]
    path = tmp_path / "best_model.pth"
    _seed_checkpoint(path, seed_state)
    with pytest.raises(InputError, match=r"missing fc\.bias") as error:
        load_released_stereo(path)
    assert str(path) in str(error.value)
    with pytest.raises(InputError, match="cannot map"):
        torch.save({"seld_model": {"gru.weight": torch.zeros(2)}}, path)
        load_released_stereo(path)
