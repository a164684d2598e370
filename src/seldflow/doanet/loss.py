"""DOAnet training losses: the differentiable tracking loss (dMOTp + dMOTa, optionally the activity branch) built
on a frozen Hnet, and the MSE baseline with fixed slots.

Over all ``F`` frames of a batch (batch × time flattened, in that order):

1. the DOA output becomes ``(F, n_max, 3)`` unit vectors (``+1e-10`` under the root);
2. ``D = cdist(predictions, references)`` (rows predictions, columns references; inactive references sit at
   (10, 10, 10));
3. ``A = sigmoid(Hnet(D))``, gated ``A · [A > 0.5]`` (kept cells keep their gradient);
4. dMOTp = ``w_p · Σ_f [(Σ D⊙A)_f · (Σ A)_f] / Σ A``, ``w_p = 50``: the per-frame matched distance times the
   frame's association count (the reference's form; its plain ``Σ D⊙A / Σ A`` is commented out there);
5. ``a_pred = max over references of A`` (is prediction ``i`` associated), ``M_f = Σ_i a_pred``, ``N_f`` = active
   references, ``FP = relu(M − N)``, ``FN = relu(N − M)``, ``IDS_f = Σ A_f ⊙ (1 − A_{f−1})`` (0 for the first
   frame; it runs across clip boundaries inside a batch, as the reference's flattening does);
   dMOTa = ``Σ (FP + FN + w_ids · IDS) / Σ (M + eps)``, ``eps`` the float32 machine epsilon: normalised by the
   *predicted* count M, not N;
6. ``L = b0 · (dMOTp + w_a · dMOTa) + b1 · BCEWithLogits(activity, [a_pred > 0.5])`` with ``branch_weights``
   ``(b0, b1) = (1, 10)``; "dMOT only" drops the activity term (and the network its activity head).

The MSE baseline compares the unit-normalised outputs slot by slot with targets whose inactive slots are (0, 0, 1).

One deviation: where no cell is associated in the whole batch (Σ A = 0) the reference's dMOTp is 0/0 = NaN; here it
is 0 (the denominator is floored at ``eps``; any association contributes more than 0.5, so the floor never
changes a defined value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from seldflow.doanet.directions import normalise
from seldflow.doanet.hnet import ASSOCIATION_THRESHOLD
from seldflow.doanet.model import DOAnetOutput, doa_tracks

EPS = float(torch.finfo(torch.float32).eps)
LossMode = Literal["mse", "dmot"]
# What Hnet reads as rows: the reference's predictions, or references (the orientation of its training data).
HNET_ROWS = ("predictions", "references")


@dataclass(frozen=True)
class DOAnetLossConfig:
    """One training objective of the paper's parameter sets.

    ``mode``: ``"mse"`` (fixed slots, no Hnet) or ``"dmot"``; ``activity``: add the activity-branch term (the
    network then needs its activity head); ``dmotp_weight`` w_p, ``dmota_weight`` w_a, ``ids_weight`` w_ids,
    ``branch_weights`` (b0, b1). The reference sets: MSE; dMOT only; dMOT + activity; the dMOTp-only ablations
    have ``dmota_weight = ids_weight = 0``.

    ``hnet_rows``: which set Hnet reads as its rows. ``"predictions"`` is the reference (``cdist(predictions,
    references)``); ``"references"`` gives Hnet the orientation it was trained on (rows references) and transposes
    its assignment back. The two agree for a well-trained Hnet; an Hnet trained for CPU minutes does not: it picks
    the nearer of two *columns* for one row almost always but the nearer of two *rows* for one column far less
    often, and with DOAnet's two predictions against one reference, the most common frame, only the second
    orientation asks it the easy question.
    """

    mode: LossMode = "dmot"
    activity: bool = True
    dmotp_weight: float = 50.0
    dmota_weight: float = 1.0
    ids_weight: float = 1.0
    branch_weights: tuple[float, float] = (1.0, 10.0)
    hnet_rows: str = "predictions"

    def __post_init__(self) -> None:
        object.__setattr__(self, "branch_weights", tuple(self.branch_weights))  # a YAML list becomes a tuple
        if self.mode not in ("mse", "dmot"):
            raise ValueError(f"mode must be 'mse' or 'dmot', got {self.mode!r}")
        if self.hnet_rows not in HNET_ROWS:
            raise ValueError(f"hnet_rows must be one of {', '.join(HNET_ROWS)}, got {self.hnet_rows!r}")
        if self.mode == "mse" and self.activity:
            raise ValueError("the MSE baseline has no activity branch: set activity to false")
        weights = (self.dmotp_weight, self.dmota_weight, self.ids_weight, *self.branch_weights)
        if len(self.branch_weights) != 2 or not all(math.isfinite(w) and w >= 0 for w in weights):
            raise ValueError("weights must be finite and non-negative, branch_weights two of them")

    @property
    def uses_hnet(self) -> bool:
        return self.mode == "dmot"


class DMOTTerms(NamedTuple):
    """The loss terms and the per-frame quantities they are made of (``F`` frames)."""

    dmotp: torch.Tensor
    dmota: torch.Tensor
    association: torch.Tensor  # gated A, (F, n_max predictions, n_max references)
    predicted_active: torch.Tensor  # a_pred, (F, n_max)
    fp: torch.Tensor  # (F,)
    fn: torch.Tensor  # (F,)
    ids: torch.Tensor  # (F,)


def gated_association(hnet: nn.Module, distances: torch.Tensor, rows: str = "predictions") -> torch.Tensor:
    """``A · [A > 0.5]`` with ``A = sigmoid(Hnet(distances))``, ``(F, n_max, n_max)`` (rows predictions); with
    ``rows="references"`` Hnet reads the transposed matrix and its assignment is transposed back."""
    if rows == "references":
        logits = hnet(distances.transpose(-1, -2)).assignment.view(distances.shape).transpose(-1, -2)
    else:
        logits = hnet(distances).assignment.view(distances.shape)
    association = torch.sigmoid(logits)
    return association * (association > ASSOCIATION_THRESHOLD)


def dmot_terms(
    predictions: torch.Tensor,
    references: torch.Tensor,
    reference_activity: torch.Tensor,
    hnet: nn.Module,
    config: DOAnetLossConfig,
) -> DMOTTerms:
    """dMOTp and dMOTa of unit ``predictions`` and ``references`` ``(F, n_max, 3)`` with ``reference_activity``
    ``(F, n_max)``, frames in time order (see the module docstring for the formulas)."""
    distances = torch.cdist(predictions.contiguous(), references.contiguous())
    association = gated_association(hnet, distances, config.hnet_rows)
    total = association.sum()
    per_frame = (distances * association).sum((-1, -2)) * association.sum((-1, -2))
    dmotp = config.dmotp_weight * per_frame.sum() / total.clamp_min(EPS)
    predicted_active = association.amax(-1)
    m = predicted_active.sum(-1)
    n = reference_activity.sum(-1)
    fp, fn = F.relu(m - n), F.relu(n - m)
    births = (association[1:] * (1 - association[:-1])).sum((-1, -2))
    ids = torch.cat([births.new_zeros(1), births])
    dmota = (fp + fn + config.ids_weight * ids).sum() / (m + EPS).sum()
    return DMOTTerms(dmotp, dmota, association, predicted_active, fp, fn, ids)


class LossValue(NamedTuple):
    """The scalar to minimise and its parts, detached floats for logging (``nan`` where a part does not apply)."""

    loss: torch.Tensor
    dmotp: float
    dmota: float
    activity: float


def doanet_loss(
    output: DOAnetOutput,
    reference_doa: torch.Tensor,
    reference_activity: torch.Tensor,
    config: DOAnetLossConfig,
    hnet: nn.Module | None = None,
) -> LossValue:
    """The objective of ``config`` for one batch: ``output`` of :class:`~seldflow.doanet.model.DOAnet`,
    ``reference_doa (B, T, n_max, 3)`` (inactive slots at the mode's inactive direction) and ``reference_activity
    (B, T, n_max)``. ``hnet`` (frozen) is required for the dMOT modes."""
    n_max = reference_doa.shape[-2]
    predictions = normalise(doa_tracks(output.doa, n_max)).reshape(-1, n_max, 3)
    references = reference_doa.reshape(-1, n_max, 3).to(predictions.dtype)
    if not config.uses_hnet:
        loss = F.mse_loss(predictions, references)
        return LossValue(loss, math.nan, math.nan, math.nan)
    if hnet is None:
        raise ValueError("the dMOT loss needs the frozen Hnet")
    terms = dmot_terms(
        predictions, references, reference_activity.reshape(-1, n_max).to(predictions.dtype), hnet, config
    )
    loss = terms.dmotp + config.dmota_weight * terms.dmota
    if not config.activity:
        return LossValue(loss, terms.dmotp.item(), terms.dmota.item(), math.nan)
    if output.activity is None:
        raise ValueError("the activity-branch loss needs a network with its activity head")
    target = (terms.predicted_active > ASSOCIATION_THRESHOLD).to(predictions.dtype)
    activity_loss = F.binary_cross_entropy_with_logits(output.activity.reshape(-1, n_max), target)
    loss = config.branch_weights[0] * loss + config.branch_weights[1] * activity_loss
    return LossValue(loss, terms.dmotp.item(), terms.dmota.item(), activity_loss.item())
