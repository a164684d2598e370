"""Seeded CA-SDRi cases for the parity tests of the DCASE2025 Task 4 scorer (``seldflow.metrics.ca_sdri``).

``array_cases`` builds single soundscapes as arrays (the inputs of the official ``ca_metric``): TP-only, FP and FN
mixes, negative improvements, perfect estimates (where eps sets the value), a mixture equal to its one target,
``silence`` slots holding non-zero audio, no TP at all, no labels at all, quiet signals whose power is near eps,
scaled and offset estimates, and one 10 s soundscape at 32 kHz. ``file_runs`` builds folders of soundscapes (the
inputs of the official evaluation loop over ``<soundscape>.wav`` and ``<soundscape>_<Label>.wav`` files); one run
drops a soundscape's estimates, one uses soundscape names that prefix each other. The fixture
``tests/data/ca_sdri_parity_official.json`` holds what the official code computed on exactly these cases; its
``generator`` entry says how it was produced. Every waveform is float32, as the official loader hands them over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

PARITY_FIXTURE = Path(__file__).parent / "data" / "ca_sdri_parity_official.json"
SEED = 2025
SR = 32000
N_SHORT = 4000  # samples of the array cases
N_FILE = 8000  # samples of the file runs' soundscapes (one length: the official loader batches them)
N_LONG = 10 * SR  # a full Task 4 clip
N_CHANNELS = 4
SILENCE = "silence"

# est spec kinds: good (small error), poor (error louder than the mixture's), perfect (= reference), scaled (half
# the reference: not scale-invariant), offset (a DC error: not zero-mean), stray (a random signal, for FPs).
ARRAY_CASES: dict[str, dict] = {
    "random_tp": {"refs": ["Speech", "Cough", "Pour"], "ests": {"Speech": "good", "Cough": "good", "Pour": "good"}},
    "tp_fp_fn": {
        "refs": ["Speech", "Dishes", "Typing"],
        "ests": {"Speech": "good", "Dishes": "poor", "Buzzer": "stray"},
    },
    "negative": {"refs": ["Blender"], "ests": {"Blender": "poor"}},
    "perfect": {"refs": ["AlarmClock", "Doorbell"], "ests": {"AlarmClock": "perfect", "Doorbell": "perfect"}},
    "mixture_is_target": {"refs": ["HairDryer"], "ests": {"HairDryer": "good"}, "interference": 0.0},
    "silence_slots": {"refs": ["Clapping", SILENCE, SILENCE], "ests": {"Clapping": "good", SILENCE: "stray"}},
    "all_wrong": {"refs": ["Speech", "Cough"], "ests": {"Percussion": "stray", "FootSteps": "stray"}},
    "no_labels": {"refs": [SILENCE, SILENCE, SILENCE], "ests": {SILENCE: "stray"}},
    "quiet": {"refs": ["BicycleBell", "Buzzer"], "ests": {"BicycleBell": "good", "Buzzer": "perfect"}, "scale": 1e-4},
    "scaled_and_offset": {
        "refs": ["MechanicalFans", "MusicalKeyboard"],
        "ests": {"MechanicalFans": "scaled", "MusicalKeyboard": "offset"},
    },
    "extra_fps": {"refs": ["VacuumCleaner"], "ests": {"VacuumCleaner": "good", "Pour": "stray", "Speech": "stray"}},
    "long_clip": {
        "refs": ["Speech", "Dishes", "CupboardOpenClose"],
        "ests": {"Speech": "good", "Dishes": "poor", "CupboardOpenClose": "good"},
        "n": N_LONG,
    },
}

# File runs: soundscape name -> (reference labels, estimate spec, estimate file subtype).
DATASET: dict[str, tuple[list[str], dict[str, str], str]] = {
    "soundscape_00": (["Speech", "Cough"], {"Speech": "good", "Cough": "good"}, "FLOAT"),
    "soundscape_01": (["Dishes"], {"Dishes": "good", "Doorbell": "stray"}, "FLOAT"),
    "soundscape_02": (["Typing", "Pour", "Blender"], {"Typing": "poor", "Pour": "good"}, "FLOAT"),
    "soundscape_03": (["AlarmClock"], {"AlarmClock": "perfect"}, "FLOAT"),
    "soundscape_04": (["FootSteps", "Buzzer"], {"Clapping": "stray"}, "FLOAT"),
    "soundscape_05": (["HairDryer", "Speech"], {"HairDryer": "good", "Speech": "good"}, "PCM_16"),
    "soundscape_06": (["Percussion"], {"Percussion": "scaled"}, "FLOAT"),
}
PREFIX_NAMES: dict[str, tuple[list[str], dict[str, str], str]] = {
    "mix_1": (["Speech"], {"Speech": "good"}, "FLOAT"),
    "mix_10": (["Cough", "Speech"], {"Cough": "good", "Pour": "stray"}, "FLOAT"),
}
# Run name -> (its soundscapes, the soundscapes whose estimate files are left out).
FILE_RUNS: dict[str, tuple[dict[str, tuple[list[str], dict[str, str], str]], tuple[str, ...]]] = {
    "dataset": (DATASET, ()),
    "without_estimates": (DATASET, ("soundscape_02",)),
    "prefix_names": (PREFIX_NAMES, ()),
}


@dataclass
class Soundscape:
    """One soundscape as float32 arrays: the 4-channel mixture [C, N] and mono targets by label (insertion order)."""

    mixture: np.ndarray
    references: dict[str, np.ndarray]
    estimates: dict[str, np.ndarray]
    estimate_subtype: str = "FLOAT"


def _estimate(rng: np.random.Generator, kind: str, reference: np.ndarray, scale: float) -> np.ndarray:
    """An estimate of ``reference`` of the given kind; ``scale`` is the reference's level (an error's unit)."""
    n = len(reference)
    if kind == "good":
        return reference + rng.normal(0, scale * rng.uniform(0.02, 0.2), n)
    if kind == "poor":
        return reference + rng.normal(0, scale * rng.uniform(1.5, 3.0), n)
    if kind == "perfect":
        return reference.copy()
    if kind == "scaled":
        return 0.5 * reference
    if kind == "offset":
        return reference + scale * 0.1
    if kind == "stray":
        return rng.normal(0, scale * 0.3, n)
    raise ValueError(f"unknown estimate kind {kind!r}")


def make_soundscape(
    rng: np.random.Generator,
    ref_labels: list[str],
    est_spec: dict[str, str],
    *,
    n: int,
    scale: float = 1.0,
    interference: float = 0.5,
    subtype: str = "FLOAT",
) -> Soundscape:
    """Targets of random levels (silence slots all-zero, as the official loader pads), their sum plus interference
    on channel 0, and unrelated loud signals on channels 1-3 (so scoring any other channel would show)."""
    references = {}
    for label in ref_labels:
        level = 0.0 if label == SILENCE else scale * rng.uniform(0.1, 0.5)
        references[label] = rng.normal(0, 1, n) * level
    channel0 = sum(references.values(), np.zeros(n)) + rng.normal(0, scale * interference, n)
    mixture = np.vstack([channel0[None], rng.normal(0, scale * 2.0, (N_CHANNELS - 1, n))])
    estimates = {}
    for label, kind in est_spec.items():
        reference = references.get(label, np.zeros(n))
        estimates[label] = _estimate(rng, kind, reference, max(float(np.std(reference)), 0.1 * scale))
    if subtype == "PCM_16":  # the levels must fit 16 bits unclipped
        estimates = {label: np.clip(wave, -0.99, 0.99) for label, wave in estimates.items()}
    return Soundscape(
        mixture=mixture.astype(np.float32),
        references={label: wave.astype(np.float32) for label, wave in references.items()},
        estimates={label: wave.astype(np.float32) for label, wave in estimates.items()},
        estimate_subtype=subtype,
    )


def array_cases(seed: int = SEED) -> dict[str, Soundscape]:
    """The array cases, in :data:`ARRAY_CASES` order, each from its own child of one seed."""
    rngs = np.random.default_rng(seed).spawn(len(ARRAY_CASES))
    cases = {}
    for rng, (name, spec) in zip(rngs, ARRAY_CASES.items(), strict=True):
        cases[name] = make_soundscape(
            rng,
            spec["refs"],
            spec["ests"],
            n=spec.get("n", N_SHORT),
            scale=spec.get("scale", 1.0),
            interference=spec.get("interference", 0.5),
        )
        if spec.get("interference") == 0.0:  # channel 0 is exactly the one target
            cases[name].mixture[0] = cases[name].references[spec["refs"][0]]
    return cases


def file_run(name: str, seed: int = SEED) -> dict[str, Soundscape]:
    """One file run's soundscapes, each from the seed and its own name (runs sharing a soundscape share its audio)."""
    specs, without_estimates = FILE_RUNS[name]
    soundscapes = {}
    for soundscape, (ref_labels, est_spec, subtype) in specs.items():
        rng = np.random.default_rng([seed, *soundscape.encode()])
        soundscapes[soundscape] = make_soundscape(rng, ref_labels, est_spec, n=N_FILE, subtype=subtype)
        if soundscape in without_estimates:
            soundscapes[soundscape].estimates = {}
    return soundscapes


