"""AudioSet initialisation from PANNs CNN14, HTS-AT and PaSST checkpoints.

The checkpoints are synthetic state dicts written here from the official layer names and shapes (PANNs
``models.py`` Cnn14, HTS-AT ``sed_model`` inside its Lightning wrapper, PaSST's timm ViT), saved with ``torch.save``;
the expected copies follow PSELDNets' ``load_ckpts`` (``audioset_pretrain=True``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import default_config, write_feature_file

from seldflow.checkpoints import load_checkpoint
from seldflow.config import check_model_args, validate_config
from seldflow.errors import ConfigError, InputError
from seldflow.models import build_model
from seldflow.models.audioset import load_audioset
from seldflow.train import train

CNN14_WIDTHS = [4, 4, 4, 4, 4, 8]
CNN14_ARGS = {"widths": CNN14_WIDTHS, "heads": 2, "layers": 1}
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
PASST_ARGS = {"embed_dim": 8, "depth": 2, "heads": 2}
AUDIOSET_CLASSES = 527
CHANNELS = 7
BN_STATS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _batch_norm(prefix: str, width: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": torch.rand(width, generator=generator) + 0.5,
        f"{prefix}.bias": torch.randn(width, generator=generator),
        f"{prefix}.running_mean": torch.randn(width, generator=generator),
        f"{prefix}.running_var": torch.rand(width, generator=generator) + 0.5,
        f"{prefix}.num_batches_tracked": torch.tensor(123456),
    }


def _linear(prefix: str, out: int, inp: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": torch.randn(out, inp, generator=generator),
        f"{prefix}.bias": torch.randn(out, generator=generator),
    }


def _layer_norm(prefix: str, width: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": torch.rand(width, generator=generator) + 0.5,
        f"{prefix}.bias": torch.randn(width, generator=generator),
    }


def _front_end(prefix: str, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The STFT and mel matrices AudioSet models carry (tiny stand-ins: they are never loaded)."""
    return {
        f"{prefix}spectrogram_extractor.stft.conv_real.weight": torch.randn(9, 1, 16, generator=generator),
        f"{prefix}spectrogram_extractor.stft.conv_imag.weight": torch.randn(9, 1, 16, generator=generator),
        f"{prefix}logmel_extractor.melW": torch.rand(9, 64, generator=generator),
    }


def panns_cnn14(widths: list[int], mels: int = 64) -> dict[str, torch.Tensor]:
    """PANNs ``Cnn14`` weights: ``bn0``, six double-conv blocks (3x3, no bias), ``fc1``, ``fc_audioset``."""
    g = torch.Generator().manual_seed(1)
    state = _batch_norm("bn0", mels, g) | _front_end("", g)
    previous = 1
    for i, width in enumerate(widths, start=1):
        state[f"conv_block{i}.conv1.weight"] = torch.randn(width, previous, 3, 3, generator=g)
        state[f"conv_block{i}.conv2.weight"] = torch.randn(width, width, 3, 3, generator=g)
        state |= _batch_norm(f"conv_block{i}.bn1", width, g) | _batch_norm(f"conv_block{i}.bn2", width, g)
        previous = width
    state |= _linear("fc1", previous, previous, g) | _linear("fc_audioset", AUDIOSET_CLASSES, previous, g)
    return state


