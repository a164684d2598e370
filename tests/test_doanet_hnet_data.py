"""Hnet training data (seldflow.doanet.hnet_data) against the facts of the reference recipe.

Expectations come from the recipe (counts per pair, grids, padding rule, rows-or-columns permutation) and from
scipy's ``linear_sum_assignment`` run here on the active block, not from the generator's own output.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from seldflow.doanet.hnet_data import (
    chord_distances,
    generate_hnet_data,
    inactive_fill,
    sample_directions,
    sample_without_replacement,
)

COUNTS = (40, 60, 200)


@pytest.fixture(scope="module")
def data():
    return generate_hnet_data(2, [10], COUNTS, seed=3)


def test_each_count_pair_gets_the_count_of_its_smaller_member(data) -> None:
    for n_ref, n_pred in itertools.product(range(3), repeat=2):
        got = int(((data.n_ref == n_ref) & (data.n_pred == n_pred)).sum())
        assert got == COUNTS[min(n_ref, n_pred)], (n_ref, n_pred)
    # 5 pairs with a zero, 3 with min 1, one (2, 2): 5·40 + 3·60 + 200
    assert len(data) == 580


def test_reference_sizes_give_45000_examples_per_resolution() -> None:
    """5 · 3000 + 3 · 5000 + 15000 = 45,000 per resolution (the recipe's 405,000 over nine resolutions)."""
    assert len(generate_hnet_data(2, [30], (3000, 5000, 15000), seed=0)) == 45_000


def test_labels_are_the_hungarian_assignment_of_the_active_block(data) -> None:
    for distances, labels, rows, columns in zip(
        data.distances, data.assignments, data.reference_active, data.prediction_active, strict=True
    ):
        expected = np.zeros((2, 2))
        active_rows, active_columns = np.flatnonzero(rows), np.flatnonzero(columns)
        if len(active_rows) and len(active_columns):
            r, c = linear_sum_assignment(distances[np.ix_(active_rows, active_columns)])
            expected[active_rows[r], active_columns[c]] = 1
        np.testing.assert_array_equal(labels, expected)
        assert labels.sum() == min(len(active_rows), len(active_columns))


def test_distances_between_directions_are_chords(data) -> None:
    """Two unit vectors are at most 2 apart; the same grid direction gives 0."""
    both = data.reference_active[:, :, None] & data.prediction_active[:, None, :]
    assert both.any() and (data.distances[both] <= 2 + 1e-6).all()


def test_half_the_examples_pad_with_the_constant() -> None:
    """With no direction at all, the constant padding gives an all-zero distance matrix (10 vs 10), the random
    padding gives positive distances: about half each."""
    empty = generate_hnet_data(2, [10], (4000, 0, 0), seed=5)
    none = (empty.n_ref == 0) & (empty.n_pred == 0)
    constant = (empty.distances[none] == 0).all(axis=(1, 2))
    assert abs(constant.mean() - 0.5) < 0.05
    assert (empty.distances[none][~constant] > 0).all()


def test_random_padding_stays_outside_the_unit_band() -> None:
    reference, prediction = inactive_fill(np.random.default_rng(0), 4000, 2)
    for fill in (reference, prediction):
        constant = (fill == 10).all(axis=(1, 2))
        assert abs(constant.mean() - 0.5) < 0.05
        random = fill[~constant]
        assert (np.abs(random) > 1).all() and (np.abs(random) <= 100).all()
    # one coin per example decides both sets
    np.testing.assert_array_equal((reference == 10).all(axis=(1, 2)), (prediction == 10).all(axis=(1, 2)))


def test_either_rows_or_columns_are_permuted() -> None:
    """A single active reference ends in slot 1 only when the rows were permuted (half the time) and the
    permutation swapped (half of that): 1/4; likewise for a single prediction."""
    data = generate_hnet_data(2, [10], (0, 4000, 0), seed=6)
    single = (data.n_ref == 1) & (data.n_pred == 1)
    assert abs(data.reference_active[single, 1].mean() - 0.25) < 0.03
    assert abs(data.prediction_active[single, 1].mean() - 0.25) < 0.03
    # never both moved: rows and columns are not permuted together
    assert not (data.reference_active[single, 1] & data.prediction_active[single, 1]).any()


def test_directions_are_distinct_unit_vectors_on_the_grid() -> None:
    vectors = sample_directions(np.random.default_rng(1), 15, 500, 2)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=-1), 1.0)
    azimuth = np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0]))
    elevation = np.degrees(np.arcsin(np.clip(vectors[..., 2], -1, 1)))
    assert np.allclose(elevation / 15, np.round(elevation / 15), atol=1e-6)
    assert (elevation[:, 0] != elevation[:, 1]).all()
    off_pole = np.abs(elevation) < 89.9  # azimuth is undefined at the poles
    assert np.allclose(azimuth[off_pole] / 15, np.round(azimuth[off_pole] / 15), atol=1e-6)


def test_sampling_without_replacement_is_uniform() -> None:
    picks = sample_without_replacement(np.random.default_rng(2), 5, 20000, 3)
    assert (np.sort(picks, axis=1)[:, 1:] != np.sort(picks, axis=1)[:, :-1]).all()
    for column in range(3):
        frequencies = np.bincount(picks[:, column], minlength=5) / 20000
        np.testing.assert_allclose(frequencies, 0.2, atol=0.015)


def test_generation_is_deterministic_given_the_seed() -> None:
    first, again, other = (generate_hnet_data(2, [20], (5, 5, 5), seed) for seed in (7, 7, 8))
    np.testing.assert_array_equal(first.distances, again.distances)
    np.testing.assert_array_equal(first.assignments, again.assignments)
    assert not np.array_equal(first.distances, other.distances)


def test_chord_distance_matches_scipy_cdist() -> None:
    """The generator's broadcast distances are scipy's Euclidean cdist, example by example."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(3, 2, 3)), rng.normal(size=(3, 2, 3))
    expected = np.stack([cdist(x, y) for x, y in zip(a, b, strict=True)])
    np.testing.assert_allclose(chord_distances(a, b), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("n_max", "resolutions", "counts"),
    [(2, [10], (1, 1)), (2, [], (1, 1, 1)), (2, [0], (1, 1, 1)), (2, [2.5], (1, 1, 1)), (2, [10], (1, -1, 1))],
)
def test_bad_sizes_are_rejected(n_max: int, resolutions: list, counts: tuple) -> None:
    with pytest.raises(ValueError):
        generate_hnet_data(n_max, resolutions, counts, seed=0)
