"""The DOAnet stage modules on a tiny TAU-NIGENS-style tree: settings, check, features, training (with resume),
outputs, inference, scoring, report, augmentation and the Hnet stage."""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from doanet_helpers import TINY_RECORDINGS, write_tau_dataset
from helpers import REPO

from seldflow.checkpoints import save_checkpoint
from seldflow.doanet.augment import augment_format
from seldflow.doanet.check import check_dataset
from seldflow.doanet.features import extract_features, frames_per_label, split_recordings
from seldflow.doanet.hnet import HungarianNet, load_frozen_hnet, run_hnet
from seldflow.doanet.infer import write_predictions
from seldflow.doanet.labels import doa_targets
from seldflow.doanet.loss import DOAnetLossConfig
from seldflow.doanet.outputs import ACTIVITY_RULES, activity_rule, prediction_rows
from seldflow.doanet.report import plot_tracks, plot_training, recordings_to_plot
from seldflow.doanet.score import score_predictions
from seldflow.doanet.settings import check_doanet_config, describe, experiment_settings, network_args
from seldflow.doanet.store import FeatureSplit, fit_scaler, read_split
from seldflow.doanet.train import (
    COSINE_FLOOR,
    TrainSettings,
    cut_sequences,
    epoch_lr,
    epoch_order,
    selection_value,
    train_doanet,
)
from seldflow.errors import ConfigError, InputError
from seldflow.formats.events import EV_AZIMUTH, EV_ELEVATION, EV_FRAME, EV_TRACK
from seldflow.tau_nigens2020 import dev_recordings, read_metadata

pytestmark = pytest.mark.usefixtures("single_thread")
FEATURES = {"n_fft": 512, "win_length": 480, "hop_length": 480, "n_mels": 16}
INFER = {"activity_threshold": 0.5, "mse_inactive_deg": 45.0}
NET = {"in_channels": 7, "n_mels": 16, "n_max": 2, "filters": 4, "rnn_size": 8, "fnn_size": 8}


def doanet_config() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load((REPO / "config" / "config.yaml").read_text())["doanet"])


# --------------------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------------------


def test_experiments_replace_train_keys_and_the_network_follows_data_and_loss() -> None:
    doanet = doanet_config()
    settings = experiment_settings(doanet, "mic_mse")
    assert settings["features"] == "mic"
    # the loss merged key by key: the experiment's mode and activity, train's Hnet orientation
    assert settings["loss"] == {**doanet["train"]["loss"], "mode": "mse", "activity": False}
    assert settings["epochs"] == doanet["train"]["epochs"]  # not overridden: the train value
    args = network_args(settings, doanet)
    assert (args["in_channels"], args["n_mels"], args["n_max"], args["activity"]) == (10, 32, 2, False)
    assert describe(experiment_settings(doanet, "foa_dmotp_activity_aug")) == "foa dmotp+activity augmented"


def test_a_derived_network_argument_in_model_args_is_refused() -> None:
    doanet = doanet_config()
    doanet["experiments"]["foa_mse"]["model_args"] = {"in_channels": 4}
    with pytest.raises(ConfigError) as error:
        check_doanet_config(doanet)
    assert error.value.key.endswith("model_args.in_channels")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d["features"].update(hop_length=240), "doanet.features.hop_length"),
        (lambda d: d["embedded"]["splits"]["test"]["rooms"].append("train1"), "doanet.embedded.splits.test.rooms"),
        (lambda d: d["hnet"].update(counts=[1, 2]), "doanet.hnet.counts"),
        (lambda d: d["experiments"]["foa_mse"].update(loss={"mode": "mse", "activity": True}), "loss"),
        (lambda d: d["experiments"]["foa_mse"].update(model_args={"filterz": 3}), "model_args"),
        (lambda d: d.update(run_experiments=["nope"]), "doanet.run_experiments"),
        (lambda d: d["experiments"]["foa_dmot"].update(activity_rule="inactive_direction"), "activity_rule"),
    ],
)
def test_config_mistakes_name_their_key(change, key: str) -> None:
    doanet = doanet_config()
    change(doanet)
    with pytest.raises(ConfigError) as error:
        check_doanet_config(doanet)
    assert key in error.value.key


