"""The pretraining sound bank: an FSD50K-style ``<class>/<subclass>/<id>.wav`` tree, procedural or real.

PSELDNets pretrains on 170 FSD50K classes so that its networks learn a vocabulary far larger than any downstream
set (12-14 classes). The project cannot ship FSD50K, so its embedded bank has :data:`PROCEDURAL_CLASSES`: the 13
DCASE stand-ins of :mod:`seldflow.synthesize.sources`, plus parametrised families (tones, beeps, sweeps, noise
bands and bursts, click trains, struck partials, modulated tones) whose class parameters (band, pitch, rate,
envelope) are far enough apart to tell the classes apart in a log-mel spectrogram. Each class has subclasses, as
FSD50K's leaf labels under a parent class: here the same pattern played at another rate (pitch and tempo scaled
together by :data:`SUBCLASS_RATES`), so subclasses differ audibly while the class pattern stays.

Any tree in the same layout (a real FSD50K export, with any audio format libsndfile reads) replaces it without code
changes: :func:`read_bank` takes the vocabulary from the folder names.
"""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from seldflow.errors import InputError
from seldflow.io import atomic_dir, write_audio
from seldflow.synthesize.sources import (
    AUDIO_SUFFIXES,
    GENERATORS,
    PEAK,
    _add_at,
    _bandpass,
    _decay_partial,
    _harmonic_tone,
    _hump,
    _lowpass,
    _seconds,
)

Generator = Callable[[np.random.Generator, int, int], np.ndarray]
# Playback-rate factor of each subclass: the class pattern with pitch and tempo scaled together.
SUBCLASS_RATES = (0.8, 1.0, 1.25)
FADE_SECONDS = 0.005


# --- parametrised families -------------------------------------------------------------------------------------


def _vibrato(t: np.ndarray, f0: float, rng: np.random.Generator, depth: float = 0.01) -> np.ndarray:
    return f0 * (1.0 + depth * np.sin(2 * np.pi * rng.uniform(4.0, 6.0) * t + rng.uniform(0, 2 * np.pi)))


def steady_tone(
    rng: np.random.Generator, n: int, sample_rate: int, *, f0: tuple[float, float], harmonics: int, slope: float
) -> np.ndarray:
    """A held harmonic tone (``harmonics`` partials, amplitude k**-slope) with a slight vibrato."""
    t = _seconds(n, sample_rate)
    f = _vibrato(t, rng.uniform(*f0), rng)
    return _harmonic_tone(f, sample_rate, slope=slope, max_harmonics=harmonics) * np.minimum(t / 0.05, 1.0)


def beeps(
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    *,
    f0: tuple[float, float],
    rate: tuple[float, float],
    duty: float,
) -> np.ndarray:
    """A pure tone gated on and off at ``rate`` Hz, on for ``duty`` of each period (smoothed edges)."""
    t = _seconds(n, sample_rate)
    gate = ((t * rng.uniform(*rate)) % 1.0 < duty).astype(float)
    smooth = max(1, int(0.003 * sample_rate))
    gate = np.convolve(gate, np.ones(smooth) / smooth, mode="same")
    return np.sin(2 * np.pi * rng.uniform(*f0) * t) * gate


def sweeps(
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    *,
    start: tuple[float, float],
    end: tuple[float, float],
    period: tuple[float, float],
    shape: str,
) -> np.ndarray:
    """Repeated glides between two frequencies: ``saw`` restarts each period, ``triangle`` goes up and down."""
    t = _seconds(n, sample_rate)
    phase = (t / rng.uniform(*period)) % 1.0
    if shape == "triangle":
        phase = 1.0 - np.abs(2.0 * phase - 1.0)
    low, high = rng.uniform(*start), rng.uniform(*end)
    f = low * (high / low) ** phase  # glide evenly in log frequency
    out = _harmonic_tone(f, sample_rate, slope=2.0, max_harmonics=3)
    return out * (0.2 + 0.8 * _hump_phase(phase)) if shape == "saw" else out


def _hump_phase(phase: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * phase) ** 0.5


def noise_band(rng: np.random.Generator, n: int, sample_rate: int, *, band: tuple[float, float]) -> np.ndarray:
    """Steady noise in one band, with a slow level drift."""
    t = _seconds(n, sample_rate)
    low, high = band
    jitter = rng.uniform(0.9, 1.1)
    noise = _bandpass(rng.standard_normal(n), low * jitter, high * jitter, sample_rate)
    return noise * (1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t)) * np.minimum(t / 0.05, 1.0)


