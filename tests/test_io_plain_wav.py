"""Reading plain WAV files without libsndfile (seldflow.io.plain_wav_layout / read_plain_wav).

The expectation is libsndfile's own reading of the same file (``soundfile.info`` and ``soundfile.read`` as float32):
the direct reader must report the same rate, channels and frames and return the very same samples, and must decline
(None) every file it does not read exactly that way, so that soundfile reads it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seldflow.io import plain_wav_layout, read_plain_wav


@pytest.mark.parametrize("channels", [1, 2, 4, 7])
@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_16"])
def test_plain_files_read_as_libsndfile_reads_them(tmp_path: Path, channels: int, subtype: str) -> None:
    rng = np.random.default_rng(channels)
    audio = rng.uniform(-1.0, 1.0, (1003, channels)).astype(np.float32)
    audio[:3] = [[-1.0] * channels, [1.0 - 2**-15] * channels, [0.0] * channels]
    path = tmp_path / "clip.wav"
    sf.write(str(path), audio, 32000, subtype=subtype)
    info = sf.info(str(path))
    expected, _ = sf.read(str(path), dtype="float32", always_2d=True)

    layout = plain_wav_layout(path)

    assert layout is not None
    assert (layout.sample_rate, layout.channels, layout.frames) == (info.samplerate, info.channels, info.frames)
    samples = read_plain_wav(path, layout)
    assert samples.dtype == np.float32 and samples.shape == expected.shape
    np.testing.assert_array_equal(samples, expected)
    for channel in range(channels):
        np.testing.assert_array_equal(read_plain_wav(path, layout, channel), expected[:, channel])


@pytest.mark.parametrize("subtype", ["PCM_24", "PCM_32", "DOUBLE", "PCM_U8", "ULAW"])
def test_other_sample_formats_are_left_to_soundfile(tmp_path: Path, subtype: str) -> None:
    path = tmp_path / "clip.wav"
    sf.write(str(path), np.zeros((10, 1), np.float32), 8000, subtype=subtype)
    assert plain_wav_layout(path) is None


def test_odd_files_are_left_to_soundfile(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    sf.write(str(good), np.zeros((100, 2), np.float32), 8000, subtype="FLOAT")
    data = good.read_bytes()
    cases = {
        "truncated.wav": data[:-40],  # the data chunk promises more than the file holds
        "not_riff.wav": b"RIFX" + data[4:],
        "empty.wav": b"",
        "flac.wav": None,
    }
    for name, content in cases.items():
        path = tmp_path / name
        if content is None:
            sf.write(str(path), np.zeros((100, 1), np.float32), 8000, format="FLAC")
        else:
            path.write_bytes(content)
        assert plain_wav_layout(path) is None, name
