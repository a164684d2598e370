"""SELD methods: how label events become training targets, which loss trains them, how outputs decode to events.

Every method works on the task's event table (:mod:`seldflow.formats.events`: frame, class, track, azimuth,
elevation, distance in metres) and on one output layout of :mod:`seldflow.models.heads`, so each architecture can
be trained with each method. :data:`METHODS` is the registry ``train.method`` names:

* ``maccdoa_xyd`` — the DCASE2025 stereo multi-ACCDOA: (x, y, distance) per track and class, ADPIT.
* ``maccdoa`` — PSELDNets' 3-D multi-ACCDOA: (x, y, z) per track and class, ADPIT over the 13 permutations.
* ``maccdoa_dist`` — 3-D multi-ACCDOA with distance (DCASE2024 style).
* ``accdoa`` — one activity-coupled xyz vector per class, MSE; activity = vector length.
* ``einv2`` — three class-agnostic tracks with SED logits and a unit xyz DOA, permutation-invariant loss.
* ``seddoa`` — PSELDNets' track-wise recipe on the same outputs: its ``Losses_pit`` (½ BCE + ½ MSE over all three
  tracks' xyz) and one class per track at decoding.
* ``einv2_agg1``, ``einv2_agg2``, ``seddoa_agg1``, ``seddoa_agg2`` — the same with PSELDNets' aggregated losses
  (:class:`seldflow.loss.AggregatedLoss`: activity times unit direction per track and class; AGG1 track-wise with
  permutation-invariant training, AGG2 summed over the tracks).

PSELDNets names two networks with these outputs: EINV2 (two encoders, one on the 4 log-mel channels for SED, one on
all channels for DOA, joined by cross-stitch units) and SEDDOA (one encoder, a SED and a DOA head). Every seldflow
architecture has one trunk and builds its last layer from the output layout, i.e. it is a SEDDOA-shaped network
(the ``einv2`` layout on ``htsat`` has the parameters of PSELDNets' ``HTSAT_SEDDOA`` heads: one convolution of
3·C + 9 outputs is its two convolutions side by side). So the ``einv2*`` and ``seddoa*`` methods differ here in
loss and decoding only, not in the network: ``einv2*`` decodes every class above the threshold per track (Cao et
al.), ``seddoa*`` the most likely class of each track if above the threshold (PSELDNets, for both networks).

Batch augmentation (:mod:`seldflow.augment`) edits targets in place of events, as PSELDNets does, through three
hooks of every method: :meth:`Method.transform_directions` (a sound-field rotation or reflection),
:meth:`Method.polyphony` (events per frame, PSELDNets' ``ov``) and :meth:`Method.mix_targets` (the labels of a
trackmix / wavmix pair).

Decoding follows the official baselines: multi-ACCDOA tracks are active when their direction vector is longer than
``activity_threshold``, and active tracks of one class closer than ``unify_deg`` are merged by averaging (ADPIT
trains all three tracks to copy a lone event); ACCDOA likewise with one track; EINV2 emits, for every track, each
class whose sigmoid exceeds ``sed_threshold`` at that track's direction; SEDDOA (PSELDNets) only each track's most
likely class, under the same threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from torch import nn

from seldflow.errors import ConfigError
from seldflow.formats.events import (
    EV_AZIMUTH,
    EV_CLASS,
    EV_DISTANCE,
    EV_ELEVATION,
    EV_FRAME,
    event_table,
    no_events,
)
from seldflow.loss import ACCDOALoss, ADPITLoss, AggregatedLoss, EINV2Loss
from seldflow.models.heads import OutputLayout, output_layout

# ADPIT dummy tracks: A0 | B0 B1 | C0 C1 C2, chosen by how many same-class events are active in a frame.
ADPIT_TRACKS = 6
_ADPIT_GROUP_START = {1: 0, 2: 1, 3: 3}


def unit_vectors(events: np.ndarray, elements: str) -> np.ndarray:
    """Per event the values of ``elements``: x, y (and z) of the unit direction, d the distance in metres.

    Stereo layouts (no ``z``) use the horizontal unit vector (cos az, sin az), as the DCASE2025 baseline does.
    """
    azimuth = np.deg2rad(events[:, EV_AZIMUTH])
    elevation = np.deg2rad(events[:, EV_ELEVATION]) if "z" in elements else np.zeros(len(events))
    values = {
        "x": np.cos(azimuth) * np.cos(elevation),
        "y": np.sin(azimuth) * np.cos(elevation),
        "z": np.sin(elevation),
        "d": np.nan_to_num(events[:, EV_DISTANCE]),
    }
    return np.stack([values[element] for element in elements], axis=1) if len(events) else np.zeros((0, 0))


def _frame_class_groups(events: np.ndarray, n_frames: int) -> dict[tuple[int, int], np.ndarray]:
    """Event indices per (frame, class) in table order, frames past ``n_frames`` dropped."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, (frame, cls) in enumerate(events[:, [EV_FRAME, EV_CLASS]].astype(np.int64)):
        if 0 <= frame < n_frames:
            groups.setdefault((int(frame), int(cls)), []).append(index)
    return {key: np.asarray(value) for key, value in groups.items()}


