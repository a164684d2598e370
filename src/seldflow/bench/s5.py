"""The S5 (DCASE2025 Task 4) rows of the report: mixture generator throughput and CA-SDRi scoring against a loop.

:func:`generator_throughput` times :meth:`seldflow.s5.generator.S5Generator.generate` (draw + render), the work
every training batch waits on. :func:`naive_ca_sdri` is a second, deliberately plain implementation of the
official CA-SDRi semantics documented in :mod:`seldflow.metrics.ca_sdri`: one soundscape after another, every
mixture, oracle and estimate file read on its own, one SNR at a time in float64. It shares no scoring code with
:func:`seldflow.metrics.ca_sdri.score_ca_sdri` (which opens each file once, checks its header and keeps only the
samples its score needs, and scores the sources of many soundscapes in one float32 pass), only the file-name
convention of :mod:`seldflow.s5.files`, so their agreement is a check of both, and the ratio of their times is what
:func:`compare_ca_sdri` reports.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from seldflow.bench.records import Comparison, Figure
from seldflow.bench.timing import median_times
from seldflow.metrics.ca_sdri import score_ca_sdri
from seldflow.s5.files import AUDIO_SUFFIX, source_file_name, split_source_name
from seldflow.s5.generator import S5Generator
from seldflow.s5.vocabulary import LABELS, SILENCE

# The official SNR's eps: torchmetrics' machine epsilon of the float32 waveforms the official loader feeds it. It
# sets a perfect estimate's score, so the float64 loop must use this value, not float64's epsilon.
OFFICIAL_EPS = float(np.finfo(np.float32).eps)


# ---------------------------------------------------------------------------------------------------------------
# Generator throughput


def _channel_counts(generator: S5Generator) -> str:
    """The channel count(s) of the generator's soundscapes: the receiver count of each room, e.g. ``4``."""
    counts = sorted({int(room.irs.shape[1]) for room in generator.rooms.values()})
    return "/".join(map(str, counts))


