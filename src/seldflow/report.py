"""Figures for the Snakemake HTML report: training curves, per-class F, reference vs predicted azimuth tracks.

The report also carries a page that points at the run's TensorBoard event files (:func:`write_tensorboard_page`).
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the report is built on clusters and CI without a display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from seldflow.errors import InputError
from seldflow.formats import LabelFormat, get_label_format
from seldflow.formats.events import EV_AZIMUTH, EV_CLASS, EV_FRAME
from seldflow.io import atomic_file
from seldflow.labels import CLASSES, LABEL_HOP_SECONDS

PathLike = str | os.PathLike[str]


def _save(fig: plt.Figure, out_png: PathLike) -> None:
    with atomic_file(out_png) as tmp:
        # Fixed metadata keeps the PNG bytes reproducible across runs.
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def plot_training_curves(metrics_csv: PathLike, out_png: PathLike) -> None:
    """Loss and validation F per epoch, with the selected (best) epoch marked."""
    table = pd.read_csv(metrics_csv)
    for column in ("epoch", "train_loss", "val_loss", "val_F"):
        if column not in table.columns:
            raise InputError(metrics_csv, "column missing from the training metrics", field=column)
    fig, (ax_loss, ax_f) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(table["epoch"], table["train_loss"], label="train")
    ax_loss.plot(table["epoch"], table["val_loss"], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="ADPIT loss", title="Loss")
    ax_loss.legend()
    ax_f.plot(table["epoch"], table["val_F"], color="tab:green", label="validation F (20°)")
    if table["val_F"].notna().any():
        best = table.loc[table["val_F"].idxmax()]
        ax_f.axvline(best["epoch"], color="grey", linestyle=":", label=f"best epoch {int(best['epoch'])}")
    ax_f.set(xlabel="epoch", ylabel="macro F", title="Validation F", ylim=(0, 1))
    ax_f.legend()
    fig.tight_layout()
    _save(fig, out_png)


def class_names(n_classes: int) -> list[str]:
    """Display names: the DCASE2025 classes for a 13-class vocabulary, class indices otherwise."""
    return list(CLASSES) if n_classes == len(CLASSES) else [f"class {k}" for k in range(n_classes)]


def _classwise_f(metrics_json: PathLike, metrics: dict, n_classes: int) -> list[float | None]:
    """Per-class F of any metric's report (DCASE2025: ``classwise_F``; DCASE2021-2024: ``classwise.F``)."""
    values = metrics.get("classwise_F", (metrics.get("classwise") or {}).get("F"))
    if not isinstance(values, list) or len(values) != n_classes:
        raise InputError(metrics_json, f"expected {n_classes} class-wise F values", field="classwise_F")
    return values


