"""Output layouts of the SELD methods: how many outputs a network's last layer has and how they are bounded.

A SELD method (ACCDOA, multi-ACCDOA, EINV2; see :mod:`seldflow.tasks.seld_methods`) decides what a network emits
per label frame. The network side of that decision lives here, so every architecture builds its last layer from
one :class:`OutputLayout` and works with every method; targets, losses and decoding live with the method.

Layouts (``C`` classes):

* ``maccdoa_xyd`` — the DCASE2025 stereo form: 3 tracks × (x, y, distance) × C, laid out track-major, then
  element, then class (``[t0: x(C) y(C) d(C) | t1 | t2]``); tanh on x, y, ReLU on distance (metres).
* ``maccdoa_xyz`` — PSELDNets' multi-ACCDOA: 3 tracks × (x, y, z) × C, tanh.
* ``maccdoa_xyzd`` — the DCASE2024 distance-aware form: 3 tracks × (x, y, z, distance) × C.
* ``accdoa`` — one track: (x, y, z) × C, tanh; the vector length is the activity.
* ``einv2`` — 3 tracks × C SED logits (unbounded: the loss applies the sigmoid) followed by 3 tracks × (x, y, z)
  DOA (tanh): ``[sed t0(C) t1(C) t2(C) | doa t0(3) t1(3) t2(3)]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seldflow.errors import ConfigError


@dataclass(frozen=True)
class OutputLayout:
    """Shape and activations of one method's output: ``tracks`` × ``elements`` per class, plus optional SED.

    ``elements`` names the per-track, per-class values of the ACCDOA family (``x``, ``y``, ``z``: a direction
    scaled by activity, tanh-bounded; ``d``: distance in metres, ReLU-bounded). With ``sed`` (EINV2) the classes
    are logits per track and the direction is one class-independent ``xyz`` vector per track.
    """

    name: str
    tracks: int
    elements: str
    sed: bool = False

    def size(self, n_classes: int) -> int:
        """Number of outputs per label frame."""
        if self.sed:
            return self.tracks * (n_classes + len(self.elements))
        return self.tracks * len(self.elements) * n_classes

    def activate(self, x: torch.Tensor, n_classes: int) -> torch.Tensor:
        """Bound the raw ``(B, T, size)`` outputs without changing the flat layout."""
        batch, frames, _ = x.shape
        if self.sed:
            split = self.tracks * n_classes
            return torch.cat((x[..., :split], torch.tanh(x[..., split:])), dim=-1)
        x = x.reshape(batch, frames, self.tracks, len(self.elements), n_classes)
        distance = self.elements.find("d")
        if distance < 0:
            return torch.tanh(x).reshape(batch, frames, -1)
        direction = torch.tanh(x[:, :, :, :distance])
        bounded = torch.cat((direction, torch.relu(x[:, :, :, distance:])), dim=3)
        return bounded.reshape(batch, frames, -1)


OUTPUT_LAYOUTS: dict[str, OutputLayout] = {
    layout.name: layout
    for layout in (
        OutputLayout("maccdoa_xyd", tracks=3, elements="xyd"),
        OutputLayout("maccdoa_xyz", tracks=3, elements="xyz"),
        OutputLayout("maccdoa_xyzd", tracks=3, elements="xyzd"),
        OutputLayout("accdoa", tracks=1, elements="xyz"),
        OutputLayout("einv2", tracks=3, elements="xyz", sed=True),
    )
}
# The stereo DCASE2025 form: what every network emitted before methods were selectable.
DEFAULT_LAYOUT = "maccdoa_xyd"


def output_layout(name: str) -> OutputLayout:
    """The registered layout ``name``; a clear configuration error otherwise."""
    try:
        return OUTPUT_LAYOUTS[name]
    except KeyError:
        known = ", ".join(sorted(OUTPUT_LAYOUTS))
        raise ConfigError("train", "model_args.output", f"unknown output layout {name!r} (known: {known})") from None


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
