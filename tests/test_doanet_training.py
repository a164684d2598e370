"""Hnet trained on CPU agrees with the Hungarian algorithm; a tiny DOAnet learns on static plane waves.

The Hnet training test is the CPU plan of the reference facts: one resolution, 9,000 examples, a few tens of
epochs, held-out weighted F1 ≥ 0.95 and agreement with ``linear_sum_assignment`` including padded slots. Hnet's
F1 stays near 0.93 until it learns to compare the two rows of a column (a late jump, after some thousand steps),
so the test needs tens of seconds: marked slow, and the trained Hnet is shared with the dMOT training test.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from doanet_helpers import hnet_test_data, plane_wave_clips, trained_hnet
from scipy.optimize import linear_sum_assignment

from seldflow.checkpoints import save_checkpoint
from seldflow.doanet.hnet import (
    HnetOutput,
    HnetTrainSettings,
    HungarianNet,
    cell_weights,
    hnet_f1,
    hnet_loss,
    load_frozen_hnet,
    predict_assignments,
    save_hnet,
    train_hnet,
    weighted_f1,
)
from seldflow.doanet.hnet_data import generate_hnet_data
from seldflow.doanet.loss import DOAnetLossConfig
from seldflow.doanet.model import DOAnet
from seldflow.doanet.train import check_network_fits_loss, train_step
from seldflow.errors import InputError

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.slow
def test_cpu_trained_hnet_agrees_with_the_hungarian_algorithm() -> None:
    model, result = trained_hnet()
    assert result.weighted_f1 >= 0.95
    data = hnet_test_data()
    predicted = predict_assignments(model, data.distances)
    # Expected assignments recomputed here with scipy on each held-out matrix's active block.
    expected = np.zeros_like(predicted)
    for index, (matrix, rows, columns) in enumerate(
        zip(data.distances, data.reference_active, data.prediction_active, strict=True)
    ):
        rows, columns = np.flatnonzero(rows), np.flatnonzero(columns)
        if len(rows) and len(columns):
            r, c = linear_sum_assignment(matrix[np.ix_(rows, columns)])
            expected[index, rows[r], columns[c]] = 1
    agree = (predicted == expected).all(axis=(1, 2))
    assert agree.mean() >= 0.85
    # Nothing to associate, or one pair: right every time. Two references for one prediction (which row is
    # closer) and 2×2 are the hard cases that a CPU budget leaves imperfect.
    for n_ref, n_pred in itertools.product(range(3), repeat=2):
        pair = (data.n_ref == n_ref) & (data.n_pred == n_pred)
        if max(n_ref, n_pred) <= 1 or min(n_ref, n_pred) == 0:
            assert agree[pair].mean() >= 0.98, (n_ref, n_pred)
    # padded rows and columns are never associated
    padded = ~(data.reference_active[:, :, None] & data.prediction_active[:, None, :])
    assert predicted[padded].mean() < 0.005


@pytest.mark.slow
def test_saved_hnet_loads_frozen_and_checks_n_max(tmp_path) -> None:
    model, result = trained_hnet()
    path = tmp_path / "hnet.pt"
    save_hnet(path, result, {"resolutions": [5]})
    loaded = load_frozen_hnet(path, n_max=2)
    assert not any(parameter.requires_grad for parameter in loaded.parameters())
    data = hnet_test_data()
    assert hnet_f1(loaded, data, cell_weights(data.assignments)) == pytest.approx(
        hnet_f1(model, data, cell_weights(data.assignments))
    )
    with pytest.raises(InputError, match="n_max") as error:
        load_frozen_hnet(path, n_max=3)
    assert str(path) in str(error.value)


def test_hnet_training_is_deterministic_and_selects_on_f1() -> None:
    train = generate_hnet_data(2, [30], (40, 60, 200), seed=1)
    test = generate_hnet_data(2, [30], (8, 12, 40), seed=2)
    settings = HnetTrainSettings(epochs=3, batch_size=64, seed=5)
    first, again = train_hnet(train, test, settings), train_hnet(train, test, settings)
    assert [row["f1"] for row in first.history] == [row["f1"] for row in again.history]
    assert first.weighted_f1 == max(row["f1"] for row in first.history)
    assert first.history[first.epoch - 1]["f1"] == first.weighted_f1
    for key, value in first.model_state.items():
        assert torch.equal(value, again.model_state[key])


def test_hnet_loss_is_three_bce_sums() -> None:
    """Logits 0 everywhere: every BCE term is ln 2 per entry; 4 cells + 2 rows + 2 columns per 2×2 example."""
    zeros = HnetOutput(torch.zeros(3, 4), torch.zeros(3, 2), torch.zeros(3, 2))
    total, terms = hnet_loss(zeros, torch.eye(2).expand(3, 2, 2))
    assert [term.item() for term in terms] == pytest.approx([12 * np.log(2), 6 * np.log(2), 6 * np.log(2)])
    assert total.item() == pytest.approx(24 * np.log(2))


def test_weighted_f1_by_hand() -> None:
    """reference 1 1 0 0 0, prediction 1 0 0 0 1: label 1 F1 = 2/(2+1+1) = 0.5 (support 2), label 0 F1 =
    4/(4+1+1) = 2/3 (support 3); weighted (2·0.5 + 3·2/3)/5 = 0.6. With weights 2 on the first cell: label 1 F1
    = 4/6, support 3; label 0 unchanged: (3·2/3 + 3·2/3)/6 = 2/3."""
    reference, predicted = np.array([1, 1, 0, 0, 0]), np.array([1, 0, 0, 0, 1])
    assert weighted_f1(reference, predicted) == pytest.approx(0.6)
    assert weighted_f1(reference, predicted, np.array([2, 1, 1, 1, 1])) == pytest.approx(2 / 3)
    assert weighted_f1(np.zeros(4), np.zeros(4)) == 1.0


def test_weighted_f1_matches_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(20):
        reference, predicted = rng.random(64) < 0.3, rng.random(64) < 0.3
        weight = np.tile(rng.random(4), 16)
        expected = metrics.f1_score(reference, predicted, average="weighted", zero_division=1, sample_weight=weight)
        assert weighted_f1(reference, predicted, weight) == pytest.approx(expected)


def test_tiny_doanet_mse_loss_decreases_on_plane_waves() -> None:
    torch.manual_seed(0)
    features, doa, activity = plane_wave_clips(16, mode="mse")
    config = DOAnetLossConfig(mode="mse", activity=False)
    model = DOAnet(in_channels=7, n_mels=16, filters=8, rnn_size=16, fnn_size=16, activity=False)
    check_network_fits_loss(model, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = [train_step(model, optimizer, features, doa, activity, config).loss.item() for _ in range(60)]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


@pytest.mark.slow
def test_tiny_doanet_dmot_loss_decreases_with_the_cpu_trained_hnet() -> None:
    hnet, _ = trained_hnet()
    torch.manual_seed(0)
    features, doa, activity = plane_wave_clips(16, mode="hnet")
    config = DOAnetLossConfig()
    model = DOAnet(in_channels=7, n_mels=16, filters=8, rnn_size=16, fnn_size=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    values = [train_step(model, optimizer, features, doa, activity, config, hnet) for _ in range(60)]
    assert np.mean([v.dmotp for v in values[-5:]]) < 0.7 * np.mean([v.dmotp for v in values[:5]])
    assert all(np.isfinite(v.loss.item()) for v in values)


def test_network_and_loss_must_agree_on_the_activity_head() -> None:
    with pytest.raises(ValueError, match="activity head"):
        check_network_fits_loss(DOAnet(filters=4, rnn_size=4, fnn_size=4, activity=False), DOAnetLossConfig())
    with pytest.raises(ValueError, match="activity head"):
        check_network_fits_loss(DOAnet(filters=4, rnn_size=4, fnn_size=4), DOAnetLossConfig(mode="mse", activity=False))


def test_hnet_checkpoint_of_another_kind_is_refused(tmp_path) -> None:
    path = tmp_path / "other.pt"
    save_checkpoint(path, {"kind": "tagger", "model_state": {}, "model_args": {"n_max": 2}})
    with pytest.raises(InputError, match="not an Hnet"):
        load_frozen_hnet(path, n_max=2)
    state = HungarianNet(n_max=3).state_dict()
    save_checkpoint(path, {"kind": "hnet", "model_state": state, "model_args": {"n_max": 2, "hidden": 128}})
    with pytest.raises(InputError, match="do not fit"):
        load_frozen_hnet(path, n_max=2)
