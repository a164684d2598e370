"""Archive reader: plain and split zip files unpacked safely and atomically.

Archives come from the internet (Zenodo records of tens of gigabytes), so nothing in them is trusted. Every member
of every archive is checked from the central directories before a byte is written, and an archive holding a member
that would land outside the target (absolute paths, ``..``), a symlink or other special file, or two members of
the same name (readers disagree on which one wins) is refused with an :class:`~seldflow.errors.InputError` naming
the archive and the member. Unpacking goes into a temporary sibling that replaces the target only when every member
is out, so a failure leaves the previous tree as it was.

Supported archives: plain ``.zip`` files (zip64 included) and split zips ``name.z01 ... name.zNN`` + ``name.zip``,
both the Info-ZIP kind written by ``zip -s`` (member offsets counted per part; the parts are read as one stream
whose central directory is rebased to single-part offsets in memory, no joined copy on disk) and plain byte splits
of an ordinary zip. Other formats (tar, 7z, multi-volume archives of other tools) are kept as files.

:func:`byte_bar` and :func:`require_free` are shared with :mod:`seldflow.download`, whose transfers report
progress and check the disk the same way.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import os
import re
import shutil
import stat
import struct
import sys
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO

from tqdm import tqdm

from seldflow.errors import InputError
from seldflow.io import atomic_dir

# Bytes per read and write when copying members (and downloading): large enough to be fast, small enough to stream.
CHUNK = 1 << 20
_SPLIT_PART = re.compile(r"^(?P<stem>.+)\.z(?P<number>\d{2,})$", re.IGNORECASE)


def byte_bar(desc: str, total: int | None, progress: bool, *, initial: int = 0) -> tqdm:
    """A progress bar in bytes on stderr, refreshed often on a terminal and sparsely in a rule's log file."""
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not progress,
        file=sys.stderr,
        mininterval=0.5 if sys.stderr.isatty() else 30.0,
    )


def require_free(folder: Path, needed: int, what: str) -> None:
    """Fail before writing anything when ``folder``'s disk cannot hold ``needed`` more bytes."""
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise InputError(folder, f"needs {needed / 1e9:.2f} GB for {what}, {free / 1e9:.2f} GB are free")


def split_parts(archive: str | os.PathLike[str]) -> list[Path]:
    """``name.zip`` plus its on-disk split parts ``name.z01 ...``, in reading order (just ``[name.zip]`` if none)."""
    archive = Path(archive)
    parts = [
        path
        for path in archive.parent.glob(f"{_glob_escape(archive.stem)}.[zZ][0-9]*")
        if _SPLIT_PART.match(path.name) and _SPLIT_PART.match(path.name)["stem"] == archive.stem
    ]
    return _ordered_parts(archive, parts)


