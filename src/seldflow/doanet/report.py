"""DOAnet report stage: reference vs predicted DOA tracks of a few test recordings, the training curves, and the
table that ranks the experiments.

Tracks: for each shown recording, azimuth and elevation over time; every reference track (its ``class, track``
pair, so two sources of one class stay apart) has its own colour, drawn as wide pale squares, and every predicted
track (a slot) its own, drawn as dark crosses. The recordings shown are those with the most reference rows (busy
ones show more), in name order. Curves: the training loss and the validation LE and MOTA per epoch, the selected
epoch (lowest LE) marked. The summary (rule doanet_summary) is :func:`seldflow.report.summarise_experiments` with
the ``doa-mot`` ranking: higher MOTA first, then lower LE.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the report is built on clusters and CI without a display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from seldflow.errors import InputError
from seldflow.formats.events import EV_AZIMUTH, EV_CLASS, EV_ELEVATION, EV_FRAME, EV_TRACK
from seldflow.io import atomic_file
from seldflow.metrics import METRICS
from seldflow.metrics.doa_mot import METRIC_NAME
from seldflow.tau_nigens2020 import LABEL_HOP_SECONDS, Recording

PathLike = str | os.PathLike[str]
ANGLES = ((EV_AZIMUTH, "azimuth (°)", (-180, 180)), (EV_ELEVATION, "elevation (°)", (-90, 90)))
REFERENCE_COLOURS = plt.get_cmap("tab10")
PREDICTION_COLOURS = ("black", "tab:red", "tab:purple", "tab:brown")


def _save(fig: plt.Figure, out_png: PathLike) -> None:
    with atomic_file(out_png) as tmp:
        # Fixed metadata keeps the PNG bytes reproducible across runs.
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def recordings_to_plot(references: Sequence[Recording], n: int) -> list[Recording]:
    """The ``n`` recordings with the most reference rows, in name order (ties: the earlier name)."""
    read = METRICS[METRIC_NAME].read_file
    ranked = sorted(references, key=lambda recording: (-len(read(recording.metadata)), recording.stem))
    return sorted(ranked[:n], key=lambda recording: recording.stem)


def _tracks(table: np.ndarray) -> list[np.ndarray]:
    """Rows of each track: a ``(class, track)`` pair, in order of first appearance."""
    keys = [(cls, track) for cls, track in table[:, [EV_CLASS, EV_TRACK]]]
    return [table[(table[:, EV_CLASS] == cls) & (table[:, EV_TRACK] == track)] for cls, track in dict.fromkeys(keys)]


def plot_tracks(
    references: Sequence[Recording], predictions_dir: PathLike, out_png: PathLike, *, n_recordings: int, title: str
) -> None:
    """Azimuth and elevation over time of reference and predicted tracks (see the module docstring)."""
    read = METRICS[METRIC_NAME].read_file
    shown = recordings_to_plot(references, n_recordings) if n_recordings else []
    rows = max(len(shown), 1)
    fig, axes = plt.subplots(rows, 2, figsize=(12, 2.5 * rows), squeeze=False)
    for ax_row, recording in zip(axes, shown, strict=False):
        path = Path(predictions_dir) / f"{recording.stem}.csv"
        if not path.is_file():
            raise InputError(path, "prediction missing for a reference recording")
        reference, prediction = read(recording.metadata), read(path, reference=False)
        for ax, (column, label, limits) in zip(ax_row, ANGLES, strict=True):
            for number, track in enumerate(_tracks(reference)):
                ax.scatter(
                    track[:, EV_FRAME] * LABEL_HOP_SECONDS,
                    track[:, column],
                    s=30,
                    marker="s",
                    color=REFERENCE_COLOURS(number % 10),
                    alpha=0.35,
                    label=f"reference {number + 1}",
                )
            for slot in np.unique(prediction[:, EV_TRACK]).astype(int):
                track = prediction[prediction[:, EV_TRACK] == slot]
                ax.scatter(
                    track[:, EV_FRAME] * LABEL_HOP_SECONDS,
                    track[:, column],
                    s=12,
                    marker="x",
                    color=PREDICTION_COLOURS[slot % len(PREDICTION_COLOURS)],
                    label=f"predicted slot {slot}",
                )
            ax.set(ylim=limits, ylabel=label, title=recording.stem)
        ax_row[1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    fig.suptitle(f"{title}: reference tracks (squares) vs predicted slots (crosses)", fontsize=9)
    fig.tight_layout()
    _save(fig, out_png)


def plot_training(metrics_csv: PathLike, out_png: PathLike, *, title: str) -> None:
    """Training loss, validation LE and MOTA per epoch, the selected epoch (lowest validation LE) marked."""
    table = pd.read_csv(metrics_csv)
    for column in ("epoch", "train_loss", "val_LE", "val_MOTA"):
        if column not in table.columns:
            raise InputError(metrics_csv, "column missing from the training metrics", field=column)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    panels = (("train_loss", "training loss"), ("val_LE", "validation LE (°)"), ("val_MOTA", "validation MOTA (%)"))
    best = table.loc[table["val_LE"].idxmin(), "epoch"] if table["val_LE"].notna().any() else None
    for ax, (column, label) in zip(axes, panels, strict=True):
        ax.plot(table["epoch"], table[column], marker="o", markersize=3)
        if best is not None:
            ax.axvline(best, color="grey", linestyle=":", label=f"selected epoch {int(best)}")
            ax.legend(fontsize=7)
        ax.set(xlabel="epoch", ylabel=label)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, out_png)
