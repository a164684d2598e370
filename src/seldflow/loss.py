"""ADPIT loss for multi-ACCDOA outputs (auxiliary duplicating permutation-invariant training, Shimada et al.).

The network has three output tracks per class but no defined order for same-class events. ADPIT scores
every admissible assignment of the six dummy target tracks (A0 | B0 B1 | C0 C1 C2) to the three output tracks
and keeps the cheapest one per frame and class. A single event (group A) is duplicated on all three tracks,
and two events (group B) fill the third track with a copy of one of them, so no output track is ever trained
towards silence while an event of its class is active.
"""

from __future__ import annotations

import torch
from torch import nn

from seldflow.labels import N_TRACKS

# Dummy target tracks feeding output tracks 0-2 for each of the 13 permutations: A0A0A0, the six orderings of
# B0/B1 that use both, the six orderings of C0/C1/C2.
_PERMUTATIONS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (1, 1, 2), (1, 2, 1), (1, 2, 2), (2, 1, 1), (2, 1, 2), (2, 2, 1),
    (3, 4, 5), (3, 5, 4), (4, 3, 5), (4, 5, 3), (5, 3, 4), (5, 4, 3),
)  # fmt: skip
# Canonical arrangement of each group, added to the permutations of the other groups. Only one group is
# non-zero in any (frame, class), so the padding turns e.g. the A permutation into a valid B target when B is
# active instead of a target of silence.
_CANONICAL = {"A": (0, 0, 0), "B": (1, 1, 2), "C": (3, 4, 5)}


def _group(tracks: tuple[int, int, int]) -> str:
    return "A" if tracks[0] == 0 else "B" if tracks[0] in (1, 2) else "C"


def _padded_permutations() -> torch.Tensor:
    """``(13, 3, 3)`` dummy-track indices: [permutation, addend (own + two pads), output track]."""
    rows = []
    for perm in _PERMUTATIONS:
        own = _group(perm)
        pads = [_CANONICAL[g] for g in "ABC" if g != own]
        rows.append([perm, *pads])
    return torch.tensor(rows, dtype=torch.long)


class ADPITLoss(nn.Module):
    """Mean over (batch, frame, class) of the smallest per-permutation MSE between output and ADPIT target.

    ``output`` is ``(B, T, tracks * 3 * classes)`` (x, y, distance); ``target`` is ``(B, T, 6, 4, classes)``
    (activity, x, y, distance in metres). Frames are truncated to the shorter of the two, so networks whose
    pooling yields one frame fewer than the labels can still be trained.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("permutations", _padded_permutations(), persistent=False)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.per_class(output, target).mean()

    def per_class(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Minimum-permutation MSE per ``(batch, frame, class)``; exposed for tests and diagnostics."""
        if target.ndim != 5 or target.shape[2] != 6 or target.shape[3] != 4:
            raise ValueError(f"target must be (batch, frames, 6, 4, classes), got {tuple(target.shape)}")
        frames = min(output.shape[1], target.shape[1])
        batch, n_classes = target.shape[0], target.shape[4]
        if output.shape[0] != batch or output.shape[2] != N_TRACKS * 3 * n_classes:
            raise ValueError(f"output {tuple(output.shape)} does not match target {tuple(target.shape)}")
        output = output[:, :frames].reshape(batch, frames, 1, N_TRACKS, 3, n_classes)
        target = target[:, :frames]
        # Activity-scaled (x, y, distance) of each dummy track: (B, T, 6, 3, C).
        dummy = target[:, :, :, :1] * target[:, :, :, 1:]
        # Gather every (permutation, addend, output track) and sum the addends: (B, T, 13, 3, 3, C).
        candidates = dummy[:, :, self.permutations].sum(dim=3)
        errors = (output.float() - candidates).square().mean(dim=(3, 4))  # (B, T, 13, C)
        return errors.min(dim=2).values
