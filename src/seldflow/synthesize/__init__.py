"""Synthesize stage: procedural source bank, simulated FOA rooms (SOFA) and DCASE2025 stereo mixtures."""

from seldflow.synthesize.mixtures import foa_to_stereo, render_split, rotate_foa
from seldflow.synthesize.rooms import grid_positions, simulate_room
from seldflow.synthesize.sofa import Room, read_sofa, write_sofa
from seldflow.synthesize.sources import list_bank, make_source_bank, read_source

__all__ = [
    "Room",
    "foa_to_stereo",
    "grid_positions",
    "list_bank",
    "make_source_bank",
    "read_sofa",
    "read_source",
    "render_split",
    "rotate_foa",
    "simulate_room",
    "write_sofa",
]