def plot_classwise_f(metrics_json: PathLike, out_png: PathLike, n_classes: int = len(CLASSES)) -> None:
    """Horizontal bar per class: where the model works and where it does not."""
    metrics = json.loads(Path(metrics_json).read_text())
    values = _classwise_f(metrics_json, metrics, n_classes)
    names = class_names(n_classes)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    positions = np.arange(len(names))
    ax.barh(positions, [v or 0.0 for v in values], color="tab:blue")
    ax.set_yticks(positions, names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(metrics["F"], color="tab:red", linestyle="--", label=f"F = {metrics['F']:.3f}")
    metric = (metrics.get("settings") or {}).get("metric", "dcase2025")
    ax.set(xlim=(0, 1), xlabel=f"F ({metric}, 20°)", title="Per-class F on the test splits")
    ax.legend(loc="lower right")
    fig.tight_layout()
    _save(fig, out_png)


def _read_events(path: Path, label_format: LabelFormat, n_classes: int) -> np.ndarray:
    """A label or prediction file of any length as the event table."""
    return label_format.to_events(label_format.read(path, n_classes=n_classes, n_frames=None))


def _clips_to_plot(reference_dir: Path, n_clips: int, label_format: LabelFormat, n_classes: int) -> list[Path]:
    """The first clips (by name) with the most reference events: busy clips show more of the model."""
    candidates = sorted(reference_dir.glob("*.csv"))
    if not candidates:
        raise InputError(reference_dir, "no reference CSV files")
    ranked = sorted(candidates, key=lambda p: -len(_read_events(p, label_format, n_classes)))
    return sorted(ranked[:n_clips])


def plot_azimuth_tracks(
    reference_dir: PathLike,
    prediction_dir: PathLike,
    out_png: PathLike,
    *,
    n_clips: int = 3,
    doa_threshold: float = 20.0,
    label_format: str = "dcase2025",
    n_classes: int = len(CLASSES),
) -> None:
    """Reference (lines) vs predicted (markers) azimuth over time, coloured by class, for any label format."""
    reference_dir, prediction_dir = Path(reference_dir), Path(prediction_dir)
    fmt = get_label_format(label_format)
    names = class_names(n_classes)
    clips = _clips_to_plot(reference_dir, n_clips, fmt, n_classes) if n_clips else []
    fig, axes = plt.subplots(max(len(clips), 1), 1, figsize=(11, 2.6 * max(len(clips), 1)), squeeze=False)
    colours = plt.get_cmap("tab20")
    for ax, ref_path in zip(axes[:, 0], clips, strict=False):
        pred_path = prediction_dir / ref_path.name
        if not pred_path.is_file():
            raise InputError(pred_path, "prediction missing for a reference clip")
        reference = _read_events(ref_path, fmt, n_classes)
        prediction = _read_events(pred_path, fmt, n_classes)
        for cls in np.union1d(reference[:, EV_CLASS], prediction[:, EV_CLASS]).astype(int):
            colour = colours(cls % 20)
            ref = reference[reference[:, EV_CLASS] == cls]
            pred = prediction[prediction[:, EV_CLASS] == cls]
            ax.scatter(
                ref[:, EV_FRAME] * LABEL_HOP_SECONDS,
                ref[:, EV_AZIMUTH],
                s=14,
                color=colour,
                marker="s",
                alpha=0.35,
                label=f"{names[cls]} (ref)",
            )
            ax.scatter(
                pred[:, EV_FRAME] * LABEL_HOP_SECONDS,
                pred[:, EV_AZIMUTH],
                s=10,
                color=colour,
                marker="x",
                label=f"{names[cls]} (pred)",
            )
        ax.set(ylim=(-180, 180), ylabel="azimuth (°)", title=ref_path.stem)
        ax.axhspan(-90, 90, color="0.95", zorder=0)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(f"Reference (squares) vs prediction (crosses); DOA threshold {doa_threshold:g}°", fontsize=9)
    fig.tight_layout()
    _save(fig, out_png)


TENSORBOARD_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>TensorBoard logs</title></head>
<body>
<h1>TensorBoard logs of this training run</h1>
<p>Every epoch's training and validation loss, validation figures and learning rate are also written as
TensorBoard event files (the same rows as <code>metrics.csv</code>) to <code>{logdir}</code>, relative to the
workflow's working directory. To browse them, live during training or afterwards, run</p>
<pre>tensorboard --logdir {logdir}</pre>
<p>and open <a href="http://localhost:6006/">http://localhost:6006/</a>.</p>
</body>
</html>
"""


def write_tensorboard_page(logdir: PathLike, out_html: PathLike) -> None:
    """An HTML page for the report naming the run's TensorBoard folder and the command that opens it.

    The event files themselves stay out of the report (they are live state, with wall-clock times); the page
    depends only on the folder's path, so it is reproducible.
    """
    with atomic_file(out_html) as tmp:
        tmp.write_text(TENSORBOARD_PAGE.format(logdir=html.escape(str(logdir))), encoding="utf-8")


@dataclass(frozen=True)
class Ranking:
    """How a metric's experiments are compared: the scores listed, and the sort (best first)."""

    columns: tuple[str, ...]
    order: tuple[tuple[str, bool], ...]  # (column, ascending)


_SEGMENT_RANKING = Ranking(("SELD", "ER", "F", "LE", "LR"), (("SELD", True), ("F", False)))
# Metric name (a report's settings.metric; DCASE2025 for reports without it) -> its ranking.
RANKINGS: dict[str, Ranking] = {
    "dcase2025": Ranking(("F", "DOAE", "RDE"), (("F", False), ("DOAE", True))),
    "dcase2021": _SEGMENT_RANKING,
    "dcase2022": _SEGMENT_RANKING,
    "dcase2023": _SEGMENT_RANKING,
    "dcase2024": Ranking(("SELD", "F", "LE", "RDE"), (("SELD", True), ("F", False))),
    # DOAnet's tracking metric: the tracking accuracy first, then the localization error.
    "doa-mot": Ranking(("MOTA", "LE", "IDS", "LR", "LP", "LF"), (("MOTA", False), ("LE", True))),
}
SUMMARY_COLUMNS = ("rank", "experiment", "model", *RANKINGS["dcase2025"].columns)


def summarise_experiments(metrics: dict[str, PathLike], models: dict[str, str], out_csv: PathLike) -> pd.DataFrame:
    """One row per experiment, best first by the metric's ranking (DCASE2025: higher macro F, then lower DOA
    error; DCASE2021-2024: lower SELD score; doa-mot: higher MOTA, then lower LE): the comparison table."""
    rows = []
    ranking = RANKINGS["dcase2025"]
    for name, path in metrics.items():
        scores = json.loads(Path(path).read_text())
        ranking = RANKINGS[(scores.get("settings") or {}).get("metric", "dcase2025")]
        for key in ranking.columns:
            if key not in scores:
                raise InputError(path, "score missing from the metrics", field=key)
        rows.append({"experiment": name, "model": models[name], **{k: scores[k] for k in ranking.columns}})
    table = pd.DataFrame(rows, columns=["experiment", "model", *ranking.columns])
    columns = [column for column, _ in ranking.order]
    for column in columns:  # JSON null (no matched event) becomes NaN, ranked last
        table[column] = table[column].astype(float)
    ascending = [up for _, up in ranking.order]
    table = table.sort_values(columns, ascending=ascending, na_position="last", kind="stable")
    table.insert(0, "rank", range(1, len(table) + 1))
    with atomic_file(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    return table


def write_complexity_table(out_csv: PathLike) -> pd.DataFrame:
    """The zoo's parameters and MACs per clip (see :mod:`seldflow.models.complexity`) as a CSV table."""
    from seldflow.models.complexity import TABLE_COLUMNS, complexity_table  # torch only for this figure

    table = pd.DataFrame(complexity_table(), columns=TABLE_COLUMNS)
    with atomic_file(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table
