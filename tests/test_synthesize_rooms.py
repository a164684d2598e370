"""Room simulation: grid geometry, FOA encoding of the direct path, and agreement with pyroomacoustics' own
coincident-capsule simulation."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyroomacoustics as pra
import pytest
from pyroomacoustics.directivities import CardioidFamily

from seldflow.synthesize.rooms import _shoebox, foa_impulse_response, grid_positions, simulate_room
from seldflow.synthesize.sofa import read_sofa

SR = 24000
DIMS = [4.0, 3.5, 2.8]
ARRAY = [2.0, 1.6, 1.4]


def test_grid_positions_cover_every_combination() -> None:
    grid = grid_positions(90, [0, 30], [1.0, 2.0])
    assert grid.shape == (2 * 2 * 4, 3)
    np.testing.assert_allclose(np.linalg.norm(grid, axis=1), np.repeat([1.0, 2.0], 8))
    first_ring = grid[:4]
    np.testing.assert_allclose(first_ring, [[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]], atol=1e-12)
    elevated = grid[4]
    np.testing.assert_allclose(elevated, [np.cos(np.pi / 6), 0.0, 0.5])


@pytest.fixture(scope="module")
def room_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rooms") / "small.sofa"
    simulate_room(
        path,
        dims=DIMS,
        rt60=0.2,
        array=ARRAY,
        azimuth_step_deg=45,
        elevations_deg=[-20, 25],
        distances_m=[1.0, 1.2],
        ir_seconds=0.1,
        name="small",
    )
    return path


def test_positions_near_walls_are_skipped_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "near.sofa"
    with caplog.at_level(logging.INFO, logger="seldflow.synthesize.rooms"):
        simulate_room(
            path,
            dims=DIMS,
            rt60=0.2,
            array=ARRAY,
            azimuth_step_deg=90,
            elevations_deg=[0],
            distances_m=[1.5],
            ir_seconds=0.05,
            name="near",
        )
    # By hand: x reaches 3.5 and 0.5, y reaches 3.1 and 0.1 (room 4 x 3.5 m); only y = 0.1 is within 0.3 m.
    positions = read_sofa(path).positions
    np.testing.assert_allclose(positions, [[1.5, 0, 0], [0, 1.5, 0], [-1.5, 0, 0]], atol=1e-12)
    assert "skipped 1 of 4 positions" in caplog.text


def test_direct_path_encodes_direction_in_sn3d(room_file: Path) -> None:
    room = read_sofa(room_file)
    assert room.irs.shape == (32, 4, round(0.1 * SR))
    fdl2 = pra.constants.get("frac_delay_length") // 2
    for ir, position in zip(room.irs, room.positions, strict=True):
        distance = np.linalg.norm(position)
        arrival = round(distance / 343.0 * SR) + fdl2
        w, y, z, x = ir[:, arrival - 3 : arrival + 4]
        # Intensity vector (W times each dipole) of the direct-path window points at the source.
        intensity = np.array([np.dot(w, x), np.dot(w, y), np.dot(w, z)])
        cosine = intensity @ position / (np.linalg.norm(intensity) * distance)
        assert np.degrees(np.arccos(min(1.0, cosine))) < 2.0
        # SN3D gains: dipole / omni = unit-vector component; the omni peak is about 1/distance.
        peak = np.argmax(np.abs(w))
        np.testing.assert_allclose([x[peak], y[peak], z[peak]] / w[peak], position / distance, atol=0.02)
        assert w[peak] == pytest.approx(1.0 / distance, rel=0.05)


def test_matches_pyroomacoustics_coincident_capsules() -> None:
    """Our per-image FOA encoding equals pyroomacoustics' own simulation with omni + three figure-of-eights."""
    centre = np.asarray(ARRAY)
    source = centre + np.array([0.9, -0.6, 0.3])
    n_taps = round(0.08 * SR)
    ours = foa_impulse_response(_shoebox(np.asarray(DIMS), 0.2, centre, SR, "test"), source, centre, n_taps)

    absorption, order = pra.inverse_sabine(0.2, DIMS)
    room = pra.ShoeBox(DIMS, fs=SR, materials=pra.Material(absorption), max_order=order)
    capsules = [
        CardioidFamily(orientation=[1.0, 0.0, 0.0], p=1.0),  # W (omni)
        CardioidFamily(orientation=[0.0, 1.0, 0.0], p=0.0),  # Y
        CardioidFamily(orientation=[0.0, 0.0, 1.0], p=0.0),  # Z
        CardioidFamily(orientation=[1.0, 0.0, 0.0], p=0.0),  # X
    ]
    room.add_microphone_array(np.repeat(centre[:, None], 4, axis=1), directivity=capsules)
    room.add_source(source)
    hpf = pra.constants.get("rir_hpf_enable")
    pra.constants.set("rir_hpf_enable", False)
    try:
        room.compute_rir()
    finally:
        pra.constants.set("rir_hpf_enable", hpf)
    reference = np.stack([np.pad(r[0], (0, max(0, n_taps - len(r[0]))))[:n_taps] for r in room.rir])
    # Only arrivals that fit the response are kept; compare where no cut-off image can reach.
    settled = n_taps - pra.constants.get("frac_delay_length")
    np.testing.assert_allclose(ours[:, :settled], reference[:, :settled], atol=2e-5)


def test_unreachable_rt60_and_outside_array_are_rejected(tmp_path: Path) -> None:
    common = dict(azimuth_step_deg=90, elevations_deg=[0], distances_m=[1.0], ir_seconds=0.05, name="bad")
    with pytest.raises(ValueError, match="inside the room"):
        simulate_room(tmp_path / "a.sofa", dims=DIMS, rt60=0.2, array=[5.0, 1.0, 1.0], **common)
    with pytest.raises(ValueError, match="RT60"):
        simulate_room(tmp_path / "b.sofa", dims=DIMS, rt60=0.01, array=ARRAY, **common)
    assert not list(tmp_path.iterdir())
