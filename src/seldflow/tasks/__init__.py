"""Task contracts: what train, infer and score need to know about a task, behind one small interface.

A task turns a dataset's labels into training targets, names the loss, decodes network outputs into the task's
prediction files, scores those files and says which validation figure selects the best model. The stages call
only this interface, so adding a task is one module registered in :data:`TASKS`; a checkpoint stores its task's
:meth:`Task.spec` so inference rebuilds the same contract.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seldflow.errors import ConfigError

if TYPE_CHECKING:  # the interface names torch types; importing the package must not import torch
    from torch import nn


class Task(ABC):
    """The contract between a task and the train, infer and score stages."""

    name: str

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """Plain-typed description that :func:`build_task` turns back into an equal task (kept in checkpoints)."""

    # Labels and targets ---------------------------------------------------------------------------------------
    @property
    @abstractmethod
    def label_columns(self) -> int:
        """Columns of one native label row, as stored in feature files."""

    @property
    @abstractmethod
    def label_dtype(self) -> type:
        """dtype of the native label rows."""

    @abstractmethod
    def read_labels(self, path: Path, n_frames: int | None) -> np.ndarray:
        """Native label rows of one reference file, validated (errors name file, row and field)."""

    @abstractmethod
    def mirror_labels(self, rows: np.ndarray) -> np.ndarray:
        """Labels of the left/right-mirrored clip (the LR-swap augmentation)."""

    @abstractmethod
    def target_shape(self, n_frames: int) -> tuple[int, ...]:
        """Shape of one clip's training target."""

    @abstractmethod
    def targets(self, rows: np.ndarray, n_frames: int) -> np.ndarray:
        """float32 training target of one clip from its native label rows."""

    # Model and loss -------------------------------------------------------------------------------------------
    @abstractmethod
    def model_args(self) -> dict[str, Any]:
        """Keyword arguments every network needs to emit this task's outputs."""

    @abstractmethod
    def loss(self) -> nn.Module:
        """The training loss, ``loss(output, target) -> scalar``."""

    # Decoding and writing -------------------------------------------------------------------------------------
    @abstractmethod
    def decode(self, output: np.ndarray, settings: Mapping[str, Any] | None = None) -> np.ndarray:
        """Native prediction rows of one clip from its network output; ``settings`` holds the thresholds."""

    @abstractmethod
    def shift_frames(self, rows: np.ndarray, offset: int) -> np.ndarray:
        """Rows moved ``offset`` label frames later (a window of a longer recording placed in it)."""

    @abstractmethod
    def frame_of(self, rows: np.ndarray) -> np.ndarray:
        """The label frame of every row."""

    @abstractmethod
    def write_prediction(self, path: Path, rows: np.ndarray) -> None:
        """Write one clip's prediction file."""

    @abstractmethod
    def prediction_name(self, stem: str) -> str:
        """File name of a clip's prediction."""

    # Scoring --------------------------------------------------------------------------------------------------
    @property
    @abstractmethod
    def validation_columns(self) -> tuple[str, ...]:
        """Keys of :meth:`validation_scores`, in the order training logs them."""

    @abstractmethod
    def validation_scores(
        self, references: Mapping[str, np.ndarray], predictions: Mapping[str, np.ndarray]
    ) -> dict[str, float]:
        """Scores of decoded validation predictions against their references, keyed by clip stem."""

    @abstractmethod
    def selection_score(self, scores: Mapping[str, float]) -> float:
        """Model-selection figure of :meth:`validation_scores` (higher is better; non-finite counts as worst)."""

    # Augmentation ---------------------------------------------------------------------------------------------
    def label_augmentation(self) -> Any:
        """What batch augmentation (:mod:`seldflow.augment`) edits targets with: an object with
        ``transform_directions``, ``polyphony`` and ``mix_targets`` (a SELD method), or ``None`` when the task's
        targets cannot be augmented."""
        return None


def _seld(spec: Mapping[str, Any]) -> Task:
    from seldflow.tasks.seld import SeldTask

    return SeldTask.from_spec(spec)


# Task name -> factory from a spec. Each task module registers here; the stages never name a task.
TASKS = {"seld": _seld}


def build_task(spec: Mapping[str, Any] | None) -> Task:
    """The task a spec describes; ``None`` (checkpoints written before tasks existed) is stereo DCASE2025 SELD."""
    spec = dict(spec or {"name": "seld"})
    name = spec.get("name", "seld")
    try:
        factory = TASKS[name]
    except KeyError:
        raise ConfigError("task", "name", f"unknown task {name!r} (known: {', '.join(TASKS)})") from None
    return factory(spec)


def task_spec(config: Mapping[str, Any], train: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The task spec of a workflow configuration and one experiment's ``train`` settings.

    Everything a task needs is spread over the sections that own it: the dataset's label format and class count,
    the experiment's method and loss arguments, the score section's metric.
    """
    train = dict(train if train is not None else config.get("train", {}))
    dataset = config.get("dataset", {})
    return {
        "name": config.get("task", "seld"),
        "label_format": dataset.get("label_format", "dcase2025"),
        "n_classes": dataset.get("n_classes"),
        "method": train.get("method"),
        "loss_args": dict(train.get("loss_args") or {}),
        "metric": config.get("score", {}).get("metric"),
    }
