"""Simulated rooms: first-order Ambisonics (FOA) impulse responses on a grid of source positions.

pyroomacoustics computes the image sources of a shoebox room (image-source method, wall absorption and maximum
order from Sabine's formula for the requested RT60). The FOA encoding of every image source is then applied
here rather than through four coincident ``CardioidFamily`` capsules: the response of an omni capsule is 1 and
that of a figure-of-eight along axis a is the a-component of the unit arrival vector, so the ACN/SN3D gains
(W, Y, Z, X) = (1, u_y, u_z, u_x) are exactly what those capsules would give. Running the image-source model
once per position instead of once per capsule, and building the responses with pyroomacoustics' own
fractional-delay RIR builder, makes a 324-position room take seconds rather than minutes.

The DCASE tetrahedral microphone array (MIC format) is defined here too, next to the FOA encoding: four omni
capsules at radius 4.2 cm, so every simulator of the project places the same capsules. :func:`simulate_room` writes
their responses beside the FOA ones when asked (``mic_path``): each capsule hears every image source at its own
distance (free field, no rigid sphere), from the same image-source run as the FOA responses.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

import numpy as np
import pyroomacoustics as pra
from tqdm import tqdm

from seldflow.labels import SAMPLE_RATE
from seldflow.synthesize.sofa import write_sofa

log = logging.getLogger(__name__)

# Sources nearer a wall than this are skipped: the array would hear the source and its mirror image as one.
MIN_WALL_DISTANCE_M = 0.3
# The DCASE tetrahedral array (TAU-NIGENS, STARSS23 mic format): capsule (azimuth, elevation) in degrees, radius in m.
TETRA_CAPSULES_DEG = ((45.0, 35.0), (-45.0, -35.0), (135.0, -35.0), (-135.0, 35.0))
TETRA_RADIUS_M = 0.042


def grid_positions(
    azimuth_step_deg: float, elevations_deg: Sequence[float], distances_m: Sequence[float]
) -> np.ndarray:
    """Cartesian positions [P, 3] (relative to the array) of every azimuth step x elevation x distance."""
    if not 0 < azimuth_step_deg <= 360:
        raise ValueError(f"azimuth_step_deg must be in (0, 360], got {azimuth_step_deg}")
    azimuths = np.deg2rad(np.arange(0.0, 360.0, azimuth_step_deg))
    rows = [
        radius * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        for radius in distances_m
        for el in np.deg2rad(np.asarray(elevations_deg, dtype=np.float64))
        for az in azimuths
    ]
    return np.asarray(rows).reshape(-1, 3)


def foa_gains(directions: np.ndarray) -> np.ndarray:
    """ACN/SN3D first-order gains [4, K] (W, Y, Z, X) of plane waves arriving from unit vectors [3, K]."""
    return np.stack([np.ones(directions.shape[1]), directions[1], directions[2], directions[0]])


def tetra_capsules() -> np.ndarray:
    """Capsule positions [4, 3] (metres, x front, y left, z up) of the DCASE tetrahedral array around its centre."""
    azimuth, elevation = np.deg2rad(np.asarray(TETRA_CAPSULES_DEG)).T
    unit = np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    return TETRA_RADIUS_M * unit.T


def simulate_room(
    out_path: str | os.PathLike[str],
    *,
    dims: Sequence[float],
    rt60: float,
    array: Sequence[float],
    azimuth_step_deg: float,
    elevations_deg: Sequence[float],
    distances_m: Sequence[float],
    ir_seconds: float,
    sample_rate: int = SAMPLE_RATE,
    name: str,
    mic_path: str | os.PathLike[str] | None = None,
) -> None:
    """Simulate FOA impulse responses of a shoebox room on a source grid and write them as a SOFA file.

    Positions closer than ``MIN_WALL_DISTANCE_M`` to a wall are skipped (and counted in the log). Responses are
    cut to ``ir_seconds``; the direct path of a source at distance r has amplitude 1/r in W, so level carries a
    distance cue. With ``mic_path`` the tetrahedral-array responses of the same positions are written there too
    (SOFA ``mic`` format), from the same image sources.
    """
    dims_arr = np.asarray(dims, dtype=np.float64)
    centre = np.asarray(array, dtype=np.float64)
    if dims_arr.shape != (3,) or centre.shape != (3,) or np.any(centre <= 0) or np.any(centre >= dims_arr):
        raise ValueError(f"room {name}: array {list(centre)} must lie inside the room {list(dims_arr)}")
    if ir_seconds <= 0:
        raise ValueError(f"room {name}: ir_seconds must be positive, got {ir_seconds}")
    relative = grid_positions(azimuth_step_deg, elevations_deg, distances_m)
    absolute = relative + centre
    inside = np.all((absolute >= MIN_WALL_DISTANCE_M) & (absolute <= dims_arr - MIN_WALL_DISTANCE_M), axis=1)
    if not inside.any():
        raise ValueError(f"room {name}: every grid position is within {MIN_WALL_DISTANCE_M} m of a wall")
    if not inside.all():
        log.info(
            "room %s: skipped %d of %d positions closer than %.1f m to a wall",
            name,
            int((~inside).sum()),
            inside.size,
            MIN_WALL_DISTANCE_M,
        )
    room = _shoebox(dims_arr, rt60, centre, sample_rate, name)
    n_taps = round(ir_seconds * sample_rate)
    started = time.perf_counter()
    responses = [
        array_impulse_responses(room, position, centre, n_taps, mic=mic_path is not None)
        for position in tqdm(absolute[inside], desc=f"room {name}", unit="position")
    ]
    log.info("room %s: %d positions in %.1f s", name, len(responses), time.perf_counter() - started)
    outputs = {"foa": out_path} if mic_path is None else {"foa": out_path, "mic": mic_path}
    for fmt, path in outputs.items():
        write_sofa(
            path,
            np.stack([response[fmt] for response in responses]),
            relative[inside],
            sample_rate,
            room_name=name,
            room_dims=dims_arr,
            array_position=centre,
            fmt=fmt,
        )


def _shoebox(dims: np.ndarray, rt60: float, centre: np.ndarray, sample_rate: int, name: str) -> pra.ShoeBox:
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError as exc:
        raise ValueError(f"room {name}: RT60 {rt60} s is not reachable in a {list(dims)} m room ({exc})") from exc
    room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption), max_order=max_order)
    room.add_microphone(centre)
    return room


def foa_impulse_response(room: pra.ShoeBox, source: np.ndarray, centre: np.ndarray, n_taps: int) -> np.ndarray:
    """FOA impulse response [4, n_taps] (ACN W, Y, Z, X; SN3D) from ``source`` to the array at ``centre``,
    built by :func:`impulse_responses` from the room's image sources."""
    return array_impulse_responses(room, source, centre, n_taps)["foa"]


