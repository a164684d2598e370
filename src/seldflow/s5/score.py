"""S5 score stage: CA-SDRi and label accuracy of every label column of a run in one JSON, and the runs ranked.

The metric itself is :func:`seldflow.metrics.ca_sdri.score_ca_sdri`, the official Task 4 computation; this stage
runs it once per label source (baseline tagger, fine-tuned SED, oracle labels) and puts the tagger's figures at
the top level (the challenge's numbers), with each source's full report under its name, so the fine-tuned SED's
column and the oracle-label ceiling sit beside them.

:func:`summarise_runs` ranks the named experiments' runs (:mod:`seldflow.s5.experiments`) in one table, the
ablation table of the second-place system: CA-SDRi per label column and the detectors' label accuracy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from seldflow.errors import InputError
from seldflow.io import atomic_file
from seldflow.metrics.ca_sdri import score_ca_sdri
from seldflow.s5.experiments import DETECTOR_SOURCES, LABEL_SOURCES

HEADLINE_KEYS = ("CA-SDRi", "label_accuracy")
# The label source whose figures are the headline: what a submission would score.
HEADLINE_SOURCE = "tagger"


def score_label_sources(
    soundscapes: str | Path, oracle: str | Path, estimates: Mapping[str, str | Path], out_json: str | Path
) -> dict[str, Any]:
    """Score each label source's estimate folder against the oracle targets; write and return the report."""
    reports = {source: score_ca_sdri(soundscapes, oracle, folder) for source, folder in estimates.items()}
    headline = reports.get(HEADLINE_SOURCE) or next(iter(reports.values()))
    report = {**{key: headline[key] for key in HEADLINE_KEYS}, **reports}
    with atomic_file(out_json) as tmp:
        tmp.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    return report


# Columns that describe a summary row; the score columns follow (CA-SDRi per source, accuracy per detector).
RUN_COLUMNS = ("rank", "run", "experiment", "model", "inference_iterations")


def summary_columns(sources: Sequence[str] = LABEL_SOURCES) -> dict[str, tuple[str, str]]:
    """Score columns of the summary, each -> (metric, source): ``CA-SDRi_<source>`` for every source,
    ``label_accuracy_<detector>`` for the detectors (the oracle's is 1 by construction)."""
    pairs = [("CA-SDRi", s) for s in sources] + [("label_accuracy", s) for s in sources if s in DETECTOR_SOURCES]
    return {f"{metric}_{source}": (metric, source) for metric, source in pairs}


def summarise_runs(
    metrics: Mapping[str, str | Path], runs: Mapping[str, Mapping[str, Any]], out_csv: str | Path
) -> pd.DataFrame:
    """One row per run (``runs``: name -> experiment, model, inference_iterations), best first by the headline
    CA-SDRi (the tagger column; a run without it last), ties in the given order; written as CSV."""
    rows = []
    for name, path in metrics.items():
        report = json.loads(Path(path).read_text())
        row: dict[str, Any] = {"run": name, **{key: runs[name].get(key) for key in RUN_COLUMNS[2:]}}
        for column, (metric, source) in summary_columns().items():
            if source not in report or metric not in report[source]:
                raise InputError(path, f"no {metric} for the {source} labels", field=source)
            value = report[source][metric]
            row[column] = math.nan if value is None else float(value)
        rows.append(row)
    table = pd.DataFrame(rows, columns=[*RUN_COLUMNS[1:], *summary_columns()])
    table["inference_iterations"] = table["inference_iterations"].astype("Int64")
    table = table.sort_values(f"CA-SDRi_{HEADLINE_SOURCE}", ascending=False, na_position="last", kind="stable")
    table.insert(0, "rank", range(1, len(table) + 1))
    with atomic_file(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    return table
