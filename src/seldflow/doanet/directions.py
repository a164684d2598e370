"""Directions as the DOAnet recipe writes them: unit vectors from degrees, and the values of an inactive slot.

Shared by the Hnet data generator, the class-agnostic labels and the losses, so that "inactive" means the same
coordinate everywhere: Hnet learns that a distance involving a coordinate of 10 (far outside the unit sphere) is
never an association, and the labels fill empty reference slots with that coordinate.
"""

from __future__ import annotations

import numpy as np
import torch

# Coordinate of every axis of an inactive slot when Hnet associates (a reference "DOA" at (10, 10, 10)).
INACTIVE_COORDINATE = 10.0
# Direction of an inactive slot for the MSE baseline: a unit vector, so that the fixed-slot regression target stays
# on the sphere.
INACTIVE_MSE_DIRECTION = (0.0, 0.0, 1.0)
# Added under the square root when normalising network outputs (an all-zero output has no direction).
NORM_EPS = 1e-10


def unit_vectors(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """Cartesian unit vectors ``(..., 3)`` of azimuth and elevation in degrees (x front, y left, z up)."""
    azimuth = np.deg2rad(np.asarray(azimuth_deg, dtype=np.float64))
    elevation = np.deg2rad(np.asarray(elevation_deg, dtype=np.float64))
    return np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], axis=-1
    )


def normalise(doa: torch.Tensor) -> torch.Tensor:
    """Rows of ``doa (..., 3)`` scaled to unit length, with :data:`NORM_EPS` under the root as the recipe does."""
    return doa / torch.sqrt((doa**2).sum(-1, keepdim=True) + NORM_EPS)