def array_impulse_responses(
    room: pra.ShoeBox, source: np.ndarray, centre: np.ndarray, n_taps: int, *, mic: bool = False
) -> dict[str, np.ndarray]:
    """Responses [4, n_taps] of ``source`` at the array centred on ``centre``: ``"foa"`` always, ``"mic"`` (the
    capsules of :func:`tetra_capsules`, each with its own path lengths) when asked, both from one image-source run."""
    room.sources = []
    room.add_source(source)
    room.image_source_model()
    image = room.sources[0]
    visible = room.visibility[0][0].astype(bool)
    if image.damping.shape[0] != 1:
        raise ValueError("expected frequency-flat wall absorption (one octave band)")
    images = image.images[:, visible].astype(np.float64)
    damping = image.damping[0, visible]
    offsets = images - centre[:, None]
    distance = np.linalg.norm(offsets, axis=0)
    responses = {"foa": impulse_responses(distance, damping / distance, foa_gains(offsets / distance), room.fs, n_taps)}
    if mic:
        paths = np.linalg.norm(images.T[None, :, :] - (tetra_capsules() + centre)[:, None, :], axis=-1)
        responses["mic"] = impulse_responses(paths, damping, 1.0 / paths, room.fs, n_taps)
    return responses


def impulse_responses(
    distance: np.ndarray, amplitude: np.ndarray, gains: np.ndarray, sample_rate: int, n_taps: int
) -> np.ndarray:
    """Responses [C, n_taps] float32 of K arrivals: path lengths ``distance`` [K] or [C, K] (metres), amplitudes
    ``amplitude`` [K] and per-channel gains ``gains`` [C, K].

    Amplitudes (wall damping / path length) and the fractional-delay builder are those pyroomacoustics uses for
    its own responses, including its constant delay of half the fractional-delay filter length. Per-channel path
    lengths serve spaced capsules (the tetrahedral array), one length for all channels a coincident array (FOA).
    """
    fdl = pra.constants.get("frac_delay_length")
    c = pra.constants.get("c")
    distances = np.broadcast_to(np.asarray(distance, dtype=np.float64), gains.shape)
    out = np.zeros((gains.shape[0], n_taps), dtype=np.float32)
    for channel in range(gains.shape[0]):
        arrival = distances[channel] / c + (fdl // 2) / sample_rate
        # The builder writes up to fdl // 2 samples after each arrival; keep only arrivals that fit the buffer.
        keep = arrival * sample_rate < n_taps + fdl // 2 - 1
        buffer = np.zeros(n_taps + fdl, dtype=np.float32)
        pra.libroom.rir_builder(
            buffer,
            arrival[keep].astype(np.float32),
            (amplitude[keep] * gains[channel, keep]).astype(np.float32),
            sample_rate,
            fdl,
            pra.constants.get("sinc_lut_granularity"),
            1,
        )
        out[channel] = buffer[:n_taps]
    return out
