"""From DOAnet's outputs to DCASE2020-style prediction rows: which slots are active, and their directions.

Shared by the training stage (validation LE, MOTA) and the inference stage (prediction CSVs), so both read a
network the same way. A slot's activity comes from an :data:`ACTIVITY_RULES` entry chosen by what the network and
its loss provide:

* ``head``: networks with the activity head (dMOT + activity): ``sigmoid(activity) > threshold`` (0.5 in the
  reference);
* ``all_slots``: networks without the head (the MSE baseline, dMOT-only training): every slot is active in every
  frame, the assumption the reference metric makes for them (it then skips FP, FN and IDS; the CSV contract counts
  them, so such a network pays an FP for every empty slot);
* ``inactive_direction`` (on request, MSE baseline only): the MSE targets point an empty slot at the fixed
  inactive direction (0, 0, 1), so a slot counts as active when its direction is more than ``mse_inactive_deg``
  away from it. Not in the reference: a stronger baseline, with the detection its own targets teach.

Rows: one per active slot and frame, ``class`` 0, ``track`` the slot, azimuth and elevation of the unit vector in
degrees (azimuth positive to the left), frames in order and slots in order within a frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from seldflow.doanet.directions import INACTIVE_MSE_DIRECTION, normalise
from seldflow.doanet.loss import DOAnetLossConfig
from seldflow.doanet.model import DOAnetOutput, doa_tracks
from seldflow.formats.events import event_table

# (unit DOA vectors, activity logits or None, the ``doanet.infer`` settings) -> active slots.
ActivityRule = Callable[[np.ndarray, np.ndarray | None, Mapping[str, Any]], np.ndarray]


def _from_head(doa: np.ndarray, activity: np.ndarray | None, settings: Mapping[str, Any]) -> np.ndarray:
    if activity is None:
        raise ValueError("the head rule needs a network with the activity head")
    return 1.0 / (1.0 + np.exp(-activity)) > settings["activity_threshold"]


def _away_from_inactive(doa: np.ndarray, activity: np.ndarray | None, settings: Mapping[str, Any]) -> np.ndarray:
    cosine = doa @ np.asarray(INACTIVE_MSE_DIRECTION)
    return cosine < np.cos(np.deg2rad(settings["mse_inactive_deg"]))


def _all_slots(doa: np.ndarray, activity: np.ndarray | None, settings: Mapping[str, Any]) -> np.ndarray:
    return np.ones(doa.shape[:-1], dtype=bool)


ACTIVITY_RULES: dict[str, ActivityRule] = {
    "head": _from_head,
    "inactive_direction": _away_from_inactive,
    "all_slots": _all_slots,
}


def activity_rule(loss: DOAnetLossConfig, requested: str | None = None) -> str:
    """The rule that reads a network trained with ``loss``: ``requested``, or the reference's reading (the head
    where there is one, every slot otherwise). A rule the network cannot follow is a :class:`ValueError`."""
    rule = requested or ("head" if loss.activity else "all_slots")
    if rule not in ACTIVITY_RULES:
        raise ValueError(f"unknown activity rule {rule!r} (known: {', '.join(ACTIVITY_RULES)})")
    if (rule == "head") != loss.activity:
        raise ValueError("the head rule reads networks with the activity head, and only it reads them")
    if rule == "inactive_direction" and loss.mode != "mse":
        raise ValueError("the inactive_direction rule reads MSE-trained networks only")
    return rule


def predict(model: nn.Module, features: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray | None]:
    """Unit DOA vectors ``(frames, n_max, 3)`` and activity logits ``(frames, n_max)`` (or ``None``) of one
    standardised recording ``(channels, time, n_mels)``, the whole recording in one pass."""
    model.eval()
    with torch.no_grad():
        output: DOAnetOutput = model(torch.as_tensor(features, dtype=torch.float32, device=device)[None])
        doa = normalise(doa_tracks(output.doa[0], model.n_max)).cpu().numpy().astype(np.float64)
        activity = None if output.activity is None else output.activity[0].cpu().numpy().astype(np.float64)
    return doa, activity


def prediction_rows(doa: np.ndarray, active: np.ndarray) -> np.ndarray:
    """The event table of the active slots of ``doa (frames, n_max, 3)`` (see the module docstring)."""
    frames, slots = np.nonzero(active)
    vectors = doa[frames, slots]
    azimuth = np.rad2deg(np.arctan2(vectors[:, 1], vectors[:, 0]))
    elevation = np.rad2deg(np.arctan2(vectors[:, 2], np.hypot(vectors[:, 0], vectors[:, 1])))
    return event_table(frames, np.zeros_like(frames), slots, azimuth, elevation, np.full(len(frames), np.nan))


def recording_rows(
    model: nn.Module, features: np.ndarray, rule: str, settings: Mapping[str, Any], device: torch.device
) -> np.ndarray:
    """The prediction rows of one standardised recording under activity rule ``rule``."""
    doa, activity = predict(model, features, device)
    return prediction_rows(doa, ACTIVITY_RULES[rule](doa, activity, settings))