def noise_bursts(
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    *,
    band: tuple[float, float],
    length: tuple[float, float],
    rate: tuple[float, float],
) -> np.ndarray:
    """Band noise bursts of ``length`` seconds (smooth envelope) at ``rate`` per second."""
    out = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.05) * sample_rate)
    period = 1.0 / rng.uniform(*rate)
    while pos < n:
        size = max(2, int(rng.uniform(*length) * sample_rate))
        burst = _bandpass(rng.standard_normal(size), *band, sample_rate) * _hump(size)
        _add_at(out, pos, burst * rng.uniform(0.7, 1.0))
        pos += int(period * rng.uniform(0.85, 1.15) * sample_rate)
    return out


def clicks(
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    *,
    rate: tuple[float, float],
    band: tuple[float, float],
    regular: bool,
) -> np.ndarray:
    """Short band-limited clicks, periodic at ``rate`` Hz (``regular``) or at random times at that mean rate."""
    seconds = n / sample_rate
    mean_rate = rng.uniform(*rate)
    if regular:
        onsets = np.arange(rng.uniform(0.0, 1.0 / mean_rate), seconds, 1.0 / mean_rate)
    else:
        onsets = np.sort(rng.uniform(0.0, seconds, rng.poisson(mean_rate * seconds) + 1))
    impulses = np.zeros(n)
    impulses[np.minimum((onsets * sample_rate).astype(int), n - 1)] = rng.uniform(0.5, 1.0, onsets.size)
    return _bandpass(impulses, *band, sample_rate, order=2)


def struck(
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    *,
    f0: tuple[float, float],
    ratios: tuple[float, ...],
    tau: tuple[float, float],
    interval: tuple[float, float],
) -> np.ndarray:
    """Strikes of a resonator with partial ``ratios``, decaying over ``tau`` seconds, one per ``interval``."""
    out = np.zeros(n)
    pos = 0
    while pos < n:
        fundamental = rng.uniform(*f0)
        partials = np.asarray(ratios) * fundamental
        partials = partials[partials < 0.45 * sample_rate]
        decay = rng.uniform(*tau)
        size = min(n - pos, int(5 * decay * sample_rate) + 1)
        t = _seconds(size, sample_rate)
        strike = sum(_decay_partial(t, f, decay / np.sqrt(k + 1)) for k, f in enumerate(partials))
        _add_at(out, pos, strike * (1.0 - np.exp(-t / 0.001)))
        pos += int(rng.uniform(*interval) * sample_rate)
    return out


def modulated(
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    *,
    carrier: str,
    f0: tuple[float, float],
    am_rate: tuple[float, float],
    fm_depth: float,
) -> np.ndarray:
    """A tone (``carrier="tone"``, frequency modulated by ``fm_depth``) or band noise (``"noise"``, one octave
    around f0) whose amplitude is modulated at ``am_rate`` Hz."""
    t = _seconds(n, sample_rate)
    rate = rng.uniform(*am_rate)
    centre = rng.uniform(*f0)
    if carrier == "tone":
        f = centre * (1.0 + fm_depth * np.sin(2 * np.pi * rate * t))
        source = np.sin(2 * np.pi * np.cumsum(f) / sample_rate)
    else:
        source = _bandpass(rng.standard_normal(n), centre / np.sqrt(2), centre * np.sqrt(2), sample_rate)
    return source * (0.5 + 0.5 * np.sin(2 * np.pi * rate * t)) ** 2


def drips(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Water drops: sparse short rising chirps (1-2.5 kHz) at one to three per second."""
    length = int(0.05 * sample_rate)
    tb = _seconds(length, sample_rate)
    out = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.2) * sample_rate)
    while pos < n:
        f = rng.uniform(1000.0, 2500.0) * (1.0 + rng.uniform(0.3, 0.8) * tb / tb[-1])
        _add_at(out, pos, np.sin(2 * np.pi * np.cumsum(f) / sample_rate) * np.exp(-tb / 0.012))
        pos += int(rng.uniform(0.35, 1.0) * sample_rate)
    return out


def rumble(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Low-frequency rumble: low-passed noise under 150 Hz with slow swells."""
    t = _seconds(n, sample_rate)
    noise = _lowpass(rng.standard_normal(n), rng.uniform(100.0, 150.0), sample_rate)
    return noise * (1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * t))


