"""Random rooms of the pretraining data: PSELDNets' geometry constraints, the image order that is exactly complete,
the drawn RT60 in the simulated decay, the FOA direct path pointing at the source, the tetrahedral array's time
differences, and the diffuse tail's channel statistics."""

from __future__ import annotations

import numpy as np
import pyroomacoustics as pra
import pytest
from scipy import signal

from seldflow.pretrain.rooms import (
    FORMAT_CHANNELS,
    RoomSettings,
    ShoeboxRoom,
    axis_distances,
    complete_order,
    diffuse_mic_noise,
    diffuse_tail,
    draw_room,
    draw_sources,
    eyring_absorption,
    room_responses,
)
from seldflow.synthesize.rooms import tetra_capsules

C = 343.0  # pyroomacoustics' speed of sound
# The DCASE tetrahedral array (TAU-NIGENS / STARSS23 documentation): capsule azimuth, elevation; radius 4.2 cm.
TETRA_DEG = ((45.0, 35.0), (-45.0, -35.0), (135.0, -35.0), (-135.0, 35.0))
TETRA_RADIUS = 0.042


def unit(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    a, e = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    return np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])


def test_drawn_rooms_follow_pseldnets_constraints() -> None:
    settings = RoomSettings()
    rng = np.random.default_rng(0)
    for _ in range(300):
        room = draw_room(rng, settings)
        assert np.all(room.dims >= [5, 5, 3]) and np.all(room.dims <= [25, 25, 10])
        assert 0.2 <= room.rt60 <= 2.0
        assert np.all(room.array >= 0.4 * room.dims) and np.all(room.array <= 0.6 * room.dims)
        sources = draw_sources(rng, room, settings, 5)
        assert np.all(sources >= 1.0) and np.all(sources <= room.dims - 1.0)
        assert np.all(np.linalg.norm(sources - room.array, axis=1) >= 0.5)


def test_settings_that_leave_no_room_for_sources_are_refused() -> None:
    with pytest.raises(ValueError, match="twice wall_distance_m"):
        RoomSettings(size_m=((5.0, 6.0), (5.0, 6.0), (1.5, 2.0)))
    with pytest.raises(ValueError, match="rt60_s"):
        RoomSettings(rt60_s=(0.0, 1.0))


def test_eyring_absorption_by_hand() -> None:
    """10 x 8 x 4 m, RT60 1 s: V = 320, S = 304, 24 ln(10) / c = 0.16111, a = 1 - exp(-0.16111 * 320 / 304)."""
    assert eyring_absorption([10.0, 8.0, 4.0], 1.0) == pytest.approx(1 - np.exp(-0.16111 * 320 / 304), rel=1e-3)


def test_axis_distances_by_hand() -> None:
    """L = 4, source at 1, receiver at 3: direct 2; one reflection 4 (images at 7 and -1); two 6 (images at 9 and
    -7); three 12 (images at 15 and -9)."""
    np.testing.assert_allclose(axis_distances(4.0, 1.0, 3.0, 3), [2.0, 4.0, 6.0, 12.0])


def test_complete_order_holds_every_image_closer_than_the_distance_and_no_lower_order_does() -> None:
    room = ShoeboxRoom(dims=np.array([9.0, 6.0, 3.2]), rt60=0.5, array=np.array([4.1, 3.3, 1.5]))
    source = np.array([7.5, 1.2, 2.0])
    distance = 14.0
    order = complete_order(room, source, distance)
    shoebox = pra.ShoeBox(room.dims, fs=8000, max_order=order + 4)
    shoebox.add_source(source)
    shoebox.add_microphone(room.array)
    shoebox.image_source_model()
    images = shoebox.sources[0]
    distances = np.linalg.norm(images.images - room.array[:, None], axis=0)
    assert order >= 1
    assert np.all(images.orders[distances < distance] <= order)
    assert np.any(images.orders[distances < distance] == order)  # order - 1 would miss an image


@pytest.fixture(scope="module")
def small_room() -> tuple[ShoeboxRoom, np.ndarray]:
    room = ShoeboxRoom(dims=np.array([7.0, 6.0, 3.5]), rt60=0.6, array=np.array([3.5, 2.9, 1.6]))
    # Sources well off the axes, at different distances.
    sources = room.array + np.stack([2.0 * unit(30, 10), 1.5 * unit(-120, -20), 2.5 * unit(160, 25)])
    return room, sources


def _direct_window(response: np.ndarray, distance: float, sample_rate: int, room: ShoeboxRoom) -> slice:
    """Samples of the direct sound only: from just before it to half-way to the first reflection."""
    fdl_half = pra.constants.get("frac_delay_length") // 2
    arrival = distance / C * sample_rate + fdl_half
    first_reflection = (distance + 2 * 0.3) / C * sample_rate + fdl_half  # every wall is >= 0.3 m farther
    return slice(int(arrival) - 6, int(arrival + (first_reflection - arrival) / 2))


