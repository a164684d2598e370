"""S5 report stage: the pictures a researcher looks at after a run, and a short markdown summary.

* per-class SDRi bars, tagger labels beside oracle labels (where the separator or the tagger loses);
* the tagger's confusion: for every reference class, which classes the selection rule returned (a multi-label
  count matrix with a "missed" column for references it did not return, and a "none" row for false positives);
* spectrograms of mixture channel 0, each estimate and its oracle target for the first soundscapes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
from scipy.signal import stft

from seldflow.io import atomic_file
from seldflow.s5.experiments import LABEL_SOURCES
from seldflow.s5.files import TAGS_FILE, oracle_labels, read_tags, source_file_name
from seldflow.s5.vocabulary import LABELS

DPI = 120


def class_sdri(report: Mapping[str, Any]) -> dict[str, float]:
    """Mean SDRi over each class's true positives (NaN where the class had none) from a CA-SDRi report."""
    classwise = report["classwise"]
    return {label: _number(classwise[label]["SDRi"]) for label in LABELS if label in classwise}


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)  # JSON writes NaN as null


def confusion_matrix(predicted: Mapping[str, Sequence[str]], reference: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Counts [C + 1, C + 1]: row = reference class (last row: none), column = returned class (last: missed).

    A returned class that is in the reference counts on the diagonal; a returned class not in the reference
    counts once against each reference class the tagger missed in that soundscape, or in the "none" row when
    it missed none; a missed reference class with no such partner counts in the "missed" column.
    """
    n = len(LABELS)
    counts = np.zeros((n + 1, n + 1), dtype=np.int64)
    for name, ref in reference.items():
        pred = set(predicted.get(name, ()))
        ref_set = set(ref)
        for label in pred & ref_set:
            counts[LABELS.index(label), LABELS.index(label)] += 1
        missed = sorted(ref_set - pred, key=LABELS.index)
        extra = sorted(pred - ref_set, key=LABELS.index)
        for label in extra:
            rows = [LABELS.index(m) for m in missed] or [n]
            for row in rows:
                counts[row, LABELS.index(label)] += 1
        if not extra:
            for label in missed:
                counts[LABELS.index(label), n] += 1
    return counts


def plot_class_sdri(metrics: Mapping[str, Any], path: Path) -> None:
    sources = [source for source in LABEL_SOURCES if source in metrics]
    width = 0.8 / max(len(sources), 1)
    x = np.arange(len(LABELS))
    fig, ax = plt.subplots(figsize=(12, 4))
    for offset, source in enumerate(sources):
        values = class_sdri(metrics[source])
        heights = [values.get(label, np.nan) for label in LABELS]
        ax.bar(x + offset * width, np.nan_to_num(heights), width, label=f"{source} labels")
    ax.set_xticks(x + width * (len(sources) - 1) / 2, LABELS, rotation=60, ha="right")
    ax.set_ylabel("mean SDRi over true positives (dB)")
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.legend()
    ax.set_title("S5: per-class SDR improvement")
    _save(fig, path)


def plot_confusion(counts: np.ndarray, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 8))
    image = ax.imshow(counts, cmap="Blues")
    ticks = np.arange(len(LABELS) + 1)
    ax.set_xticks(ticks, [*LABELS, "missed"], rotation=90)
    ax.set_yticks(ticks, [*LABELS, "none"])
    ax.set_xlabel("returned by the tagger")
    ax.set_ylabel("reference class")
    for (row, col), value in np.ndenumerate(counts):
        if value:
            ax.text(col, row, str(value), ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, shrink=0.7)
    ax.set_title("S5 tagger confusion (test soundscapes)")
    _save(fig, path)


def _spectrogram_db(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nperseg = max(64, int(0.032 * sample_rate))
    freqs, times, spec = stft(audio, fs=sample_rate, nperseg=nperseg)
    return freqs, times, 20 * np.log10(np.abs(spec) + 1e-8)


def plot_spectrograms(names: Sequence[str], soundscapes: Path, estimates: Path, oracle: Path, path: Path) -> None:
    """One row per soundscape: mixture channel 0, then estimate and oracle of each of its reference classes."""
    references = oracle_labels(oracle, names)
    columns = 1 + 2 * max((len(labels) for labels in references.values()), default=1)
    fig, axes = plt.subplots(len(names), columns, figsize=(3 * columns, 2.4 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        mixture, rate = sf.read(soundscapes / f"{name}.wav", dtype="float32", always_2d=True)
        panels = [("mixture (ch 0)", mixture[:, 0])]
        for label in references[name]:
            estimate = estimates / source_file_name(name, label)
            panels.append((f"estimate {label}", sf.read(estimate, dtype="float32")[0] if estimate.exists() else None))
            panels.append((f"oracle {label}", sf.read(oracle / source_file_name(name, label), dtype="float32")[0]))
        for col, ax in enumerate(axes[row]):
            if col >= len(panels):
                ax.axis("off")
                continue
            title, audio = panels[col]
            ax.set_title(f"{name}: {title}" if col == 0 else title, fontsize=7)
            if audio is None:
                ax.text(0.5, 0.5, "not returned\nby the tagger", ha="center", va="center", transform=ax.transAxes)
                continue
            freqs, times, spec = _spectrogram_db(audio, rate)
            ax.pcolormesh(times, freqs, spec, shading="auto", vmin=spec.max() - 80, vmax=spec.max())
            ax.tick_params(labelsize=6)
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format=path.suffix.lstrip("."))
    plt.close(fig)


def summary_markdown(metrics: Mapping[str, Any]) -> str:
    lines = ["# S5 results", "", "| labels | CA-SDRi (dB) | label accuracy |", "|---|---|---|"]
    for source in LABEL_SOURCES:
        if source in metrics:
            report = metrics[source]
            lines.append(f"| {source} | {report['CA-SDRi']:.2f} | {report['label_accuracy']:.3f} |")
    return "\n".join(lines) + "\n"


def write_s5_report(
    *,
    metrics: str | Path,
    estimates: str | Path,
    soundscapes: str | Path,
    oracle: str | Path,
    count: int,
    outputs: Mapping[str, str | Path],
) -> None:
    """Write the plots and summary named in ``outputs`` (keys sdri, confusion, spectrograms, summary)."""
    report = json.loads(Path(metrics).read_text())
    estimates, soundscapes, oracle = Path(estimates), Path(soundscapes), Path(oracle)
    names = sorted(path.stem for path in soundscapes.glob("*.wav"))
    plot_class_sdri(report, Path(outputs["sdri"]))
    plot_confusion(
        confusion_matrix(read_tags(estimates / TAGS_FILE), oracle_labels(oracle, names)), Path(outputs["confusion"])
    )
    plot_spectrograms(names[:count], soundscapes, estimates, oracle, Path(outputs["spectrograms"]))
    with atomic_file(outputs["summary"]) as tmp:
        tmp.write_text(summary_markdown(report))