# --------------------------------------------------------------------------------------------------------------
# Outputs: activity rules and prediction rows
# --------------------------------------------------------------------------------------------------------------


def test_activity_rules() -> None:
    up, front = [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]
    tilted = lambda deg: [math.sin(math.radians(deg)), 0.0, math.cos(math.radians(deg))]  # noqa: E731
    doa = np.array([[up, front], [tilted(44.0), tilted(46.0)]])
    logits = np.array([[2.0, -1.0], [0.1, -0.1]])
    np.testing.assert_array_equal(ACTIVITY_RULES["head"](doa, logits, INFER), [[True, False], [True, False]])
    np.testing.assert_array_equal(
        ACTIVITY_RULES["inactive_direction"](doa, None, INFER), [[False, True], [False, True]]
    )
    assert ACTIVITY_RULES["all_slots"](doa, None, INFER).all()
    mse = DOAnetLossConfig(mode="mse", activity=False)
    assert activity_rule(mse) == "all_slots" and activity_rule(mse, "inactive_direction") == "inactive_direction"
    assert activity_rule(DOAnetLossConfig(mode="dmot", activity=False)) == "all_slots"
    assert activity_rule(DOAnetLossConfig()) == "head"
    for loss, rule in (
        (mse, "head"),
        (DOAnetLossConfig(), "all_slots"),
        (DOAnetLossConfig(activity=False), "inactive_direction"),
    ):
        with pytest.raises(ValueError):
            activity_rule(loss, rule)


