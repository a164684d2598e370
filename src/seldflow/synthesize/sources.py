"""Source bank: procedural stand-ins for the 13 DCASE classes, and reading any bank in SpatialScaper's layout.

The embedded dataset cannot ship FSD50K, so each class gets a small sound generator whose spectro-temporal
pattern (pitch, harmonicity, rhythm, envelope, band) is distinct in a 64-band log-mel spectrogram, while pitch,
rate and duration vary per clip so that a model has to learn the pattern rather than one waveform.
A real FSD50K-derived bank in the same ``<class>/<split>/**`` layout can replace it without code changes.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal
from tqdm import tqdm

from seldflow.errors import InputError
from seldflow.io import atomic_dir, write_audio
from seldflow.labels import CLASS_FOLDERS, SAMPLE_RATE

PEAK = 0.9
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff"})

Generator = Callable[[np.random.Generator, int, int], np.ndarray]

# Vowel formants (F1, F2, F3 in Hz) of an adult male voice; female voices scale them up.
_VOWELS = np.array(
    [
        [730.0, 1090.0, 2440.0],  # a
        [530.0, 1840.0, 2480.0],  # e
        [270.0, 2290.0, 3010.0],  # i
        [570.0, 840.0, 2410.0],  # o
        [300.0, 870.0, 2240.0],  # u
    ]
)
_FORMANT_BANDWIDTHS = np.array([90.0, 120.0, 180.0])
_FORMANT_GAINS = np.array([1.0, 0.6, 0.3])


# --- shared building blocks ------------------------------------------------------------------------------------


def _seconds(n: int, sample_rate: int) -> np.ndarray:
    return np.arange(n) / sample_rate


def _bandpass(x: np.ndarray, low: float, high: float, sample_rate: int, order: int = 4) -> np.ndarray:
    nyquist = sample_rate / 2
    sos = signal.butter(order, [low, min(high, 0.95 * nyquist)], btype="band", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def _lowpass(x: np.ndarray, cutoff: float, sample_rate: int, order: int = 4) -> np.ndarray:
    sos = signal.butter(order, min(cutoff, 0.45 * sample_rate), btype="low", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def _harmonic_tone(f0: np.ndarray, sample_rate: int, *, slope: float = 1.0, max_harmonics: int = 40) -> np.ndarray:
    """Sum of harmonics with amplitude ``k**-slope`` following the pitch track ``f0`` (Hz per sample).

    Harmonics are muted sample by sample above 0.45·fs so a pitch glide never aliases.
    """
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    out = np.zeros_like(phase)
    for k in range(1, max_harmonics + 1):
        audible = k * f0 < 0.45 * sample_rate
        if not audible.any():
            break
        out += audible * np.sin(k * phase) / k**slope
    return out


def _decay_partial(t: np.ndarray, freq: float, tau: float) -> np.ndarray:
    """Exponentially damped sine: the impulse response of one resonant mode (strike, knock, thump)."""
    return np.exp(-t / tau) * np.sin(2 * np.pi * freq * t)


def _add_at(out: np.ndarray, start: int, event: np.ndarray) -> None:
    """Overlap-add ``event`` at sample ``start``, cropping at the end of ``out``."""
    if start >= out.size:
        return
    end = min(out.size, start + event.size)
    out[start:end] += event[: end - start]


def _hump(n: int) -> np.ndarray:
    """Raised-cosine envelope of length ``n``: the amplitude shape of one syllable or burst."""
    return np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2 if n > 0 else np.zeros(0)


def _formant_filter(
    x: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray, gains: np.ndarray, sample_rate: int
) -> np.ndarray:
    """Shape ``x`` with time-varying resonances ``formants`` [3, n] in the STFT domain.

    A per-frame spectral envelope (sum of Lorentzian peaks) is far cheaper than re-designing IIR filters per
    sample, and makes formant sweeps between vowels trivial.
    """
    nperseg = 512
    _, frame_times, spec = signal.stft(x, fs=sample_rate, nperseg=nperseg)
    freqs = np.fft.rfftfreq(nperseg, 1 / sample_rate)
    centres = np.clip(np.round(frame_times * sample_rate).astype(int), 0, x.size - 1)
    envelope = np.zeros((freqs.size, frame_times.size))
    for f, b, g in zip(formants[:, centres], bandwidths, gains, strict=True):
        envelope += g / (1.0 + ((freqs[:, None] - f[None, :]) / (b / 2)) ** 2)
    _, y = signal.istft(spec * envelope, fs=sample_rate, nperseg=nperseg)
    return y[: x.size] if y.size >= x.size else np.pad(y, (0, x.size - y.size))


# --- speech and laughter ---------------------------------------------------------------------------------------


def _syllables(rng: np.random.Generator, n: int, sample_rate: int) -> list[tuple[int, int]]:
    """(start, length) of syllables at 3-6 per second, with short gaps and occasional word pauses."""
    spans: list[tuple[int, int]] = []
    pos = int(rng.uniform(0.0, 0.05) * sample_rate)
    while pos < n:
        length = int(rng.uniform(0.12, 0.28) * sample_rate)
        spans.append((pos, min(length, n - pos)))
        gap = rng.uniform(0.25, 0.45) if rng.random() < 0.2 else rng.uniform(0.02, 0.08)
        pos += length + int(gap * sample_rate)
    return spans


def _speech(
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    *,
    f0_mean: float,
    formant_scale: float,
    tilt: float,
    breath: float,
) -> np.ndarray:
    """Voiced syllables with intonation, gliding vowel formants and fricative onsets (source-filter model).

    ``tilt`` is the glottal spectral slope (harmonic k has amplitude k**-tilt) and ``breath`` the level of
    aspiration noise: female voices are typically breathier with a steeper tilt than male ones.
    """
    t = _seconds(n, sample_rate)
    spans = _syllables(rng, n, sample_rate)
    # Intonation: a slow declination plus a pitch accent per syllable.
    f0 = np.full(n, f0_mean * rng.uniform(0.9, 1.1)) * (1.0 - 0.08 * t / max(t[-1], 1e-9))
    envelope = np.zeros(n)
    knots, targets = [], []
    for start, length in spans:
        envelope[start : start + length] = np.sqrt(_hump(length))  # vowels sustain; sin² would be too peaky
        f0[start : start + length] *= 1.0 + rng.uniform(-0.12, 0.15) * _hump(length)
        knots.append(start + length // 2)
        targets.append(_VOWELS[rng.integers(len(_VOWELS))] * formant_scale)
    f0 *= 1.0 + 0.01 * np.sin(2 * np.pi * rng.uniform(4.0, 7.0) * t)  # slow pitch wobble
    formants = np.stack([np.interp(np.arange(n), knots, np.asarray(targets)[:, i]) for i in range(3)])
    voiced = _harmonic_tone(f0, sample_rate, slope=tilt) + breath * rng.standard_normal(n)
    out = _formant_filter(voiced, formants, _FORMANT_BANDWIDTHS * formant_scale, _FORMANT_GAINS, sample_rate)
    out *= envelope
    for start, _ in spans:
        if rng.random() < 0.5:  # fricative or plosive onset
            length = int(rng.uniform(0.03, 0.07) * sample_rate)
            burst = _bandpass(rng.standard_normal(length), 3000.0, 8000.0, sample_rate) * _hump(length)
            _add_at(out, max(0, start - length // 2), 0.4 * np.max(np.abs(out)) * burst / np.max(np.abs(burst)))
    return out


def female_speech(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Speech-like syllables around f0 = 210 Hz with higher formants, a steeper tilt and more breath."""
    f0 = rng.uniform(190.0, 240.0)
    return _speech(rng, n, sample_rate, f0_mean=f0, formant_scale=1.2, tilt=1.6, breath=0.15)


