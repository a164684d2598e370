"""TensorBoard event files of a training run, beside its per-epoch ``metrics.csv`` in the state folder.

The events are a view of the same per-epoch rows (losses, the task's validation figures, learning rate, seconds),
for watching a run live with ``tensorboard --logdir <state_dir>/tensorboard``. They live in the state folder, not
among the declared outputs: their bytes hold wall-clock times and the host name, and nothing downstream reads them.
Logging only reads the rows, so the checkpoint and metrics are the same with or without it.

This module imports neither torch nor tensorboard at import time, so the report can name the folder cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

TENSORBOARD_DIR = "tensorboard"

# metrics.csv column -> TensorBoard tag; the task's validation columns (val_F, val_SELD, ...) go under validation/.
_TAGS = {
    "train_loss": "loss/train",
    "val_loss": "loss/validation",
    "lr": "learning_rate",
    "seconds": "time/epoch_seconds",
}
_VALIDATION_PREFIX = "val_"


def tensorboard_dir(state_dir: str | Path) -> Path:
    """Where a run with state folder ``state_dir`` writes its event files."""
    return Path(state_dir) / TENSORBOARD_DIR


def scalar_tag(column: str) -> str | None:
    """The TensorBoard tag of a metrics.csv column; ``None`` for the epoch, which is the step."""
    if column == "epoch":
        return None
    if column in _TAGS:
        return _TAGS[column]
    return f"validation/{column.removeprefix(_VALIDATION_PREFIX)}"


class TrainingLog:
    """Writes one step per finished epoch; opened on the first epoch, so a run with nothing left writes nothing.

    ``first_epoch`` is the epoch this process starts at: TensorBoard hides events of earlier processes at that
    step and later (``purge_step``), so epochs logged by a killed run but not saved in its state, or a previous run
    with other settings, do not appear twice.
    """

    def __init__(self, state_dir: str | Path, first_epoch: int) -> None:
        self.folder = tensorboard_dir(state_dir)
        self.first_epoch = first_epoch
        self._writer: SummaryWriter | None = None

    def _open(self) -> SummaryWriter:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter  # tensorboard only where a run logs

            self._writer = SummaryWriter(log_dir=str(self.folder), purge_step=self.first_epoch)
        return self._writer

    def log_epoch(self, row: Mapping[str, float]) -> None:
        """Every finite figure of one metrics.csv row at step ``row["epoch"]``, flushed for a live TensorBoard."""
        writer = self._open()
        epoch = int(row["epoch"])
        for column, value in row.items():
            tag = scalar_tag(column)
            if tag is not None and math.isfinite(value):  # NaN: no validation in this run
                writer.add_scalar(tag, value, global_step=epoch)
        writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


__all__ = ["TENSORBOARD_DIR", "TrainingLog", "scalar_tag", "tensorboard_dir"]