def write_run(root: Path, soundscapes: dict[str, Soundscape]) -> tuple[Path, Path, Path]:
    """Write ``soundscape/<name>.wav`` (4 channels), ``oracle_target/<name>_<Label>.wav`` and
    ``estimate/<name>_<Label>.wav`` (mono) at :data:`SR`; returns the three folders."""
    folders = root / "soundscape", root / "oracle_target", root / "estimate"
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    mixture_dir, ref_dir, est_dir = folders
    for name, soundscape in soundscapes.items():
        sf.write(mixture_dir / f"{name}.wav", soundscape.mixture.T, SR, subtype="FLOAT")
        for label, wave in soundscape.references.items():
            sf.write(ref_dir / f"{name}_{label}.wav", wave, SR, subtype="FLOAT")
        for label, wave in soundscape.estimates.items():
            sf.write(est_dir / f"{name}_{label}.wav", wave, SR, subtype=soundscape.estimate_subtype)
    return folders


def checksum(soundscape: Soundscape) -> float:
    """Sum of squares of every waveform (float64), to notice a changed generator before comparing scores."""
    waves = [soundscape.mixture, *soundscape.references.values(), *soundscape.estimates.values()]
    return float(sum(np.sum(np.square(wave, dtype=np.float64)) for wave in waves))


def load_fixture() -> dict:
    return json.loads(PARITY_FIXTURE.read_text())