def male_speech(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Speech-like syllables around f0 = 105 Hz with male formants and a bright, pressed voice."""
    f0 = rng.uniform(90.0, 120.0)
    return _speech(rng, n, sample_rate, f0_mean=f0, formant_scale=1.0, tilt=1.0, breath=0.02)


def laughter(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Series of breathy voiced "ha" bursts at ~5 per second on a fixed open vowel, with high falling pitch."""
    rate = rng.uniform(4.0, 6.0)
    f0_start = rng.uniform(280.0, 420.0)
    vowel = _VOWELS[0] * rng.uniform(1.05, 1.2)
    out = np.zeros(n)
    pos = 0
    while pos < n:
        n_bursts = int(rng.integers(4, 9))
        for b in range(n_bursts):
            length = int(rng.uniform(0.08, 0.13) * sample_rate)
            f0 = np.full(length, f0_start * (1.0 - 0.04 * b)) * np.linspace(1.05, 0.95, length)
            voice = _harmonic_tone(f0, sample_rate, slope=1.0) + 0.6 * rng.standard_normal(length)
            formants = np.repeat(vowel[:, None], length, axis=1)
            burst = _formant_filter(voice, formants, _FORMANT_BANDWIDTHS * 1.5, _FORMANT_GAINS, sample_rate)
            _add_at(out, pos, burst * _hump(length) * (1.0 - 0.06 * b))
            pos += int(sample_rate / rate * rng.uniform(0.9, 1.1))
        pos += int(rng.uniform(0.15, 0.35) * sample_rate)  # breath between series
    return out


# --- impulsive classes -----------------------------------------------------------------------------------------


def clapping(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Regular train of short broadband noise bursts with a hand-cavity resonance."""
    rate = rng.uniform(2.5, 6.0)
    cavity = rng.uniform(900.0, 2200.0)
    out = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.05) * sample_rate)
    length = int(0.06 * sample_rate)
    t = _seconds(length, sample_rate)
    while pos < n:
        tau = rng.uniform(0.004, 0.012)
        noise = rng.standard_normal(length) * np.exp(-t / tau)
        clap = _bandpass(noise, 500.0, 9000.0, sample_rate) + 0.5 * _bandpass(
            noise, 0.8 * cavity, 1.25 * cavity, sample_rate
        )
        _add_at(out, pos, clap * rng.uniform(0.7, 1.0))
        pos += int(sample_rate / rate * rng.uniform(0.9, 1.1))
    return out


def footsteps(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Low heel thumps at about 2 steps per second, each followed by a soft toe click."""
    rate = rng.uniform(1.6, 2.4)
    thump_freq = rng.uniform(60.0, 120.0)
    length = int(0.25 * sample_rate)
    t = _seconds(length, sample_rate)
    out = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.1) * sample_rate)
    while pos < n:
        heel = _decay_partial(t, thump_freq * rng.uniform(0.9, 1.1), 0.035)
        heel += 0.4 * _lowpass(rng.standard_normal(length), 800.0, sample_rate) * np.exp(-t / 0.015)
        _add_at(out, pos, heel)
        toe = 0.3 * _lowpass(rng.standard_normal(length), 2500.0, sample_rate) * np.exp(-t / 0.008)
        _add_at(out, pos + int(rng.uniform(0.05, 0.09) * sample_rate), toe)
        pos += int(sample_rate / rate * rng.uniform(0.93, 1.07))
    return out


