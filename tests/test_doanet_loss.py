"""dMOTp / dMOTa and the MSE baseline on hand-made frames (seldflow.doanet.loss).

The formula tests use an *ideal* association network in place of Hnet: logits ±20 on the Hungarian assignment of
the pairs of unit vectors (distance ≤ 2), so that A is 0 or 1 to within 2e-9 and every expected figure can be
worked out by hand. Gradients are checked through a real (frozen) Hnet.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from doanet_helpers import trained_hnet
from scipy.optimize import linear_sum_assignment
from torch import nn

from seldflow.doanet.hnet import HnetOutput, HungarianNet
from seldflow.doanet.loss import DOAnetLossConfig, dmot_terms, doanet_loss
from seldflow.doanet.model import DOAnet, DOAnetOutput

pytestmark = pytest.mark.usefixtures("single_thread")

X, Y, Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
OFF = (10.0, 10.0, 10.0)
DMOT = DOAnetLossConfig(mode="dmot", activity=False)


class IdealHnet(nn.Module):
    """Logits +20 on the minimum-distance assignment of the pairs closer than 2 (unit vectors), -20 elsewhere."""

    def forward(self, distances: torch.Tensor) -> HnetOutput:
        matrices = distances.detach().numpy()
        logits = np.full(matrices.shape, -20.0)
        for frame, matrix in enumerate(matrices):
            rows, columns = np.flatnonzero((matrix <= 2).any(1)), np.flatnonzero((matrix <= 2).any(0))
            if len(rows) and len(columns):
                r, c = linear_sum_assignment(matrix[np.ix_(rows, columns)])
                logits[frame, rows[r], columns[c]] = 20.0
        out = torch.as_tensor(logits, dtype=distances.dtype)
        return HnetOutput(out.flatten(1), out.amax(-1), out.amax(-2))


def frames(*rows: tuple) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def terms(predictions, references, activity, config=DMOT, hnet=None):
    return dmot_terms(predictions, references, torch.tensor(activity, dtype=torch.float32), hnet or IdealHnet(), config)


def test_prediction_equal_to_reference_costs_nothing() -> None:
    """Predictions on the references (the spare prediction of frame 3 anywhere on the sphere): dMOTp = 0,
    FP = FN = 0, and no identity switch."""
    result = terms(frames((X, Y), (X, Y), (Z, X)), frames((X, Y), (X, Y), (Z, OFF)), [[1, 1], [1, 1], [1, 0]])
    assert result.dmotp.item() == pytest.approx(0, abs=1e-5)
    assert result.fp.tolist() == pytest.approx([0, 0, 0], abs=1e-6)
    assert result.fn.tolist() == pytest.approx([0, 0, 0], abs=1e-6)
    assert result.ids.tolist() == pytest.approx([0, 0, 0], abs=1e-6)
    assert result.dmota.item() == pytest.approx(0, abs=1e-6)


def test_dmotp_weights_each_frame_by_its_association_count() -> None:
    """Frame 1: both tracks matched, one at chord 1 (60° apart); frame 2: one match at chord 0.5 (≈ 28.96°).
    dMOTp = 50 · (1 · 2 + 0.5 · 1) / (2 + 1) = 41.667 (the plain Σ D⊙A / Σ A would give 50 · 1.5 / 3 = 25)."""
    sixty = (0.0, math.cos(math.radians(60)), math.sin(math.radians(60)))
    half_chord = 2 * math.asin(0.25)  # chord 2·sin(θ/2) = 0.5
    tilted = (math.cos(half_chord), 0.0, math.sin(half_chord))
    predictions = frames((X, sixty), (tilted, Y))
    references = frames((X, Y), (X, OFF))
    result = terms(predictions, references, [[1, 1], [1, 0]])
    assert result.dmotp.item() == pytest.approx(50 * 2.5 / 3, rel=1e-5)


def test_a_missing_prediction_is_one_false_negative() -> None:
    """Two references, one prediction (the other slot outside the sphere): M = 1, N = 2 → FN = 1, FP = 0."""
    result = terms(frames((X, OFF)), frames((X, Y)), [[1, 1]])
    assert result.fn.item() == pytest.approx(1, abs=1e-6) and result.fp.item() == pytest.approx(0, abs=1e-6)
    assert result.dmota.item() == pytest.approx(1 / 1, rel=1e-5)  # (FP + FN + IDS) / M


def test_an_extra_associated_prediction_is_one_false_positive() -> None:
    """Both predictions associated (M = 2) while the reference activity counts one source (N = 1): FP = 1.

    N comes from the reference activity, M from the association; with unit predictions and the inactive
    reference at (10, 10, 10), Hnet leaves an extra prediction unassociated, so FP arises where the two disagree.
    """
    result = terms(frames((X, Y)), frames((X, Y)), [[1, 0]])
    assert result.fp.item() == pytest.approx(1, abs=1e-6) and result.fn.item() == pytest.approx(0, abs=1e-6)
    unassociated = terms(frames((X, Y)), frames((X, OFF)), [[1, 0]])
    assert unassociated.fp.item() == pytest.approx(0, abs=1e-6)


def test_swapped_association_counts_identity_switches() -> None:
    """Frame 2 swaps the two predictions: A goes from identity to anti-diagonal, IDS₂ = Σ A₂⊙(1 − A₁) = 2;
    dMOTa = (0 + 0 + 2) / (2 + 2) = 0.5; the first frame has no IDS."""
    result = terms(frames((X, Y), (Y, X)), frames((X, Y), (X, Y)), [[1, 1], [1, 1]])
    assert result.ids.tolist() == pytest.approx([0, 2], abs=1e-6)
    assert result.dmota.item() == pytest.approx(0.5, rel=1e-5)
    steady = terms(frames((X, Y), (X, Y)), frames((X, Y), (X, Y)), [[1, 1], [1, 1]])
    assert steady.ids.tolist() == pytest.approx([0, 0], abs=1e-6)


def flat_doa(*tracks: tuple) -> list[float]:
    """Reference output layout [x…, y…, z…] of one frame's tracks."""
    return [track[axis] for axis in range(3) for track in tracks]


