"""Output-side helpers shared by every network: multi-ACCDOA activations and pooling onto the label grid.

All networks emit ``(batch, frames, tracks * 3 * classes)`` laid out track-major, then element (x, y, distance),
then class: ``[t0: x(13) y(13) d(13) | t1 | t2]``.
"""

from __future__ import annotations

import torch

# Multi-ACCDOA elements per track and class: x, y (unit DOA scaled by activity) and distance in metres.
ACCDOA_ELEMENTS = 3


def activate_multiaccdoa(x: torch.Tensor, n_tracks: int, n_classes: int) -> torch.Tensor:
    """Bound x, y to [-1, 1] (tanh) and distance to >= 0 (ReLU) without changing the flat layout."""
    batch, frames, _ = x.shape
    x = x.reshape(batch, frames, n_tracks, ACCDOA_ELEMENTS, n_classes)
    doa = torch.tanh(x[:, :, :, :2])
    distance = torch.relu(x[:, :, :, 2:])
    return torch.cat((doa, distance), dim=3).reshape(batch, frames, -1)


def pool_to_labels(x: torch.Tensor, n_labels: int, frames_per_label: int) -> torch.Tensor:
    """Average ``(B, T, D)`` feature frames in groups of ``frames_per_label`` into ``(B, n_labels, D)``.

    Frame ``k`` of the result is the mean of input frames ``[k * r, (k + 1) * r)``; frames past
    ``n_labels * r`` are dropped (251 STFT frames -> 250 -> 50 label frames of 100 ms).
    """
    needed = n_labels * frames_per_label
    if x.shape[1] < needed:
        raise ValueError(f"{x.shape[1]} frames cannot fill {n_labels} label frames of {frames_per_label}")
    x = x[:, :needed]
    return x.reshape(x.shape[0], n_labels, frames_per_label, x.shape[2]).mean(dim=2)
