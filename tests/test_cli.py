"""The installed ``seldflow`` console script, as a user calls it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import BIN

from seldflow.labels import write_labels


def _seldflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "seldflow"), *args], capture_output=True, text=True)


def test_score_prints_one_json_object(tmp_path: Path) -> None:
    event = [[f, 3, 0, 40, 150, 1] for f in range(10)]
    write_labels(tmp_path / "ref" / "dev-test" / "clip.csv", event)
    write_labels(tmp_path / "pred" / "clip.csv", event)
    result = _seldflow("score", "--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred"), "--onscreen")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["F"] == pytest.approx(1 / 13)  # one perfect class out of 13; absent classes count as F = 0
    assert metrics["DOAE"] == 0.0
    assert len(metrics["classwise_F"]) == 13
    assert metrics["OnscreenAcc"] == 1.0


def test_score_bad_input_names_the_file(tmp_path: Path) -> None:
    write_labels(tmp_path / "ref" / "clip.csv", [[0, 3, 0, 40, 150, 1]])
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "clip.csv").write_text("frame,class,source,azimuth,distance,onscreen\n0,99,0,0,0,0\n")
    result = _seldflow("score", "--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred"))
    assert result.returncode != 0
    assert "clip.csv: row 2: field 'class'" in result.stderr
    assert result.stdout == ""


def test_params_prints_the_reference_parameter_counts() -> None:
    result = _seldflow("params")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "SELDnet": 734_261,
        "CNN14_Conformer": 210_078_389,
        "CNN14_BiMamba": 178_113_205,
        "CNN14_BiMambaAC": 76_083_414,
        "CNN14_ConBiMamba": 338_247_349,
        "CNN14_ConBiMambaAC": 235_819_543,
        "HTSAT": 28_083_725,
    }
