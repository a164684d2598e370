"""Directions as the DOAnet recipe writes them: the values of an inactive slot, and unit-normalised outputs.

Shared by the Hnet data generator, the class-agnostic labels and the losses, so that "inactive" means the same
coordinate everywhere: Hnet learns that a distance involving a coordinate of 10 (far outside the unit sphere) is
never an association, and the labels fill empty reference slots with that coordinate. Unit vectors from angles
come from :func:`seldflow.metrics.common.direction_vectors`, the conversion the metric uses.
"""

from __future__ import annotations

import torch

from seldflow.metrics.common import NORM_EPS

# Coordinate of every axis of an inactive slot when Hnet associates (a reference "DOA" at (10, 10, 10)).
INACTIVE_COORDINATE = 10.0
# Direction of an inactive slot for the MSE baseline: a unit vector, so that the fixed-slot regression target stays
# on the sphere.
INACTIVE_MSE_DIRECTION = (0.0, 0.0, 1.0)


def normalise(doa: torch.Tensor) -> torch.Tensor:
    """Rows of ``doa (..., 3)`` scaled to unit length with ``NORM_EPS`` under the root, as the recipe (and
    :func:`seldflow.metrics.common.normalised` for arrays) does: an all-zero output stays zero."""
    return doa / torch.sqrt((doa**2).sum(-1, keepdim=True) + NORM_EPS)
