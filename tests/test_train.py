"""Training stage: validation split, batching, determinism, resumption, selection, early stopping, outputs."""

from __future__ import annotations

import csv
import math
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, constant_model, stereo_target, write_feature_file

import seldflow.train as train_module
from seldflow.clipstore import ClipStore, epoch_batches, iterate_batches, read_clips, split_validation
from seldflow.errors import ConfigError, InputError
from seldflow.feature_files import open_feature_file
from seldflow.infer import infer_split
from seldflow.loss import ADPITLoss
from seldflow.models import build_model
from seldflow.tasks import build_task
from seldflow.train import load_validation, metrics_columns, train, train_step, validate
from seldflow.training_state import Progress

METRICS_COLUMNS = metrics_columns(build_task(None))


def run(tmp_path: Path, files: list[Path], out: str, **overrides: Any) -> Path:
    """Train the tiny model into ``tmp_path / out`` and return that folder."""
    arguments = {
        "seed": 3,
        "model": "seldnet",
        "model_args": TINY_MODEL,
        "epochs": 1,
        "batch_size": 4,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "validation_fraction": 0.25,
        "device": "cpu",
        **overrides,
    }
    folder = tmp_path / out
    train(
        train_h5=files,
        checkpoint=folder / "best.pt",
        metrics_csv=folder / "metrics.csv",
        state_dir=folder / "state",
        **arguments,
    )
    return folder


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("features") / "train.h5"
    write_feature_file(path, n_originals=8)
    return path


def read_metrics(folder: Path) -> list[dict[str, str]]:
    with (folder / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh))


def assert_same_weights(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> None:
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "state" / "last.pt", weights_only=True)["model"]


# ---------------------------------------------------------------------------------------------------------------
# Split and batches
# ---------------------------------------------------------------------------------------------------------------


def test_validation_holds_out_originals_with_their_twins() -> None:
    names = [name for i in range(20) for name in (f"clip{i:02d}", f"clip{i:02d}_LRswap")]
    train_ids, val_ids = split_validation(names, 0.2, seed=5)
    val_names = {names[i] for i in val_ids}
    train_names = {names[i] for i in train_ids}
    assert len(val_names) == 4
    assert not any(name.endswith("_LRswap") for name in val_names)
    assert not {f"{name}_LRswap" for name in val_names} & train_names
    assert train_names | val_names | {f"{name}_LRswap" for name in val_names} == set(names)
    assert np.array_equal(split_validation(names, 0.2, seed=5)[1], val_ids)
    assert len(split_validation(names, 0.0, seed=5)[1]) == 0
    assert len(split_validation(names[:4], 0.1, seed=5)[1]) == 1  # at least one clip when the fraction is > 0


def test_validation_fraction_must_leave_training_clips() -> None:
    with pytest.raises(ConfigError, match="leaves no training clips"):
        split_validation(["a", "b"], 0.9, seed=0)


def test_epoch_batches_depend_only_on_seed_and_epoch() -> None:
    batches = epoch_batches(10, 4, seed=1, epoch=2)
    assert [len(b) for b in batches] == [4, 4]  # the partial batch is dropped
    assert len(set(np.concatenate(batches))) == 8
    assert all(np.array_equal(a, b) for a, b in zip(batches, epoch_batches(10, 4, seed=1, epoch=2), strict=True))
    assert not np.array_equal(np.concatenate(batches), np.concatenate(epoch_batches(10, 4, seed=1, epoch=3)))
    assert [len(b) for b in epoch_batches(3, 4, seed=1, epoch=1)] == [3]


def test_progress_prefers_later_ties_but_counts_them_as_stale() -> None:
    progress = Progress()
    decisions = [progress.record(score) for score in (0.1, 0.3, 0.3, 0.2, 0.3)]
    assert decisions == [True, True, True, False, True]
    assert progress.stale_epochs == 3
    assert progress.best_score == 0.3


# ---------------------------------------------------------------------------------------------------------------
# Optimisation
# ---------------------------------------------------------------------------------------------------------------