# Each family member: a name and the class parameters (FSD50K-like labels for what the pattern resembles).
_FAMILY_CLASSES: dict[str, Generator] = {
    "hum": functools.partial(steady_tone, f0=(50.0, 65.0), harmonics=12, slope=0.8),
    "drone": functools.partial(steady_tone, f0=(180.0, 260.0), harmonics=25, slope=0.6),
    "whistle": functools.partial(steady_tone, f0=(1400.0, 2000.0), harmonics=1, slope=1.0),
    "ringing_tone": functools.partial(steady_tone, f0=(600.0, 800.0), harmonics=4, slope=1.5),
    "beep_slow": functools.partial(beeps, f0=(900.0, 1100.0), rate=(0.8, 1.2), duty=0.5),
    "beep_fast": functools.partial(beeps, f0=(2800.0, 3300.0), rate=(7.0, 9.0), duty=0.5),
    "reversing_beeper": functools.partial(beeps, f0=(1200.0, 1500.0), rate=(1.8, 2.4), duty=0.35),
    "sweep_up": functools.partial(sweeps, start=(250.0, 350.0), end=(2500.0, 3200.0), period=(0.4, 0.6), shape="saw"),
    "sweep_down": functools.partial(sweeps, start=(2500.0, 3200.0), end=(250.0, 350.0), period=(0.4, 0.6), shape="saw"),
    "siren_wail": functools.partial(
        sweeps, start=(550.0, 650.0), end=(1300.0, 1500.0), period=(1.8, 2.6), shape="triangle"
    ),
    "siren_yelp": functools.partial(
        sweeps, start=(550.0, 650.0), end=(1300.0, 1500.0), period=(0.12, 0.18), shape="triangle"
    ),
    "rumble": rumble,
    "hiss": functools.partial(noise_band, band=(4000.0, 7000.0)),
    "wind": functools.partial(modulated, carrier="noise", f0=(300.0, 500.0), am_rate=(0.3, 0.6), fm_depth=0.0),
    "air_vent": functools.partial(noise_band, band=(800.0, 1800.0)),
    "shaker": functools.partial(noise_bursts, band=(3000.0, 7000.0), length=(0.02, 0.04), rate=(5.0, 7.0)),
    "breathing": functools.partial(noise_bursts, band=(300.0, 2000.0), length=(0.6, 0.9), rate=(0.4, 0.6)),
    "scraping": functools.partial(noise_bursts, band=(1200.0, 3500.0), length=(0.15, 0.3), rate=(2.0, 3.0)),
    "clock_tick": functools.partial(clicks, rate=(1.0, 2.0), band=(2000.0, 6000.0), regular=True),
    "rattle": functools.partial(clicks, rate=(25.0, 35.0), band=(800.0, 3000.0), regular=True),
    "buzz": functools.partial(clicks, rate=(90.0, 130.0), band=(150.0, 2500.0), regular=True),
    "crackle": functools.partial(clicks, rate=(10.0, 20.0), band=(500.0, 7000.0), regular=False),
    "marimba": functools.partial(
        struck, f0=(220.0, 520.0), ratios=(1.0, 3.93, 9.2), tau=(0.15, 0.3), interval=(0.25, 0.5)
    ),
    "gong": functools.partial(
        struck, f0=(70.0, 120.0), ratios=(1.0, 1.52, 2.16, 2.79, 3.4), tau=(1.5, 2.5), interval=(3.0, 4.0)
    ),
    "glass_clink": functools.partial(
        struck, f0=(2200.0, 3000.0), ratios=(1.0, 2.32, 3.9), tau=(0.05, 0.1), interval=(0.5, 0.9)
    ),
    "tremolo": functools.partial(modulated, carrier="tone", f0=(380.0, 460.0), am_rate=(4.0, 6.0), fm_depth=0.0),
    "rotor": functools.partial(modulated, carrier="noise", f0=(120.0, 200.0), am_rate=(14.0, 20.0), fm_depth=0.0),
    "trill": functools.partial(modulated, carrier="tone", f0=(2300.0, 2700.0), am_rate=(18.0, 24.0), fm_depth=0.08),
    "warble": functools.partial(modulated, carrier="tone", f0=(700.0, 900.0), am_rate=(3.0, 5.0), fm_depth=0.15),
    "drip": drips,
}

# The embedded vocabulary: the 13 DCASE stand-ins and the families, by folder name.
PROCEDURAL_CLASSES: dict[str, Generator] = {**GENERATORS, **_FAMILY_CLASSES}