def _length(direction: np.ndarray) -> np.ndarray:
    """Vector length over the last axis; ``hypot`` for 2-D vectors, as the DCASE2025 decoder computes it."""
    if direction.shape[-1] == 2:
        return np.hypot(direction[..., 0], direction[..., 1])
    return np.sqrt(np.square(direction).sum(axis=-1))


def _angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between direction vectors (last axis), robust near 0 and 180 degrees."""
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return np.degrees(np.arctan2(cross, np.sum(a * b, axis=-1)))


def _events_from(
    frame: np.ndarray, cls: np.ndarray, track: np.ndarray, values: np.ndarray, elements: str
) -> np.ndarray:
    """Event table of decoded (frame, class, track) with direction and distance from ``values`` (per elements)."""
    if len(frame) == 0:
        return no_events()
    column = {name: values[:, i] for i, name in enumerate(elements)}
    z = column.get("z", np.zeros(len(frame)))
    azimuth = np.degrees(np.arctan2(column["y"], column["x"]))
    elevation = np.degrees(np.arctan2(z, np.hypot(column["x"], column["y"])))
    distance = np.maximum(column["d"], 0.0) if "d" in column else np.full(len(frame), np.nan)
    return event_table(frame, cls, track, azimuth, elevation, distance)


def _rotate_elements(targets: np.ndarray, matrix: np.ndarray, elements: str, offset: int) -> np.ndarray:
    """Targets with their x, y, z entries of the element axis (second to last, after ``offset`` leading entries)
    multiplied by ``matrix``; activity and distance are kept."""
    index = [offset + elements.index(axis) for axis in "xyz"]
    turned = np.array(targets, copy=True)
    turned[..., index, :] = np.einsum("ij,...jc->...ic", matrix, targets[..., index, :])
    return turned


def _most_per_frame(active: np.ndarray) -> np.ndarray:
    """``(B, T, ...)`` activity flags -> per clip the largest count in one frame, at least 1."""
    counts = active.reshape(active.shape[0], active.shape[1], -1).sum(axis=2)
    return np.maximum(counts.max(axis=1, initial=0), 1)


def _take(array: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
    """``np.take_along_axis`` with ``index`` broadcast to ``array``'s shape on every other axis."""
    shape = list(array.shape)
    shape[axis] = index.shape[axis]
    return np.take_along_axis(array, np.broadcast_to(index, shape), axis=axis)


# Dummy tracks of the ADPIT group used by k same-class events (k = 0..3), padded to three entries.
_ADPIT_MEMBERS = np.array([[0, 0, 0], [0, 0, 0], [1, 2, 2], [3, 4, 5]])