def test_fixed_batch_is_overfitted() -> None:
    """Four clips, each with one static event of its own class: the model must learn them, not just silence."""
    rows = [np.array([[frame, k, 0, -60 + 40 * k, 100 + 50 * k, 0] for frame in range(50)]) for k in range(4)]
    labels = torch.from_numpy(np.stack([stereo_target(r) for r in rows]))
    features = torch.from_numpy(np.random.default_rng(0).standard_normal((4, 3, 251, 16), dtype=np.float32))
    torch.manual_seed(0)
    model = build_model("seldnet", 3, **{**TINY_MODEL, "rnn_size": 16, "fc_size": 32, "dropout": 0.0})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    losses = [
        train_step(model, features, labels, loss_fn=ADPITLoss(), optimizer=optimizer, scaler=scaler, use_amp=False)
        for _ in range(50)
    ]
    silence = ADPITLoss()(torch.zeros(4, 50, 117), labels).item()
    assert losses[-1] < 0.25 * losses[0]
    assert losses[-1] < 0.5 * silence


def test_validation_scores_decoded_predictions_against_label_rows(tmp_path: Path) -> None:
    """A model that always predicts class 3 at 45 degrees and 2.5 m, on clips annotated with exactly that."""
    path = tmp_path / "val.h5"
    write_feature_file(path, n_originals=2, lr_swap=False)
    rows = np.array([[frame, 3, 0, 45, 250, 0] for frame in range(50)], dtype=np.int64)
    with h5py.File(path, "r+") as h5:
        del h5["label_rows"]
        h5["label_rows"] = np.concatenate([np.column_stack([np.full(50, clip), rows]) for clip in range(2)])
    files = [open_feature_file(path)]
    validation = load_validation(files, np.array([1, 0]), build_task(None))
    assert validation.names == ["fold3_room1_mix001", "fold3_room1_mix000"]
    model = constant_model(active=True)
    scores = validate(
        model, validation, task=build_task(None), loss_fn=ADPITLoss(), batch_size=1, device=torch.device("cpu")
    )
    assert scores["val_F"] == pytest.approx(1 / 13)  # macro F: the 12 classes without events score 0
    assert scores["val_DOAE"] == pytest.approx(0.0)
    assert scores["val_RDE"] == pytest.approx(0.0)
    with torch.no_grad():
        outputs = model.eval()(torch.from_numpy(validation.features))
    expected_loss = ADPITLoss()(outputs, torch.from_numpy(validation.targets)).item()
    assert scores["val_loss"] == pytest.approx(expected_loss, rel=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------------------------


def test_outputs_and_checkpoint_contents(tmp_path: Path, features: Path) -> None:
    folder = run(tmp_path, [features], "run", epochs=2)
    rows = read_metrics(folder)
    assert list(rows[0]) == list(METRICS_COLUMNS)
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    assert all(math.isfinite(float(row["val_loss"])) and 0 <= float(row["val_F"]) <= 1 for row in rows)
    checkpoint = torch.load(folder / "best.pt", weights_only=True)
    assert checkpoint["model_name"] == "seldnet"
    assert checkpoint["in_channels"] == 3
    assert checkpoint["feature_kind"] == "pfoa"
    assert checkpoint["model_args"] == {"n_mels": 16, "output": "maccdoa_xyd", "n_classes": 13, **TINY_MODEL}
    assert checkpoint["task"] == build_task(None).spec()  # inference rebuilds the task contract from it
    best_f = max(float(row["val_F"]) for row in rows)
    assert checkpoint["val_metrics"]["val_F"] == pytest.approx(best_f)
    # The input standardisation was fitted on the training clips (random features: mean ~0, std ~1, not exactly).
    norm_mean, norm_std = checkpoint["model_state"]["input_norm.mean"], checkpoint["model_state"]["input_norm.std"]
    assert norm_mean.shape == (3, 1, 16)
    assert 0 < norm_mean.abs().max() < 0.5 and not torch.equal(norm_std, torch.ones_like(norm_std))
    # The checkpoint is usable by inference.
    test_file = tmp_path / "test.h5"
    names = write_feature_file(test_file, n_originals=2, lr_swap=False, labelled=False, seed=9)
    infer_split(checkpoint=folder / "best.pt", features_h5=test_file, out_dir=tmp_path / "pred")
    assert sorted(p.stem for p in (tmp_path / "pred").iterdir()) == names


def test_same_seed_gives_identical_weights(tmp_path: Path, features: Path) -> None:
    first = run(tmp_path, [features], "a")
    second = run(tmp_path, [features], "b")
    assert_same_weights(final_weights(first), final_weights(second))
    # Byte-identical too: the temporary file's name must not leak into the archive.
    assert (first / "best.pt").read_bytes() == (second / "best.pt").read_bytes()
    third = run(tmp_path, [features], "c", seed=4)
    assert not torch.equal(final_weights(first)["head.weight"], final_weights(third)["head.weight"])


def count_epochs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the epochs that are actually trained (as opposed to restored from a saved state)."""
    trained: list[int] = []
    original = train_module._train_epoch

    def counting(*args: Any, **kwargs: Any) -> float:
        trained.append(kwargs["epoch"])
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "_train_epoch", counting)
    return trained


def test_resumed_run_matches_an_uninterrupted_one(
    tmp_path: Path, features: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = run(tmp_path, [features], "straight", epochs=2)
    run(tmp_path, [features], "resumed", epochs=1)
    trained = count_epochs(monkeypatch)
    resumed = run(tmp_path, [features], "resumed", epochs=2)
    assert trained == [2]
    assert_same_weights(final_weights(straight), final_weights(resumed))
    assert [r["epoch"] for r in read_metrics(resumed)] == ["1", "2"]
    straight_best = torch.load(straight / "best.pt", weights_only=True)
    resumed_best = torch.load(resumed / "best.pt", weights_only=True)
    assert straight_best["epoch"] == resumed_best["epoch"]
    assert_same_weights(straight_best["model_state"], resumed_best["model_state"])
    # A finished run has nothing left to do but still restores its outputs.
    (resumed / "best.pt").unlink()
    run(tmp_path, [features], "resumed", epochs=2)
    assert trained == [2]
    assert_same_weights(torch.load(resumed / "best.pt", weights_only=True)["model_state"], resumed_best["model_state"])


def test_changed_settings_start_fresh(tmp_path: Path, features: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(tmp_path, [features], "changed", epochs=1, lr=5e-3)
    trained = count_epochs(monkeypatch)
    changed = run(tmp_path, [features], "changed", epochs=2)
    assert trained == [1, 2]
    fresh = run(tmp_path, [features], "fresh", epochs=2)
    assert_same_weights(final_weights(changed), final_weights(fresh))


def test_early_stopping_and_plateau_schedule(tmp_path: Path, features: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scores = iter([0.1, 0.3, 0.3, 0.2, 0.9, 0.9])

    def scripted_validation(*_: Any, **__: Any) -> dict[str, float]:
        return {"val_loss": 1.0, "val_F": next(scores), "val_DOAE": 10.0, "val_RDE": 0.2}

    monkeypatch.setattr(train_module, "validate", scripted_validation)
    folder = run(tmp_path, [features], "stop", epochs=6, early_stop_patience=2, lr_patience=0, lr_factor=0.5)
    rows = read_metrics(folder)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]  # epochs 3 and 4 do not improve strictly
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4])
    assert torch.load(folder / "best.pt", weights_only=True)["epoch"] == 3  # the later of the tied epochs


def test_a_replaced_pretrained_checkpoint_restarts_a_finished_fine_tuning(
    tmp_path: Path, features: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rerun pretraining writes new weights to the same path: the fine-tuning's saved state must not be resumed."""
    parent = run(tmp_path, [features], "parent", epochs=1)
    run(tmp_path, [features], "child", epochs=1, pretrained=str(parent / "best.pt"))
    trained = count_epochs(monkeypatch)
    run(tmp_path, [features], "child", epochs=1, pretrained=str(parent / "best.pt"))
    assert trained == []  # the same checkpoint: the finished run is restored, nothing trains
    run(tmp_path, [features], "parent", epochs=1, lr=5e-3)  # pretraining changed, same path
    assert trained == [1]
    child = run(tmp_path, [features], "child", epochs=1, pretrained=str(parent / "best.pt"))
    assert trained == [1, 1]
    fresh = run(tmp_path, [features], "fresh_child", epochs=1, pretrained=str(parent / "best.pt"))
    assert_same_weights(final_weights(child), final_weights(fresh))


def test_step_schedule_follows_epochs_not_validation(
    tmp_path: Path, features: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scores = iter([0.1, 0.3, 0.5, 0.7, 0.9])  # always improving: a plateau rule would never lower the rate

    def scripted_validation(*_: Any, **__: Any) -> dict[str, float]:
        return {"val_loss": 1.0, "val_F": next(scores), "val_DOAE": 10.0, "val_RDE": 0.2}

    monkeypatch.setattr(train_module, "validate", scripted_validation)
    folder = run(tmp_path, [features], "step", epochs=5, lr_step_epochs=2, lr_factor=0.5)
    assert [float(r["lr"]) for r in read_metrics(folder)] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])


