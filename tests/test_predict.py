"""Single-file inference: `seldflow predict` on a stereo recording of any length."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import BIN, TINY_MODEL, constant_model

from seldflow.errors import InputError
from seldflow.infer import predict_file
from seldflow.labels import SAMPLE_RATE, read_labels
from seldflow.models import build_model

FEATURES = {"kind": "pfoa", "n_fft": 1024, "win_length": 960, "hop_length": 480, "n_mels": 16,
            "sample_rate": SAMPLE_RATE, "clip_samples": 5 * SAMPLE_RATE, "lr_swap": False}  # fmt: skip


def _checkpoint(path: Path, active: bool = True) -> Path:
    torch.save(
        {
            "model_state": constant_model(active, channels=7).state_dict(),
            "model_name": "seldnet",
            "model_args": TINY_MODEL,
            "in_channels": 7,
            "feature_kind": "pfoa",
            "feature_config": FEATURES,
            "epoch": 1,
            "val_metrics": {},
        },
        path,
    )
    return path


def _recording(path: Path, seconds: float, channels: int = 2, rate: int = SAMPLE_RATE) -> Path:
    audio = 0.1 * np.random.default_rng(0).standard_normal((round(seconds * rate), channels))
    sf.write(path, audio, rate, subtype="PCM_16")
    return path


def test_long_recordings_are_covered_window_by_window(tmp_path: Path) -> None:
    rows = predict_file(_recording(tmp_path / "long.wav", 12.3), _checkpoint(tmp_path / "best.pt"))
    # The constant model detects class 3 at 45 degrees in every frame: 123 frames of 100 ms, no more.
    np.testing.assert_array_equal(rows[:, 0], np.arange(123))
    assert set(rows[:, 1]) == {3} and set(rows[:, 3]) == {45} and set(rows[:, 4]) == {250}


def test_silent_model_gives_no_rows(tmp_path: Path) -> None:
    rows = predict_file(_recording(tmp_path / "clip.wav", 5.0), _checkpoint(tmp_path / "best.pt", active=False))
    assert rows.shape == (0, 6)


@pytest.mark.parametrize(("channels", "rate", "field"), [(1, SAMPLE_RATE, "channels"), (2, 48000, "sample_rate")])
def test_wrong_channel_count_or_rate_is_named(tmp_path: Path, channels: int, rate: int, field: str) -> None:
    wav = _recording(tmp_path / "bad.wav", 1.0, channels=channels, rate=rate)
    with pytest.raises(InputError, match=f"field '{field}'") as excinfo:
        predict_file(wav, _checkpoint(tmp_path / "best.pt"))
    assert str(wav) in str(excinfo.value)


def test_command_line_writes_the_csv(tmp_path: Path) -> None:
    wav, checkpoint = _recording(tmp_path / "clip.wav", 2.0), _checkpoint(tmp_path / "best.pt")
    out = tmp_path / "clip.csv"
    result = subprocess.run(
        [str(BIN / "seldflow"), "predict", str(wav), "--checkpoint", str(checkpoint), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(read_labels(out, n_frames=None)[:, 0], np.arange(20))

    stdout = subprocess.run(
        [str(BIN / "seldflow"), "predict", str(wav), "--checkpoint", str(checkpoint)], capture_output=True, text=True
    )
    assert stdout.stdout.splitlines()[0] == "frame,class,source,azimuth,distance,onscreen"
    assert len(stdout.stdout.splitlines()) == 21

    bad = subprocess.run(
        [str(BIN / "seldflow"), "predict", str(tmp_path / "missing.wav"), "--checkpoint", str(checkpoint)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "missing.wav" in bad.stderr and "error:" in bad.stderr


def test_out_naming_an_existing_folder_is_a_clear_error(tmp_path: Path) -> None:
    wav, checkpoint = _recording(tmp_path / "clip.wav", 1.0), _checkpoint(tmp_path / "best.pt")
    folder = tmp_path / "predictions"
    folder.mkdir()
    result = subprocess.run(
        [str(BIN / "seldflow"), "predict", str(wav), "--checkpoint", str(checkpoint), "--out", str(folder)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"error: {folder}: field '--out': is a folder" in result.stderr
    assert "Traceback" not in result.stderr and list(folder.iterdir()) == []


# Released stereo checkpoints: the seed's main.py saves {"seld_model": model.state_dict(), "opt": ..., ...} with
# numpy scalars among its metrics and, for a DataParallel model, "module." before every key (see test_transfer).
RELEASED_BIMAMBA = {"widths": [4, 4, 4, 4, 4, 8], "layers": 1, "headdim": 4, "d_state": 4, "expand": 2}


def _released_checkpoint(path: Path) -> Path:
    """A tiny CNN14-BiMamba in the released layout whose output is the constant detection of ``constant_model``."""
    model = build_model("cnn14_bimamba", 7, **RELEASED_BIMAMBA)
    bias = torch.zeros(3, 3, 13)
    bias[1, 0, 3] = bias[1, 1, 3] = math.atanh(0.6)  # class 3 on track 1 at 45 degrees, 2.5 m
    bias[1, 2, 3] = 2.5
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(bias.flatten())
    state = {}
    for key, value in model.state_dict().items():  # the seed wraps the decoder in a Decoder module
        key = "decoder.decoder." + key.removeprefix("decoder.") if key.startswith("decoder.") else key
        state["module." + key] = value
    torch.save({"seld_model": state, "opt": {}, "epoch": 17, "best_f_score": np.float64(0.41)}, path)
    return path


def test_released_stereo_checkpoint_is_converted_in_memory(tmp_path: Path) -> None:
    released = _released_checkpoint(tmp_path / "best_model.pth")
    rows = predict_file(_recording(tmp_path / "clip.wav", 2.0), released)
    np.testing.assert_array_equal(rows[:, 0], np.arange(20))
    assert set(rows[:, 1]) == {3} and set(rows[:, 3]) == {45} and set(rows[:, 4]) == {250}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_model.pth", "clip.wav"]  # nothing written


def test_command_line_accepts_a_released_checkpoint(tmp_path: Path) -> None:
    released = _released_checkpoint(tmp_path / "best_model.pth")
    wav = _recording(tmp_path / "clip.wav", 1.0)
    result = subprocess.run(
        [str(BIN / "seldflow"), "predict", str(wav), "--checkpoint", str(released)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 11  # header and 10 frames of 100 ms


def test_a_checkpoint_of_neither_layout_names_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"weights": {"gru.weight": torch.zeros(2)}}, path)
    with pytest.raises(InputError, match="not a seldflow checkpoint: missing model_state") as error:
        predict_file(_recording(tmp_path / "clip.wav", 1.0), path)
    assert str(path) in str(error.value)