def knock(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Groups of two to four short damped wooden knocks separated by short pauses."""
    panel = rng.uniform(150.0, 400.0)
    knuckle = rng.uniform(900.0, 2000.0)
    length = int(0.12 * sample_rate)
    t = _seconds(length, sample_rate)
    out = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.05) * sample_rate)
    while pos < n:
        for _ in range(int(rng.integers(2, 5))):
            hit = _decay_partial(t, panel, 0.02) + 0.5 * _decay_partial(t, knuckle, 0.006)
            hit += 0.3 * rng.standard_normal(length) * np.exp(-t / 0.002)
            _add_at(out, pos, hit * rng.uniform(0.8, 1.0))
            pos += int(rng.uniform(0.12, 0.22) * sample_rate)
        pos += int(rng.uniform(0.3, 0.6) * sample_rate)
    return out


def door(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Creak (stick-slip pulse train sweeping in rate through wooden resonances) ending in a slam."""
    slam_len = min(n, int(0.3 * sample_rate))
    creak_len = n - slam_len
    out = np.zeros(n)
    if creak_len > 0:
        t = _seconds(creak_len, sample_rate)
        rate = np.geomspace(rng.uniform(30.0, 80.0), rng.uniform(150.0, 400.0), creak_len)
        rate *= 1.0 + 0.3 * np.sin(2 * np.pi * rng.uniform(1.0, 3.0) * t)
        phase = np.cumsum(rate) / sample_rate
        pulses = np.diff(np.floor(phase), prepend=0.0)
        creak = sum(
            _bandpass(pulses, f * 0.85, f * 1.15, sample_rate, order=2)
            for f in rng.uniform([400.0, 1000.0, 2200.0], [700.0, 1600.0, 3500.0])
        )
        out[:creak_len] = creak * _hump(creak_len) ** 0.3
    t = _seconds(slam_len, sample_rate)
    slam = _decay_partial(t, rng.uniform(50.0, 90.0), 0.06)
    slam += 0.5 * _bandpass(rng.standard_normal(slam_len), 2000.0, 6000.0, sample_rate) * np.exp(-t / 0.01)
    slam *= 2.0 * np.max(np.abs(out)) if creak_len > 0 else 1.0
    _add_at(out, creak_len, slam)
    return out


# --- tonal classes ---------------------------------------------------------------------------------------------


def telephone(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Electronic dual-tone ring with a fast warble and an on/off ring cadence."""
    t = _seconds(n, sample_rate)
    f1 = rng.uniform(400.0, 1000.0)
    f2 = f1 * rng.uniform(1.08, 1.3)
    tone = sum(np.sin(2 * np.pi * f * k * t) / k for f in (f1, f2) for k in (1, 2, 3))
    warble = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * rng.uniform(16.0, 25.0) * t))
    on, off = rng.uniform(0.3, 0.5), rng.uniform(0.15, 0.3)
    cadence = (t % (on + off)) < on
    gate = np.convolve(cadence.astype(float), np.hanning(int(0.01 * sample_rate)), mode="same")
    return _bandpass(tone * (0.4 + 0.6 * warble) * gate, 300.0, 3400.0, sample_rate)


def music(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Sequence of plucked/struck chords (decaying harmonic tones) with a bass line, changing every ~0.5 s."""
    root = int(rng.integers(48, 60))
    progression = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (9, 12, 16), (2, 5, 9))
    tau = rng.uniform(0.25, 0.6)
    length = int(1.2 * sample_rate)
    t = _seconds(length, sample_rate)
    out = np.zeros(n)
    pos = 0
    while pos < n:
        chord = progression[rng.integers(len(progression))]
        for note in (chord[0] - 12, *chord):
            f0 = 440.0 * 2 ** ((root + note - 69) / 12)
            tone = _harmonic_tone(np.full(length, f0), sample_rate, slope=1.5, max_harmonics=10)
            _add_at(out, pos, tone * np.exp(-t / tau) * (1.0 - np.exp(-t / 0.003)))
        pos += int(rng.uniform(0.35, 0.7) * sample_rate)
    return out


def musical_instrument(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Sustained bowed/blown sawtooth-like tone with vibrato, one to three legato notes."""
    t = _seconds(n, sample_rate)
    n_notes = int(rng.integers(1, 4))
    base = 440.0 * 2 ** ((rng.integers(55, 77) - 69) / 12)
    steps = 2 ** (np.concatenate([[0], rng.choice([-5, -3, -2, 2, 3, 4, 5], n_notes - 1)]).cumsum() / 12)
    f0 = base * steps[np.minimum((t / t[-1] * n_notes).astype(int), n_notes - 1)] if n > 1 else np.full(n, base)
    glide = int(0.03 * sample_rate)  # legato: smooth each note change over 30 ms
    f0 = np.convolve(np.pad(f0, (glide // 2, glide - 1 - glide // 2), mode="edge"), np.ones(glide) / glide, "valid")
    f0 *= 1.0 + rng.uniform(0.005, 0.015) * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t)
    tone = _lowpass(_harmonic_tone(f0, sample_rate, slope=1.0), rng.uniform(3000.0, 6000.0), sample_rate, order=2)
    attack = np.minimum(t / 0.08, 1.0)
    release = np.minimum((t[-1] - t) / 0.1, 1.0)
    return tone * attack * release * (1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))


def bell(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Struck bell: inharmonic partials (hum, prime, minor third, fifth, nominal...) with long decays."""
    fundamental = rng.uniform(300.0, 1200.0)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 2.66, 3.0, 4.07]) * rng.uniform(0.99, 1.01, 9)
    ratios = ratios[ratios * fundamental < 0.45 * sample_rate]
    tau = rng.uniform(0.8, 2.0) / np.sqrt(ratios)  # higher partials ring shorter
    amps = rng.uniform(0.3, 1.0, ratios.size)
    t = _seconds(n, sample_rate)
    strike = sum(a * _decay_partial(t, fundamental * r, d) for a, r, d in zip(amps, ratios, tau, strict=True))
    strike *= 1.0 - np.exp(-t / 0.001)
    out = np.zeros(n)
    _add_at(out, 0, strike)
    if rng.random() < 0.5 and n / sample_rate > 1.6:  # a second strike while the first still rings
        _add_at(out, int(rng.uniform(0.8, n / sample_rate - 0.8) * sample_rate), strike)
    return out