def render_procedural(
    name: str, subclass: int, rng: np.random.Generator, *, seconds: float, sample_rate: int
) -> np.ndarray:
    """One clip of procedural class ``name``, subclass ``subclass`` (a playback rate of :data:`SUBCLASS_RATES`):
    faded in and out and peak-normalised to ``PEAK``.

    The pattern is generated at ``sample_rate / rate`` and played at ``sample_rate``: every frequency and tempo is
    scaled by ``rate`` while the generator's own band limits still hold (no aliasing).
    """
    n = max(2, round(seconds * sample_rate))
    rate = SUBCLASS_RATES[subclass]
    audio = np.asarray(PROCEDURAL_CLASSES[name](rng, n, round(sample_rate / rate)), dtype=np.float64)
    fade = min(n // 2, int(FADE_SECONDS * sample_rate))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade)
        audio[:fade] *= ramp
        audio[n - fade :] *= ramp[::-1]
    peak = float(np.max(np.abs(audio)))
    if not np.isfinite(peak) or peak == 0.0:
        raise RuntimeError(f"generator for {name} produced silence or non-finite audio")
    return (audio * (PEAK / peak)).astype(np.float32)


def subclass_name(name: str, subclass: int) -> str:
    """Folder name of a procedural subclass, e.g. ``bell_rate080``."""
    return f"{name}_rate{round(100 * SUBCLASS_RATES[subclass]):03d}"


def make_pretrain_bank(
    out_dir: str | os.PathLike[str],
    *,
    clips_per_subclass: Mapping[str, int],
    min_seconds: float,
    max_seconds: float,
    seed: int,
    sample_rate: int,
    classes: int | None = None,
) -> None:
    """Write the procedural bank as ``<out_dir>/<split>/<class>/<subclass>/<class>_<subclass>_<nnn>.wav``.

    ``classes`` keeps the first that many of :data:`PROCEDURAL_CLASSES` (all by default). Each clip draws its
    duration (uniform in ``[min_seconds, max_seconds]``) and parameters from a seed of (seed, split, class,
    subclass, clip), so a clip never changes when others are added; the directory appears atomically.
    """
    if not 0 < min_seconds <= max_seconds:
        raise ValueError(f"need 0 < min_seconds <= max_seconds, got {min_seconds}, {max_seconds}")
    if not clips_per_subclass or any(count < 1 for count in clips_per_subclass.values()):
        raise ValueError(f"every split needs at least one clip per subclass, got {dict(clips_per_subclass)}")
    names = list(PROCEDURAL_CLASSES)[: classes if classes is not None else None]
    if not names:
        raise ValueError(f"classes must be at least 1, got {classes}")
    jobs = [
        (split, name, sub, clip)
        for split, count in clips_per_subclass.items()
        for name in names
        for sub in range(len(SUBCLASS_RATES))
        for clip in range(count)
    ]
    with atomic_dir(out_dir) as tmp:
        for split, name, sub, clip in tqdm(jobs, desc="pretraining bank", unit="clip"):
            key = [seed, zlib.crc32(split.encode()), zlib.crc32(name.encode()), sub, clip]
            rng = np.random.default_rng(np.random.SeedSequence(key))
            audio = render_procedural(
                name, sub, rng, seconds=rng.uniform(min_seconds, max_seconds), sample_rate=sample_rate
            )
            folder = subclass_name(name, sub)
            write_audio(tmp / split / name / folder / f"{folder}_{clip + 1:03d}.wav", audio[None, :], sample_rate)


# --- reading any bank ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoundClass:
    """One class of a bank: its folder name (the label) and its subclasses, each a sorted tuple of audio files."""

    label: str
    subclasses: dict[str, tuple[Path, ...]]

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(path for files in self.subclasses.values() for path in files)


@dataclass(frozen=True)
class Bank:
    """A sound bank: its classes in vocabulary order (class index = position)."""

    root: Path
    classes: tuple[SoundClass, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(cls.label for cls in self.classes)


def read_bank(bank_dir: str | os.PathLike[str]) -> Bank:
    """The vocabulary and files of an FSD50K-style tree ``<bank_dir>/<class>/<subclass>/**/<id>.<audio>``.

    Classes are the visible sub-folders in sorted order (class index = position); a class's subclasses are its
    visible sub-folders, and files directly in a class folder form a subclass named after the class. A class
    folder without any audio file is an error naming it, rather than a class that silently never occurs.
    """
    root = Path(bank_dir)
    if not root.is_dir():
        raise InputError(root, "sound bank directory not found")
    folders = sorted(entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if not folders:
        raise InputError(root, "sound bank has no class folders (expected <class>/<subclass>/<id>.wav)")
    return Bank(root=root, classes=tuple(_read_class(folder) for folder in folders))


def _read_class(folder: Path) -> SoundClass:
    subclasses: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        name = relative.parts[0] if len(relative.parts) > 1 else folder.name
        subclasses.setdefault(name, []).append(path)
    if not subclasses:
        known = ", ".join(sorted(AUDIO_SUFFIXES))
        raise InputError(folder, f"class folder '{folder.name}' holds no audio files ({known})")
    return SoundClass(label=folder.name, subclasses={name: tuple(files) for name, files in sorted(subclasses.items())})
