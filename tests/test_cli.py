"""The installed ``seldflow`` console script and ``python -m seldflow``, as a user calls them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import BIN

from seldflow import cli
from seldflow.cli import EXIT_BROKEN_PIPE, EXIT_DATA_ERROR, EXIT_USAGE
from seldflow.feature_kinds import FEATURE_KINDS
from seldflow.labels import write_labels
from seldflow.models import MODELS
from seldflow.tasks.seld_methods import METHODS

# The parameter counts the reference implementations report (README, Models and experiments).
REFERENCE_COUNTS = {
    "seldnet": ("SELDnet", 2, 734_261),
    "cnn14_conformer": ("CNN14_Conformer", 7, 210_078_389),
    "cnn14_bimamba": ("CNN14_BiMamba", 7, 178_113_205),
    "cnn14_bimamba_ac": ("CNN14_BiMambaAC", 7, 76_083_414),
    "cnn14_conbimamba": ("CNN14_ConBiMamba", 7, 338_247_349),
    "cnn14_conbimamba_ac": ("CNN14_ConBiMambaAC", 7, 235_819_543),
    "htsat": ("HTSAT", 7, 28_083_725),
}
# PSELDNets' own count of its PaSST (multi_accdoa.PASST, 7 channels, 13 classes): layer-shape arithmetic in
# tests/test_passt.py.
PASST_REFERENCE = 51_170_549


def _seldflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "seldflow"), *args], capture_output=True, text=True)


def _python_m_seldflow(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seldflow", *args], capture_output=True, text=True, **kwargs)


def _score_folders(tmp_path: Path) -> list[str]:
    event = [[f, 3, 0, 40, 150, 1] for f in range(10)]
    write_labels(tmp_path / "ref" / "dev-test" / "clip.csv", event)
    write_labels(tmp_path / "pred" / "clip.csv", event)
    return ["--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred")]


def test_score_prints_one_json_object(tmp_path: Path) -> None:
    result = _seldflow("score", *_score_folders(tmp_path), "--onscreen")
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
    assert result.returncode == EXIT_DATA_ERROR  # a data error, not argparse's usage status
    assert "clip.csv: row 2: field 'class'" in result.stderr
    assert result.stdout == ""


def test_params_counts_every_model_per_method_and_feature_kind() -> None:
    result = _python_m_seldflow("params")
    assert result.returncode == 0, result.stderr
    table = json.loads(result.stdout)
    assert list(table) == list(MODELS)  # the train.model names
    for name, (reference_name, channels, parameters) in REFERENCE_COUNTS.items():
        entry = table[name]
        assert entry["reference"] == {"name": reference_name, "channels": channels, "parameters": parameters}
        assert list(entry["methods"]) == list(METHODS)
        for counts in entry["methods"].values():
            assert list(counts) == list(FEATURE_KINDS)
            assert counts["pfoa"] == counts["foa"]  # both 7 channels, 13 classes
        # The reference configuration is the stereo multi-ACCDOA on its own input.
        reference_kind = "logmel" if channels == 2 else "pfoa"
        assert entry["methods"]["maccdoa_xyd"][reference_kind] == parameters
        assert entry["methods"]["einv2"]["mic"] != entry["methods"]["maccdoa_xyd"]["pfoa"]
    # AdapterBit on the FOA multi-ACCDOA HTS-AT (13 classes): two adapters of d^2 + 1.5 d per Swin block (widths
    # 96, 192, 384, 768 in 2, 2, 6, 2 blocks) on top of the 28,083,725 of the network, whose 117-output head
    # (768 x 117 x 2 x 3 + 117) trains with the adapters and the 94,072 biases.
    adapterbit = table["htsat"]["adapterbit"]
    adapters = 2 * (2 * (96**2 + 144) + 2 * (192**2 + 288) + 6 * (384**2 + 576) + 2 * (768**2 + 1152))
    assert adapterbit["total"] == 28_083_725 + adapters
    assert adapterbit["trainable"] == adapters + 94_072 + 768 * 117 * 6 + 117
    assert "adapterbit" not in table["seldnet"]
    passt = table["passt"]["reference"]
    assert (passt["name"], passt["channels"]) == ("PaSST", 7)
    assert passt["parameters"] == passt["reference_parameters"] == PASST_REFERENCE
    assert "PSELDNets" in passt["counted"] and "instantiated" in passt["counted"]
    assert table["passt"]["methods"]["maccdoa"]["foa"] == PASST_REFERENCE  # 3 tracks x xyz x 13 = 117 outputs


def test_usage_errors_exit_2_and_data_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["score", "--pred", "x"], ["predict", "clip.wav"], ["params", "extra"], ["unknown"]):
        with pytest.raises(SystemExit) as stop:
            cli.main(argv)
        assert stop.value.code == EXIT_USAGE, argv
        assert "usage: seldflow" in capsys.readouterr().err
    missing = str(tmp_path / "missing")
    for argv in (
        ["score", "--ref", missing, "--pred", missing],
        ["predict", str(tmp_path / "clip.wav"), "--checkpoint", str(tmp_path / "best.pt")],
    ):
        assert cli.main(argv) == EXIT_DATA_ERROR, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and str(tmp_path) in err and "Traceback" not in err


def test_python_m_seldflow_is_the_command(tmp_path: Path) -> None:
    result = _python_m_seldflow("score", *_score_folders(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["DOAE"] == 0.0
    assert _python_m_seldflow("--version").stdout.startswith("seldflow ")


@pytest.mark.parametrize("command", ["params", "score"])
def test_a_closed_stdout_ends_quietly(tmp_path: Path, command: str) -> None:
    """The reader is gone before the first write: exit 141 like a program ended by SIGPIPE, no traceback."""
    args = _score_folders(tmp_path) if command == "score" else []
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "seldflow", command, *args], stdout=write_end, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write_end)
    assert result.returncode == EXIT_BROKEN_PIPE
    assert result.stderr == ""


def test_piped_into_head_there_is_no_traceback() -> None:
    pipeline = f"{sys.executable} -m seldflow params | head -n 0; echo ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True)
    assert result.stdout.strip() == str(EXIT_BROKEN_PIPE)  # head exits at once; seldflow writes after it is gone
    assert result.stderr == ""


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, shown in (
        (["predict", "--help"], ["(default: 0.5)", "(default: 15.0)", "(default: auto)"]),
        (["score", "--help"], ["(default: dcase2025)"]),
    ):
        with pytest.raises(SystemExit) as stop:
            cli.main(argv)
        assert stop.value.code == 0
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        for fragment in shown:
            assert fragment in text, (argv, fragment)
        assert "(default: None)" not in text and "(default: False)" not in text


def test_docstring_names_exactly_the_subcommands() -> None:
    named = re.search(r"Subcommands: (.+?)\. The workflow", cli.__doc__, re.S)
    assert named is not None
    commands = cli.build_parser()._subparsers._group_actions[0]
    assert set(re.findall(r"``(\w+)``", named.group(1))) == set(commands.choices)


def test_params_s5_reports_the_separators_within_half_a_percent_of_the_reference(tmp_path: Path) -> None:
    """`seldflow params --task s5`: ResUNet ≈ 26.72 M and ResUNetK ≈ 26.74 M trainable parameters (Task 4 estimates)."""
    result = subprocess.run(
        [sys.executable, "-m", "seldflow", "params", "--task", "s5"], capture_output=True, text=True, check=True
    )
    table = json.loads(result.stdout)
    for name, estimate in (("resunet", 26.72e6), ("resunetk", 26.74e6)):
        assert abs(table["separators"][name]["parameters"] - estimate) / estimate < 0.005
    assert table["taggers"]["m2d"]["head"] == 3840 * 18 + 18
    assert "trainable" in table["counted"]
