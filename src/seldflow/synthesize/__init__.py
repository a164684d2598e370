"""Synthesize stage: procedural source bank, simulated FOA rooms (SOFA) and DCASE2025 stereo mixtures."""

from collections.abc import Callable

from seldflow.synthesize.measured import convert_measured, convert_metu, convert_tau_room
from seldflow.synthesize.mixtures import foa_to_stereo, render_split, rotate_foa
from seldflow.synthesize.rooms import grid_positions, simulate_room
from seldflow.synthesize.sofa import Room, Trajectory, read_sofa, write_sofa
from seldflow.synthesize.sources import list_bank, make_source_bank, read_source

BACKENDS = ("builtin", "spatialscaper")


def renderer(backend: str = "builtin") -> Callable[..., None]:
    """The split renderer of a synthesis backend; both take the same arguments and write the same layout.

    SpatialScaper is imported only when chosen: it is an optional install, not a dependency.
    """
    if backend == "builtin":
        return render_split
    if backend == "spatialscaper":
        from seldflow.synthesize.spatialscaper import render_split_spatialscaper

        return render_split_spatialscaper
    raise ValueError(f"unknown synthesis backend {backend!r} (one of {', '.join(BACKENDS)})")


__all__ = [
    "Room",
    "Trajectory",
    "convert_measured",
    "convert_metu",
    "convert_tau_room",
    "foa_to_stereo",
    "grid_positions",
    "list_bank",
    "make_source_bank",
    "read_sofa",
    "read_source",
    "render_split",
    "renderer",
    "rotate_foa",
    "simulate_room",
    "write_sofa",
]
