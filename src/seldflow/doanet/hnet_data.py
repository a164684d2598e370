"""Training data of the Hungarian network: distance matrices and the assignment the Hungarian algorithm picks.

One example is a pair of DOA sets, ``n_ref`` references and ``n_pred`` predictions (each 0..``n_max``), drawn on an
angular grid of a given resolution (azimuth and elevation each sampled without replacement). Both sets are padded
to ``n_max`` rows; the padding is an *inactive* coordinate that lies outside the unit sphere, so its distance to
any direction exceeds every distance between two directions (at most 2). Half of the examples pad with the
constant :data:`~seldflow.doanet.directions.INACTIVE_COORDINATE`, the other half with uniform values in
[-100, 100] whose entries inside [-1, 1] are replaced by that constant: a DOAnet at the start of training emits
arbitrary vectors, and an Hnet that had seen only the constant would not associate them sensibly.

The label is the 0/1 matrix of :func:`scipy.optimize.linear_sum_assignment` on the active block (rows references,
columns predictions); padded rows and columns are never assigned. Finally either the rows or the columns of both
matrices are permuted at random, so an active slot can sit anywhere. The number of examples of each count pair is
``counts[min(n_ref, n_pred)]``: there are fewer pairs with many associations, so they get more examples each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from seldflow.doanet.directions import INACTIVE_COORDINATE
from seldflow.metrics.common import direction_vectors

# Range of the random padding, and the band inside which a random value is replaced by INACTIVE_COORDINATE.
RANDOM_FILL_RANGE = (-100.0, 100.0)
ACTIVE_BAND = 1.0


@dataclass(frozen=True)
class HnetData:
    """Examples of Hnet training: ``distances`` and ``assignments`` ``(n, n_max, n_max)`` (rows references, columns
    predictions), and which rows (``reference_active``) and columns (``prediction_active``) ``(n, n_max)`` hold a
    direction rather than padding, after the permutation."""

    distances: np.ndarray
    assignments: np.ndarray
    reference_active: np.ndarray
    prediction_active: np.ndarray

    def __len__(self) -> int:
        return len(self.distances)

    @property
    def n_max(self) -> int:
        return int(self.distances.shape[-1])

    @property
    def n_ref(self) -> np.ndarray:
        return self.reference_active.sum(-1)

    @property
    def n_pred(self) -> np.ndarray:
        return self.prediction_active.sum(-1)


def azimuth_grid(resolution: int) -> np.ndarray:
    """Azimuths in degrees, -180 inclusive to 180 exclusive, every ``resolution`` degrees."""
    return np.arange(-180, 180, resolution, dtype=np.float64)


def elevation_grid(resolution: int) -> np.ndarray:
    """Elevations in degrees, -90 to 90 both inclusive when reachable, every ``resolution`` degrees."""
    return np.arange(-90, 91, resolution, dtype=np.float64)


def sample_without_replacement(rng: np.random.Generator, size: int, n: int, k: int) -> np.ndarray:
    """``(n, k)`` indices into ``range(size)``, each row ``k`` distinct values drawn uniformly without replacement.

    Sequential draws: the ``j``-th index is uniform over the ``size - j`` unused ones, found by stepping a uniform
    draw from ``range(size - j)`` over the already used indices in ascending order.
    """
    if k > size:
        raise ValueError(f"cannot draw {k} distinct values from {size}")
    picks = np.zeros((n, k), dtype=np.int64)
    for j in range(k):
        draw = rng.integers(0, size - j, size=n)
        for used in np.sort(picks[:, :j], axis=1).T:
            draw = draw + (draw >= used)
        picks[:, j] = draw
    return picks


def sample_directions(rng: np.random.Generator, resolution: int, n: int, k: int) -> np.ndarray:
    """``(n, k, 3)`` unit vectors of ``k`` grid directions per example (azimuths distinct, elevations distinct)."""
    azimuths, elevations = azimuth_grid(resolution), elevation_grid(resolution)
    azimuth = azimuths[sample_without_replacement(rng, len(azimuths), n, k)]
    elevation = elevations[sample_without_replacement(rng, len(elevations), n, k)]
    return direction_vectors(azimuth, elevation)


def inactive_fill(rng: np.random.Generator, n: int, n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Padding ``(n, n_max, 3)`` of the reference and the prediction sets, one coin per example for both.

    Heads: both sets uniform in :data:`RANDOM_FILL_RANGE` with values inside ±:data:`ACTIVE_BAND` set to the
    inactive coordinate; tails: the inactive coordinate everywhere.
    """
    random = rng.random(n) < 0.5
    fills = []
    for _ in range(2):
        fill = np.full((n, n_max, 3), INACTIVE_COORDINATE)
        values = rng.uniform(*RANDOM_FILL_RANGE, size=(int(random.sum()), n_max, 3))
        values[np.abs(values) <= ACTIVE_BAND] = INACTIVE_COORDINATE
        fill[random] = values
        fills.append(fill)
    return fills[0], fills[1]