def test_without_validation_the_last_epoch_is_kept(tmp_path: Path, features: Path) -> None:
    folder = run(tmp_path, [features], "noval", epochs=2, validation_fraction=0.0)
    checkpoint = torch.load(folder / "best.pt", weights_only=True)
    assert checkpoint["epoch"] == 2
    assert_same_weights(checkpoint["model_state"], final_weights(folder))
    assert all(math.isnan(float(row["val_F"])) for row in read_metrics(folder))


def test_streaming_and_loader_workers_do_not_change_the_result(tmp_path: Path, features: Path) -> None:
    in_memory = run(tmp_path, [features], "memory")
    streamed = run(tmp_path, [features], "stream", max_memory_mb=0, num_workers=1)
    assert_same_weights(final_weights(in_memory), final_weights(streamed))
    read_ahead = run(tmp_path, [features], "read_ahead", max_memory_mb=0, num_workers=0)
    assert_same_weights(final_weights(in_memory), final_weights(read_ahead))


@pytest.mark.parametrize("with_handles", [True, False])
def test_read_clips_returns_the_clips_in_the_order_asked(features: Path, with_handles: bool) -> None:
    file = open_feature_file(features)
    indices = np.array([5, 2, 3, 4, 0, 9, 10])  # runs (2-4, 9-10) and single clips, out of order
    with h5py.File(features, "r") as h5:
        expected = np.stack([h5["features"][i] for i in indices])
        handles = {0: h5} if with_handles else None
        got, targets = read_clips([file], indices, build_task(None), handles)
    np.testing.assert_array_equal(got, expected)
    assert targets.shape[0] == len(indices)


