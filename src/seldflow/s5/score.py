"""S5 score stage: CA-SDRi and label accuracy of every inference run (tagger labels, oracle labels) in one JSON.

The metric itself is :func:`seldflow.metrics.ca_sdri.score_ca_sdri`, the official Task 4 computation; this stage
runs it once per label source and puts the tagger run's figures at the top level (the challenge's numbers), with
each run's full report under its source's name, so the oracle-label ceiling sits beside them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seldflow.io import atomic_file
from seldflow.metrics.ca_sdri import score_ca_sdri

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