def _glob_escape(text: str) -> str:
    """``text`` with glob metacharacters escaped (pathlib has no ``glob.escape``)."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def group_archives(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[list[Path]], list[Path]]:
    """Split downloaded files into zip archives (each a list of parts in order) and other files.

    A ``.zNN`` part whose ``.zip`` is not among ``paths``, or a gap in the part numbers, is an error: unpacking a
    split archive without all its parts can only fail later, less clearly.
    """
    paths = [Path(p) for p in paths]
    zips = [p for p in paths if p.suffix.lower() == ".zip"]
    parts = [p for p in paths if _SPLIT_PART.match(p.name)]
    archives = []
    for archive in zips:
        mine = [p for p in parts if _SPLIT_PART.match(p.name)["stem"] == archive.stem and p.parent == archive.parent]
        archives.append(_ordered_parts(archive, mine))
    claimed = {p for group in archives for p in group}
    for part in parts:
        if part not in claimed:
            raise InputError(part, f"split archive part without its final {_SPLIT_PART.match(part.name)['stem']}.zip")
    others = [p for p in paths if p not in claimed]
    return archives, others


def _ordered_parts(archive: Path, parts: Sequence[Path]) -> list[Path]:
    numbered = sorted(parts, key=lambda p: int(_SPLIT_PART.match(p.name)["number"]))
    numbers = [int(_SPLIT_PART.match(p.name)["number"]) for p in numbered]
    if numbers != list(range(1, len(numbers) + 1)):
        found = ", ".join(f".z{number:02d}" for number in numbers)
        raise InputError(archive, f"split archive parts are not numbered from .z01 without gaps: found {found}")
    return [*numbered, archive]


def unpack(
    archive_or_parts: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    dest_dir: str | os.PathLike[str],
    *,
    progress: bool = False,
) -> Path:
    """Unpack one zip archive into ``dest_dir`` (replacing it) atomically; return ``dest_dir``.

    ``archive_or_parts`` is a ``.zip`` (its split parts ``.z01 ...`` next to it are found automatically) or the
    parts of a split archive in order, ending with the ``.zip``. Unsafe members are refused before anything is
    written; any failure leaves ``dest_dir`` as it was.
    """
    if isinstance(archive_or_parts, str | os.PathLike):
        parts = split_parts(archive_or_parts)
    else:
        parts = [Path(p) for p in archive_or_parts]
    return unpack_all([parts], dest_dir, progress=progress)


def unpack_all(
    archives: Sequence[Sequence[str | os.PathLike[str]]],
    dest_dir: str | os.PathLike[str],
    *,
    files: Sequence[str | os.PathLike[str]] = (),
    progress: bool = False,
) -> Path:
    """Unpack several archives (each a list of parts) and place ``files`` alongside, all or nothing.

    A first pass reads only the central directories: every member of every archive is checked (unsafe paths, links,
    two archives writing the same file) and the disk must hold the unpacked size (which also bounds zip bombs:
    members are never inflated past their declared size) before a byte is written. Plain ``files`` are hard-linked
    when possible (no second copy of a large file), copied otherwise.
    """
    groups = [[Path(p) for p in parts] for parts in archives]
    files = [Path(f) for f in files]
    owners: dict[str, str] = {}
    needed = 0
    for parts in groups:
        for path in parts:
            if not path.is_file():
                raise InputError(path, "archive not found")
        with _open_zip(parts) as archive:
            needed += _check_members(archive, parts[-1], owners)
    for file in files:
        _check_owner(owners, file.name, str(file))
    Path(dest_dir).parent.mkdir(parents=True, exist_ok=True)
    require_free(Path(dest_dir).parent, needed, "unpacked archives")
    with atomic_dir(dest_dir) as tmp:
        for parts in groups:
            with _open_zip(parts) as archive:
                _extract(archive, parts[-1], tmp, progress)
        for file in files:
            target = tmp / file.name
            try:
                os.link(file, target)
            except OSError:
                shutil.copy2(file, target)
    return Path(dest_dir)


@contextlib.contextmanager
def _open_zip(parts: Sequence[Path]) -> Iterator[zipfile.ZipFile]:
    label = parts[-1]
    try:
        if len(parts) == 1:
            with zipfile.ZipFile(parts[0]) as archive:
                yield archive
        else:
            with _SplitZip(parts) as stream, zipfile.ZipFile(stream) as archive:
                yield archive
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise InputError(label, f"cannot unpack ({exc})") from exc


def _check_members(archive: zipfile.ZipFile, label: Path, owners: dict[str, str]) -> int:
    """Refuse unsafe, duplicated or colliding members; return the unpacked size in bytes."""
    total = 0
    names: dict[str, str] = {}
    for info in archive.infolist():
        relative = _safe_member_path(info, label)
        _check_unique(names, relative, info.filename, label)
        if not info.is_dir():
            _check_owner(owners, relative, str(label))
            total += info.file_size
    return total


def _extract(archive: zipfile.ZipFile, label: Path, into: Path, progress: bool) -> None:
    """Write every member (our own loop: zipfile's ``extract`` silently rewrites the unsafe names we refuse)."""
    members = [(info, _safe_member_path(info, label)) for info in archive.infolist()]
    total = sum(info.file_size for info, _ in members)
    with byte_bar(f"unpack {label.name}", total, progress) as bar:
        for info, relative in members:
            target = into / relative
            try:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK)
            except (OSError, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise InputError(label, f"cannot unpack member '{info.filename}' ({exc})") from exc
            bar.update(info.file_size)


def _safe_member_path(info: zipfile.ZipInfo, label: Path) -> str:
    """The member's path relative to the target, or an error if it is absolute, escapes it or is a link."""
    name = info.filename.replace("\\", "/")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InputError(label, f"member '{info.filename}' is a symbolic link; refusing to unpack")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise InputError(label, f"member '{info.filename}' is a special file; refusing to unpack")
    path = PurePosixPath(name)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in path.parts:
        raise InputError(label, f"member '{info.filename}' would be written outside the target; refusing to unpack")
    relative = "/".join(part for part in path.parts if part != ".")
    if not relative:
        raise InputError(label, f"member '{info.filename}' has an empty path")
    return relative


def _check_unique(names: dict[str, str], relative: str, name: str, label: Path) -> None:
    """Record member ``name`` at path ``relative``; a second member for the same path is an error.

    Which of two same-named members ends up on disk depends on the reader (``zipfile`` indexes the last, other tools
    take the first), so such an archive has no single content: a checksum over it vouches for neither copy.
    """
    if relative in names:
        first = names[relative]
        spelled = "" if first == name else f" (first as '{first}')"
        raise InputError(label, f"member '{name}' appears twice{spelled}; refusing to unpack")
    names[relative] = name


def _check_owner(owners: dict[str, str], relative: str, source: str) -> None:
    """Record that ``source`` (an archive or a file) writes ``relative``; a second source for it is an error."""
    previous = owners.setdefault(relative, source)
    if previous != source:
        raise InputError(source, f"'{relative}' would overwrite the same path from {previous}")


# Split zips. Info-ZIP (`zip -s`) counts every local-header offset from the start of the part ("disk") holding
# the header, and the first part opens with a 4-byte spanning signature that offsets on disk 0 include. Read as one
# stream, the parts are a valid zip once the central directory says "disk 0" and holds absolute offsets. We build
# that central directory in memory and serve it after the member data, instead of copying tens of GB.

_EOCD = struct.Struct("<4s4H2LH")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR64 = struct.Struct("<4sLQL")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_MAX16, _MAX32 = 0xFFFF, 0xFFFFFFFF
_SIG_EOCD, _SIG_EOCD64, _SIG_LOCATOR64 = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07"
_SIG_CENTRAL, _SIG_LOCAL = b"PK\x01\x02", b"PK\x03\x04"


class _Segments(io.RawIOBase):
    """A read-only, seekable byte stream made of file prefixes and in-memory bytes laid end to end."""

    def __init__(self, segments: Sequence[tuple[Path | bytes, int]]) -> None:
        super().__init__()
        self._sources = [source for source, _ in segments]
        self._lengths = [length for _, length in segments]
        self._starts = [sum(self._lengths[:i]) for i in range(len(segments))]
        self._size = sum(self._lengths)
        self._handles: dict[int, BinaryIO] = {}
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size:
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        within = self._pos - self._starts[index]
        count = min(len(buffer), self._lengths[index] - within)
        source = self._sources[index]
        if isinstance(source, bytes):
            data = source[within : within + count]
        else:
            handle = self._handles.get(index)
            if handle is None:
                handle = self._handles[index] = open(source, "rb")  # noqa: SIM115 (closed in close())
            handle.seek(within)
            data = handle.read(count)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
        super().close()


class _SplitZip(io.BufferedReader):
    """The parts of a split zip as one stream with a rebased single-part central directory."""

    def __init__(self, parts: Sequence[Path]) -> None:
        sizes = [p.stat().st_size for p in parts]
        # Unbuffered on purpose: rebasing reads 4 bytes at each member's header, a buffer would read 1 MiB each.
        with _Segments(list(zip(parts, sizes, strict=True))) as joined:
            cut, tail = _rebased_directory(joined, parts, sizes)
        segments: list[tuple[Path | bytes, int]] = []
        remaining = cut
        for path, size in zip(parts, sizes, strict=True):
            segments.append((path, min(size, remaining)))
            remaining -= segments[-1][1]
        super().__init__(_Segments([*segments, (tail, len(tail))]), CHUNK)


def _read_at(stream: IO[bytes], offset: int, count: int) -> bytes:
    """Exactly ``count`` bytes at ``offset`` (fewer only at the end): a raw read may stop at a part boundary."""
    stream.seek(offset)
    chunks, left = [], count
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _rebased_directory(joined: IO[bytes], parts: Sequence[Path], sizes: Sequence[int]) -> tuple[int, bytes]:
    """Where the old central directory starts in the joined stream, and the new directory + end records."""
    label = parts[-1]
    total = sum(sizes)
    tail_start = max(0, total - _EOCD.size - _MAX16)
    tail = _read_at(joined, tail_start, total - tail_start)
    position = len(tail)
    while True:
        position = tail.rfind(_SIG_EOCD, 0, position)
        if position < 0:
            raise InputError(label, "no zip end-of-central-directory record: not a zip, or a part is missing")
        if position + _EOCD.size <= len(tail):
            eocd = _EOCD.unpack_from(tail, position)
            if position + _EOCD.size + eocd[7] == len(tail):
                break
    _, disk, cd_disk, _, entries, cd_size, cd_offset, _ = eocd
    eocd_at = tail_start + position
    locator = _read_at(joined, eocd_at - _LOCATOR64.size, _LOCATOR64.size) if eocd_at >= _LOCATOR64.size else b""
    zip64 = _LOCATOR64.unpack(locator) if locator[:4] == _SIG_LOCATOR64 else None
    # The number of disks tells the layout: len(parts) (an Info-ZIP split, offsets per part) or 1 (a byte split).
    disks = zip64[3] if zip64 is not None else disk + 1
    if disks == 1:
        starts = [0]
    elif disks == len(parts):
        starts = [sum(sizes[:i]) for i in range(len(parts))]
    else:
        raise InputError(label, f"the archive has {disks} parts, {len(parts)} were given")
    if zip64 is not None:
        record = _read_at(joined, _absolute(starts, zip64[1], zip64[2], label), _EOCD64.size)
        if record[:4] != _SIG_EOCD64:
            raise InputError(label, "broken zip64 end-of-central-directory record")
        _, _, _, _, _, cd_disk, _, entries, cd_size, cd_offset = _EOCD64.unpack(record)
    cd_at = _absolute(starts, cd_disk, cd_offset, label)
    directory = _read_at(joined, cd_at, cd_size)
    rebased, position = [], 0
    for _ in range(entries):
        if directory[position : position + 4] != _SIG_CENTRAL:
            raise InputError(label, "broken central directory")
        fixed = _CENTRAL.unpack_from(directory, position)
        end = position + _CENTRAL.size + fixed[12] + fixed[13] + fixed[14]
        entry, absolute = _rebase_central_entry(directory[position:end], starts, label)
        if _read_at(joined, absolute, 4) != _SIG_LOCAL:
            name = directory[position + _CENTRAL.size : position + _CENTRAL.size + fixed[12]].decode(errors="replace")
            raise InputError(
                label,
                f"member '{name}' is not where the central directory says: parts missing, out of order or "
                "from another archive",
            )
        rebased.append(entry)
        position = end
    return cd_at, _end_records(b"".join(rebased), cd_at, entries)


def _absolute(starts: Sequence[int], disk: int, offset: int, label: Path) -> int:
    if disk >= len(starts):
        raise InputError(label, f"the archive refers to part {disk + 1}, {len(starts)} part(s) were given")
    return starts[disk] + offset


def _rebase_central_entry(entry: bytes, starts: Sequence[int], label: Path) -> tuple[bytes, int]:
    """One central-directory entry moved to disk 0 with an absolute local-header offset (zip64 when needed)."""
    fields = list(_CENTRAL.unpack_from(entry))
    name_end = _CENTRAL.size + fields[12]
    extra_end = name_end + fields[13]
    name, extra, comment = entry[_CENTRAL.size : name_end], entry[name_end:extra_end], entry[extra_end:]
    csize, usize, disk, offset = fields[10], fields[11], fields[15], fields[18]
    zip64, others = b"", b""
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, position)
        record = extra[position : position + 4 + length]
        if tag == 1:
            zip64 = record[4:]
        else:
            others += record
        position += 4 + length
    values = iter(struct.unpack_from(f"<{len(zip64) // 8}Q", zip64) if zip64 else ())
    try:
        usize = next(values) if usize == _MAX32 else usize
        csize = next(values) if csize == _MAX32 else csize
        offset = next(values) if offset == _MAX32 else offset
    except StopIteration:
        raise InputError(label, f"member {name!r} lacks its zip64 sizes") from None
    if disk == _MAX16:
        used = sum(8 for field in (fields[11], fields[10], fields[18]) if field == _MAX32)
        disk = struct.unpack_from("<L", zip64, used)[0]
    absolute = _absolute(starts, disk, offset, label)
    wide = [value for value in (usize, csize, absolute) if value >= _MAX32]
    fields[11] = _MAX32 if usize >= _MAX32 else usize
    fields[10] = _MAX32 if csize >= _MAX32 else csize
    fields[18] = _MAX32 if absolute >= _MAX32 else absolute
    fields[15] = 0
    extra = (struct.pack(f"<HH{len(wide)}Q", 1, 8 * len(wide), *wide) if wide else b"") + others
    fields[13] = len(extra)
    return _CENTRAL.pack(*fields) + name + extra + comment, absolute


def _end_records(directory: bytes, cd_at: int, entries: int) -> bytes:
    """Central directory + (zip64 end record and locator when a field overflows) + end record, single part."""
    size = len(directory)
    records = directory
    if entries >= _MAX16 or size >= _MAX32 or cd_at >= _MAX32:
        zip64_at = cd_at + size
        records += _EOCD64.pack(_SIG_EOCD64, _EOCD64.size - 12, 45, 45, 0, 0, entries, entries, size, cd_at)
        records += _LOCATOR64.pack(_SIG_LOCATOR64, 0, zip64_at, 1)
    return records + _EOCD.pack(
        _SIG_EOCD, 0, 0, min(entries, _MAX16), min(entries, _MAX16), min(size, _MAX32), min(cd_at, _MAX32), 0
    )
