"""Embedded S5 dataset: procedural stand-ins for the 18 Task 4 classes, interferers, diffuse noise and FOA rooms.

The real development set (FSD50K, EARS, measured rooms) is tens of gigabytes; the embedded one lets the whole S5
branch run on a laptop CPU at a low sample rate. Each class gets a small generator whose spectro-temporal
pattern (band, pitch, harmonic or noisy, pulse rate, envelope) differs from every other class, while pitch,
rate and length vary per clip, so a tagger has to learn the pattern rather than a waveform. Classes that the
SELD branch's bank already models (clapping, footsteps, a door, music, running water, speech) reuse its
generators. Interferers are three further, different patterns; the noise is four-channel pink noise with the
channel powers of a diffuse FOA field; rooms are simulated shoebox rooms (image-source method), a separate set
per split so that test rooms are never seen in training.

The output has the development-set layout that :func:`seldflow.s5.bank.read_dev_bank` reads. Every clip, noise
file and room is seeded from (seed, kind, split, class, index), so the same arguments give the same bytes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from tqdm import tqdm

from seldflow.io import atomic_dir, write_audio
from seldflow.s5.bank import INTERFERENCE_DIR, NOISE_DIR, ROOM_DIR, SOUND_EVENT_DIR
from seldflow.s5.vocabulary import LABELS
from seldflow.synthesize.mixtures import DIFFUSE_GAINS
from seldflow.synthesize.rooms import simulate_room
from seldflow.synthesize.sources import (
    PEAK,
    _add_at,
    _bandpass,
    _decay_partial,
    _harmonic_tone,
    _hump,
    _lowpass,
    _seconds,
    clapping,
    clip_seed,
    door,
    female_speech,
    footsteps,
    male_speech,
    music,
    water_tap,
)

# Written first, then its bank folders moved into the dataset folder (see _move_banks).
STAGING_DIR = ".bank.staging"
SourceGenerator = Callable[[np.random.Generator, int, int], np.ndarray]
# Fade at both clip ends so that no clip starts or stops with a click (a click would be a class-independent cue).
FADE_SECONDS = 0.005
# Simulated-room draw: shoebox sizes (m), reverberation times (s) and the source grid around the array.
ROOM_DIMS_RANGE = ((3.5, 3.5, 2.6), (8.0, 7.0, 3.4))
RT60_RANGE = (0.2, 0.6)
ROOM_AZIMUTH_STEP_DEG = 30.0
ROOM_ELEVATIONS_DEG = (-20.0, 0.0, 20.0)
ROOM_DISTANCES_M = (1.0,)


# --- target classes --------------------------------------------------------------------------------------------


def _pulse_gate(t: np.ndarray, rate: float, duty: float) -> np.ndarray:
    """On/off gate at ``rate`` Hz, on for the first ``duty`` of each period."""
    return ((t * rate) % 1.0 < duty).astype(float)


def alarm_clock(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Groups of four fast square-ish beeps near 2 kHz, one group per second."""
    t = _seconds(n, sample_rate)
    tone = _harmonic_tone(np.full(n, rng.uniform(1800.0, 2300.0)), sample_rate, slope=2.0, max_harmonics=5)
    beeps = _pulse_gate(t, rng.uniform(7.0, 9.0), 0.5) * ((t % 1.0) < 0.5)
    return tone * beeps


