"""TensorBoard event files of a training run, beside its per-epoch ``metrics.csv`` in the state folder.

The events are a view of the same per-epoch rows (losses, the task's validation figures, learning rate, seconds),
for watching a run live with ``tensorboard --logdir <state_dir>/tensorboard``. They live in the state folder, not
among the declared outputs: their bytes hold wall-clock times and the host name, and nothing downstream reads them.
Logging only reads the rows, so the checkpoint and metrics are the same with or without it.

This module imports neither torch nor tensorboard at import time, so the report can name the folder cheaply.
"""

from __future__ import annotations

import math
import time
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
# An event file's name: this prefix, then the second its writer opened (10 digits), host name, process id and a
# per-process counter, dot-separated.
_EVENT_PREFIX = "events.out.tfevents."
# The most :func:`wait_past_event_files` waits: a file of this second or the next (a clock a little ahead).
_LONGEST_WAIT_S = 2.0


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

            wait_past_event_files(self.folder)
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


def wait_past_event_files(folder: Path) -> None:
    """Return once the clock has passed the opening second of every event file in ``folder``.

    TensorBoard reads a folder's event files in name order, and its purge of a killed run's unsaved epochs (the
    ``purge_step`` above) only drops events read before it. A writer opened in the same second as an earlier run's
    would be ordered by host name, process id and a per-process counter compared as text (``10`` before ``9``), so
    a quick resume could be read first and the killed run's epochs after it, twice. Waiting (under a second, and
    only where files exist) gives the new file a later second, so it sorts last.
    """
    seconds = [_opening_second(path.name) for path in folder.glob(f"{_EVENT_PREFIX}*")]
    latest = max((second for second in seconds if second is not None), default=None)
    if latest is None or latest + 1 - time.time() > _LONGEST_WAIT_S:
        return  # nothing to pass, or a file stamped by a clock far ahead of this one: no wait would help
    while time.time() < latest + 1:
        time.sleep(latest + 1 - time.time())


def _opening_second(name: str) -> int | None:
    """The second an event file's writer opened, from its name; None for a name not of that form."""
    field = name.removeprefix(_EVENT_PREFIX).split(".", 1)[0]
    return int(field) if field.isdigit() else None


__all__ = ["TENSORBOARD_DIR", "TrainingLog", "scalar_tag", "tensorboard_dir", "wait_past_event_files"]
