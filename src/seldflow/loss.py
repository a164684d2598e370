"""Losses of the SELD methods: ADPIT (multi-ACCDOA), plain MSE (ACCDOA) and frame-level PIT (EINV2).

ADPIT (auxiliary duplicating permutation-invariant training, Shimada et al.): the network has three output tracks
per class but no defined order for same-class events. ADPIT scores every admissible assignment of the six dummy
target tracks (A0 | B0 B1 | C0 C1 C2) to the three output tracks and keeps the cheapest one per frame and class.
A single event (group A) is duplicated on all three tracks, and two events (group B) fill the third track with a
copy of one of them, so no output track is ever trained towards silence while an event of its class is active.

EINV2 (Cao et al.) has three class-agnostic tracks, each with SED logits and one DOA vector; the tracks have no
defined order either, so the loss is the minimum over the 3! track orders, chosen per frame on the weighted sum of
the SED (binary cross-entropy) and DOA (MSE over active tracks) terms. PSELDNets' track-wise loss (``Losses_pit``,
used for its EINV2 and SEDDOA networks) is the same with weights 0.5 / 0.5 and the MSE over all three tracks' xyz,
empty tracks trained towards the zero vector (``active_doa_only=False``).

The aggregated losses PSELDNets added for the same outputs (``Losses_agg_pit``, ``AGG_LOSS.md``) couple activity and
direction as ACCDOA does: per track and class the vector ``sigmoid(sed) * doa / |doa|`` against ``one-hot class *
unit direction``. AGG1 keeps the tracks apart and takes the cheapest of the 3! track orders per frame (a
multi-ACCDOA-like loss); AGG2 sums the tracks per class first (an ACCDOA-like loss, no permutation).
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


def _track_orders(tracks: int) -> torch.Tensor:
    """``(tracks!, tracks)``: every order of the class-agnostic tracks, for permutation-invariant losses."""
    return torch.tensor(list(itertools.permutations(range(tracks))), dtype=torch.long)


def _track_parts(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """EINV2-layout output and target split into SED ``(B, T, tracks, classes)`` and DOA ``(B, T, tracks, 3)``:
    output logits, output DOA, target one-hot classes, target unit directions."""
    output, target = _truncate(output.float(), target)
    batch, frames, tracks, width = target.shape
    n_classes = width - 3
    sed = output[..., : tracks * n_classes].reshape(batch, frames, tracks, n_classes)
    doa = output[..., tracks * n_classes :].reshape(batch, frames, tracks, 3)
    return sed, doa, target[..., :n_classes], target[..., n_classes:]


class EINV2Loss(nn.Module):
    """Frame-level permutation-invariant SED + DOA loss of EINV2.

    ``output`` is ``(B, T, tracks * (classes + 3))``: SED logits of every track, then the tracks' xyz vectors.
    ``target`` is ``(B, T, tracks, classes + 3)``: one-hot classes (all zero for an empty track) and the unit
    DOA. Per frame and track order: ``sed_weight`` × mean BCE over tracks and classes + ``doa_weight`` × MSE over
    the xyz of active target tracks (summed over active tracks, divided by the frame's active-track count, zero
    when none is active). The cheapest order of each frame counts; the result is the mean over frames.
    ``active_doa_only=False`` takes the DOA MSE over every track's xyz instead (PSELDNets' ``Losses_pit``).
    """

    def __init__(
        self, sed_weight: float = 1.0, doa_weight: float = 1.0, tracks: int = 3, active_doa_only: bool = True
    ) -> None:
        super().__init__()
        self.sed_weight = sed_weight
        self.doa_weight = doa_weight
        self.active_doa_only = active_doa_only
        self.register_buffer("orders", _track_orders(tracks), persistent=False)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        sed, doa, sed_target, doa_target = _track_parts(output, target)
        active = sed_target.amax(dim=-1)  # (B, T, tracks)
        # Output tracks reordered by every permutation: (B, T, P, tracks, ...).
        sed_p, doa_p = sed[:, :, self.orders], doa[:, :, self.orders]
        bce = F.binary_cross_entropy_with_logits(sed_p, sed_target[:, :, None].expand_as(sed_p), reduction="none").mean(
            dim=(-1, -2)
        )
        squared = (doa_p - doa_target[:, :, None]).square().mean(dim=-1)  # (B, T, P, tracks)
        if self.active_doa_only:
            n_active = active.sum(dim=-1, keepdim=True)  # (B, T, 1)
            doa_error = (squared * active[:, :, None]).sum(dim=-1) / n_active.clamp(min=1)
        else:
            doa_error = squared.mean(dim=-1)
        total = self.sed_weight * bce + self.doa_weight * doa_error  # (B, T, P)
        return total.min(dim=2).values.mean()


def _track_vectors(sed: torch.Tensor, doa: torch.Tensor) -> torch.Tensor:
    """``(B, T, tracks, classes, 3)``: each track's class activities times its direction (unit length or zero)."""
    return sed[..., None] * F.normalize(doa, dim=-1)[:, :, :, None, :]


class AggregatedLoss(nn.Module):
    """PSELDNets' aggregated losses on the EINV2 output layout: ``agg1`` (track-wise, PIT) or ``agg2`` (summed).

    ``output`` and ``target`` as for :class:`EINV2Loss`. Prediction per track and class: ``sigmoid(logit) *
    doa / |doa|``; target: ``one-hot class * unit direction``. ``agg1``: MSE averaged over tracks, classes and
    xyz, minimum over the 3! track orders per frame, mean over frames. ``agg2``: MSE between the sums over
    tracks, averaged over classes, xyz and frames.
    """

    AGGREGATIONS = ("agg1", "agg2")

    def __init__(self, aggregation: str, tracks: int = 3) -> None:
        super().__init__()
        if aggregation not in self.AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {self.AGGREGATIONS}, got {aggregation!r}")
        self.aggregation = aggregation
        self.register_buffer("orders", _track_orders(tracks), persistent=False)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        sed, doa, sed_target, doa_target = _track_parts(output, target)
        predicted = _track_vectors(torch.sigmoid(sed), doa)
        wanted = _track_vectors(sed_target, doa_target)
        if self.aggregation == "agg2":
            return F.mse_loss(predicted.sum(dim=2), wanted.sum(dim=2))
        # Target tracks reordered by every permutation: (B, T, P, tracks, classes, 3).
        squared = (predicted[:, :, None] - wanted[:, :, self.orders]).square()
        return squared.mean(dim=(-1, -2, -3)).min(dim=2).values.mean()