def test_a_streamed_store_is_read_one_batch_ahead_in_a_thread(features: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = open_feature_file(features)
    task = build_task(None)
    store = ClipStore([file], np.arange(len(file.names)), task, max_memory_mb=0)
    batches = epoch_batches(len(store), 3, seed=0, epoch=0)
    expected = [store.batch(batch) for batch in batches]
    readers: list[str] = []
    read = store.batch

    def recorded(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        readers.append(threading.current_thread().name)
        return read(positions)

    monkeypatch.setattr(store, "batch", recorded)
    got = list(iterate_batches(store, batches, num_workers=0))
    assert len(got) == len(expected) > 1
    for (features_got, labels_got), (features_expected, labels_expected) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(features_got.numpy(), features_expected)
        np.testing.assert_array_equal(labels_got.numpy(), labels_expected)
    assert readers and all(name.startswith("seldflow-read-ahead") for name in readers)
    store.close()


def test_several_input_files_are_combined(tmp_path: Path, features: Path) -> None:
    other = tmp_path / "other.h5"
    write_feature_file(other, n_originals=4, seed=1)
    with h5py.File(other, "r+") as h5:  # give the second file its own clip names
        del h5["clips"]
        names = [f"fold1_mix{i}" + ("_LRswap" if i % 2 else "") for i in range(8)]
        h5.create_dataset("clips", data=np.array(names, dtype=object), dtype=h5py.string_dtype())
    folder = run(tmp_path, [features, other], "two", validation_fraction=0.1)
    assert (folder / "best.pt").is_file()


def test_bad_inputs_are_reported_with_the_file(tmp_path: Path, features: Path) -> None:
    unlabelled = tmp_path / "unlabelled.h5"
    write_feature_file(unlabelled, n_originals=2, labelled=False)
    with pytest.raises(InputError, match=r"unlabelled\.h5: field 'label_rows'"):
        run(tmp_path, [unlabelled], "x")
    with pytest.raises(InputError, match="clip 'fold3_room1_mix000' also appears"):
        run(tmp_path, [features, features], "x")
    mismatched = tmp_path / "mismatched.h5"
    write_feature_file(mismatched, n_originals=2, channels=4, seed=2)
    with h5py.File(mismatched, "r+") as h5:
        del h5["clips"]
        h5.create_dataset("clips", data=np.array(["a", "b", "c", "d"], dtype=object), dtype=h5py.string_dtype())
    with pytest.raises(InputError, match=r"mismatched\.h5: field 'features'"):
        run(tmp_path, [features, mismatched], "x")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(InputError, match=r"junk\.h5: cannot open as HDF5"):
        run(tmp_path, [tmp_path / "junk.h5"], "x")
    assert not (tmp_path / "x").exists()


def test_a_killed_run_leaves_no_complete_looking_outputs(
    tmp_path: Path, features: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-epoch history goes to the state folder; best.pt and metrics.csv appear together at the end."""
    original = train_module._train_epoch

    def dies_in_epoch_two(trainer: Any, store: Any, batches: Any, workers: int, *, epoch: int, epochs: int) -> float:
        if epoch == 2:
            raise KeyboardInterrupt  # stands for the kill
        return original(trainer, store, batches, workers, epoch=epoch, epochs=epochs)

    monkeypatch.setattr(train_module, "_train_epoch", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, [features], "killed", epochs=2)
    folder = tmp_path / "killed"
    assert not (folder / "best.pt").exists() and not (folder / "metrics.csv").exists()
    with (folder / "state" / "metrics.csv").open() as fh:
        assert [row["epoch"] for row in csv.DictReader(fh)] == ["1"]
    monkeypatch.setattr(train_module, "_train_epoch", original)
    run(tmp_path, [features], "killed", epochs=2)
    assert [int(row["epoch"]) for row in read_metrics(folder)] == [1, 2]


# ---------------------------------------------------------------------------------------------------------------
# TensorBoard
# ---------------------------------------------------------------------------------------------------------------


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a run's event files as ``{tag: [(step, value), ...]}``, read back with TensorBoard itself."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder / "state" / "tensorboard")).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_logs_every_row_of_the_metrics(tmp_path: Path, features: Path) -> None:
    folder = run(tmp_path, [features], "logged", epochs=2)
    assert list((folder / "state" / "tensorboard").glob("events.out.tfevents.*"))
    scalars = tensorboard_scalars(folder)
    rows = read_metrics(folder)
    expected = {
        "loss/train": "train_loss",
        "loss/validation": "val_loss",
        "validation/F": "val_F",
        "learning_rate": "lr",
        "time/epoch_seconds": "seconds",
    }
    for tag, column in expected.items():
        assert [step for step, _ in scalars[tag]] == [1, 2], tag
        np.testing.assert_allclose([value for _, value in scalars[tag]], [float(r[column]) for r in rows], rtol=1e-6)
    validation_tags = {tag for tag in scalars if tag.startswith("validation/")}
    assert validation_tags == {f"validation/{c.removeprefix('val_')}" for c in build_task(None).validation_columns}
    assert not (folder / "tensorboard").exists()  # beside the state, not among the declared outputs


def test_tensorboard_logging_leaves_the_checkpoint_unchanged(
    tmp_path: Path, features: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged = run(tmp_path, [features], "logged", epochs=2)
    monkeypatch.setattr(train_module.TrainingLog, "log_epoch", lambda self, row: None)
    silent = run(tmp_path, [features], "silent", epochs=2)
    assert not (silent / "state" / "tensorboard").exists()
    assert (logged / "best.pt").read_bytes() == (silent / "best.pt").read_bytes()
    assert (logged / "metrics.csv").read_bytes().count(b"\n") == (silent / "metrics.csv").read_bytes().count(b"\n")


def test_a_resumed_run_logs_each_epoch_once(tmp_path: Path, features: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original_save = train_module.save_state

    def dies_saving_epoch_two(path: Path, fingerprint: str, progress: Any, *args: Any) -> None:
        if progress.epoch == 2:
            raise KeyboardInterrupt  # killed after logging epoch 2, before its state was saved
        original_save(path, fingerprint, progress, *args)

    monkeypatch.setattr(train_module, "save_state", dies_saving_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, [features], "resumed", epochs=3)
    monkeypatch.setattr(train_module, "save_state", original_save)
    folder = run(tmp_path, [features], "resumed", epochs=3)
    scalars = tensorboard_scalars(folder)
    assert [step for step, _ in scalars["loss/train"]] == [1, 2, 3]
    assert [value for _, value in scalars["loss/train"]] == pytest.approx(
        [float(r["train_loss"]) for r in read_metrics(folder)]
    )


# ---------------------------------------------------------------------------------------------------------------
# Augmentation and AdapterBit
# ---------------------------------------------------------------------------------------------------------------

EVERY_AUGMENTATION = {"types": ["specaug", "crop", "freqshift", "rotate", "trackmix", "wavmix"], "augmix": True}
# A small HTS-AT for 251 frames of 16 bins, clips alone.
TINY_HTSAT = {"spec_size": 64, "embed_dim": 8, "depths": [1, 2], "heads": [1, 2], "window_size": 4, "pair_clips": False}


@pytest.fixture(scope="module")
def foa_features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("foa") / "train.h5"
    write_feature_file(path, n_originals=8, channels=7, kind="foa")
    return path


def test_augmentation_off_leaves_training_byte_for_byte_unchanged(tmp_path: Path, features: Path) -> None:
    default = run(tmp_path, [features], "default")
    off = run(tmp_path, [features], "off", augment={"types": [], "augmix": True}, adapter=None)
    assert (default / "best.pt").read_bytes() == (off / "best.pt").read_bytes()
    states = [torch.load(folder / "state" / "last.pt", weights_only=True) for folder in (default, off)]
    assert states[0]["fingerprint"] == states[1]["fingerprint"]  # the settings left off are not part of it


@pytest.mark.slow
def test_augmented_training_is_seeded_and_resumes_exactly(
    tmp_path: Path, foa_features: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every augmentation with augmix on FOA features (3-D multi-ACCDOA): a resumed run draws the same
    augmentations as an uninterrupted one, and they change what is learnt."""
    options = {"method": "maccdoa", "augment": EVERY_AUGMENTATION}
    straight = run(tmp_path, [foa_features], "straight", epochs=2, **options)
    run(tmp_path, [foa_features], "resumed", epochs=1, **options)
    trained = count_epochs(monkeypatch)
    resumed = run(tmp_path, [foa_features], "resumed", epochs=2, **options)
    assert trained == [2]
    assert_same_weights(final_weights(straight), final_weights(resumed))
    plain = run(tmp_path, [foa_features], "plain", epochs=2, method="maccdoa")
    assert not torch.equal(final_weights(plain)["head.weight"], final_weights(straight)["head.weight"])


def test_adapterbit_training_updates_only_adapters_biases_and_head(tmp_path: Path, foa_features: Path) -> None:
    folder = run(
        tmp_path, [foa_features], "adapterbit", model="htsat", model_args=TINY_HTSAT, method="maccdoa",
        adapter={"ratio": 0.5, "scale": 0.1}, augment={"types": ["rotate", "specaug"]},
    )  # fmt: skip
    checkpoint = torch.load(folder / "best.pt", weights_only=True)
    assert checkpoint["model_args"]["adapter_ratio"] == 0.5 and checkpoint["model_args"]["adapter_scale"] == 0.1
    # Inference rebuilds the adapted network from the checkpoint alone.
    rebuilt = build_model(checkpoint["model_name"], checkpoint["in_channels"], **checkpoint["model_args"])
    rebuilt.load_state_dict(checkpoint["model_state"])
    torch.manual_seed(3)  # the run's seed: its initial weights
    initial = build_model(checkpoint["model_name"], checkpoint["in_channels"], **checkpoint["model_args"])
    trained = final_weights(folder)
    for name, value in initial.named_parameters():
        if not (".adapter." in name or "bias" in name or name.startswith("tscam_conv.")):
            assert torch.equal(trained[name], value.detach()), name  # frozen
    assert not torch.equal(trained["encoder.layers.1.blocks.0.mlp.adapter.fc2.weight"], torch.zeros(16, 8))
    assert not torch.equal(trained["tscam_conv.weight"], initial.state_dict()["tscam_conv.weight"])


def test_an_adapter_on_another_model_fails_before_training(tmp_path: Path, features: Path) -> None:
    with pytest.raises(ConfigError, match="AdapterBit") as error:
        run(tmp_path, [features], "bad", adapter={"ratio": 0.5})
    assert error.value.key == "adapter"
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match="FOA") as error:
        run(tmp_path, [features], "bad", augment={"types": ["rotate"]})
    assert error.value.key == "augment.types"


@pytest.mark.parametrize("keep", [True, False])
def test_training_keeps_freed_memory_in_the_process_unless_told_not_to(
    tmp_path: Path, features: Path, monkeypatch: pytest.MonkeyPatch, keep: bool
) -> None:
    calls = []
    monkeypatch.setattr(train_module, "keep_heap", lambda: calls.append(True) or True)
    run(tmp_path, [features], "run", epochs=1, keep_freed_memory=keep)
    assert calls == ([True] if keep else [])
