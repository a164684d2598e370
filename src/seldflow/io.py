"""File helpers shared by every stage: atomic outputs and validated audio I/O.

Stages write through :func:`atomic_file` / :func:`atomic_dir` so that a crash, a kill or a validation error never
leaves a half-written output that a later run could mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import glob
import operator
import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from seldflow.errors import InputError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: ``os.umask`` can only be queried by setting it, which is not thread-safe.
_UMASK = _current_umask()


def _remove_stale_temporaries(target: Path) -> None:
    """Delete what a killed writer of ``target`` left (SIGKILL skips every cleanup), before writing it anew."""
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only if the block succeeds.

    One writer per output is assumed (Snakemake's contract), so leftovers of an earlier, killed writer are removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.chmod(0o666 & ~_UMASK)  # mkstemp creates 0600; give the output the permissions open() would
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; it replaces ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        tmp.chmod(0o777 & ~_UMASK)  # mkdtemp creates 0700; give the output the permissions mkdir() would
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def read_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int,
    channels: int | None = None,
    frames: int | None = None,
) -> np.ndarray:
    """Read a WAV file as float32 ``(channels, samples)``, checking rate, channel count and length.

    A truncated file is caught by ``frames`` (the expected length) and by comparing the header's declared data
    size with what libsndfile could actually read.
    """
    if not Path(path).is_file():
        raise InputError(path, "audio file not found")
    try:
        info = sf.info(str(path))
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise InputError(path, f"cannot read audio ({exc})", field="audio") from exc
    if rate != sample_rate:
        raise InputError(path, f"sample rate is {rate} Hz, expected {sample_rate} Hz", field="sample_rate")
    if channels is not None and data.shape[1] != channels:
        raise InputError(path, f"has {data.shape[1]} channels, expected {channels}", field="channels")
    if data.shape[0] != info.frames:
        raise InputError(path, f"truncated: header declares {info.frames} frames, read {data.shape[0]}")
    declared = _declared_wav_frames(Path(path), info)
    if declared is not None and declared != data.shape[0]:
        raise InputError(path, f"truncated: header declares {declared} frames, file holds {data.shape[0]}")
    if frames is not None and data.shape[0] != frames:
        raise InputError(path, f"has {data.shape[0]} samples, expected {frames}", field="length")
    return np.ascontiguousarray(data.T)


def wav_samples(path: str | os.PathLike[str], *, sample_rate: int, channels: int) -> int:
    """Samples per channel of a WAV after checking its header: rate, channel count, no truncation, not empty."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise InputError(path, f"cannot read audio ({exc})", field="audio") from exc
    if info.samplerate != sample_rate:
        raise InputError(path, f"sample rate is {info.samplerate} Hz, expected {sample_rate} Hz", field="sample_rate")
    if info.channels != channels:
        raise InputError(path, f"has {info.channels} channels, expected {channels}", field="channels")
    declared = _declared_wav_frames(Path(path), info)
    if declared is not None and declared != info.frames:
        raise InputError(path, f"truncated: header declares {declared} frames, file holds {info.frames}")
    if info.frames <= 0:
        raise InputError(path, "recording holds no samples", field="length")
    return int(info.frames)


def _declared_wav_frames(path: Path, info: sf._SoundFileInfo) -> int | None:
    """Frames the RIFF ``data`` chunk header promises; libsndfile silently shortens truncated files."""
    if info.format != "WAV":
        return None
    with path.open("rb") as fh:
        header = fh.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        block_align = None
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"fmt ":
                fmt = fh.read(size + (size & 1))
                block_align = int.from_bytes(fmt[12:14], "little")
                continue
            if chunk[:4] == b"data":
                if not block_align:
                    return None
                return size // block_align
            fh.seek(size + (size & 1), os.SEEK_CUR)