def _adpit_entries(target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The events of each (clip, frame, class) of ADPIT targets ``(B, T, 6, 1 + E, C)`` in group order,
    ``(B, T, 3, 1 + E, C)``, and how many there are, ``(B, T, C)`` (entries past the count are padding)."""
    active = target[:, :, :, 0, :] > 0
    count = np.select([active[:, :, 3], active[:, :, 1], active[:, :, 0]], [3, 2, 1], 0)
    index = _ADPIT_MEMBERS[count].transpose(0, 1, 3, 2)[:, :, :, None, :]  # (B, T, 3, 1, C)
    return _take(target, index, axis=2), count


@dataclass(frozen=True)
class Method:
    """One SELD method; subclasses define targets, loss and decoding for their output layout."""

    name: str
    layout_name: str
    decode_defaults: ClassVar[dict[str, float]] = {}
    loss_args: dict[str, float] = field(default_factory=dict)

    @property
    def layout(self) -> OutputLayout:
        return output_layout(self.layout_name)

    def target_shape(self, n_frames: int, n_classes: int) -> tuple[int, ...]:
        raise NotImplementedError

    def targets(self, events: np.ndarray, n_frames: int, n_classes: int) -> np.ndarray:
        raise NotImplementedError

    def loss(self) -> nn.Module:
        raise NotImplementedError

    def decode(self, output: np.ndarray, n_classes: int, **settings: float) -> np.ndarray:
        raise NotImplementedError

    def decode_settings(self, settings: Mapping[str, Any]) -> dict[str, float]:
        """The decoding thresholds this method uses, from ``settings`` (e.g. config ``infer``) or its defaults."""
        return {key: float(settings.get(key, default)) for key, default in self.decode_defaults.items()}

    # Augmentation hooks: batches of targets ``(B, T, ...)``, the first axis the clip ------------------------------
    @property
    def directions_3d(self) -> bool:
        """Whether the targets hold x, y and z, so that a 3-D rotation of the sound field can move them."""
        return set("xyz") <= set(self.layout.elements)

    def transform_directions(self, targets: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Targets of the scene transformed by the orthogonal ``matrix`` acting on (x, y, z) column vectors."""
        raise NotImplementedError

    def polyphony(self, targets: np.ndarray) -> np.ndarray:
        """Per clip, the most events active in one frame, at least 1 (PSELDNets' ``ov`` of a training clip)."""
        raise NotImplementedError

    def mix_targets(self, base: np.ndarray, partner: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Labels of the mixture ``weight * base + (1 - weight) * partner`` of clip pairs (``weight``: ``(B,)``).

        Every event of both clips is kept, its activity scaled by its clip's weight (PSELDNets' trackmix and
        wavmix); the directions are unchanged.
        """
        raise NotImplementedError

    def _check_output(self, output: np.ndarray, n_classes: int) -> np.ndarray:
        output = np.asarray(output, dtype=np.float64)
        expected = self.layout.size(n_classes)
        if output.ndim != 2 or output.shape[1] != expected:
            raise ValueError(f"expected a (frames, {expected}) {self.name} output, got {output.shape}")
        return output


@dataclass(frozen=True)
class MultiACCDOA(Method):
    """Three tracks per class with ADPIT targets ``(T, 6, 1 + E, C)``: activity then the layout's elements."""

    decode_defaults: ClassVar[dict[str, float]] = {"activity_threshold": 0.5, "unify_deg": 15.0}

    def target_shape(self, n_frames: int, n_classes: int) -> tuple[int, ...]:
        return (n_frames, ADPIT_TRACKS, 1 + len(self.layout.elements), n_classes)

    def targets(self, events: np.ndarray, n_frames: int, n_classes: int) -> np.ndarray:
        """Per frame and class, k simultaneous same-class events fill dummy group A (k=1: track 0), B (k=2:
        tracks 1-2) or C (k>=3: tracks 3-5) in table order; events beyond the third are dropped, as in the
        reference implementations."""
        target = np.zeros(self.target_shape(n_frames, n_classes), dtype=np.float32)
        values = unit_vectors(events, self.layout.elements)
        for (frame, cls), indices in _frame_class_groups(events, n_frames).items():
            chosen = indices[: self.layout.tracks]
            start = _ADPIT_GROUP_START[len(chosen)]
            for k, index in enumerate(chosen):
                target[frame, start + k, 0, cls] = 1.0
                target[frame, start + k, 1:, cls] = values[index]
        return target

    def loss(self) -> nn.Module:
        return ADPITLoss()

    def decode(self, output: np.ndarray, n_classes: int, **settings: float) -> np.ndarray:
        """Events of one clip's ``(T, size)`` output; merged groups take the lowest track index of the group."""
        options = {**self.decode_defaults, **settings}
        output = self._check_output(output, n_classes)
        elements, n_tracks = self.layout.elements, self.layout.tracks
        tracks = output.reshape(len(output), n_tracks, len(elements), n_classes).transpose(0, 3, 1, 2)
        direction = tracks[..., : len(elements.replace("d", ""))]  # (T, class, track, 2 or 3)
        active = _length(direction) > options["activity_threshold"]
        linked = _linked_tracks(active, direction, options["unify_deg"], n_tracks)
        # A track leads its group when no lower-indexed track is linked to it.
        lower = np.tril(np.ones((n_tracks, n_tracks), dtype=bool), k=-1)
        leads = active & ~np.any(linked & lower, axis=-1)
        members = linked.sum(axis=-1, keepdims=True)
        merged = np.einsum("fcij,fcjk->fcik", linked.astype(np.float64), tracks) / np.maximum(members, 1)
        frame, cls, track = np.nonzero(leads)
        return _events_from(frame, cls, track, merged[frame, cls, track], elements)

    def transform_directions(self, targets: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        return _rotate_elements(targets, matrix, self.layout.elements, offset=1)

    def polyphony(self, targets: np.ndarray) -> np.ndarray:
        return _most_per_frame(targets[:, :, :, 0, :] > 0)

    def mix_targets(self, base: np.ndarray, partner: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Per frame and class the base clip's events, then the partner's, regrouped by their joint count (A, B
        or C; beyond three the partner's last are dropped, as :meth:`targets` drops them): a lone event of
        each clip becomes group B (base on dummy track 1, partner on 2), a base event beside two partner events
        group C, as PSELDNets' trackmix and wavmix write them."""
        weights = np.asarray(weight, dtype=base.dtype)[:, None, None, None]
        first, n_first = _adpit_entries(base)
        second, n_second = _adpit_entries(partner)
        first[:, :, :, 0] *= weights
        second[:, :, :, 0] *= 1 - weights
        slot = np.arange(3)[None, None, :, None]
        valid = np.concatenate((slot < n_first[:, :, None], slot < n_second[:, :, None]), axis=2)  # (B, T, 6, C)
        order = np.argsort(~valid, axis=2, kind="stable")[:, :, :3]  # valid entries first, base before partner
        entries = _take(np.concatenate((first, second), axis=2), order[:, :, :, None, :], axis=2)
        total = np.minimum(n_first + n_second, 3)
        mixed = np.zeros_like(base)
        for count, start in _ADPIT_GROUP_START.items():
            chosen = (total == count)[:, :, None, :]
            for k in range(count):
                mixed[:, :, start + k] = np.where(chosen, entries[:, :, k], 0.0)
        return mixed


def _linked_tracks(active: np.ndarray, direction: np.ndarray, unify_deg: float, n_tracks: int) -> np.ndarray:
    """Reflexive-transitive closure of "both active and closer than ``unify_deg``" over the tracks of a class.

    Horizontal (stereo) layouts compare wrapped azimuth differences, as the DCASE2025 baseline does; 3-D layouts
    compare the angle between the vectors, as the DCASE2022-2024 baselines do.
    """
    if direction.shape[-1] == 2:
        azimuth = np.degrees(np.arctan2(direction[..., 1], direction[..., 0]))
        difference = np.abs((azimuth[..., :, None] - azimuth[..., None, :] + 180.0) % 360.0 - 180.0)
    else:
        difference = _angle_between(direction[..., :, None, :], direction[..., None, :, :])
    both = active[..., :, None] & active[..., None, :]
    linked = both & (difference < unify_deg)  # the diagonal is set for every active track
    for _ in range(max(n_tracks - 2, 0)):  # each squaring doubles the path length covered; 3 tracks need one
        steps = linked.astype(np.int64)
        linked = linked | (np.einsum("...ij,...jk->...ik", steps, steps) > 0)
    return linked


@dataclass(frozen=True)
class ACCDOA(Method):
    """One xyz vector per class scaled by activity; target ``(T, 3, C)``.

    With several same-class events in a frame the last one in table order is the target, as the DCASE2021
    baseline's label builder overwrites earlier rows of a class.
    """

    decode_defaults: ClassVar[dict[str, float]] = {"activity_threshold": 0.5}

    def target_shape(self, n_frames: int, n_classes: int) -> tuple[int, ...]:
        return (n_frames, len(self.layout.elements), n_classes)

    def targets(self, events: np.ndarray, n_frames: int, n_classes: int) -> np.ndarray:
        target = np.zeros(self.target_shape(n_frames, n_classes), dtype=np.float32)
        values = unit_vectors(events, self.layout.elements)
        for (frame, cls), indices in _frame_class_groups(events, n_frames).items():
            target[frame, :, cls] = values[indices[-1]]
        return target

    def loss(self) -> nn.Module:
        return ACCDOALoss()

    def decode(self, output: np.ndarray, n_classes: int, **settings: float) -> np.ndarray:
        options = {**self.decode_defaults, **settings}
        output = self._check_output(output, n_classes)
        vectors = output.reshape(len(output), len(self.layout.elements), n_classes).transpose(0, 2, 1)
        frame, cls = np.nonzero(_length(vectors) > options["activity_threshold"])
        return _events_from(frame, cls, np.zeros_like(frame), vectors[frame, cls], self.layout.elements)

    def transform_directions(self, targets: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        return _rotate_elements(targets, matrix, self.layout.elements, offset=0)

    def polyphony(self, targets: np.ndarray) -> np.ndarray:
        return _most_per_frame(np.any(targets != 0, axis=2))

    def mix_targets(self, base: np.ndarray, partner: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """The weighted sum of the two targets, as PSELDNets mixes ACCDOA labels: an event of one clip keeps its
        direction at its clip's weight; two same-class events in one frame blend (ACCDOA holds one per class)."""
        weights = np.asarray(weight, dtype=base.dtype)[:, None, None, None]
        return weights * base + (1 - weights) * partner


@dataclass(frozen=True)
class EINV2(Method):
    """Class-agnostic tracks with SED and DOA branches; target ``(T, tracks, C + 3)``.

    The events of a frame fill tracks 0, 1, 2 in table order (more than three: the rest are dropped); each track
    holds a one-hot class and the unit xyz direction. ``loss_args`` may set ``sed_weight`` and ``doa_weight``.
    With ``aggregation`` (``agg1`` / ``agg2``) the loss is PSELDNets' aggregated loss instead.
    """

    decode_defaults: ClassVar[dict[str, float]] = {"sed_threshold": 0.5}
    # Keyword arguments of the track-wise loss that ``loss_args`` override.
    loss_defaults: ClassVar[dict[str, Any]] = {}
    aggregation: str = ""

    def target_shape(self, n_frames: int, n_classes: int) -> tuple[int, ...]:
        return (n_frames, self.layout.tracks, n_classes + 3)

    def targets(self, events: np.ndarray, n_frames: int, n_classes: int) -> np.ndarray:
        target = np.zeros(self.target_shape(n_frames, n_classes), dtype=np.float32)
        values = unit_vectors(events, "xyz")
        frames = events[:, EV_FRAME].astype(np.int64)
        for frame in np.unique(frames):
            if not 0 <= frame < n_frames:
                continue
            for track, index in enumerate(np.flatnonzero(frames == frame)[: self.layout.tracks]):
                target[frame, track, int(events[index, EV_CLASS])] = 1.0
                target[frame, track, n_classes:] = values[index]
        return target

    def loss(self) -> nn.Module:
        if self.aggregation:
            return AggregatedLoss(self.aggregation, **self.loss_args, tracks=self.layout.tracks)
        return EINV2Loss(**{**self.loss_defaults, **self.loss_args}, tracks=self.layout.tracks)

    def decode(self, output: np.ndarray, n_classes: int, **settings: float) -> np.ndarray:
        options = {**self.decode_defaults, **settings}
        output = self._check_output(output, n_classes)
        n_tracks = self.layout.tracks
        sed = output[:, : n_tracks * n_classes].reshape(len(output), n_tracks, n_classes)
        doa = output[:, n_tracks * n_classes :].reshape(len(output), n_tracks, 3)
        probability = self._track_classes(1.0 / (1.0 + np.exp(-sed)))
        frame, track, cls = np.nonzero(probability > options["sed_threshold"])
        order = np.lexsort((track, cls, frame))
        frame, track, cls = frame[order], track[order], cls[order]
        return _events_from(frame, cls, track, doa[frame, track], "xyz")

    def transform_directions(self, targets: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        n_classes = targets.shape[-1] - 3
        turned = np.array(targets, copy=True)
        turned[..., n_classes:] = targets[..., n_classes:] @ np.asarray(matrix).T
        return turned

    def polyphony(self, targets: np.ndarray) -> np.ndarray:
        return _most_per_frame(targets[..., : targets.shape[-1] - 3].max(axis=-1) > 0)

    def mix_targets(self, base: np.ndarray, partner: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Per frame the base clip's active tracks, then the partner's, in the first tracks (at most
        ``tracks``); SED scaled by the clip's weight, DOA kept. PSELDNets puts the base's track 0 and the
        partner's tracks 0 and 1 in tracks 0, 1, 2 without closing gaps; the permutation-invariant loss sees
        no difference."""
        n_classes = base.shape[-1] - 3
        weights = np.asarray(weight, dtype=base.dtype)[:, None, None, None]
        first, second = np.array(base, copy=True), np.array(partner, copy=True)
        first[..., :n_classes] *= weights
        second[..., :n_classes] *= 1 - weights
        active = np.concatenate((base[..., :n_classes].max(axis=-1), partner[..., :n_classes].max(axis=-1)), axis=2)
        order = np.argsort(~(active > 0), axis=2, kind="stable")[:, :, : self.layout.tracks]
        return _take(np.concatenate((first, second), axis=2), order[..., None], axis=2)

    def _track_classes(self, probability: np.ndarray) -> np.ndarray:
        """The ``(T, tracks, C)`` class probabilities a track may emit; EINV2: all of them."""
        return probability


@dataclass(frozen=True)
class SEDDOA(EINV2):
    """PSELDNets' track-wise recipe for its EINV2 and SEDDOA networks, on the ``einv2`` output layout.

    Targets as :class:`EINV2`. Loss (``Losses_pit``): ½ BCE + ½ MSE over the xyz of all three tracks, empty tracks
    towards the zero vector, cheapest track order per frame (``loss_args`` may change ``sed_weight``,
    ``doa_weight``); or an aggregated loss. Decoding: per track only its most likely class, kept when its
    probability exceeds ``sed_threshold`` (the first on a tie).
    """

    loss_defaults: ClassVar[dict[str, Any]] = {"sed_weight": 0.5, "doa_weight": 0.5, "active_doa_only": False}

    def _track_classes(self, probability: np.ndarray) -> np.ndarray:
        best = np.argmax(probability, axis=-1)[..., None]
        top = np.zeros_like(probability)
        np.put_along_axis(top, best, np.take_along_axis(probability, best, axis=-1), axis=-1)
        return top


# Method name -> (class, output layout, further fields of the class).
_METHOD_TYPES: dict[str, tuple[type[Method], str, dict[str, Any]]] = {
    "maccdoa_xyd": (MultiACCDOA, "maccdoa_xyd", {}),
    "maccdoa": (MultiACCDOA, "maccdoa_xyz", {}),
    "maccdoa_dist": (MultiACCDOA, "maccdoa_xyzd", {}),
    "accdoa": (ACCDOA, "accdoa", {}),
    "einv2": (EINV2, "einv2", {}),
    "einv2_agg1": (EINV2, "einv2", {"aggregation": "agg1"}),
    "einv2_agg2": (EINV2, "einv2", {"aggregation": "agg2"}),
    "seddoa": (SEDDOA, "einv2", {}),
    "seddoa_agg1": (SEDDOA, "einv2", {"aggregation": "agg1"}),
    "seddoa_agg2": (SEDDOA, "einv2", {"aggregation": "agg2"}),
}
METHODS = tuple(_METHOD_TYPES)


def get_method(name: str, loss_args: Mapping[str, float] | None = None) -> Method:
    """The registered method ``name`` (``train.method``), with optional loss arguments (``train.loss_args``)."""
    try:
        cls, layout, fields = _METHOD_TYPES[name]
    except KeyError:
        raise ConfigError("train", "method", f"unknown method {name!r} (known: {', '.join(METHODS)})") from None
    return cls(name=name, layout_name=layout, loss_args=dict(loss_args or {}), **fields)
