"""Multi-process (DDP, gloo on CPU) training: equal to one process up to float rounding, resumable, bounded."""

from __future__ import annotations

import csv
import functools
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, write_feature_file

import seldflow.distributed as distributed
from seldflow.checkpoints import checkpoint_task, load_checkpoint, model_from_checkpoint
from seldflow.clipstore import split_validation
from seldflow.errors import ConfigError
from seldflow.feature_files import open_feature_file
from seldflow.train import load_validation, train, validate

# Dropout off: each rank draws its own masks, so only a dropout-free model can match one process numerically.
MODEL = {**TINY_MODEL, "dropout": 0.0}
# Float rounding (other summation orders in BatchNorm, the loss and the gradient average): observed below 1e-6;
# a real divergence (per-rank BatchNorm statistics, a wrongly weighted slice) is orders of magnitude larger.
ATOL, RTOL = 1e-5, 1e-4
# Parameters whose exact gradient is zero, so their update is rounding noise that Adam normalises into steps of up
# to ``lr`` (in one process as in several): a convolution bias followed by BatchNorm (and the running mean that
# tracks it), and the key third of the attention input bias (softmax ignores a constant key shift). They are held
# to ``lr`` per optimisation step; they do not change the network's output.
GAUGE = re.compile(r"conv_blocks\.\d+\.(conv\.bias|bn\.running_mean)|attention\.\d+\.attention\.in_proj_bias")
LR, STEPS_PER_EPOCH = 1e-3, 2
# Those gauge steps do change the *evaluation* output a little: in eval mode BatchNorm subtracts its running mean,
# which lags behind the conv bias it tracks (momentum 0.1), so a bias that drifted by up to lr per step in one run
# and differently in the other leaves a residual shift of the same order in the pre-BatchNorm units (~1 here). The
# validation loss of two runs that agree to float rounding may therefore differ by up to about lr × steps relative
# (4e-3 after two epochs of two steps); it was 1.5e-4 on this CPU. Training losses are computed before any such
# drift matters (train-mode BatchNorm uses batch statistics) and stay at float rounding. That validation itself
# computes the same thing in two processes is checked exactly by test_validation_is_rank_independent.
VAL_LOSS_RTOL = LR * STEPS_PER_EPOCH * 2