def read_bytes(path: str | os.PathLike[str], size: int | None = None, offset: int = 0) -> bytes:
    """``size`` bytes of a file from ``offset`` (all of it by default) with the bare os calls, which cost about
    half of ``open()`` for small files (thousands of label files and separated sources are read at a time)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        if size is None:
            size = os.fstat(descriptor).st_size - offset
        if offset:
            os.lseek(descriptor, offset, os.SEEK_SET)
        chunks, done = [], 0
        while done < size:
            chunk = os.read(descriptor, size - done)
            if not chunk:
                break
            chunks.append(chunk)
            done += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


# Bytes of a WAV file's start read to find its format and data chunk; a header longer than this goes to soundfile.
PLAIN_WAV_HEAD = 4096
# Sample formats read without libsndfile: (format tag, bits) -> numpy dtype. IEEE float is read as stored; 16-bit
# PCM divided by 2**15, which is exactly what libsndfile's float conversion gives (a power of two scaling).
_PLAIN_WAV_DTYPES = {(3, 32): "<f4", (1, 16): "<i2"}
_ITEMSIZE = {dtype: np.dtype(dtype).itemsize for dtype in _PLAIN_WAV_DTYPES.values()}
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# A RIFF chunk's id and length; the fmt chunk's format tag, channels, rate, byte rate, block align and bits.
_CHUNK_HEADER = struct.Struct("<4sI")
_FMT_FIELDS = struct.Struct("<HHIIHH")
_SUBFORMAT_TAG = struct.Struct("<H")
_RIFF_HEADER = struct.Struct("<4s4x4s")  # "RIFF", the size, "WAVE"
# Where WAVE_FORMAT_EXTENSIBLE's sub-format GUID (which starts with the format tag) lies in the fmt chunk, and the
# most of a fmt chunk the parser reads.
_SUBFORMAT_AT = 24
_FMT_READ = _SUBFORMAT_AT + _SUBFORMAT_TAG.size
# What the WAV parser reads from: bytes, or the reader's buffer.
_Buffer = bytes | bytearray | memoryview | np.ndarray


class WavLayout(NamedTuple):
    """Where a plain WAV file keeps its samples: what libsndfile reports for it, and the data chunk's place."""

    sample_rate: int
    channels: int
    frames: int
    offset: int
    dtype: str


def plain_wav_layout(path: str | os.PathLike[str]) -> WavLayout | None:
    """The layout of a little-endian WAV file of 32-bit float or 16-bit PCM samples whose whole data chunk is
    present, found from its first :data:`PLAIN_WAV_HEAD` bytes; None for any other file (read it with soundfile).

    Thousands of small files (separated sources) are read several times faster this way than through libsndfile,
    whose opening dominates for them, with the very same samples (:func:`read_plain_wav`).
    """
    descriptor = os.open(path, os.O_RDONLY)  # the os calls: about half the cost of open() for small files
    try:
        head = os.read(descriptor, PLAIN_WAV_HEAD)
        size = os.fstat(descriptor).st_size
    finally:
        os.close(descriptor)
    return wav_layout_of(head, size)


def wav_layout_of(head: _Buffer, size: int) -> WavLayout | None:
    """:func:`plain_wav_layout` of a file of ``size`` bytes whose first bytes are in ``head`` (any buffer; at most
    its first :data:`PLAIN_WAV_HEAD` bytes and never past ``size`` are looked at, so a file read whole is judged as
    one whose head was read)."""
    return _walk_header(head, size)[0]


def _walk_header(head: _Buffer, size: int) -> tuple[WavLayout | None, list[slice]]:
    """:func:`wav_layout_of` and the byte ranges of ``head`` it read to decide: the verdict is a function of those
    bytes and ``size`` alone, which is what lets :class:`PlainWavReader` reuse it for files alike."""
    end = min(len(head), size, PLAIN_WAV_HEAD)
    read = [slice(0, 4), slice(8, 12)]
    if end < 12 or _RIFF_HEADER.unpack_from(head) != (b"RIFF", b"WAVE"):
        return None, read
    offset, fmt = 12, None
    while offset + 8 <= end:
        read.append(slice(offset, offset + 8))
        chunk, length = _CHUNK_HEADER.unpack_from(head, offset)
        if chunk == b"fmt ":
            fmt = (offset + 8, max(0, min(length, end - offset - 8)))  # where it starts, how much of it is here
        elif chunk == b"data":
            if fmt is not None:
                read.append(slice(fmt[0], fmt[0] + min(fmt[1], _FMT_READ)))
            return _plain_layout(head, fmt, offset + 8, length, size), read
        offset += 8 + length + (length & 1)
    return None, read