def bicycle_bell(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """'Ring-ring': pairs of bright inharmonic strikes with a fast tremolo, repeated every ~0.7 s."""
    f0 = rng.uniform(1300.0, 1700.0)
    length = int(0.3 * sample_rate)
    t = _seconds(length, sample_rate)
    strike = sum(_decay_partial(t, f0 * r, 0.12) for r in (1.0, 1.47, 2.09) if f0 * r < 0.45 * sample_rate)
    strike = strike * (1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(18.0, 25.0) * t))
    out = np.zeros(n)
    pos, period = 0, int(rng.uniform(0.6, 0.8) * sample_rate)
    while pos < n:
        _add_at(out, pos, strike)
        _add_at(out, pos + length // 2, strike)
        pos += period
    return out


def blender(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Motor buzz near 300 Hz plus chopping noise, strongly amplitude-modulated at about 6 Hz."""
    t = _seconds(n, sample_rate)
    buzz = _harmonic_tone(np.full(n, rng.uniform(250.0, 350.0)), sample_rate, slope=1.0, max_harmonics=10)
    chop = _bandpass(rng.standard_normal(n), 800.0, 2500.0, sample_rate)
    mod = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(5.0, 7.0) * t)
    return (buzz / np.std(buzz) + chop / np.std(chop)) * mod


def buzzer(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Steady low sawtooth (rich harmonics of 90-130 Hz), no modulation."""
    return _harmonic_tone(np.full(n, rng.uniform(90.0, 130.0)), sample_rate, slope=1.0)


def cough(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """One to three explosive noisy bursts with a low formant, separated by pauses."""
    out = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.1) * sample_rate)
    for _ in range(int(rng.integers(1, 4))):
        length = int(rng.uniform(0.2, 0.35) * sample_rate)
        t = _seconds(length, sample_rate)
        low = rng.uniform(350.0, 600.0)
        burst = _bandpass(rng.standard_normal(length), low, 3 * low, sample_rate) * np.exp(-t / 0.08)
        _add_at(out, pos, burst * (1.0 - np.exp(-t / 0.004)))
        pos += length + int(rng.uniform(0.3, 0.7) * sample_rate)
    return out


def dishes(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Irregular bright clinks: short inharmonic partials between 2.2 and 3.4 kHz."""
    length = int(0.08 * sample_rate)
    t = _seconds(length, sample_rate)
    out = np.zeros(n)
    for onset in np.sort(rng.uniform(0.0, n / sample_rate, int(rng.uniform(3.0, 7.0) * n / sample_rate) + 1)):
        f = rng.uniform(2200.0, 3400.0)
        clink = _decay_partial(t, f, 0.02) + 0.6 * _decay_partial(t, f * 1.13, 0.015)
        _add_at(out, int(onset * sample_rate), clink * rng.uniform(0.5, 1.0))
    return out


def doorbell(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """'Ding-dong': a falling pair of pure decaying tones (major third), every ~1.5 s."""
    f1 = rng.uniform(600.0, 800.0)
    length = int(0.8 * sample_rate)
    t = _seconds(length, sample_rate)
    out = np.zeros(n)
    pos, period = 0, int(rng.uniform(1.3, 1.7) * sample_rate)
    while pos < n:
        for k, f in enumerate((f1, f1 * 0.8)):
            _add_at(
                out, pos + k * int(0.45 * sample_rate), _decay_partial(t, f, 0.35) + 0.2 * _decay_partial(t, 2 * f, 0.2)
            )
        pos += period
    return out


def hair_dryer(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Steady high-band hiss (from ~1.5 kHz up) with a faint motor whine."""
    t = _seconds(n, sample_rate)
    hiss = _bandpass(rng.standard_normal(n), rng.uniform(1400.0, 1800.0), 3800.0, sample_rate)
    whine = np.sin(2 * np.pi * rng.uniform(600.0, 900.0) * t)
    return hiss / np.std(hiss) + 0.3 * whine


def mechanical_fans(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Low rumble below ~300 Hz plus a blade-pass hum, slowly beating."""
    t = _seconds(n, sample_rate)
    rumble = _lowpass(rng.standard_normal(n), rng.uniform(200.0, 300.0), sample_rate)
    blade = _harmonic_tone(np.full(n, rng.uniform(50.0, 80.0)), sample_rate, slope=1.5, max_harmonics=4)
    beat = 1.0 + 0.3 * np.sin(2 * np.pi * rng.uniform(1.0, 2.5) * t)
    return (rumble / np.std(rumble) + blade / np.std(blade)) * beat


def percussion(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Drum pattern: a low kick and a noisy snare alternating at a steady tempo of 2-3 beats per second."""
    length = int(0.2 * sample_rate)
    t = _seconds(length, sample_rate)
    kick = _decay_partial(t, rng.uniform(50.0, 70.0), 0.08) * 2.0
    snare = _bandpass(rng.standard_normal(length), 1000.0, 3500.0, sample_rate) * np.exp(-t / 0.04)
    snare += 0.5 * _decay_partial(t, 190.0, 0.03)
    out = np.zeros(n)
    pos, beat = 0, int(sample_rate / rng.uniform(2.0, 3.0))
    for k in range(n // beat + 1):
        _add_at(out, pos + k * beat, kick if k % 2 == 0 else snare)
    return out


def speech(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """A female or a male speech-like voice (one class, as in the task)."""
    return (female_speech if rng.random() < 0.5 else male_speech)(rng, n, sample_rate)


def typing(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Rapid irregular key clicks: 5 ms high-band noise ticks at 8-14 per second."""
    length = int(0.01 * sample_rate)
    t = _seconds(length, sample_rate)
    out = np.zeros(n)
    pos = 0
    rate = rng.uniform(8.0, 14.0)
    while pos < n:
        tick = _bandpass(rng.standard_normal(length), 1500.0, 3800.0, sample_rate) * np.exp(-t / 0.002)
        _add_at(out, pos, tick * rng.uniform(0.6, 1.0))
        pos += int(sample_rate / rate * rng.uniform(0.5, 1.5))
    return out


def vacuum_cleaner(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Steady mid-band airflow (300-1200 Hz) with a strong whine between 1 and 1.5 kHz."""
    t = _seconds(n, sample_rate)
    air = _bandpass(rng.standard_normal(n), 300.0, 1200.0, sample_rate)
    whine = np.sin(2 * np.pi * rng.uniform(1000.0, 1500.0) * t)
    return air / np.std(air) + 0.8 * whine


TARGET_GENERATORS: dict[str, SourceGenerator] = dict(
    zip(
        LABELS,
        (
            alarm_clock,
            bicycle_bell,
            blender,
            buzzer,
            clapping,
            cough,
            door,  # CupboardOpenClose: a creak and a slam
            dishes,
            doorbell,
            footsteps,
            hair_dryer,
            mechanical_fans,
            music,  # MusicalKeyboard: struck chords with a bass line
            percussion,
            water_tap,  # Pour
            speech,
            typing,
            vacuum_cleaner,
        ),
        strict=True,
    )
)


# --- interferers -----------------------------------------------------------------------------------------------


def engine(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Idling engine: a low firing-pulse train (25-40 Hz) through a 500 Hz low-pass."""
    t = _seconds(n, sample_rate)
    pulses = np.diff(np.floor(t * rng.uniform(25.0, 40.0)), prepend=0.0)
    return _lowpass(pulses + 0.05 * rng.standard_normal(n), 500.0, sample_rate)


def birdsong(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Fast upward chirps between 1.5 and 3 kHz, 4-6 per second."""
    length = int(0.07 * sample_rate)
    out = np.zeros(n)
    pos, period = 0, int(sample_rate / rng.uniform(4.0, 6.0))
    while pos < n:
        f = np.linspace(rng.uniform(1500.0, 2000.0), rng.uniform(2500.0, 3000.0), length)
        _add_at(out, pos, np.sin(2 * np.pi * np.cumsum(f) / sample_rate) * _hump(length))
        pos += period
    return out


def siren(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """A tone sweeping slowly up and down between ~500 and ~900 Hz (period 1-2 s)."""
    t = _seconds(n, sample_rate)
    sweep = 2.0 * np.abs((t * rng.uniform(0.5, 1.0)) % 1.0 - 0.5)
    f = rng.uniform(450.0, 550.0) + rng.uniform(300.0, 400.0) * sweep
    return _harmonic_tone(f, sample_rate, slope=2.0, max_harmonics=3)


INTERFERER_GENERATORS: dict[str, SourceGenerator] = {"Engine": engine, "Birdsong": birdsong, "Siren": siren}


# --- noise and rooms -------------------------------------------------------------------------------------------


def diffuse_noise(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """[4, n] pink noise, independent per channel, with a diffuse FOA field's channel powers (W 1, dipoles 1/3).

    Pink (1/f power) is shaped in the frequency domain: one FFT per channel is simpler than a filter cascade.
    """
    spectrum = np.fft.rfft(rng.standard_normal((4, n)), axis=-1)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spectrum /= np.sqrt(np.maximum(freqs, freqs[1] if freqs.size > 1 else 1.0))
    pink = np.fft.irfft(spectrum, n=n, axis=-1)
    pink /= np.std(pink, axis=-1, keepdims=True)
    return pink * DIFFUSE_GAINS[:, None]


def _finish(audio: np.ndarray, sample_rate: int, what: str) -> np.ndarray:
    """Fade both ends of every channel and peak-normalise to ``PEAK`` (16-bit files without clipping)."""
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float64)).copy()
    n = audio.shape[-1]
    fade = min(n // 2, int(FADE_SECONDS * sample_rate))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade)
        audio[:, :fade] *= ramp
        audio[:, n - fade :] *= ramp[::-1]
    peak = float(np.max(np.abs(audio)))
    if not np.isfinite(peak) or peak == 0.0:
        raise RuntimeError(f"generator for {what} produced silence or non-finite audio")
    return (audio * (PEAK / peak)).astype(np.float32)


def _simulate_split_room(path: Path, rng: np.random.Generator, sample_rate: int, ir_seconds: float, name: str) -> None:
    low, high = (np.asarray(v) for v in ROOM_DIMS_RANGE)
    dims = rng.uniform(low, high)
    array = dims * rng.uniform(0.4, 0.6, 3)
    simulate_room(
        path,
        dims=dims.tolist(),
        rt60=float(rng.uniform(*RT60_RANGE)),
        array=array.tolist(),
        azimuth_step_deg=ROOM_AZIMUTH_STEP_DEG,
        elevations_deg=ROOM_ELEVATIONS_DEG,
        distances_m=ROOM_DISTANCES_M,
        ir_seconds=ir_seconds,
        sample_rate=sample_rate,
        name=name,
    )


def make_s5_bank(
    out_dir: str | os.PathLike[str],
    *,
    seed: int,
    sample_rate: int,
    clips_per_class: Mapping[str, int],
    interferer_clips_per_class: Mapping[str, int] | None = None,
    noise_per_split: Mapping[str, int] | None = None,
    rooms_per_split: Mapping[str, int] | None = None,
    min_seconds: float = 0.5,
    max_seconds: float = 3.0,
    noise_seconds: float = 12.0,
    ir_seconds: float = 0.25,
) -> None:
    """Write the embedded bank for the splits in ``clips_per_class`` (e.g. ``{"train": 40, "valid": 10}``).

    Layout: ``sound_event/<split>/<Label>/<Label>_<nnn>.wav``, ``interference/<split>/<class>/...``,
    ``noise/<split>/noise_<nnn>.wav`` (4 channels) and ``room_ir/<split>/<split>_room_<n>.sofa``. Interferer
    counts default to the target counts; noise files and rooms default to two per split. The directory appears
    atomically.
    """
    if not 0 < min_seconds <= max_seconds:
        raise ValueError(f"need 0 < min_seconds <= max_seconds, got {min_seconds}, {max_seconds}")
    counts = {
        "targets": dict(clips_per_class),
        "interferers": dict(interferer_clips_per_class or clips_per_class),
        "noise": dict(noise_per_split or dict.fromkeys(clips_per_class, 2)),
        "rooms": dict(rooms_per_split or dict.fromkeys(clips_per_class, 2)),
    }
    for kind, per_split in counts.items():
        if set(per_split) != set(clips_per_class) or any(count < 1 for count in per_split.values()):
            raise ValueError(f"{kind}: need at least one per split of {sorted(clips_per_class)}, got {per_split}")
    with atomic_dir(Path(out_dir) / STAGING_DIR) as tmp:
        for kind, folder, generators in (
            ("targets", SOUND_EVENT_DIR, TARGET_GENERATORS),
            ("interferers", INTERFERENCE_DIR, INTERFERER_GENERATORS),
        ):
            jobs = [
                (split, index, label, clip)
                for split, count in counts[kind].items()
                for index, label in enumerate(generators)
                for clip in range(count)
            ]
            for split, index, label, clip in tqdm(jobs, desc=f"S5 {kind}", unit="clip"):
                rng = np.random.default_rng(clip_seed(seed, f"{kind}/{split}", index, clip))
                n = max(1, round(rng.uniform(min_seconds, max_seconds) * sample_rate))
                audio = _finish(generators[label](rng, n, sample_rate), sample_rate, label)
                write_audio(tmp / folder / split / label / f"{label}_{clip + 1:03d}.wav", audio, sample_rate)
        for split, count in counts["noise"].items():
            for k in range(count):
                rng = np.random.default_rng(clip_seed(seed, f"noise/{split}", 0, k))
                audio = diffuse_noise(rng, round(noise_seconds * sample_rate), sample_rate)
                write_audio(
                    tmp / NOISE_DIR / split / f"noise_{k + 1:03d}.wav",
                    _finish(audio, sample_rate, "noise"),
                    sample_rate,
                )
        for split, count in counts["rooms"].items():
            for k in range(count):
                rng = np.random.default_rng(clip_seed(seed, f"rooms/{split}", 0, k))
                name = f"{split}_room_{k + 1}"
                _simulate_split_room(tmp / ROOM_DIR / split / f"{name}.sofa", rng, sample_rate, ir_seconds, name)
    _move_banks(Path(out_dir) / STAGING_DIR, Path(out_dir))


def _move_banks(staging: Path, out_dir: Path) -> None:
    """Move the written bank folders into place, each replacing its old version, and drop the staging folder.

    The banks are written beside the rest of the dataset folder (validation metadata, test soundscapes), which
    other stages own, so the folder is not replaced as a whole.
    """
    for folder in (SOUND_EVENT_DIR, INTERFERENCE_DIR, NOISE_DIR, ROOM_DIR):
        target = out_dir / folder
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / folder, target)
    shutil.rmtree(staging)
