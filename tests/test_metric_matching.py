"""Track matching in bulk (seldflow.metrics.common.match_tracks) against one linear_sum_assignment per group.

The official scorers call ``scipy.optimize.linear_sum_assignment`` for every frame and class; the bulk matcher
must pick the very same pairs, also where costs tie (integer angles make ties common), for every group shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from seldflow.bench.label_sets import write_label_set
from seldflow.metrics import common, get_metric
from seldflow.metrics.common import Common, match_tracks


def random_groups(rng: np.random.Generator, n_groups: int, largest: int) -> tuple[Common, np.ndarray, np.ndarray]:
    """Groups of 1..largest reference and predicted rows (disjoint, increasing row ranges) and per-row values."""
    n_ref = rng.integers(1, largest + 1, n_groups)
    n_pred = rng.integers(1, largest + 1, n_groups)
    ref_start = np.cumsum(n_ref) - n_ref
    pred_start = np.cumsum(n_pred) - n_pred
    common = Common(np.arange(n_groups), ref_start, n_ref, pred_start, n_pred, np.zeros(0, bool), np.zeros(0, bool))
    return common, rng.integers(0, 4, n_ref.sum()).astype(float), rng.integers(0, 4, n_pred.sum()).astype(float)


def one_by_one(common: Common, cost) -> set[tuple[int, int]]:
    pairs = set()
    for r0, nr, p0, npred in zip(common.ref_start, common.n_ref, common.pred_start, common.n_pred, strict=True):
        ref_idx, pred_idx = np.meshgrid(np.arange(r0, r0 + nr), np.arange(p0, p0 + npred), indexing="ij")
        rows, cols = linear_sum_assignment(cost(ref_idx, pred_idx))
        pairs |= {(int(r0 + r), int(p0 + c)) for r, c in zip(rows, cols, strict=True)}
    return pairs


@pytest.mark.parametrize("seed", range(6))
def test_bulk_pairs_equal_one_assignment_per_group(seed: int) -> None:
    rng = np.random.default_rng(seed)
    common, ref_values, pred_values = random_groups(rng, 3000, 4)
    # Integer values and a few cost shapes: many exact ties, and costs near ties after rounding.
    costs = [
        lambda r, p: np.abs(ref_values[r] - pred_values[p]),
        lambda r, p: np.abs(ref_values[r] - pred_values[p]) * 0.1,
        lambda r, p: (ref_values[r] * 3 + pred_values[p]) % 5,
    ]
    for cost in costs:
        ref_rows, pred_rows = match_tracks(cost, common)
        assert np.all(np.diff(ref_rows) > 0)  # each reference row once, ascending
        assert set(zip(ref_rows.tolist(), pred_rows.tolist(), strict=True)) == one_by_one(common, cost)


def test_continuous_costs_match_too() -> None:
    rng = np.random.default_rng(9)
    common, _, _ = random_groups(rng, 2000, 3)
    ref_angles = rng.uniform(-180, 180, common.n_ref.sum())
    pred_angles = rng.uniform(-180, 180, common.n_pred.sum())

    def cost(r: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.abs(ref_angles[r] - pred_angles[p])

    ref_rows, pred_rows = match_tracks(cost, common)
    assert set(zip(ref_rows.tolist(), pred_rows.tolist(), strict=True)) == one_by_one(common, cost)


@pytest.mark.parametrize("metric", ["dcase2021", "dcase2023", "dcase2024", "dcase2025"])
def test_scoring_in_clip_chunks_equals_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metric: str) -> None:
    """Per-clip statistics computed a few clips at a time give the very report of one pass over all clips."""
    labels = write_label_set(tmp_path, metric, 23, seed=8, frames=40)
    chosen = get_metric(metric)
    refs = {stem: table for stem, (table, _) in chosen.read_dir(labels.ref_dir).items()}
    preds = {stem: table for stem, (table, _) in chosen.read_dir(labels.pred_dir, reference=False).items()}
    whole = chosen.score(refs, preds)
    monkeypatch.setattr(common, "CLIP_CHUNK", 4)
    np.testing.assert_equal(chosen.score(refs, preds), whole)