def output_of(frames_: list[list[tuple]], activity: list[list[float]] | None = None) -> DOAnetOutput:
    """A (B = len, T = 1) network output holding the given tracks per clip."""
    doa = torch.tensor([[flat_doa(*tracks)] for tracks in frames_])
    act = None if activity is None else torch.tensor([[a] for a in activity])
    return DOAnetOutput(doa, act)


def test_ids_run_across_clips_of_a_batch() -> None:
    """Batch and time are flattened clip after clip: a swap between clip 1 and clip 2 is an identity switch."""
    output = output_of([[X, Y], [Y, X]])
    references = torch.tensor([[[X, Y]], [[X, Y]]])
    activity = torch.ones(2, 1, 2)
    value = doanet_loss(output, references, activity, DMOT, IdealHnet())
    assert value.dmota == pytest.approx(0.5, rel=1e-5)
    assert value.loss.item() == pytest.approx(value.dmotp + value.dmota, rel=1e-6)


def test_activity_branch_adds_weighted_bce_on_the_associated_slots() -> None:
    """pred = ref, one source: dMOT = 0, target a_pred = [1, 0]; logits [0, 0] give BCE ln 2, so L = 10 · ln 2."""
    output = output_of([[X, Z]], activity=[[0.0, 0.0]])
    value = doanet_loss(
        output, torch.tensor([[[X, OFF]]]), torch.tensor([[[1.0, 0.0]]]), DOAnetLossConfig(), IdealHnet()
    )
    assert value.activity == pytest.approx(math.log(2), rel=1e-6)
    assert value.loss.item() == pytest.approx(10 * math.log(2), rel=1e-5)


def test_mse_baseline_compares_unit_vectors_slot_by_slot() -> None:
    """Outputs (0.5, 0, 0) and (0, 0, 0.5) normalise to x and z; against (y, z) the squared errors sum to 2 over
    6 entries: 1/3."""
    config = DOAnetLossConfig(mode="mse", activity=False)
    output = output_of([[(0.5, 0.0, 0.0), (0.0, 0.0, 0.5)]])
    assert doanet_loss(output, torch.tensor([[[X, Z]]]), torch.ones(1, 1, 2), config).loss.item() == pytest.approx(0)
    value = doanet_loss(output, torch.tensor([[[Y, Z]]]), torch.ones(1, 1, 2), config)
    assert value.loss.item() == pytest.approx(1 / 3, rel=1e-6) and math.isnan(value.dmotp)