def generator_throughput(generator: S5Generator, count: int, seed: int, repeats: int = 3, *, warmup: int = 1) -> Figure:
    """Mixtures per second of :meth:`S5Generator.generate`: ``count`` soundscapes from ``seed``, median of repeats.

    Every timed run starts from the same seed, so each draws and renders the same ``count`` soundscapes.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")

    def generate_all() -> None:
        rng = np.random.default_rng(seed)
        for _ in range(count):
            generator.generate(rng)

    seconds = median_times({"generate": generate_all}, repeats=repeats, warmup=warmup)["generate"]
    settings = generator.settings
    return Figure(
        name="S5 generator",
        value=count / seconds if seconds > 0 else math.nan,
        unit="mixtures/s",
        meaning=(
            f"S5Generator.generate (draw + render, one process) of {count} soundscapes at {settings.sample_rate} Hz,"
            f" {settings.duration:g} s, {_channel_counts(generator)} channels; median of {repeats}"
        ),
    )


# ---------------------------------------------------------------------------------------------------------------
# CA-SDRi as a plain per-file loop


def _read_float64(path: Path) -> np.ndarray:
    """All channels of a WAV [N, C] as the official loader sees them (float32), widened to float64 for the sums."""
    samples, _ = sf.read(str(path), dtype="float32", always_2d=True)
    return samples.astype(np.float64)


def _snr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """10·log10((‖s‖² + eps) / (‖s − ŝ‖² + eps)) in float64 with the official float32 eps."""
    error = reference - estimate
    signal_power = float(np.dot(reference, reference))
    error_power = float(np.dot(error, error))
    return 10.0 * math.log10((signal_power + OFFICIAL_EPS) / (error_power + OFFICIAL_EPS))


def _files_by_soundscape(folder: Path) -> dict[str, dict[str, Path]]:
    """Soundscape -> class -> file of every ``<soundscape>_<Label>.wav`` in ``folder``."""
    found: dict[str, dict[str, Path]] = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(AUDIO_SUFFIX):
            soundscape, label = split_source_name(folder / name)
            found.setdefault(soundscape, {})[label] = folder / name
    return found


def naive_ca_sdri(
    mixture_dir: str | os.PathLike[str], ref_dir: str | os.PathLike[str], pred_dir: str | os.PathLike[str]
) -> dict[str, Any]:
    """CA-SDRi and label accuracy of a folder of estimates, soundscape by soundscape and file by file.

    For each ``<soundscape>.wav`` in ``mixture_dir`` (sorted): read the mixture, then every oracle file and every
    estimate file of that soundscape, one at a time. Labels pair sources (``silence`` ignored): a class in both
    sets is a TP scoring SNR(estimate, oracle) − SNR(mixture channel 0, oracle), a class only estimated is an FP,
    one only in the oracle an FN; the soundscape scores the TP sum over |TP| + |FP| + |FN|. A soundscape without
    estimates has only FNs (0 dB) and is a label miss. The dataset value is the mean over soundscapes.

    No input checks: this is a timing and numerical reference for well-formed folders, not a scorer. Returns
    ``CA-SDRi`` (dB), ``label_accuracy`` and ``n_soundscapes``.
    """
    mixtures = sorted(path for path in Path(mixture_dir).iterdir() if path.suffix == AUDIO_SUFFIX)
    oracle_files = _files_by_soundscape(Path(ref_dir))
    estimate_files = _files_by_soundscape(Path(pred_dir))
    scores: list[float] = []
    correct: list[bool] = []
    for mixture_path in mixtures:
        mixture_ch0 = _read_float64(mixture_path)[:, 0]
        oracle = {label: _read_float64(path)[:, 0] for label, path in oracle_files.get(mixture_path.stem, {}).items()}
        estimate = {
            label: _read_float64(path)[:, 0] for label, path in estimate_files.get(mixture_path.stem, {}).items()
        }
        oracle_labels = set(oracle) - {SILENCE}
        estimated_labels = set(estimate) - {SILENCE}
        total = 0.0
        for label in oracle_labels & estimated_labels:
            total += _snr(estimate[label], oracle[label]) - _snr(mixture_ch0, oracle[label])
        misses = len(estimated_labels - oracle_labels) + len(oracle_labels - estimated_labels)
        terms = len(oracle_labels & estimated_labels) + misses
        scores.append(total / terms if terms else math.nan)  # no labels at all: the official empty mean, NaN
        correct.append(misses == 0)
    return {
        "CA-SDRi": sum(scores) / len(scores) if scores else math.nan,
        "label_accuracy": sum(correct) / len(correct) if correct else math.nan,
        "n_soundscapes": len(scores),
    }


def compare_ca_sdri(
    mixture_dir: str | os.PathLike[str],
    ref_dir: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str],
    repeats: int = 3,
    *,
    warmup: int = 1,
) -> tuple[Comparison, dict[str, float]]:
    """Time :func:`naive_ca_sdri` against :func:`seldflow.metrics.ca_sdri.score_ca_sdri` on the same folders.

    Both read the WAV files in every timed call. Returns the comparison (ratio = loop / scorer, the speed-up) and
    the agreement: ``ca_sdri_difference`` (|Δ| in dB), ``label_accuracy_equal`` (1.0 or 0.0) and the official
    ``CA-SDRi`` and ``label_accuracy``.
    """
    official = score_ca_sdri(mixture_dir, ref_dir, pred_dir)
    plain = naive_ca_sdri(mixture_dir, ref_dir, pred_dir)
    difference = abs(official["CA-SDRi"] - plain["CA-SDRi"])
    same_accuracy = official["label_accuracy"] == plain["label_accuracy"]
    functions: dict[str, Callable[[], Any]] = {
        "loop": lambda: naive_ca_sdri(mixture_dir, ref_dir, pred_dir),
        "scorer": lambda: score_ca_sdri(mixture_dir, ref_dir, pred_dir),
    }
    timed = median_times(functions, repeats=repeats, warmup=warmup)
    comparison = Comparison(
        name="CA-SDRi scorer",
        work=f"S5 CA-SDRi + label accuracy over {official['n_soundscapes']} soundscapes (WAV reading included)",
        a_label="per-file, per-class float64 loop (naive_ca_sdri)",
        a_seconds=timed["loop"],
        b_label="seldflow.metrics.ca_sdri.score_ca_sdri",
        b_seconds=timed["scorer"],
        meaning="speed-up of the seldflow scorer over the per-file loop, both reading the files (>1: seldflow faster)",
        check=(
            f"|ΔCA-SDRi| = {difference:.1e} dB, label accuracy {'equal' if same_accuracy else 'DIFFERENT'} "
            f"(CA-SDRi {official['CA-SDRi']:.2f} dB, accuracy {official['label_accuracy']:.3f})"
        ),
    )
    agreement = {
        "ca_sdri_difference": difference,
        "label_accuracy_equal": float(same_accuracy),
        "CA-SDRi": float(official["CA-SDRi"]),
        "label_accuracy": float(official["label_accuracy"]),
    }
    return comparison, agreement


# ---------------------------------------------------------------------------------------------------------------
# Synthetic soundscape folders for the CA-SDRi row


def write_soundscape_set(
    folder: str | os.PathLike[str], n_soundscapes: int, *, seed: int, samples: int, sample_rate: int, channels: int = 4
) -> tuple[Path, Path, Path]:
    """Mixture, oracle and estimate folders of ``n_soundscapes`` seeded soundscapes (float32 WAV, as the S5 stages
    write them): 1-3 targets each; the estimates keep most targets with a little error, miss some and add some
    classes the soundscape lacks, at least one file a soundscape. Returns (mixtures, oracle targets, estimates).

    Written straight to a scratch folder (benchmark input, not workflow outputs).
    """
    if n_soundscapes < 1 or samples < 1:
        raise ValueError(f"need at least one soundscape of one sample, got {n_soundscapes} of {samples}")
    mixtures, oracle, estimates = (Path(folder) / name for name in ("soundscape", "oracle_target", "estimate_target"))
    for path in (mixtures, oracle, estimates):
        path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width = len(str(n_soundscapes - 1))
    for index in range(n_soundscapes):
        name = f"soundscape{index:0{width}d}"
        labels = rng.choice(LABELS, size=int(rng.integers(1, 4)), replace=False)
        targets = rng.normal(0.0, 0.1, (len(labels), samples)).astype(np.float32)
        noise = rng.normal(0.0, 0.02, (channels, samples)).astype(np.float32)
        _write_float(mixtures / f"{name}{AUDIO_SUFFIX}", targets.sum(axis=0) + noise, sample_rate)
        found = 0
        for label, target in zip(labels, targets, strict=True):
            _write_float(oracle / source_file_name(name, str(label)), target, sample_rate)
            if rng.random() < 0.85:  # found, with an error of its own
                estimate = target + rng.normal(0.0, rng.choice([0.01, 0.05, 0.2]), samples).astype(np.float32)
                _write_float(estimates / source_file_name(name, str(label)), estimate, sample_rate)
                found += 1
        # A class the soundscape does not hold; always where nothing was found, as the official evaluation fails
        # on a soundscape without estimate files.
        if rng.random() < 0.2 or not found:
            stray = str(rng.choice([label for label in LABELS if label not in labels]))
            _write_float(estimates / source_file_name(name, stray), rng.normal(0.0, 0.05, samples), sample_rate)
    return mixtures, oracle, estimates


def _write_float(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """``(channels, samples)`` or ``(samples,)`` as a float32 WAV file."""
    sf.write(str(path), np.asarray(audio, dtype=np.float32).T, sample_rate, subtype="FLOAT", format="WAV")