@pytest.fixture(autouse=True)
def bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung rank must fail the test, not stall the suite."""
    monkeypatch.setattr(distributed, "JOIN_TIMEOUT_S", 120.0)


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("features") / "train.h5"
    write_feature_file(path, n_originals=8)  # 16 clips; 2 originals held out with their twins: 12 train
    return path


def run(folder: Path, features: Path, **overrides: Any) -> Path:
    arguments = {
        "seed": 3, "model": "seldnet", "model_args": MODEL, "epochs": 2, "batch_size": 5, "lr": LR,
        "weight_decay": 0.0, "validation_fraction": 0.25, "device": "cpu", **overrides,
    }  # fmt: skip
    train(
        train_h5=[features],
        checkpoint=folder / "best.pt",
        metrics_csv=folder / "metrics.csv",
        state_dir=folder / "state",
        **arguments,
    )
    return folder


def state(folder: Path) -> dict[str, Any]:
    return torch.load(folder / "state" / "last.pt", weights_only=True)


def metrics(folder: Path) -> list[dict[str, str]]:
    with (folder / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh))


def assert_close_weights(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor], epochs: int = 2) -> None:
    assert first.keys() == second.keys()
    for key in first:
        if GAUGE.fullmatch(key):
            torch.testing.assert_close(first[key], second[key], atol=LR * STEPS_PER_EPOCH * epochs, rtol=0, msg=key)
        elif first[key].is_floating_point():
            torch.testing.assert_close(first[key], second[key], atol=ATOL, rtol=RTOL, msg=key)
        else:
            assert torch.equal(first[key], second[key]), key


def assert_same_run(single: Path, multi: Path) -> None:
    assert_close_weights(state(single)["model"], state(multi)["model"])
    single_best = torch.load(single / "best.pt", weights_only=True)
    multi_best = torch.load(multi / "best.pt", weights_only=True)
    assert single_best["epoch"] == multi_best["epoch"]
    assert_close_weights(single_best["model_state"], multi_best["model_state"])
    for a, b in zip(metrics(single), metrics(multi), strict=True):
        assert a["epoch"] == b["epoch"] and a["lr"] == b["lr"]
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=1e-4)
        assert float(a["val_loss"]) == pytest.approx(float(b["val_loss"]), rel=VAL_LOSS_RTOL)
        # Decoded scores threshold activities and angles: a rounding-level change may flip a frame's detection.
        for column in ("val_F", "val_DOAE", "val_RDE"):
            assert float(a[column]) == pytest.approx(float(b[column]), rel=1e-2), column


# ---------------------------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------------------------


def test_shards_partition_the_batch_and_weights_restore_the_mean() -> None:
    batch = np.arange(7)
    parts = [distributed.shard(batch, rank, 3) for rank in range(3)]
    assert np.array_equal(np.concatenate([part for part, _ in parts]), batch)
    assert [len(part) for part, _ in parts] == [3, 2, 2]
    # DDP averages the ranks' gradients: sum_r weight_r * mean_r / world == the batch mean.
    values = np.random.default_rng(0).standard_normal(7)
    ddp_mean = sum(weight * values[part].mean() for part, weight in parts) / 3
    assert ddp_mean == pytest.approx(values.mean())
    with pytest.raises(ValueError, match="cannot be split"):
        distributed.shard(np.arange(2), 0, 3)


def test_sync_batchnorm_conversion_shares_parameters_and_keeps_state_keys() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.BatchNorm1d(3))
    before = dict(model.state_dict())
    weight = model[1].weight
    converted = distributed.convert_sync_batchnorm(model, cuda=False)
    assert isinstance(converted[1], distributed.CPUSyncBatchNorm)
    assert converted[1].weight is weight
    assert converted.state_dict().keys() == before.keys()
    x = torch.randn(5, 2, 6, 6)
    reference = torch.nn.BatchNorm2d(4)
    reference.load_state_dict(model[1].state_dict())
    # Outside a process group it is plain BatchNorm.
    torch.testing.assert_close(converted[1](converted[0](x)), reference(converted[0](x)))


def test_too_many_processes_for_the_batch_is_a_config_error(tmp_path: Path, features: Path) -> None:
    with pytest.raises(ConfigError, match="processes need batches of at least 3 clips"):
        run(tmp_path / "x", features, batch_size=2, processes=3)
    assert not (tmp_path / "x").exists()


def test_launch_is_bounded_by_its_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        distributed.launch(functools.partial(time.sleep, 60), {}, 2, cuda=False, timeout_s=1.0)
    assert time.monotonic() - started < 30


# ---------------------------------------------------------------------------------------------------------------
# Two gloo processes against one
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, features: Path) -> Path:
    """The single-process reference: 2 epochs of 2 batches of 5 clips (the 2 rest are dropped)."""
    return run(tmp_path_factory.mktemp("single"), features)


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory, features: Path) -> Path:
    """Epoch 1 of the same run in 2 gloo processes (each batch split 3 + 2), as a stopped run leaves it."""
    return run(tmp_path_factory.mktemp("multi"), features, epochs=1, processes=2)


def test_two_processes_match_one(tmp_path: Path, features: Path, multi: Path) -> None:
    """Same seed, same global batches: weights, best epoch and metrics agree up to float rounding."""
    assert_same_run(run(tmp_path / "single", features, epochs=1), multi)
    assert len(state(multi)["rng_ranks"]) == 2  # rank 0 saved every rank's RNG state


def test_validation_is_rank_independent(features: Path, multi: Path) -> None:
    """Rank 0's logged validation equals validating the 2-process run's weights again in one process."""
    checkpoint = load_checkpoint(multi / "best.pt")
    task = checkpoint_task(multi / "best.pt", checkpoint)
    files = [open_feature_file(features)]
    _, val_ids = split_validation(files[0].names, 0.25, 3)
    scores = validate(
        model_from_checkpoint(multi / "best.pt", checkpoint),
        load_validation(files, val_ids, task),
        task=task,
        loss_fn=task.loss(),
        batch_size=5,
        device=torch.device("cpu"),
    )
    logged = metrics(multi)[0]
    assert float(logged["val_loss"]) == pytest.approx(scores["val_loss"], rel=1e-6)
    assert float(logged["val_F"]) == pytest.approx(scores["val_F"], rel=1e-6)


def test_resume_under_ddp(tmp_path: Path, features: Path, single: Path, multi: Path) -> None:
    """Every rank loads rank 0's state; the resumed 2-process run matches the uninterrupted single one."""
    resumed = Path(shutil.copytree(multi, tmp_path / "resumed"))
    run(resumed, features, processes=2)
    assert metrics(resumed)[0] == metrics(multi)[0]  # restored from the state, not trained again
    assert_same_run(single, resumed)
    assert "rng_ranks" not in state(single)


def test_distributed_state_resumes_in_one_process(tmp_path: Path, features: Path, single: Path, multi: Path) -> None:
    """The process count is not part of the fingerprint: a 2-process state continues in a single process."""
    resumed = Path(shutil.copytree(multi, tmp_path / "resumed"))
    run(resumed, features)
    assert metrics(resumed)[0] == metrics(multi)[0]
    assert_same_run(single, resumed)
