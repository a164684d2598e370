"""The pretraining synthesis row of the benchmark: its structure (no timing is asserted)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml
from helpers import REPO

from seldflow.bench.pretrain_synthesis import LABELS, compare_room_cost, peak_rss_mb, render_shard
from seldflow.config import validate_config


def pretraining_section(**overrides: object) -> dict:
    config = validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    section = copy.deepcopy(config["pretraining"])
    section.update(overrides)
    return section


@pytest.mark.slow
def test_room_cost_comparison_has_both_renderers_figures(tmp_path: Path) -> None:
    settings = pretraining_section(sample_rate=16000, clip_seconds=1.0)
    comparison, figures = compare_room_cost(tmp_path, settings, clips=1, repeats=1, classes=2)
    assert comparison.a_label == LABELS["pretrain"] and comparison.b_label == LABELS["single_room"]
    assert comparison.a_seconds > 0 and comparison.b_seconds > 0 and math.isfinite(comparison.ratio)
    assert "1 clips of 1.0 s at 16000 Hz" in comparison.work
    assert [(figure.name, figure.unit) for figure in figures] == [
        (f"{LABELS['pretrain']}, clips/s", "clips/s"),
        (f"{LABELS['pretrain']}, peak RSS per shard", "MB RSS (peak)"),
        (f"{LABELS['single_room']}, clips/s", "clips/s"),
        (f"{LABELS['single_room']}, peak RSS per shard", "MB RSS (peak)"),
    ]
    assert all(figure.value > 0 for figure in figures)
    assert figures[0].value == pytest.approx(1.0 / comparison.a_seconds)
    # Each shard ran in a child without torch: far below this (torch-importing) test process's own peak.
    assert figures[1].value < peak_rss_mb()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        compare_room_cost(tmp_path, pretraining_section(), clips=0)
    with pytest.raises(ValueError, match="unknown renderer"):
        render_shard("gpu_rir", {}, str(tmp_path), {})