def test_prediction_rows_give_degrees_and_the_slot_as_track() -> None:
    doa = np.array([[[0.0, 1.0, 0.0], [0.0, 0.0, -1.0]], [[-1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]])
    rows = prediction_rows(doa, np.array([[True, True], [False, True]]))
    np.testing.assert_array_equal(rows[:, EV_FRAME], [0, 0, 1])
    np.testing.assert_array_equal(rows[:, EV_TRACK], [0, 1, 1])
    np.testing.assert_allclose(rows[:, EV_AZIMUTH], [90.0, 0.0, 45.0], atol=1e-9)
    np.testing.assert_allclose(rows[:, EV_ELEVATION], [0.0, -90.0, 0.0], atol=1e-9)


# --------------------------------------------------------------------------------------------------------------
# Dataset: check, features, scaler, sequences
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tau")
    write_tau_dataset(root, TINY_RECORDINGS)
    return root


@pytest.fixture(scope="module")
def features(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("features")
    paths = {}
    for split in ("train", "validation", "test"):
        paths[split] = out / f"{split}.h5"
        extract_features(split_recordings(dataset, "foa", split), "foa", FEATURES, paths[split])
    return paths


def test_check_lists_every_split(dataset: Path, tmp_path: Path) -> None:
    report = check_dataset(
        dataset,
        formats=["foa", "mic"],
        splits=["train", "validation", "test"],
        n_max=2,
        hnet_weights=None,
        out_json=tmp_path / "check.json",
    )
    assert report["splits"]["test"] == ["fold1_room1_mix001_ov1", "fold1_room1_mix002_ov2"]
    assert len(report["splits"]["train"]) == 4
    assert json.loads((tmp_path / "check.json").read_text()) == report


def test_features_keep_whole_label_frames_and_the_labels(features: dict[str, Path], dataset: Path) -> None:
    assert frames_per_label(480) == 5
    with pytest.raises(ValueError, match="divide"):
        frames_per_label(500)
    split = read_split(features["test"])
    assert sorted(split.features) == ["fold1_room1_mix001_ov1", "fold1_room1_mix002_ov2"]
    assert split.frames_per_label == 5
    assert split.features["fold1_room1_mix001_ov1"].shape == (7, 50, 16)
    np.testing.assert_array_equal(
        split.labels["fold1_room1_mix002_ov2"], read_metadata(dataset / "metadata_dev" / "fold1_room1_mix002_ov2.csv")
    )


def test_scaler_statistics_are_those_of_the_given_recordings_only() -> None:
    a = np.zeros((1, 2, 2), dtype=np.float32)
    b = np.array([[[2.0, 1.0], [2.0, 3.0]]], dtype=np.float32)
    scaler = fit_scaler([FeatureSplit({"a": a, "b": b}, {}, 1)])
    # per channel and mel band over the 4 frames: band 0 holds 0, 0, 2, 2; band 1 holds 0, 0, 1, 3
    np.testing.assert_allclose(scaler.mean, [[[1.0, 1.0]]])
    np.testing.assert_allclose(scaler.std, [[[1.0, math.sqrt(1.5)]]])
    np.testing.assert_allclose(scaler.apply(b), [[[1.0, 0.0], [1.0, 2.0 / math.sqrt(1.5)]]], rtol=1e-6)


def test_sequences_are_whole_windows_with_their_targets() -> None:
    labels = np.array([[0, 0, 0, 90.0, 0.0, np.nan], [11, 0, 0, 0.0, 90.0, np.nan]])
    split = FeatureSplit({"r": np.arange(2 * 12 * 3, dtype=np.float32).reshape(1, 24, 3)}, {"r": labels}, 2)
    scaler = fit_scaler([split])
    data = cut_sequences([split], scaler, 5, 2, "hnet")
    # 12 label frames: two sequences of 5, the last 2 frames dropped
    assert tuple(data.features.shape) == (2, 1, 10, 3) and tuple(data.doa.shape) == (2, 5, 2, 3)
    expected = doa_targets(labels, 12, 2, "hnet")
    np.testing.assert_allclose(data.doa.numpy().reshape(10, 2, 3), expected.doa[:10])
    np.testing.assert_array_equal(data.activity[0, 0].numpy(), [1, 0])
    order = epoch_order(7, 3, 2)
    assert sorted(order) == list(range(7)) and (order == epoch_order(7, 3, 2)).all()


def test_selection_prefers_low_le_or_high_mota_and_never_an_undefined_score() -> None:
    assert selection_value({"LE": 10.0}) > selection_value({"LE": 20.0}) > selection_value({"LE": math.nan})
    assert selection_value({"MOTA": 60.0}, "MOTA") > selection_value({"MOTA": 50.0}, "MOTA")
    with pytest.raises(ConfigError):
        TrainSettings(epochs=1, batch_size=1, lr=1e-3, select_on="MOTP")
    with pytest.raises(ConfigError):
        TrainSettings(epochs=1, batch_size=1, lr=1e-3, grad_clip=0.0)


def test_learning_rate_schedules() -> None:
    constant = TrainSettings(epochs=5, batch_size=1, lr=0.1)
    assert [epoch_lr(constant, epoch) for epoch in range(5)] == [0.1] * 5
    cosine = TrainSettings(epochs=5, batch_size=1, lr=0.1, lr_schedule="cosine")
    rates = [epoch_lr(cosine, epoch) for epoch in range(5)]
    # first epoch at lr, last at the floor, halfway the mean of the two (cos 90° = 0)
    assert rates[0] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.1 * COSINE_FLOOR)
    assert rates[2] == pytest.approx(0.1 * (1 + COSINE_FLOOR) / 2)
    assert all(a > b for a, b in itertools.pairwise(rates))


# --------------------------------------------------------------------------------------------------------------
# Training, resume, inference, scoring, report
# --------------------------------------------------------------------------------------------------------------


def _train(features: dict[str, Path], out: Path, epochs: int, loss: DOAnetLossConfig, hnet=None) -> dict[str, Any]:
    return train_doanet(
        [read_split(features["train"])],
        read_split(features["validation"]),
        model_name="doanet",
        model_args={**NET, "activity": loss.activity},
        loss=loss,
        settings=TrainSettings(epochs=epochs, batch_size=2, lr=1e-3, sequence_frames=10, seed=4, device="cpu"),
        infer=INFER,
        hnet=hnet,
        checkpoint_out=out / "best.pt",
        metrics_out=out / "metrics.csv",
        state_dir=out / "state",
        extras={"feature_kind": "foa", "feature_settings": FEATURES},
    )


def test_training_writes_the_selected_epoch_and_resumes_exactly(features: dict[str, Path], tmp_path: Path) -> None:
    loss = DOAnetLossConfig(mode="mse", activity=False)
    whole = tmp_path / "whole"
    _train(features, whole, 2, loss)
    history = (whole / "metrics.csv").read_text().splitlines()
    assert len(history) == 3 and history[0].startswith("epoch,train_loss,train_dmotp")
    # A run stopped after one epoch and started again for two continues from its state: same weights.
    split = tmp_path / "split"
    _train(features, split, 1, loss)
    _train(features, split, 2, loss)
    a = torch.load(whole / "best.pt", weights_only=True)
    b = torch.load(split / "best.pt", weights_only=True)
    assert a["epoch"] == b["epoch"]
    for key, value in a["model_state"].items():
        assert torch.equal(value, b["model_state"][key]), key
    assert (split / "state" / "tensorboard").is_dir()
    assert a["activity_rule"] == "all_slots" and a["feature_kind"] == "foa"


def test_dmot_training_needs_the_hnet(features: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Hnet"):
        _train(features, tmp_path, 1, DOAnetLossConfig())


@pytest.fixture(scope="module")
def trained(features: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    torch.manual_seed(0)
    hnet = HungarianNet().eval()  # untrained: only the plumbing is under test here
    for parameter in hnet.parameters():
        parameter.requires_grad_(False)
    _train(features, out, 1, DOAnetLossConfig(mode="dmot", activity=True, hnet_rows="references"), hnet)
    return out


def test_inference_writes_one_csv_per_test_recording(trained: Path, features: dict[str, Path], tmp_path: Path) -> None:
    stems = write_predictions(trained / "best.pt", features["test"], tmp_path / "pred", INFER, device="cpu")
    assert stems == ["fold1_room1_mix001_ov1", "fold1_room1_mix002_ov2"]
    for stem in stems:
        text = (tmp_path / "pred" / f"{stem}.csv").read_text()
        for line in text.splitlines():
            frame, cls, track, azimuth, elevation = line.split(",")
            assert 0 <= int(frame) < 10 and cls == "0" and track in ("0", "1")
            assert -180 <= float(azimuth) <= 180 and -90 <= float(elevation) <= 90


def test_inference_refuses_features_of_another_kind(trained: Path, dataset: Path, tmp_path: Path) -> None:
    mic = tmp_path / "mic.h5"
    extract_features(split_recordings(dataset, "mic", "test"), "mic", FEATURES, mic)
    with pytest.raises(InputError) as error:
        write_predictions(trained / "best.pt", mic, tmp_path / "pred", INFER, device="cpu")
    assert error.value.field == "features"


def test_score_counts_by_hand(dataset: Path, tmp_path: Path) -> None:
    """The first test recording predicted exactly, the second not at all: 10 + 7 + 7 reference directions, 10
    matched (LR = 10/24), no false positive, FN = 14, one onset in the first (frame 0 never counts) and two in the
    second (frames 0 and 3; frame 3's birth is only in the reference) -> IDS counts predicted births: 0."""
    references = dev_recordings(dataset, "foa", split="test", check_audio=False)
    pred = tmp_path / "pred"
    pred.mkdir()
    stem = "fold1_room1_mix001_ov1"
    (pred / f"{stem}.csv").write_text((dataset / "metadata_dev" / f"{stem}.csv").read_text())
    report = score_predictions(
        references, pred, tmp_path / "m.json", doa_threshold=20.0, experiment="x", description="y"
    )
    assert report["counts"] == {"TP": 10, "FP": 0, "FN": 14, "n_ref": 24, "n_pred": 10}
    assert report["LR"] == pytest.approx(100 * 10 / 24) and report["LP"] == pytest.approx(100.0)
    assert report["IDS"] == 0 and report["MOTA"] == pytest.approx(100 * (1 - 14 / 24))
    assert report["LE"] < 0.03  # the official clamp floor, 0.0256°
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["settings"]["metric"] == "doa-mot" and saved["settings"]["experiment"] == "x"


def test_report_draws_tracks_and_curves(
    trained: Path, dataset: Path, features: dict[str, Path], tmp_path: Path
) -> None:
    references = dev_recordings(dataset, "foa", split="test", check_audio=False)
    assert [r.stem for r in recordings_to_plot(references, 1)] == ["fold1_room1_mix002_ov2"]  # 14 rows vs 10
    write_predictions(trained / "best.pt", features["test"], tmp_path / "pred", INFER, device="cpu")
    plot_tracks(references, tmp_path / "pred", tmp_path / "tracks.png", n_recordings=2, title="t")
    plot_training(trained / "metrics.csv", tmp_path / "curves.png", title="t")
    for name in ("tracks.png", "curves.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


# --------------------------------------------------------------------------------------------------------------
# Augmentation and the Hnet stage
# --------------------------------------------------------------------------------------------------------------


def test_augmentation_mixes_single_source_pairs_of_a_room(dataset: Path, tmp_path: Path) -> None:
    stems = augment_format(dataset, "foa", tmp_path / "aug", multiplier=4, seed=None)
    # fold 3 room 3 holds three ov1 scenes: all 3 pairs (fewer than 4 x 3); fold 4's scene is ov2
    assert stems == ["fold3_room3_aug001002_ov1", "fold3_room3_aug001003_ov1", "fold3_room3_aug002003_ov1"]
    assert len(split_recordings(tmp_path / "aug", "foa", "augmented")) == 3


def test_hnet_stage_writes_a_frozen_checkpoint_and_its_history(tmp_path: Path) -> None:
    config = {
        "n_max": 2,
        "resolutions": [10],
        "counts": [20, 20, 40],
        "test_counts": [5, 5, 10],
        "epochs": 2,
        "batch_size": 16,
        "weights": None,
    }
    result = run_hnet(config, 1, tmp_path / "hnet.pt", tmp_path / "metrics.csv")
    assert load_frozen_hnet(tmp_path / "hnet.pt", 2).n_max == 2
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == "epoch,train_loss,f1"
    assert 1 <= result.epoch <= 2
    saved = torch.load(tmp_path / "hnet.pt", weights_only=True)
    assert saved["config"]["counts"] == [20, 20, 40] and saved["config"]["epochs"] == 2


# --------------------------------------------------------------------------------------------------------------
# Bad input, named before any training
# --------------------------------------------------------------------------------------------------------------


def _check(root: Path, tmp_path: Path, hnet: Path | None = None) -> None:
    check_dataset(
        root,
        formats=["foa"],
        splits=["train", "validation", "test"],
        n_max=2,
        hnet_weights=hnet,
        out_json=tmp_path / "check.json",
    )


def test_more_tracks_than_n_max_names_file_and_field(dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "bad"
    write_tau_dataset(root, TINY_RECORDINGS)
    path = root / "metadata_dev" / "fold3_room3_mix001_ov1.csv"
    path.write_text(path.read_text() + "4,0,1,10,0\n4,0,2,20,0\n")
    with pytest.raises(InputError) as error:
        _check(root, tmp_path)
    assert error.value.path == str(path) and error.value.field == "frame" and "n_max = 2" in str(error.value)


def test_elevation_out_of_range_names_file_row_and_field(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    write_tau_dataset(root, TINY_RECORDINGS)
    path = root / "metadata_dev" / "fold2_room2_mix001_ov1.csv"
    path.write_text("3,0,0,10,95\n" + path.read_text())
    with pytest.raises(InputError) as error:
        _check(root, tmp_path)
    assert (error.value.path, error.value.row, error.value.field) == (str(path), 1, "elevation")


def test_an_hnet_for_another_n_max_is_refused(dataset: Path, tmp_path: Path) -> None:
    model = HungarianNet(n_max=3)
    path = tmp_path / "hnet3.pt"
    save_checkpoint(
        path, {"kind": "hnet", "model_state": model.state_dict(), "model_args": {"n_max": 3, "hidden": 128}}
    )
    with pytest.raises(InputError) as error:
        _check(dataset, tmp_path, path)
    assert error.value.path == str(path) and error.value.field == "n_max"