def test_foa_direct_path_points_at_the_source(small_room: tuple[ShoeboxRoom, np.ndarray]) -> None:
    room, sources = small_room
    sample_rate = 24000
    responses = room_responses(room, sources, np.random.default_rng(0), sample_rate=sample_rate)
    for index, (azimuth, elevation, distance) in enumerate([(30, 10, 2.0), (-120, -20, 1.5), (160, 25, 2.5)]):
        foa = responses.early[index][FORMAT_CHANNELS["foa"]].astype(np.float64)
        window = _direct_window(foa, distance, sample_rate, room)
        w, y, z, x = foa[:, window]
        intensity = np.array([np.sum(w * x), np.sum(w * y), np.sum(w * z)])
        estimated = intensity / np.linalg.norm(intensity)
        angle = np.rad2deg(np.arccos(np.clip(estimated @ unit(azimuth, elevation), -1, 1)))
        assert angle < 1.0
        # Amplitude 1 / distance, as the single-room renderer's responses (no 4 pi).
        assert np.sqrt(np.sum(w**2)) == pytest.approx(1.0 / distance, rel=0.05)


def test_tetrahedral_capsules_are_the_dcase_array() -> None:
    expected = np.stack([TETRA_RADIUS * unit(a, e) for a, e in TETRA_DEG])
    np.testing.assert_allclose(tetra_capsules(), expected, atol=1e-12)


def _arrival(channel: np.ndarray, window: slice, upsample: int) -> float:
    """Sub-sample time of the direct-path peak: the band-limited impulse resampled finely."""
    segment = channel[window]
    fine = signal.resample(segment, segment.size * upsample)
    return window.start + np.argmax(fine) / upsample


def test_mic_direct_paths_arrive_with_the_array_time_differences(small_room: tuple[ShoeboxRoom, np.ndarray]) -> None:
    room, sources = small_room
    sample_rate = 48000
    responses = room_responses(room, sources, np.random.default_rng(0), sample_rate=sample_rate)
    capsules = room.array + np.stack([TETRA_RADIUS * unit(a, e) for a, e in TETRA_DEG])
    for index, source in enumerate(sources):
        mic = responses.early[index][FORMAT_CHANNELS["mic"]].astype(np.float64)
        window = _direct_window(mic[0], np.linalg.norm(source - room.array), sample_rate, room)
        arrivals = np.array([_arrival(mic[m], window, 16) for m in range(4)])
        paths = np.linalg.norm(capsules - source, axis=1)
        measured = (arrivals - arrivals[0]) / sample_rate
        expected = (paths - paths[0]) / C
        np.testing.assert_allclose(measured, expected, atol=3e-6)  # 3 us: 1 mm of path


def _t60_from_schroeder(response: np.ndarray, sample_rate: int) -> float:
    """T60 from the energy decay curve's fall from -5 to -25 dB (T20 times 3), ISO 3382 style."""
    energy = np.cumsum(response[::-1] ** 2)[::-1]
    decay = 10 * np.log10(energy / energy[0])
    start, stop = np.argmax(decay < -5), np.argmax(decay < -25)
    return 3.0 * (stop - start) / sample_rate


@pytest.mark.parametrize(("dims", "rt60"), [([6.0, 5.0, 3.0], 0.3), ([12.0, 9.0, 4.0], 0.9), ([22.0, 18.0, 8.0], 1.8)])
def test_simulated_decay_has_the_drawn_rt60(dims: list[float], rt60: float) -> None:
    room = ShoeboxRoom(dims=np.array(dims), rt60=rt60, array=0.5 * np.array(dims))
    source = room.array + 1.5 * unit(40, 10)
    sample_rate = 8000
    responses = room_responses(room, source[None], np.random.default_rng(1), sample_rate=sample_rate)
    full = responses.full(0)
    for channel in (0, 4):  # W and the first capsule
        assert _t60_from_schroeder(full[channel].astype(np.float64), sample_rate) == pytest.approx(rt60, rel=0.15)


def test_foa_tail_has_diffuse_channel_powers_and_mic_tail_diffuse_coherence() -> None:
    sample_rate = 16000
    room = ShoeboxRoom(dims=np.array([8.0, 6.0, 3.0]), rt60=100.0, array=np.array([4.0, 3.0, 1.5]))  # ~flat
    tail = diffuse_tail(np.random.default_rng(2), room, 4 * sample_rate, 0.0, sample_rate).astype(np.float64)
    power = np.mean(tail**2, axis=1)
    # A diffuse field in SN3D: W power 1, each dipole 1/3; uncorrelated channels.
    np.testing.assert_allclose(power[1:4] / power[0], 1 / 3, rtol=0.05)
    correlation = np.corrcoef(tail[:4])
    assert np.max(np.abs(correlation - np.eye(4))) < 0.03
    np.testing.assert_allclose(power[4:] / power[0], 1.0, rtol=0.05)
    noise = diffuse_mic_noise(np.random.default_rng(3), 16 * sample_rate, sample_rate)
    freqs, cross = signal.csd(noise[0], noise[1], fs=sample_rate, nperseg=1024)
    _, auto0 = signal.welch(noise[0], fs=sample_rate, nperseg=1024)
    _, auto1 = signal.welch(noise[1], fs=sample_rate, nperseg=1024)
    coherence = np.real(cross) / np.sqrt(auto0 * auto1)
    spacing = np.linalg.norm(tetra_capsules()[0] - tetra_capsules()[1])
    expected = np.sinc(2 * freqs * spacing / C)  # diffuse-field coherence of two omnis d apart
    band = (freqs > 50) & (freqs < 6000)
    np.testing.assert_allclose(coherence[band], expected[band], atol=0.1)
    assert np.mean(coherence[(freqs > 50) & (freqs < 300)]) > 0.95  # low frequencies: nearly coherent
