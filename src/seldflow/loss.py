"""Losses of the SELD methods: ADPIT (multi-ACCDOA), plain MSE (ACCDOA) and frame-level PIT (EINV2).

ADPIT (auxiliary duplicating permutation-invariant training, Shimada et al.): the network has three output tracks
per class but no defined order for same-class events. ADPIT scores every admissible assignment of the six dummy
target tracks (A0 | B0 B1 | C0 C1 C2) to the three output tracks and keeps the cheapest one per frame and class.
A single event (group A) is duplicated on all three tracks, and two events (group B) fill the third track with a
copy of one of them, so no output track is ever trained towards silence while an event of its class is active.

EINV2 (Cao et al.) has three class-agnostic tracks, each with SED logits and one DOA vector; the tracks have no
defined order either, so the loss is the minimum over the 3! track orders, chosen per frame on the weighted sum of
the SED (binary cross-entropy) and DOA (MSE over active tracks) terms.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

ADPIT_OUTPUT_TRACKS = 3
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


def _truncate(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both cut to the shorter frame count: networks whose pooling yields one frame fewer can still train."""
    frames = min(output.shape[1], target.shape[1])
    return output[:, :frames], target[:, :frames]


class ADPITLoss(nn.Module):
    """Mean over (batch, frame, class) of the smallest per-permutation MSE between output and ADPIT target.

    ``output`` is ``(B, T, 3 * E * classes)`` (track-major, then element, then class); ``target`` is
    ``(B, T, 6, 1 + E, classes)``: activity followed by the E elements (x, y, distance in the stereo form; x, y, z
    with an optional distance in 3-D). Frames are truncated to the shorter of the two.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("permutations", _padded_permutations(), persistent=False)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.per_class(output, target).mean()

    def per_class(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Minimum-permutation MSE per ``(batch, frame, class)``; exposed for tests and diagnostics."""
        if target.ndim != 5 or target.shape[2] != 6 or target.shape[3] < 2:
            raise ValueError(f"target must be (batch, frames, 6, 1 + elements, classes), got {tuple(target.shape)}")
        batch, elements, n_classes = target.shape[0], target.shape[3] - 1, target.shape[4]
        if output.shape[0] != batch or output.shape[2] != ADPIT_OUTPUT_TRACKS * elements * n_classes:
            raise ValueError(f"output {tuple(output.shape)} does not match target {tuple(target.shape)}")
        output, target = _truncate(output, target)
        frames = output.shape[1]
        output = output.reshape(batch, frames, 1, ADPIT_OUTPUT_TRACKS, elements, n_classes)
        # Activity-scaled elements of each dummy track: (B, T, 6, E, C).
        dummy = target[:, :, :, :1] * target[:, :, :, 1:]
        # Gather every (permutation, addend, output track) and sum the addends: (B, T, 13, 3, E, C).
        candidates = dummy[:, :, self.permutations].sum(dim=3)
        errors = (output.float() - candidates).square().mean(dim=(3, 4))  # (B, T, 13, C)
        return errors.min(dim=2).values


class ACCDOALoss(nn.Module):
    """MSE between the ``(B, T, 3 * classes)`` output and the activity-scaled ``(B, T, 3, classes)`` target."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        output, target = _truncate(output, target)
        return F.mse_loss(output.float(), target.flatten(2))


class EINV2Loss(nn.Module):
    """Frame-level permutation-invariant SED + DOA loss of EINV2.

    ``output`` is ``(B, T, tracks * (classes + 3))``: SED logits of every track, then the tracks' xyz vectors.
    ``target`` is ``(B, T, tracks, classes + 3)``: one-hot classes (all zero for an empty track) and the unit
    DOA. Per frame and track order: ``sed_weight`` × mean BCE over tracks and classes + ``doa_weight`` × MSE over
    the xyz of active target tracks (summed over active tracks, divided by the frame's active-track count, zero
    when none is active). The cheapest order of each frame counts; the result is the mean over frames.
    """

    def __init__(self, sed_weight: float = 1.0, doa_weight: float = 1.0, tracks: int = 3) -> None:
        super().__init__()
        self.sed_weight = sed_weight
        self.doa_weight = doa_weight
        orders = torch.tensor(list(itertools.permutations(range(tracks))), dtype=torch.long)
        self.register_buffer("orders", orders, persistent=False)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        output, target = _truncate(output.float(), target)
        batch, frames, tracks, width = target.shape
        n_classes = width - 3
        sed = output[..., : tracks * n_classes].reshape(batch, frames, tracks, n_classes)
        doa = output[..., tracks * n_classes :].reshape(batch, frames, tracks, 3)
        sed_target, doa_target = target[..., :n_classes], target[..., n_classes:]
        active = sed_target.amax(dim=-1)  # (B, T, tracks)
        # Output tracks reordered by every permutation: (B, T, P, tracks, ...).
        sed_p, doa_p = sed[:, :, self.orders], doa[:, :, self.orders]
        bce = F.binary_cross_entropy_with_logits(sed_p, sed_target[:, :, None].expand_as(sed_p), reduction="none").mean(
            dim=(-1, -2)
        )
        squared = (doa_p - doa_target[:, :, None]).square().mean(dim=-1)  # (B, T, P, tracks)
        n_active = active.sum(dim=-1, keepdim=True)  # (B, T, 1)
        doa_error = (squared * active[:, :, None]).sum(dim=-1) / n_active.clamp(min=1)
        total = self.sed_weight * bce + self.doa_weight * doa_error  # (B, T, P)
        return total.min(dim=2).values.mean()
