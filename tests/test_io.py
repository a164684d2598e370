"""Validated audio I/O and atomic outputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seldflow.errors import InputError
from seldflow.io import atomic_dir, atomic_file, read_audio, write_audio

SR = 24000


@pytest.fixture
def stereo_wav(tmp_path: Path) -> Path:
    path = tmp_path / "clip.wav"
    t = np.arange(SR) / SR
    write_audio(path, np.stack([0.5 * np.sin(2 * np.pi * 440 * t), -0.25 * np.ones_like(t)]), SR)
    return path


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------------------------------
# read_audio / write_audio


def test_round_trip_is_16_bit_accurate(stereo_wav: Path) -> None:
    audio = read_audio(stereo_wav, sample_rate=SR, channels=2, frames=SR)
    assert audio.shape == (2, SR) and audio.dtype == np.float32 and audio.flags.c_contiguous
    t = np.arange(SR) / SR
    np.testing.assert_allclose(audio[0], 0.5 * np.sin(2 * np.pi * 440 * t), atol=1 / 32768)
    np.testing.assert_allclose(audio[1], -0.25, atol=1 / 32768)
    assert sf.info(str(stereo_wav)).subtype == "PCM_16"


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"sample_rate": 48000}, "sample_rate", "24000 Hz, expected 48000 Hz"),
        ({"sample_rate": SR, "channels": 4}, "channels", "has 2 channels, expected 4"),
        ({"sample_rate": SR, "frames": 120000}, "length", "has 24000 samples, expected 120000"),
    ],
)
def test_wrong_format_names_file_and_field(stereo_wav: Path, kwargs: dict, field: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        read_audio(stereo_wav, **kwargs)
    assert (err.value.path, err.value.field) == (str(stereo_wav), field)


def test_truncated_file_is_detected(stereo_wav: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.wav"
    data = stereo_wav.read_bytes()
    cut.write_bytes(data[: len(data) - 4 * 100])  # 100 stereo 16-bit frames missing
    with pytest.raises(InputError, match=f"truncated: header declares {SR} frames, file holds {SR - 100}") as err:
        read_audio(cut, sample_rate=SR, channels=2)
    assert err.value.path == str(cut)


@pytest.mark.parametrize("content", [b"not a wav file at all" * 20, b"RIFF\x24\x00\x00\x00WAVEfmt ", b""])
def test_corrupt_file_is_reported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "corrupt.wav"
    path.write_bytes(content)
    with pytest.raises(InputError, match="cannot read audio") as err:
        read_audio(path, sample_rate=SR)
    assert err.value.path == str(path)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found") as err:
        read_audio(tmp_path / "absent.wav", sample_rate=SR)
    assert err.value.path == str(tmp_path / "absent.wav")


def test_write_audio_refuses_clipping_and_non_finite_samples(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exceeds full scale"):
        write_audio(tmp_path / "loud.wav", np.full((2, 10), 1.5), SR)
    with pytest.raises(ValueError, match="NaN or infinite"):
        write_audio(tmp_path / "nan.wav", np.array([[0.1, np.nan]]), SR)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------------
# Atomic outputs


def test_atomic_file_publishes_on_success_with_default_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    with atomic_file(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert list(target.parent.iterdir()) == [target]
    assert target.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def test_atomic_file_leaves_nothing_when_the_block_raises(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_file_keeps_the_previous_output_when_the_block_raises(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("new")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_dir_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "outdir"
    target.mkdir()
    (target / "stale.txt").write_text("stale")
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("a")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert list(tmp_path.iterdir()) == [target]
    assert target.stat().st_mode & 0o777 == 0o777 & ~current_umask()


def test_atomic_dir_leaves_nothing_when_the_block_raises(tmp_path: Path) -> None:
    target = tmp_path / "outdir"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("a")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writers_remove_what_a_killed_writer_of_the_same_output_left(tmp_path: Path) -> None:
    (tmp_path / ".out.h5.abc123.tmp").write_text("partial")
    (tmp_path / ".other.h5.abc123.tmp").write_text("someone else's")
    (tmp_path / ".tree.xyz.tmp").mkdir()
    (tmp_path / ".tree.xyz.tmp" / "half.wav").write_text("partial")
    with atomic_file(tmp_path / "out.h5") as tmp:
        tmp.write_text("done")
    with atomic_dir(tmp_path / "tree") as tmp:
        (tmp / "a.wav").write_text("done")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.h5.abc123.tmp", "out.h5", "tree"]
