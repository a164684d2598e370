"""Reading plain WAV files without libsndfile (seldflow.io.plain_wav_layout / read_plain_wav / PlainWavReader).

The expectation is libsndfile's own reading of the same file (``soundfile.info`` and ``soundfile.read`` as float32):
the direct reader must report the same rate, channels and frames and return the very same samples, and must decline
(None) every file it does not read exactly that way, so that soundfile reads it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seldflow.io import PlainWavReader, plain_wav_layout, read_plain_wav


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


@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_16"])
def test_reader_reads_files_whole_as_libsndfile_reads_them(tmp_path: Path, subtype: str) -> None:
    """One reader for files of several sizes, the largest beyond its starting buffer (so it grows), and again
    for a small file after the large one: layouts and samples as libsndfile's, nothing left from earlier files."""
    rng = np.random.default_rng(3)
    reader = PlainWavReader(buffer_bytes=0)  # the smallest buffer: a header's worth
    for index, (frames, channels) in enumerate([(10, 1), (5000, 4), (3000, 1), (7, 2)]):
        path = tmp_path / f"clip{index}.wav"
        sf.write(str(path), rng.uniform(-1.0, 1.0, (frames, channels)).astype(np.float32), 16000, subtype=subtype)
        expected, _ = sf.read(str(path), dtype="float32", always_2d=True)
        found = reader.read(path)
        assert found is not None
        layout, samples = found
        assert layout == plain_wav_layout(path)
        assert samples.dtype == np.float32
        np.testing.assert_array_equal(samples, expected)
        for channel in range(channels):
            np.testing.assert_array_equal(reader.read(path, channel)[1], expected[:, channel])
        assert reader.layout(path) == layout
        out = np.full(frames, np.nan, np.float32)
        reader.samples(layout, channels - 1, out)  # straight into a caller's array, from the file read last
        np.testing.assert_array_equal(out, expected[:, channels - 1])


@pytest.mark.parametrize("subtype", ["PCM_24", "PCM_32", "DOUBLE", "PCM_U8", "ULAW"])
def test_other_sample_formats_are_left_to_soundfile(tmp_path: Path, subtype: str) -> None:
    path = tmp_path / "clip.wav"
    sf.write(str(path), np.zeros((10, 1), np.float32), 8000, subtype=subtype)
    assert plain_wav_layout(path) is None
    assert PlainWavReader().read(path) is None


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
        assert PlainWavReader().read(path) is None and PlainWavReader().layout(path) is None, name


def test_reader_judges_each_header_even_among_files_of_one_size(tmp_path: Path) -> None:
    """The reader reuses the verdict of the last file of a size only where every header byte the parser reads is
    the same: files of that size whose rate, channel count, sample format or chunks differ are read as
    libsndfile reads them, and one that is not a plain WAV is declined."""
    first = tmp_path / "first.wav"
    sf.write(str(first), np.linspace(-0.5, 0.5, 200, dtype=np.float32).reshape(100, 2), 8000, subtype="PCM_16")
    data = bytearray(first.read_bytes())
    fmt = data.index(b"fmt ") + 8
    rate = bytearray(data)
    rate[fmt + 4 : fmt + 8] = (16000).to_bytes(4, "little")
    mono = bytearray(data)  # one channel of twice the frames: channels, byte rate and block align
    mono[fmt + 2 : fmt + 4] = (1).to_bytes(2, "little")
    mono[fmt + 8 : fmt + 12] = (16000).to_bytes(4, "little")
    mono[fmt + 12 : fmt + 14] = (2).to_bytes(2, "little")
    renamed = bytearray(data)
    renamed[data.index(b"data") : data.index(b"data") + 4] = b"junk"
    reader = PlainWavReader()
    for name, content in {"first": data, "rate": rate, "mono": mono, "renamed": renamed, "again": data}.items():
        path = tmp_path / f"{name}.wav"
        path.write_bytes(bytes(content))
        layout = reader.layout(path)
        if name == "renamed":
            assert layout is None and plain_wav_layout(path) is None
            continue
        info = sf.info(str(path))
        assert layout == plain_wav_layout(path)
        assert (layout.sample_rate, layout.channels, layout.frames) == (info.samplerate, info.channels, info.frames)
        expected, _ = sf.read(str(path), dtype="float32", always_2d=True)
        np.testing.assert_array_equal(reader.samples(layout), expected)