# --- noise-like classes ----------------------------------------------------------------------------------------


def domestic_sounds(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Appliance (vacuum cleaner, fan, blender): motor hum harmonics, a whine and filtered airflow noise."""
    t = _seconds(n, sample_rate)
    hum_f0 = rng.uniform(50.0, 150.0)
    hum = _harmonic_tone(np.full(n, hum_f0), sample_rate, slope=0.7, max_harmonics=20)
    whine = np.sin(2 * np.pi * rng.uniform(1500.0, 5000.0) * t)
    centre = rng.uniform(600.0, 2500.0)
    airflow = _bandpass(rng.standard_normal(n), centre / 3, centre * 3, sample_rate, order=2)
    mix = rng.dirichlet([2.0, 1.0, 3.0])
    parts = [p / np.std(p) for p in (hum, whine, airflow)]
    drift = 1.0 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 2 * np.pi))
    out = sum(w * p for w, p in zip(mix, parts, strict=True)) * drift
    return out * np.minimum(t / 0.15, 1.0)  # motor spin-up


def water_tap(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Running tap: steady band noise plus a dense stream of small rising bubble chirps."""
    t = _seconds(n, sample_rate)
    low = rng.uniform(800.0, 1500.0)
    stream = _bandpass(rng.standard_normal(n), low, low * rng.uniform(3.0, 5.0), sample_rate)
    stream *= 1.0 + 0.2 * _lowpass(rng.standard_normal(n), 8.0, sample_rate, order=2) / 0.05
    bubbles = np.zeros(n)
    length = int(0.04 * sample_rate)
    tb = _seconds(length, sample_rate)
    for onset in rng.uniform(0.0, n / sample_rate, int(rng.uniform(20.0, 60.0) * n / sample_rate)):
        f = rng.uniform(600.0, 3000.0) * (1.0 + rng.uniform(0.1, 0.5) * tb / tb[-1])
        chirp = np.sin(2 * np.pi * np.cumsum(f) / sample_rate) * np.exp(-tb / rng.uniform(0.005, 0.015))
        _add_at(bubbles, int(onset * sample_rate), chirp)
    stream /= np.std(stream)
    bubbles /= max(np.std(bubbles), 1e-12)
    return stream + rng.uniform(0.5, 1.5) * bubbles * np.minimum(t / 0.05, 1.0)


GENERATORS: dict[str, Generator] = dict(
    zip(
        CLASS_FOLDERS,
        (
            female_speech,
            male_speech,
            clapping,
            telephone,
            laughter,
            domestic_sounds,
            footsteps,
            door,
            music,
            musical_instrument,
            water_tap,
            bell,
            knock,
        ),
        strict=True,
    )
)


# --- bank writing ----------------------------------------------------------------------------------------------


def clip_seed(seed: int, split: str, class_index: int, clip_index: int) -> np.random.SeedSequence:
    """Seed of one bank clip from its identity, so a clip never changes when others are added or removed."""
    return np.random.SeedSequence([seed, zlib.crc32(split.encode()), class_index, clip_index])


def render_source(
    class_index: int, rng: np.random.Generator, *, seconds: float, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """One procedural clip of ``class_index``: faded in/out (no clicks) and peak-normalised to ``PEAK``."""
    n = max(1, round(seconds * sample_rate))
    audio = GENERATORS[CLASS_FOLDERS[class_index]](rng, n, sample_rate)
    fade = min(n // 2, int(0.005 * sample_rate))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade)
        audio[:fade] *= ramp
        audio[n - fade :] *= ramp[::-1]
    peak = float(np.max(np.abs(audio)))
    if not np.isfinite(peak) or peak == 0.0:
        raise RuntimeError(f"generator for {CLASS_FOLDERS[class_index]} produced silence or non-finite audio")
    return (audio * (PEAK / peak)).astype(np.float32)


def make_source_bank(
    out_dir: str | os.PathLike[str],
    *,
    clips_per_class: dict[str, int],
    min_seconds: float,
    max_seconds: float,
    seed: int,
    sample_rate: int = SAMPLE_RATE,
) -> None:
    """Write the procedural bank as ``<out_dir>/<class folder>/<split>/<class folder>_<nnn>.wav`` (mono, 16 bit).

    Each clip draws its own parameters and duration (uniform in ``[min_seconds, max_seconds]``) from a seed
    derived from (seed, split, class, clip), and the whole directory appears atomically.
    """
    if not 0 < min_seconds <= max_seconds:
        raise ValueError(f"need 0 < min_seconds <= max_seconds, got {min_seconds}, {max_seconds}")
    if any(count < 1 for count in clips_per_class.values()):
        raise ValueError(f"every split needs at least one clip per class, got {clips_per_class}")
    jobs = [
        (split, class_index, clip)
        for split, count in clips_per_class.items()
        for class_index in range(len(CLASS_FOLDERS))
        for clip in range(count)
    ]
    with atomic_dir(out_dir) as tmp:
        for split, class_index, clip in tqdm(jobs, desc="source bank", unit="clip"):
            rng = np.random.default_rng(clip_seed(seed, split, class_index, clip))
            seconds = rng.uniform(min_seconds, max_seconds)
            audio = render_source(class_index, rng, seconds=seconds, sample_rate=sample_rate)
            folder = CLASS_FOLDERS[class_index]
            write_audio(tmp / folder / split / f"{folder}_{clip + 1:03d}.wav", audio[None, :], sample_rate)


# --- bank reading ----------------------------------------------------------------------------------------------


def list_bank(bank_dir: str | os.PathLike[str], split: str) -> dict[int, list[Path]]:
    """Audio files per class index under ``<bank_dir>/<class folder>/<split>/`` (searched recursively).

    Accepts SpatialScaper's FSD50K layout (nested sub-folders, any audio format libsndfile reads). Unknown class
    folders and classes without files are errors rather than silently shrinking the class set.
    """
    bank = Path(bank_dir)
    if not bank.is_dir():
        raise InputError(bank, "source bank directory not found")
    for entry in sorted(bank.iterdir()):
        if entry.is_dir() and not entry.name.startswith(".") and entry.name not in CLASS_FOLDERS:
            known = ", ".join(CLASS_FOLDERS)
            raise InputError(entry, f"unknown class folder '{entry.name}' (expected one of: {known})")
    files: dict[int, list[Path]] = {}
    for class_index, folder in enumerate(CLASS_FOLDERS):
        split_dir = bank / folder / split
        found = sorted(
            p
            for p in split_dir.rglob("*")
            if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
        )
        if not found:
            raise InputError(split_dir, f"no audio files for class '{folder}' in split '{split}'")
        files[class_index] = found
    return files


def read_source(path: str | os.PathLike[str], sample_rate: int) -> np.ndarray:
    """Read one bank file as mono float32 at ``sample_rate`` (first channel; polyphase resampling if needed)."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise InputError(path, f"cannot read audio ({exc})", field="audio") from exc
    mono = data[:, 0].astype(np.float64)
    if mono.size == 0:
        raise InputError(path, "audio file holds no samples", field="audio")
    if not np.all(np.isfinite(mono)):
        raise InputError(path, "audio holds NaN or infinite samples", field="audio")
    if rate != sample_rate:
        common = np.gcd(int(rate), int(sample_rate))
        mono = signal.resample_poly(mono, sample_rate // common, int(rate) // common)
    if not np.any(mono):
        raise InputError(path, "audio file is silent", field="audio")
    return mono.astype(np.float32)
