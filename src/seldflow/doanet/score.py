"""DOAnet score stage: the class-agnostic tracking metric (``doa-mot``) of an experiment's test predictions.

The references are the metadata files of the test recordings (the split's folds), read and scored by the metric
registered as ``doa-mot`` in :data:`seldflow.metrics.METRICS` (the official LE, MOTA, IDS, LR, LP, LF and the
canonical CLEAR-MOT beside them), exactly as ``seldflow score --metric doa-mot`` does on folders; a recording
without a prediction file counts as one without predictions. The report adds ``settings.metric`` (which ranks
the experiments in the summary) and the experiment's name and description.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seldflow.metrics import METRICS
from seldflow.metrics.doa_mot import METRIC_NAME
from seldflow.score import write_metrics
from seldflow.tau_nigens2020 import Recording


def score_predictions(
    references: Sequence[Recording],
    predictions_dir: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    *,
    doa_threshold: float,
    experiment: str,
    description: str,
) -> dict[str, Any]:
    """Score ``predictions_dir/<stem>.csv`` against every reference recording's metadata; write the report."""
    metric = METRICS[METRIC_NAME]
    tables = {recording.stem: metric.read_file(recording.metadata) for recording in references}
    predictions_dir = Path(predictions_dir)
    predictions = {
        stem: metric.read_file(path, reference=False)
        for stem in tables
        if (path := predictions_dir / f"{stem}.csv").is_file()
    }
    report = metric.score(tables, predictions, doa_threshold=doa_threshold)
    report["settings"] = {
        **report["settings"],
        "metric": METRIC_NAME,
        "experiment": experiment,
        "description": description,
        "doa_threshold": doa_threshold,
    }
    write_metrics(out_json, report)
    return report
