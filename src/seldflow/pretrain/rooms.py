"""A new random shoebox room per mixture (PSELDNets' recipe), with FOA and MIC responses of the same room.

Each mixture draws a room size, a reverberation time (RT60 0.2-2 s by default), an array centre at 40-60 % of
the room in each dimension and, per event, a static source position at least 1 m from every wall. Only the
positions the mixture uses are simulated, and both formats come from the same image sources: FOA (ACN W, Y, Z, X;
SN3D) through :func:`seldflow.synthesize.rooms.foa_gains` and MIC through the DCASE tetrahedral capsules of
:func:`seldflow.synthesize.rooms.tetra_capsules`, each capsule with its own path lengths.

Why not the full image-source model or pyroomacoustics' hybrid simulator: a 2-s RT60 needs image orders in the
hundreds (seconds per response), and the hybrid's ray tracing costs about 0.5 s per response and cannot encode FOA
(pyroomacoustics refuses directivities with ray tracing). One room per mixture would then cost far more than a
mixture. So a response is split at a *mixing distance* ``d_mix`` (the perceptual mixing time sqrt(V) ms of sound
travel, and never less than 1 m beyond the farthest source):

* **early part** (image sources, pyroomacoustics): every image closer than ``d_mix``, exactly. The image order is
  chosen per room as the smallest that contains all of them (:func:`complete_order`: an image's distance is
  bounded below per axis by its unfolded path, so the order is exact, not a guess), usually 2-8: a millisecond of
  work per source.
* **late part** (stochastic, one per room): from ``d_mix`` on, the image-source model's expected energy density,
  ``4 pi c / V`` per second (amplitudes 1 / path length, as the early part) decaying by 60 dB per RT60, carried by
  noise with the channel statistics of a diffuse field: uncorrelated FOA channels with powers 1, 1/3, 1/3, 1/3, and
  tetrahedral capsules with the diffuse coherence sinc(2 f d / c) between capsules d apart. Wall absorption is set
  by Eyring's formula (:func:`eyring_absorption`), so the image sources and the tail decay at the same drawn RT60.
  The tail ends when it is ``tail_range_db`` below the strongest direct path (a measured response's dynamic range).

A diffuse tail does not depend on where the source is, so every event of a mixture shares its room's tail
(convolved once with the dry superposition, like a reverb send) while each event keeps its own early part.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyroomacoustics as pra
from scipy import fft as sp_fft
from scipy import signal

from seldflow.synthesize.mixtures import DIFFUSE_GAINS
from seldflow.synthesize.rooms import foa_gains, impulse_responses, tetra_capsules

SPEED_OF_SOUND = float(pra.constants.get("c"))
# Channels of the stacked responses: FOA (W, Y, Z, X) then the four tetrahedral capsules.
FORMATS = ("foa", "mic")
FORMAT_CHANNELS = {"foa": slice(0, 4), "mic": slice(4, 8)}
N_CHANNELS = 8
# The late part starts no earlier than the mixing time sqrt(V) milliseconds (V in cubic metres) ...
MIXING_TIME_S_PER_SQRT_M3 = 1e-3
# ... and only after the direct sound of the farthest source, by this much more path.
DIRECT_MARGIN_M = 1.0
# 60 dB of energy decay per RT60, as a natural-log rate factor: energy ~ exp(-DECAY * t / RT60).
DECAY = 6.0 * np.log(10.0)
# Source positions drawn before giving up on the minimum distance to the array (a misconfiguration, not bad luck).
MAX_DRAWS = 1000
# Convolutions of a signal this many times longer than the response go by overlap-add (see convolve).
OVERLAP_ADD_RATIO = 20
# Image orders searched for completeness; a shoebox of the drawn sizes never needs more than a few tens.
MAX_ORDER = 200


@dataclass(frozen=True)
class RoomSettings:
    """How rooms are drawn; the defaults are PSELDNets' generator defaults (``get_parameters.py``).

    ``size_m`` gives the (low, high) length of each axis, ``array_fraction`` the array centre's place along each
    axis as a fraction of the length, ``wall_distance_m`` the least distance of a source to any wall,
    ``min_source_distance_m`` the least distance of a source to the array centre (keeps the direct path finite),
    ``tail_range_db`` where the late part stops, below the strongest direct path.
    """

    size_m: tuple[tuple[float, float], ...] = ((5.0, 25.0), (5.0, 25.0), (3.0, 10.0))
    rt60_s: tuple[float, float] = (0.2, 2.0)
    array_fraction: tuple[float, float] = (0.4, 0.6)
    wall_distance_m: float = 1.0
    min_source_distance_m: float = 0.5
    tail_range_db: float = 60.0

    def __post_init__(self) -> None:
        if len(self.size_m) != 3 or any(not 0 < low <= high for low, high in self.size_m):
            raise ValueError(f"size_m must be three (low, high) ranges with 0 < low <= high, got {self.size_m}")
        if not 0 < self.rt60_s[0] <= self.rt60_s[1]:
            raise ValueError(f"rt60_s must be (low, high) with 0 < low <= high, got {self.rt60_s}")
        if not 0 < self.array_fraction[0] <= self.array_fraction[1] < 1:
            raise ValueError(f"array_fraction must lie in (0, 1), got {self.array_fraction}")
        if any(low <= 2 * self.wall_distance_m for low, _ in self.size_m):
            raise ValueError(
                f"every room length must exceed twice wall_distance_m ({self.wall_distance_m} m), got {self.size_m}"
            )
        if self.min_source_distance_m < 0 or self.tail_range_db <= 0:
            raise ValueError("min_source_distance_m must be >= 0 and tail_range_db > 0")


@dataclass(frozen=True)
class ShoeboxRoom:
    """One drawn room: ``dims`` (m), ``rt60`` (s) and the array centre ``array`` (m, room coordinates)."""

    dims: np.ndarray
    rt60: float
    array: np.ndarray

    @property
    def volume(self) -> float:
        return float(np.prod(self.dims))

    @property
    def surface(self) -> float:
        x, y, z = self.dims
        return float(2.0 * (x * y + y * z + x * z))

    @property
    def absorption(self) -> float:
        return eyring_absorption(self.dims, self.rt60)


def eyring_absorption(dims: Sequence[float], rt60: float) -> float:
    """Energy absorption coefficient of every wall for which Eyring's formula gives ``rt60``.

    Eyring, T = 24 ln(10) V / (-c S ln(1 - a)), is the decay of image sources that lose (1 - a) of their energy
    per reflection at c S / 4V reflections per second, so it holds for any ``rt60`` (Sabine's a = 24 ln(10) V / c S T
    exceeds 1 in large, dry rooms, where pyroomacoustics' ``inverse_sabine`` fails).
    """
    x, y, z = (float(v) for v in dims)
    volume, surface = x * y * z, 2.0 * (x * y + y * z + x * z)
    return float(-np.expm1(-4.0 * DECAY * volume / (SPEED_OF_SOUND * surface * rt60)))


def draw_room(rng: np.random.Generator, settings: RoomSettings) -> ShoeboxRoom:
    """A room size, an RT60 and an array centre, uniform in the configured ranges."""
    low, high = np.asarray(settings.size_m, dtype=np.float64).T
    dims = rng.uniform(low, high)
    rt60 = float(rng.uniform(*settings.rt60_s))
    array = dims * rng.uniform(*settings.array_fraction, size=3)
    return ShoeboxRoom(dims=dims, rt60=rt60, array=array)


def draw_sources(rng: np.random.Generator, room: ShoeboxRoom, settings: RoomSettings, count: int) -> np.ndarray:
    """``count`` static source positions [count, 3], uniform in the room at least ``wall_distance_m`` from every
    wall and ``min_source_distance_m`` from the array centre."""
    margin = settings.wall_distance_m
    positions = np.empty((count, 3))
    for index in range(count):
        for _ in range(MAX_DRAWS):
            candidate = rng.uniform(margin, room.dims - margin)
            if np.linalg.norm(candidate - room.array) >= settings.min_source_distance_m:
                positions[index] = candidate
                break
        else:
            raise ValueError(
                f"no source position {settings.min_source_distance_m} m from the array in room {list(room.dims)}"
            )
    return positions


# --- image sources ---------------------------------------------------------------------------------------------


def axis_distances(length: float, source: float, receiver: float, reflections: int) -> np.ndarray:
    """Least distance along one axis between the receiver and an image with n = 0 .. ``reflections`` reflections
    off this axis's two walls.

    Images with n reflections sit at 2aL +- s (n = |2a| for +s, |2a - 1| for -s): the straight path unfolded through
    n walls. The distance never decreases with n, which :func:`complete_order` relies on.
    """
    n = np.arange(reflections + 1)
    odd = n % 2 == 1
    # Odd n: images at (n + 1) L - s and -(n - 1) L - s; even n: at +-n L + s.
    near = np.where(odd, (n + 1) * length - source, n * length + source)
    far = np.where(odd, -(n - 1) * length - source, -n * length + source)
    return np.minimum(np.abs(near - receiver), np.abs(far - receiver))


def complete_order(room: ShoeboxRoom, source: np.ndarray, distance_m: float) -> int:
    """The least image order K such that every image of a higher order is at least ``distance_m`` away.

    An image with (nx, ny, nz) reflections per axis is at least sqrt(Dx(nx)^2 + Dy(ny)^2 + Dz(nz)^2) away
    (:func:`axis_distances`), and since each D grows with n, the nearest image of order K + 1 or more is among
    those of order exactly K + 1.
    """
    per_axis = [axis_distances(room.dims[a], source[a], room.array[a], MAX_ORDER + 1) ** 2 for a in range(3)]
    for order in range(MAX_ORDER):
        nx, ny = np.meshgrid(np.arange(order + 2), np.arange(order + 2), indexing="ij")
        nz = order + 1 - nx - ny
        valid = nz >= 0
        nearest = per_axis[0][nx[valid]] + per_axis[1][ny[valid]] + per_axis[2][nz[valid]]
        if np.sqrt(nearest.min()) >= distance_m:
            return order
    raise ValueError(f"room {list(room.dims)}: no image order up to {MAX_ORDER} reaches {distance_m:.1f} m")


def mixing_distance(room: ShoeboxRoom, sources: np.ndarray) -> float:
    """Path length (m) where the early part ends and the shared late part begins (see the module docstring)."""
    farthest = float(np.max(np.linalg.norm(sources - room.array, axis=1))) if len(sources) else 0.0
    mixing = SPEED_OF_SOUND * MIXING_TIME_S_PER_SQRT_M3 * np.sqrt(room.volume)
    return max(mixing, farthest + DIRECT_MARGIN_M)


@dataclass(frozen=True)
class RoomResponses:
    """Responses of one room: ``early`` [E, 8, n] per source (FOA W, Y, Z, X then MIC capsules 1-4), and the
    shared diffuse ``tail`` [8, m], which starts ``tail_start`` samples into the response (same time axis)."""

    early: np.ndarray
    tail: np.ndarray
    tail_start: int

    def full(self, source: int) -> np.ndarray:
        """The whole response [8, n] of one source: its early part plus the room's tail."""
        end = max(self.early.shape[-1], self.tail_start + self.tail.shape[-1])
        out = np.zeros((N_CHANNELS, end), dtype=np.float32)
        out[:, : self.early.shape[-1]] += self.early[source]
        out[:, self.tail_start : self.tail_start + self.tail.shape[-1]] += self.tail
        return out


def room_responses(
    room: ShoeboxRoom,
    sources: np.ndarray,
    rng: np.random.Generator,
    *,
    sample_rate: int,
    tail_range_db: float = 60.0,
) -> RoomResponses:
    """FOA and MIC responses of ``sources`` [E, 3] (room coordinates) in ``room``: early parts and the tail."""
    sources = np.asarray(sources, dtype=np.float64).reshape(-1, 3)
    distance_mix = mixing_distance(room, sources)
    fdl = int(pra.constants.get("frac_delay_length"))
    early_taps = int(np.ceil(distance_mix / SPEED_OF_SOUND * sample_rate)) + fdl
    early = np.zeros((len(sources), N_CHANNELS, early_taps), dtype=np.float32)
    if len(sources):
        order = max(complete_order(room, source, distance_mix) for source in sources)
        shoebox = pra.ShoeBox(
            room.dims, fs=sample_rate, materials=pra.Material(room.absorption), max_order=order, air_absorption=False
        )
        shoebox.add_microphone(room.array)
        for source in sources:
            shoebox.add_source(source)
        shoebox.image_source_model()
        capsules = tetra_capsules() + room.array
        for index, image in enumerate(shoebox.sources):
            early[index] = _early_response(
                image.images, image.damping[0], room.array, capsules, distance_mix, sample_rate, early_taps
            )
    direct = float(np.min(np.linalg.norm(sources - room.array, axis=1))) if len(sources) else 1.0
    start_s = distance_mix / SPEED_OF_SOUND
    end_s = _tail_end(room, direct, sample_rate, tail_range_db)
    tail_start = int(np.ceil(start_s * sample_rate)) + fdl // 2
    n_tail = max(0, int(np.ceil((end_s - start_s) * sample_rate)))
    tail = diffuse_tail(rng, room, n_tail, start_s, sample_rate)
    return RoomResponses(early=early, tail=tail, tail_start=tail_start)


def _early_response(
    images: np.ndarray,
    damping: np.ndarray,
    centre: np.ndarray,
    capsules: np.ndarray,
    distance_mix: float,
    sample_rate: int,
    n_taps: int,
) -> np.ndarray:
    """FOA and MIC early responses [8, n_taps] of one source's image sources closer than ``distance_mix``."""
    offsets = images.astype(np.float64) - centre[:, None]
    distance = np.linalg.norm(offsets, axis=0)
    keep = distance < distance_mix
    offsets, distance, damping = offsets[:, keep], distance[keep], damping[keep]
    foa = impulse_responses(distance, damping / distance, foa_gains(offsets / distance), sample_rate, n_taps)
    # Spaced omni capsules: each hears every image at its own distance (the array's time differences).
    paths = np.linalg.norm(images[:, keep].T[None, :, :] - capsules[:, None, :], axis=-1)
    mic = impulse_responses(paths, damping, 1.0 / paths, sample_rate, n_taps)
    return np.concatenate([foa, mic])


# --- the diffuse tail ------------------------------------------------------------------------------------------


def tail_level(room: ShoeboxRoom, sample_rate: int) -> float:
    """Standard deviation per sample of the omni (W) response just after emission, as the image sources give it:
    energy 4 pi c / V per second (images at distance ct, density 4 pi (ct)^2 c dt / V, energy 1 / (ct)^2 each)."""
    return float(np.sqrt(4.0 * np.pi * SPEED_OF_SOUND / (room.volume * sample_rate)))


def _tail_end(room: ShoeboxRoom, direct_m: float, sample_rate: int, range_db: float) -> float:
    """Time (s after emission) at which the tail's level is ``range_db`` below the strongest direct path."""
    level_db = 20.0 * np.log10(tail_level(room, sample_rate) * direct_m)
    return room.rt60 / 60.0 * (level_db + range_db)


def diffuse_tail(
    rng: np.random.Generator, room: ShoeboxRoom, n_samples: int, start_s: float, sample_rate: int
) -> np.ndarray:
    """[8, n_samples] float32 late part from ``start_s`` on: FOA and MIC diffuse noise under the decay envelope."""
    if n_samples == 0:
        return np.zeros((N_CHANNELS, 0), dtype=np.float32)
    t = start_s + np.arange(n_samples) / sample_rate
    envelope = tail_level(room, sample_rate) * np.exp(-0.5 * DECAY * t / room.rt60)
    foa = rng.standard_normal((4, n_samples)) * DIFFUSE_GAINS[:, None]
    mic = diffuse_mic_noise(rng, n_samples, sample_rate)
    return (np.concatenate([foa, mic]) * envelope).astype(np.float32)


def diffuse_mic_noise(rng: np.random.Generator, n_samples: int, sample_rate: int) -> np.ndarray:
    """[4, n] unit-power noise at the tetrahedral capsules with the coherence of a diffuse field.

    Capsules d apart in a diffuse field have coherence rho = sinc(2 f d / c) (numpy's normalised sinc): nearly one
    at low frequencies, where independent noise would wrongly tell a phase-based localiser the tail has a
    direction. The capsules of a regular tetrahedron are all equally far apart, so the coherence matrix is
    (1 - rho) I + rho J, whose square root mixes each frequency bin of white noise as
    sqrt(1 - rho) (x - mean) + sqrt(1 + 3 rho) mean (mean over the capsules).
    """
    n_fft = sp_fft.next_fast_len(n_samples, real=True)  # white noise of any longer length, cut: same statistics
    spectrum = sp_fft.rfft(rng.standard_normal((4, n_fft)), axis=-1)
    rho = np.sinc(2.0 * sp_fft.rfftfreq(n_fft, 1.0 / sample_rate) * _capsule_spacing() / SPEED_OF_SOUND)
    mean = spectrum.mean(axis=0, keepdims=True)
    mixed = np.sqrt(1.0 - rho) * (spectrum - mean) + np.sqrt(1.0 + 3.0 * rho) * mean
    return sp_fft.irfft(mixed, n=n_fft, axis=-1)[:, :n_samples]


# The DCASE capsule elevations round the regular tetrahedron's 35.26 degrees to 35: spacings differ by 0.5 %.
SPACING_TOLERANCE = 0.01


@functools.cache
def _capsule_spacing() -> float:
    """The mean distance between two tetrahedral capsules (r sqrt(8/3) for a regular tetrahedron); refuses an array
    whose spacings differ by more than ``SPACING_TOLERANCE``, for which the closed-form mixing would be wrong."""
    capsules = tetra_capsules()
    pairs = np.array([np.linalg.norm(a - b) for i, a in enumerate(capsules) for b in capsules[i + 1 :]])
    if np.ptp(pairs) > SPACING_TOLERANCE * pairs.mean():
        raise ValueError(f"the tetrahedral capsules are not equally spaced: {pairs.tolist()}")
    return float(pairs.mean())


def convolve(dry: np.ndarray, responses: np.ndarray) -> np.ndarray:
    """Mono ``dry`` [n] through every channel of ``responses`` [C, m]: [C, n + m - 1] float32.

    One FFT of the dry signal serves all channels. A signal much longer than the response (a 1-min mixture through
    the tail) goes by overlap-add, which transforms blocks of about the response's length instead of the whole
    clip: some three times faster there, and slower for comparable lengths.
    """
    method = signal.oaconvolve if dry.size > OVERLAP_ADD_RATIO * responses.shape[-1] else signal.fftconvolve
    return method(dry[None, :].astype(np.float32), responses.astype(np.float32), axes=1)