def test_gradients_through_a_frozen_hnet_are_finite() -> None:
    torch.manual_seed(0)
    hnet = HungarianNet(n_max=2).eval()
    for parameter in hnet.parameters():
        parameter.requires_grad_(False)
    model = DOAnet(in_channels=7, n_mels=16, filters=4, rnn_size=8, fnn_size=8)
    references = torch.tensor([[X, OFF], [X, Y], [Y, Z], [Z, OFF], [X, Y]]).expand(2, 5, 2, 3)
    activity = (references[..., 0] != 10).float()
    value = doanet_loss(model(torch.randn(2, 7, 25, 16)), references, activity, DOAnetLossConfig(), hnet)
    value.loss.backward()
    gradients = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in gradients)
    assert any(g.abs().sum() > 0 for g in gradients)
    assert all(p.grad is None for p in hnet.parameters())


def test_gradients_are_finite_at_zero_distance() -> None:
    predictions = frames((X, Y)).requires_grad_(True)
    result = terms(predictions, frames((X, Y)), [[1, 1]])
    result.dmotp.backward()
    assert torch.isfinite(predictions.grad).all()


def test_no_association_gives_zero_dmotp_not_nan() -> None:
    result = terms(frames((OFF, OFF)), frames((X, Y)), [[1, 1]])
    assert result.dmotp.item() == 0 and result.fn.item() == pytest.approx(2, abs=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [{"mode": "mse"}, {"mode": "pit"}, {"dmotp_weight": -1.0}, {"branch_weights": (1.0,)}],
    ids=["mse-with-activity", "unknown-mode", "negative-weight", "one-branch-weight"],
)
def test_bad_loss_settings_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        DOAnetLossConfig(**kwargs)


def test_the_papers_parameter_sets_are_expressible() -> None:
    """MSE, dMOT only, dMOT + activity, and the dMOTp-only ablations (w_a = w_ids = 0)."""
    mse = DOAnetLossConfig(mode="mse", activity=False)
    dmot_only = DOAnetLossConfig(activity=False)
    full = DOAnetLossConfig()
    ablation = DOAnetLossConfig(dmota_weight=0.0, ids_weight=0.0)
    assert not mse.uses_hnet and dmot_only.uses_hnet and full.activity and full.branch_weights == (1.0, 10.0)
    assert (full.dmotp_weight, full.dmota_weight, full.ids_weight) == (50.0, 1.0, 1.0)
    assert ablation.dmota_weight == 0 and ablation.ids_weight == 0


@pytest.mark.slow
def test_hand_made_cases_with_the_cpu_trained_hnet() -> None:
    """The §5 cases through a real (CPU-trained, frozen) Hnet, on well separated directions: A is soft, so the
    figures hold approximately."""
    hnet, _ = trained_hnet()
    same = terms(frames((X, Y), (X, Y), (Z, X)), frames((X, Y), (X, Y), (Z, OFF)), [[1, 1], [1, 1], [1, 0]], hnet=hnet)
    assert same.dmotp.item() == pytest.approx(0, abs=0.5)  # w_p = 50: 0.5 is a 0.01 mean chord
    assert max(same.fp.max().item(), same.fn.max().item()) < 0.2
    swapped = terms(frames((X, Y), (Y, X)), frames((X, Y), (X, Y)), [[1, 1], [1, 1]], hnet=hnet)
    assert swapped.ids[1].item() > 1.5 and swapped.ids[0].item() == 0
    extra = terms(frames((X, Y)), frames((X, Y)), [[1, 0]], hnet=hnet)
    assert extra.fp.item() == pytest.approx(1, abs=0.2)
    missing = terms(frames((X, OFF)), frames((X, Y)), [[1, 1]], hnet=hnet)
    assert missing.fn.item() == pytest.approx(1, abs=0.2)