def chord_distances(references: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(n, rows, columns)`` between the rows of ``references`` and of ``predictions``
    (what ``scipy.spatial.distance.cdist`` gives per example; broadcast here over all examples at once)."""
    return np.sqrt(((references[:, :, None, :] - predictions[:, None, :, :]) ** 2).sum(-1))


def assignment_labels(distances: np.ndarray, n_ref: int, n_pred: int) -> np.ndarray:
    """0/1 matrices ``(n, n_max, n_max)``: the minimum-cost assignment of the active ``n_ref × n_pred`` block."""
    labels = np.zeros(distances.shape, dtype=np.float32)
    if min(n_ref, n_pred) == 0:
        return labels
    for index, matrix in enumerate(distances):
        rows, columns = linear_sum_assignment(matrix[:n_ref, :n_pred])
        labels[index, rows, columns] = 1.0
    return labels


def permute_rows_or_columns(
    rng: np.random.Generator, distances: np.ndarray, labels: np.ndarray, active: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Each example with a random permutation of its rows (half of them) or of its columns (the other half);
    ``active`` (row and column masks ``(n, n_max)``) follows."""
    n, n_max = distances.shape[:2]
    permutations = np.argsort(rng.random((n, n_max)), axis=1)
    by_rows = rng.random(n) < 0.5
    examples = np.arange(n)[:, None]
    distances, labels = distances.copy(), labels.copy()
    rows_active, columns_active = active[0].copy(), active[1].copy()
    pick = (examples[by_rows], permutations[by_rows])
    distances[by_rows], labels[by_rows], rows_active[by_rows] = distances[pick], labels[pick], rows_active[pick]
    by_columns = ~by_rows
    pick = (examples[by_columns], permutations[by_columns])
    distances[by_columns] = distances[pick[0], :, pick[1]].transpose(0, 2, 1)
    labels[by_columns] = labels[pick[0], :, pick[1]].transpose(0, 2, 1)
    columns_active[by_columns] = columns_active[pick]
    return distances, labels, (rows_active, columns_active)


def generate_block(rng: np.random.Generator, resolution: int, n_ref: int, n_pred: int, n: int, n_max: int) -> HnetData:
    """``n`` examples with ``n_ref`` references and ``n_pred`` predictions on the grid of ``resolution``."""
    references, predictions = inactive_fill(rng, n, n_max)
    references[:, :n_ref] = sample_directions(rng, resolution, n, n_ref)
    predictions[:, :n_pred] = sample_directions(rng, resolution, n, n_pred)
    distances = chord_distances(references, predictions)
    labels = assignment_labels(distances, n_ref, n_pred)
    active = (np.tile(np.arange(n_max) < n_ref, (n, 1)), np.tile(np.arange(n_max) < n_pred, (n, 1)))
    distances, labels, (rows, columns) = permute_rows_or_columns(rng, distances, labels, active)
    return HnetData(distances.astype(np.float32), labels, rows, columns)


def check_settings(n_max: int, resolutions: Sequence[int], counts: Sequence[int]) -> None:
    """Reject sizes the generator cannot honour, naming the argument (the config layer names the key)."""
    if n_max < 1:
        raise ValueError(f"n_max must be at least 1, got {n_max}")
    if len(counts) != n_max + 1:
        raise ValueError(
            f"counts needs n_max + 1 = {n_max + 1} entries (one per min(n_ref, n_pred)), got {len(counts)}"
        )
    if any(int(count) != count or count < 0 for count in counts):
        raise ValueError(f"counts must be non-negative integers, got {list(counts)}")
    if not resolutions:
        raise ValueError("resolutions must not be empty")
    for resolution in resolutions:
        if int(resolution) != resolution or resolution < 1:
            raise ValueError(f"resolutions must be positive integers (degrees), got {resolution!r}")
        if min(len(azimuth_grid(int(resolution))), len(elevation_grid(int(resolution)))) < n_max:
            raise ValueError(f"a {resolution}° grid has fewer than n_max = {n_max} azimuths or elevations")


def generate_hnet_data(n_max: int, resolutions: Sequence[int], counts: Sequence[int], seed: int) -> HnetData:
    """All examples: for every resolution and count pair ``(n_ref, n_pred)`` in ``{0..n_max}²``,
    ``counts[min(n_ref, n_pred)]`` examples, in that order (training shuffles). Deterministic given ``seed``.

    The reference recipe uses ``n_max = 2``, resolutions 1, 2, 3, 4, 5, 10, 15, 20, 30° and counts
    [3000, 5000, 15000] for training (45,000 per resolution) and a tenth of them, drawn separately, for testing.
    """
    check_settings(n_max, resolutions, counts)
    rng = np.random.default_rng(seed)
    blocks = [
        generate_block(rng, int(resolution), n_ref, n_pred, int(counts[min(n_ref, n_pred)]), n_max)
        for resolution in resolutions
        for n_ref in range(n_max + 1)
        for n_pred in range(n_max + 1)
        if counts[min(n_ref, n_pred)] > 0
    ]
    if not blocks:
        raise ValueError("counts are all zero: no examples")
    return HnetData(
        *(np.concatenate([getattr(block, name) for block in blocks]) for name in HnetData.__dataclass_fields__)
    )