def _plain_layout(head: _Buffer, fmt: tuple[int, int] | None, offset: int, length: int, size: int) -> WavLayout | None:
    if fmt is None or fmt[1] < _FMT_FIELDS.size:
        return None
    tag, channels, rate, _, block, bits = _FMT_FIELDS.unpack_from(head, fmt[0])
    if tag == _WAVE_FORMAT_EXTENSIBLE and fmt[1] >= _FMT_READ:
        (tag,) = _SUBFORMAT_TAG.unpack_from(head, fmt[0] + _SUBFORMAT_AT)
    dtype = _PLAIN_WAV_DTYPES.get((tag, bits))
    if dtype is None or channels < 1 or block != channels * bits // 8 or length % block or offset + length > size:
        return None
    return WavLayout(rate, channels, length // block, offset, dtype)


def read_plain_wav(path: str | os.PathLike[str], layout: WavLayout, channel: int | None = None) -> np.ndarray:
    """The samples of a file :func:`plain_wav_layout` described, as ``soundfile.read(path, dtype="float32",
    always_2d=True)`` returns them ``(frames, channels)``, or one channel ``(frames,)``."""
    raw = read_bytes(path, layout.frames * layout.channels * np.dtype(layout.dtype).itemsize, layout.offset)
    return _plain_samples(raw, layout, channel)


def _plain_samples(raw: bytes, layout: WavLayout, channel: int | None) -> np.ndarray:
    """The float32 samples (a new array) of a data chunk's bytes ``raw``."""
    samples = np.frombuffer(raw, dtype=layout.dtype, count=layout.frames * layout.channels)  # a short file: error
    return _as_float(_stored_samples(samples.view(np.uint8), layout, channel), layout)


def _stored_samples(raw: np.ndarray, layout: WavLayout, channel: int | None, offset: int = 0) -> np.ndarray:
    """The samples as stored (a view of the bytes ``raw[offset:]``, in the file's dtype): ``(frames, channels)``, or
    one channel ``(frames,)`` as a strided view."""
    end = offset + layout.frames * layout.channels * _ITEMSIZE[layout.dtype]
    samples = raw[offset:end].view(layout.dtype)
    if channel is not None:
        return samples[channel :: layout.channels]
    return samples.reshape(layout.frames, layout.channels)


def _as_float(samples: np.ndarray, layout: WavLayout, out: np.ndarray | None = None) -> np.ndarray:
    """Stored samples as new float32 (or written into ``out``, float32 of their shape)."""
    if out is None:
        out = samples.astype(np.float32)
    else:
        out[...] = samples
    if layout.dtype == "<i2":
        out /= np.float32(2**15)  # float32(x) / 2**15, as the float conversion of 16-bit PCM
    return out


# File sizes whose last header :class:`PlainWavReader` keeps, and layouts whose buffer views it keeps (a dataset's
# sources come in a few sizes and layouts).
_TEMPLATES = 64


class _HeaderTemplate(NamedTuple):
    """The bytes the header parser read of a plain WAV file (``read`` takes those ranges of a buffer), and the
    layout they gave."""

    read: Callable[[memoryview], tuple[memoryview, ...]]
    values: tuple[bytes, ...]
    layout: WavLayout


class PlainWavReader:
    """Reads whole plain WAV files (:func:`plain_wav_layout`'s kind) with one open and one read each, into a
    buffer it keeps between files.

    For thousands of small files (separated sources scored by CA-SDRi) the system calls and allocations per file
    are the cost: reading the header and then the samples opens every file twice, and a fresh buffer per file is
    allocated and freed each time. The samples are the very same as :func:`read_plain_wav`'s.
    """

    def __init__(self, buffer_bytes: int = 1 << 18) -> None:
        self._buffer = np.empty(max(buffer_bytes, PLAIN_WAV_HEAD), dtype=np.uint8)
        self._view = memoryview(self._buffer)
        self._templates: dict[int, _HeaderTemplate] = {}
        self._stored: dict[tuple[WavLayout, int | None], np.ndarray] = {}

    def read(self, path: str | os.PathLike[str], channel: int | None = None) -> tuple[WavLayout, np.ndarray] | None:
        """The layout and the float32 samples ``(frames, channels)`` (or one ``channel``, ``(frames,)``) of a plain
        WAV file; None for any other file (read it with soundfile), as :func:`plain_wav_layout` decides."""
        layout = self.layout(path)
        if layout is None:
            return None
        return layout, self.samples(layout, channel)

    def layout(self, path: str | os.PathLike[str]) -> WavLayout | None:
        """:func:`plain_wav_layout` of a file read whole (its samples stay in the buffer until the next read, for
        :meth:`samples`).

        Files written alike (the sources of a dataset) have headers that differ only in bytes the parser never
        reads (a PEAK chunk's values): when the bytes it read for the last plain file of this size are the same
        here, that file's layout is this one's, and the chunks are not walked again (a quarter of the time per
        small file went to the walk).
        """
        size = self._read_whole(path)
        template = self._templates.get(size)
        if template is not None and template.read(self._view) == template.values:
            return template.layout
        layout, read = _walk_header(self._buffer, size)
        if layout is not None:
            if len(self._templates) >= _TEMPLATES:
                self._templates.clear()
            getter = operator.itemgetter(*read)
            self._templates[size] = _HeaderTemplate(getter, tuple(map(bytes, getter(self._view))), layout)
        return layout

    def samples(self, layout: WavLayout, channel: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """The float32 samples of the file :meth:`layout` read last (``layout`` is what it returned), as
        :meth:`read` gives them, or written into ``out`` (one copy, straight from the buffer)."""
        key = (layout, channel)
        stored = self._stored.get(key)
        if stored is None:  # a view of the buffer, kept: files alike are read into the same place
            if len(self._stored) >= _TEMPLATES:
                self._stored.clear()
            stored = self._stored[key] = _stored_samples(self._buffer, layout, channel, layout.offset)
        return _as_float(stored, layout, out)

    def _read_whole(self, path: str | os.PathLike[str]) -> int:
        """Read the whole file into the buffer (grown when the file is larger); returns its size in bytes."""
        descriptor = os.open(path, os.O_RDONLY)
        try:
            done = os.readv(descriptor, [self._buffer])
            if done < len(self._buffer):  # the end of the file (a short read would only look truncated: soundfile)
                return done
            size = os.fstat(descriptor).st_size
            if size >= len(self._buffer):
                grown = np.empty(size + 1, dtype=np.uint8)
                grown[:done] = self._buffer[:done]
                self._buffer, self._view = grown, memoryview(grown)
                self._stored.clear()  # views of the old buffer
            while done < len(self._buffer):
                chunk = os.readv(descriptor, [self._buffer[done:]])
                if not chunk:
                    break
                done += chunk
            return done  # the whole file, or as much of a file that grew while read as fits
        finally:
            os.close(descriptor)


def write_audio(
    path: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: int,
    *,
    subtype: str = "PCM_16",
    container: str = "WAV",
) -> None:
    """Write ``(channels, samples)`` float audio as WAV, 16-bit PCM by default, refusing to clip silently.

    ``subtype="FLOAT"`` keeps float32 samples exactly (separated sources and their references, whose SNRs would
    otherwise be bounded by the quantisation noise of quiet signals); it cannot clip, so any finite peak is kept.
    ``container="FLAC"`` writes lossless FLAC instead (the released PSELDNets data), 16-bit PCM only.
    """
    audio = np.asarray(audio)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if not np.isfinite(peak):
        raise ValueError(f"{path}: audio contains NaN or infinite samples")
    if peak > 1.0 and subtype != "FLOAT":
        raise ValueError(f"{path}: audio peak {peak:.3f} exceeds full scale; normalise before writing")
    with atomic_file(path) as tmp:
        sf.write(str(tmp), audio.T, sample_rate, subtype=subtype, format=container)