def htsat_audioset(args: dict) -> dict[str, torch.Tensor]:
    """HTS-AT ``sed_model`` weights (Swin blocks with stored relative-position indices and shift masks)."""
    g = torch.Generator().manual_seed(2)
    dim, window = args["embed_dim"], args["window_size"]
    side = args["spec_size"] // args["patch_size"]
    state = _batch_norm("bn0", args["n_mels"], g) | _front_end("", g)
    state["patch_embed.proj.weight"] = torch.randn(dim, 1, args["patch_size"], args["patch_size"], generator=g)
    state["patch_embed.proj.bias"] = torch.randn(dim, generator=g)
    state |= _layer_norm("patch_embed.norm", dim, g)
    stages = len(args["depths"])
    for i, (depth, heads) in enumerate(zip(args["depths"], args["heads"], strict=True)):
        width, resolution = dim * 2**i, side // 2**i
        w = min(window, resolution)
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}."
            state |= _layer_norm(p + "norm1", width, g) | _layer_norm(p + "norm2", width, g)
            state[p + "attn.relative_position_bias_table"] = torch.randn((2 * w - 1) ** 2, heads, generator=g)
            state[p + "attn.relative_position_index"] = torch.zeros(w * w, w * w, dtype=torch.long)
            state |= _linear(p + "attn.qkv", 3 * width, width, g) | _linear(p + "attn.proj", width, width, g)
            state |= _linear(p + "mlp.fc1", 4 * width, width, g) | _linear(p + "mlp.fc2", width, 4 * width, g)
            if j % 2 and resolution > window:
                state[p + "attn_mask"] = torch.zeros((resolution // w) ** 2, w * w, w * w)
        if i < stages - 1:
            state |= _layer_norm(f"layers.{i}.downsample.norm", 4 * width, g)
            state[f"layers.{i}.downsample.reduction.weight"] = torch.randn(2 * width, 4 * width, generator=g)
    final = dim * 2 ** (stages - 1)
    state |= _layer_norm("norm", final, g)
    state["tscam_conv.weight"] = torch.randn(AUDIOSET_CLASSES, final, 2, 3, generator=g)
    state["tscam_conv.bias"] = torch.randn(AUDIOSET_CLASSES, generator=g)
    state |= _linear("head", AUDIOSET_CLASSES, AUDIOSET_CLASSES, g)
    return {f"sed_model.{key}": value for key, value in state.items()}


def passt_audioset(dim: int, depth: int, rows: int = 12, columns: int = 99) -> dict[str, torch.Tensor]:
    """PaSST (timm ViT names): tokens, ramp-valued position tables (value = row / column index), blocks, heads."""
    g = torch.Generator().manual_seed(3)
    state = {
        "cls_token": torch.randn(1, 1, dim, generator=g),
        "dist_token": torch.randn(1, 1, dim, generator=g),
        "new_pos_embed": torch.randn(1, 2, dim, generator=g),
        "freq_new_pos_embed": torch.arange(rows, dtype=torch.float32).reshape(1, 1, rows, 1).repeat(1, dim, 1, 1),
        "time_new_pos_embed": torch.arange(columns, dtype=torch.float32).reshape(1, 1, 1, columns).repeat(1, dim, 1, 1),
        "patch_embed.proj.weight": torch.randn(dim, 1, 16, 16, generator=g),
        "patch_embed.proj.bias": torch.randn(dim, generator=g),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        state |= _layer_norm(p + "norm1", dim, g) | _layer_norm(p + "norm2", dim, g)
        state |= _linear(p + "attn.qkv", 3 * dim, dim, g) | _linear(p + "attn.proj", dim, dim, g)
        state |= _linear(p + "mlp.fc1", 4 * dim, dim, g) | _linear(p + "mlp.fc2", dim, 4 * dim, g)
    state |= _layer_norm("norm", dim, g) | _layer_norm("head.0", dim, g)
    state |= _linear("head.1", AUDIOSET_CLASSES, dim, g) | _linear("head_dist", AUDIOSET_CLASSES, dim, g)
    return state


def _fresh(name: str, **args) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = build_model(name, CHANNELS, **args)
    return model, {key: value.clone() for key, value in model.state_dict().items()}


def _assert_spread(loaded: torch.Tensor, kernel: torch.Tensor) -> None:
    """Every input channel holds the single-channel AudioSet kernel divided by the channel count."""
    assert loaded.shape[1] == CHANNELS
    for channel in range(CHANNELS):
        torch.testing.assert_close(loaded[:, channel], kernel[:, 0] / CHANNELS)


def _assert_scalars(model: torch.nn.Module, state: dict[str, torch.Tensor], prefix: str = "") -> None:
    own = model.state_dict()
    for channel in range(CHANNELS):
        for stat in BN_STATS:
            assert torch.equal(own[f"scalar.{channel}.{stat}"], state[f"{prefix}bn0.{stat}"]), (channel, stat)


def test_panns_cnn14_fills_scalars_and_encoder(tmp_path: Path) -> None:
    state = panns_cnn14(CNN14_WIDTHS)
    path = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"iteration": 600000, "model": state}, path)
    model, before = _fresh("cnn14_conformer", **CNN14_ARGS)

    report = load_audioset(model, path)

    own = model.state_dict()
    _assert_spread(own["convs.conv_block1.conv1.weight"], state["conv_block1.conv1.weight"])
    _assert_scalars(model, state)
    for key in own:
        if key.startswith("convs.") and key != "convs.conv_block1.conv1.weight":
            assert torch.equal(own[key], state[key.removeprefix("convs.")]), key
        elif not key.startswith(("convs.", "scalar.")):  # decoder and fc: fresh
            assert torch.equal(own[key], before[key]), key
    assert set(report.loaded) == {key for key in own if key.startswith(("convs.", "scalar."))}
    assert report.adapted == ["convs.conv_block1.conv1.weight"]
    assert set(report.initialised) == {key for key in own if key.startswith(("decoder.", "fc."))}
    assert set(report.skipped) == {
        "fc1.weight", "fc1.bias", "fc_audioset.weight", "fc_audioset.bias", "logmel_extractor.melW",
        "spectrogram_extractor.stft.conv_real.weight", "spectrogram_extractor.stft.conv_imag.weight",
    }  # fmt: skip
    assert report.unused == [] and report.missing == []
    assert report.summary().startswith(f"AudioSet {path} -> CNN14SELD: loaded {len(report.loaded)} tensors")


def test_htsat_audioset_fills_scalars_and_swin_encoder(tmp_path: Path) -> None:
    state = htsat_audioset(HTSAT_ARGS)
    path = tmp_path / "HTSAT-fullset-imagenet-768d-32000hz.ckpt"
    torch.save({"epoch": 44, "state_dict": state}, path)
    model, before = _fresh("htsat", **HTSAT_ARGS)

    report = load_audioset(model, path)

    own = model.state_dict()
    _assert_spread(own["encoder.patch_embed.proj.weight"], state["sed_model.patch_embed.proj.weight"])
    _assert_scalars(model, state, prefix="sed_model.")
    for key in own:
        if key.startswith("encoder.") and key != "encoder.patch_embed.proj.weight":
            assert torch.equal(own[key], state["sed_model." + key.removeprefix("encoder.")]), key
    assert report.initialised == ["tscam_conv.weight", "tscam_conv.bias"]
    assert all(torch.equal(own[key], before[key]) for key in report.initialised)
    assert set(report.loaded) == set(own) - set(report.initialised)
    assert report.adapted == ["encoder.patch_embed.proj.weight"]
    assert set(report.unused) == {key for key in state if key.endswith(("relative_position_index", "attn_mask"))}
    assert set(report.skipped) == {
        key for key in state if key.startswith(("sed_model.tscam_conv.", "sed_model.head.", "sed_model.spectrogram",
                                                "sed_model.logmel"))
    }  # fmt: skip


@pytest.mark.parametrize(("n_mels", "frames"), [(64, 1001), (160, 501)])
def test_passt_audioset_fits_the_position_tables(tmp_path: Path, n_mels: int, frames: int) -> None:
    """64 mels: the centred 6 of 12 frequency rows; 99 time columns interpolated to 100 (1001 frames) or cut to
    the centred 50 (501 frames); 160 mels: 12 rows interpolated to 16."""
    state = passt_audioset(8, 2)
    path = tmp_path / "passt-l-kd-ap.47.ckpt"
    torch.save(state, path)
    model, before = _fresh("passt", **PASST_ARGS, n_mels=n_mels, frames=frames)

    report = load_audioset(model, path)

    own = model.state_dict()
    rows, columns = n_mels // 10, frames // 10
    freq = own["encoder.freq_new_pos_embed"][0, :, :, 0]  # (D, rows): each row's value is its source row index
    time = own["encoder.time_new_pos_embed"][0, :, 0, :]
    expected_rows = _expected_positions(12, rows)
    expected_columns = _expected_positions(99, columns)
    torch.testing.assert_close(freq, expected_rows.expand_as(freq))
    torch.testing.assert_close(time, expected_columns.expand_as(time))
    _assert_spread(own["encoder.patch_embed.proj.weight"], state["patch_embed.proj.weight"])
    for key in ("cls_token", "dist_token", "new_pos_embed", "blocks.1.mlp.fc2.weight", "norm.bias", "head.0.weight"):
        assert torch.equal(own["encoder." + key], state[key]), key
    assert set(report.initialised) == {key for key in own if key.startswith(("scalar.", "fc."))}
    assert all(torch.equal(own[key], before[key]) for key in report.initialised)
    assert set(report.skipped) == {"head.1.weight", "head.1.bias", "head_dist.weight", "head_dist.bias"}
    assert set(report.adapted) == {f"encoder.{k}" for k in ("patch_embed.proj.weight", "freq_new_pos_embed",
                                                             "time_new_pos_embed")}  # fmt: skip


def _expected_positions(have: int, want: int) -> torch.Tensor:
    """Source index of each of ``want`` positions taken from a ``have``-long ramp: the centred run when cutting,
    ``(i + 0.5) * have / want - 0.5`` clamped to the table (bilinear, half-pixel centres) when stretching."""
    if have >= want:
        return torch.arange(want, dtype=torch.float32) + (have - want) // 2
    return ((torch.arange(want, dtype=torch.float32) + 0.5) * have / want - 0.5).clamp(0, have - 1)


def test_a_checkpoint_without_the_expected_layout_names_the_file_and_key(tmp_path: Path) -> None:
    model, _ = _fresh("cnn14_conformer", **CNN14_ARGS)
    state = panns_cnn14(CNN14_WIDTHS)
    bare = tmp_path / "bare.pth"
    torch.save(state, bare)  # the weights without PANNs' {"model": ...} wrapper
    with pytest.raises(InputError, match="not a PANNs CNN14 checkpoint: no 'model' entry") as error:
        load_audioset(model, bare)
    assert error.value.path == str(bare) and error.value.field == "model"

    del state["conv_block3.bn1.running_var"]
    holed = tmp_path / "holed.pth"
    torch.save({"model": state}, holed)
    with pytest.raises(InputError, match=r"'conv_block3.bn1.running_var' is missing \(1 of") as error:
        load_audioset(model, holed)
    assert error.value.path == str(holed) and error.value.field == "conv_block3.bn1.running_var"

    htsat, _ = _fresh("htsat", **HTSAT_ARGS)
    state = htsat_audioset(HTSAT_ARGS)
    del state["sed_model.layers.1.blocks.0.attn.qkv.weight"], state["sed_model.norm.bias"]
    holed = tmp_path / "htsat.ckpt"
    torch.save({"state_dict": state}, holed)
    message = r"not a HTS-AT AudioSet checkpoint: 'sed_model.layers.1.blocks.0.attn.qkv.weight' is missing \(2 of"
    with pytest.raises(InputError, match=message):
        load_audioset(htsat, holed)
    torch.save({"state_dict": {}}, holed)
    with pytest.raises(InputError, match=r"'sed_model\.bn0\.weight' is missing"):
        load_audioset(htsat, holed)


def test_shape_mismatch_and_unsupported_models(tmp_path: Path) -> None:
    path = tmp_path / "wide.pth"
    torch.save({"model": panns_cnn14([4, 4, 4, 4, 4, 16])}, path)
    model, before = _fresh("cnn14_conformer", **CNN14_ARGS)
    with pytest.raises(InputError, match=r"shape mismatch for 'convs.conv_block6.conv1.weight'") as error:
        load_audioset(model, path)
    assert error.value.path == str(path)
    assert all(torch.equal(value, before[key]) for key, value in model.state_dict().items())  # nothing copied
    with pytest.raises(ConfigError, match="not SELDnet"):
        load_audioset(build_model("seldnet", CHANNELS), path)


def test_config_refuses_two_initialisations_and_models_without_an_audioset_layout() -> None:
    config = default_config()
    config["train"]["pretrained"] = "mACCDOA-HTSAT-0.567.ckpt"
    config["train"]["pretrained_audioset"] = "HTSAT-fullset-imagenet-768d-32000hz.ckpt"
    with pytest.raises(ConfigError, match="not both") as error:
        validate_config(config)
    assert error.value.key == "train.pretrained_audioset"

    config = validate_config(default_config())
    config["experiments"]["HTSAT"]["pretrained_audioset"] = "HTSAT-fullset-imagenet-768d-32000hz.ckpt"
    check_model_args(config)  # htsat has an AudioSet layout
    config["train"]["pretrained_audioset"] = "Cnn14_mAP=0.431.pth"  # train.model is seldnet
    with pytest.raises(ConfigError, match="AudioSet weights fit the CNN14 family") as error:
        check_model_args(config)
    assert error.value.key == "train.pretrained_audioset"


def test_training_starts_from_the_audioset_weights(tmp_path: Path) -> None:
    """With a zero learning rate the trained checkpoint still holds the AudioSet encoder (BatchNorm statistics
    aside, which training updates)."""
    features = tmp_path / "train.h5"
    write_feature_file(features, n_originals=2, channels=CHANNELS, bins=64)
    state = panns_cnn14(CNN14_WIDTHS)
    audioset = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"model": state}, audioset)
    out = tmp_path / "run"
    arguments = {"seed": 1, "model": "cnn14_conformer", "model_args": CNN14_ARGS, "epochs": 1, "batch_size": 4,
                 "lr": 0.0, "weight_decay": 0.0, "validation_fraction": 0.25, "device": "cpu"}  # fmt: skip
    train(train_h5=[features], checkpoint=out / "best.pt", metrics_csv=out / "metrics.csv", state_dir=out / "state",
          pretrained_audioset=str(audioset), **arguments)  # fmt: skip
    weights = load_checkpoint(out / "best.pt")["model_state"]
    _assert_spread(weights["convs.conv_block1.conv1.weight"], state["conv_block1.conv1.weight"])
    assert torch.equal(weights["convs.conv_block4.conv2.weight"], state["conv_block4.conv2.weight"])
    assert torch.equal(weights["scalar.6.bias"], state["bn0.bias"])
    with pytest.raises(ConfigError, match="not both"):
        train(train_h5=[features], checkpoint=out / "b.pt", metrics_csv=out / "m.csv", state_dir=out / "s",
              pretrained=str(audioset), pretrained_audioset=str(audioset), **arguments)  # fmt: skip
