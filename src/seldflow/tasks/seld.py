"""Sound event localization and detection as a task: a label format, a method and a metric.

The label format (:mod:`seldflow.formats`) says how a dataset's CSVs read and write; the method
(:mod:`seldflow.tasks.seld_methods`) how events become targets, which loss trains them and how outputs decode; the
metric (:mod:`seldflow.metrics`) how predictions are scored. Each defaults from the label format, so a DCASE2025
stereo dataset needs no settings and a DCASE2021 FOA dataset only ``dataset.label_format``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from seldflow.errors import ConfigError
from seldflow.formats import LabelFormat, get_label_format
from seldflow.metrics import get_metric
from seldflow.tasks import Task
from seldflow.tasks.seld_methods import Method, get_method


@dataclass(frozen=True)
class Validation:
    """How training scores held-out clips with a metric of :mod:`seldflow.metrics` and which figure selects.

    Thresholds are the official ones (20 degrees; relative distance 1.0 where the metric has it), and selection
    follows the reference recipes: F for the DCASE2025 stereo seed system, the SELD score for PSELDNets.
    """

    keys: tuple[str, ...]
    selection: str
    lower_is_better: bool
    options: Mapping[str, float]


_SEGMENT_VALIDATION = Validation(
    keys=("ER", "F", "LE", "LR", "SELD"), selection="SELD", lower_is_better=True, options={"doa_threshold": 20.0}
)
# Metric name -> its use in training. The metrics themselves live in seldflow.metrics.
VALIDATIONS: dict[str, Validation] = {
    "dcase2025": Validation(
        keys=("F", "DOAE", "RDE"),
        selection="F",
        lower_is_better=False,
        options={"doa_threshold": 20.0, "reldist_threshold": 1.0},
    ),
    "dcase2021": _SEGMENT_VALIDATION,
    "dcase2022": _SEGMENT_VALIDATION,
    "dcase2023": _SEGMENT_VALIDATION,
    "dcase2024": Validation(
        keys=("F", "LE", "RDE", "SELD"),
        selection="SELD",
        lower_is_better=True,
        options={"doa_threshold": 20.0, "reldist_threshold": 1.0},
    ),
}


def _validation(metric: str) -> Validation:
    try:
        return VALIDATIONS[metric]
    except KeyError:
        known = ", ".join(VALIDATIONS)
        raise ConfigError("score", "metric", f"unknown metric {metric!r} for SELD (known: {known})") from None


@dataclass(frozen=True)
class SeldTask(Task):
    """SELD with one label format, method, class count and metric."""

    label_format: LabelFormat
    method: Method
    n_classes: int
    metric: str
    name: str = "seld"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> SeldTask:
        """Missing entries default from the label format (class count, method, metric)."""
        label_format = get_label_format(spec.get("label_format") or "dcase2025")
        method = get_method(spec.get("method") or label_format.method, spec.get("loss_args"))
        metric = spec.get("metric") or label_format.metric
        _validation(metric)  # fails here, at configuration time, for an unknown name
        n_classes = int(spec.get("n_classes") or label_format.n_classes)
        return cls(label_format=label_format, method=method, n_classes=n_classes, metric=metric)

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label_format": self.label_format.name,
            "method": self.method.name,
            "loss_args": dict(self.method.loss_args),
            "n_classes": self.n_classes,
            "metric": self.metric,
        }

    # Labels and targets ---------------------------------------------------------------------------------------
    @property
    def label_columns(self) -> int:
        return len(self.label_format.columns)

    @property
    def label_dtype(self) -> type:
        return self.label_format.dtype

    def read_labels(self, path: Path, n_frames: int | None) -> np.ndarray:
        return self.label_format.read(Path(path), n_classes=self.n_classes, n_frames=n_frames)

    def mirror_labels(self, rows: np.ndarray) -> np.ndarray:
        return self.label_format.mirror(rows)

    def target_shape(self, n_frames: int) -> tuple[int, ...]:
        return self.method.target_shape(n_frames, self.n_classes)

    def targets(self, rows: np.ndarray, n_frames: int) -> np.ndarray:
        return self.method.targets(self.label_format.to_events(rows), n_frames, self.n_classes)

    # Model and loss -------------------------------------------------------------------------------------------
    def model_args(self) -> dict[str, Any]:
        return {"output": self.method.layout_name, "n_classes": self.n_classes}

    def loss(self) -> nn.Module:
        return self.method.loss()

    # Decoding and writing -------------------------------------------------------------------------------------
    def decode(self, output: np.ndarray, settings: Mapping[str, Any] | None = None) -> np.ndarray:
        thresholds = self.method.decode_settings(settings or {})
        return self.label_format.from_events(self.method.decode(output, self.n_classes, **thresholds))

    def shift_frames(self, rows: np.ndarray, offset: int) -> np.ndarray:
        shifted = np.array(rows, copy=True)
        shifted[:, self._frame_column] += offset
        return shifted

    def frame_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(rows)[:, self._frame_column]

    @property
    def _frame_column(self) -> int:
        return self.label_format.columns.index("frame")

    def write_prediction(self, path: Path, rows: np.ndarray) -> None:
        self.label_format.write(Path(path), rows)

    def prediction_name(self, stem: str) -> str:
        return f"{stem}.csv"

    # Scoring --------------------------------------------------------------------------------------------------
    @property
    def validation_columns(self) -> tuple[str, ...]:
        return tuple(f"val_{key}" for key in _validation(self.metric).keys)

    def validation_scores(
        self, references: Mapping[str, np.ndarray], predictions: Mapping[str, np.ndarray]
    ) -> dict[str, float]:
        validation = _validation(self.metric)
        scores = get_metric(self.metric).score(references, predictions, n_classes=self.n_classes, **validation.options)
        return {f"val_{key}": float(scores[key]) for key in validation.keys}

    def label_augmentation(self) -> Method:
        return self.method

    def selection_score(self, scores: Mapping[str, float]) -> float:
        validation = _validation(self.metric)
        value = scores[f"val_{validation.selection}"]
        if not math.isfinite(value):  # nothing detected: the worst score, as the reference recipes treat it
            return -math.inf if validation.lower_is_better else 0.0
        return -value if validation.lower_is_better else value
