"""Download stage: fetch public datasets from Zenodo records, verify them and unpack them safely.

Real SELD data (the DCASE2025 stereo set, STARSS23, FSD50K, measured room responses) lives in Zenodo records of
tens of gigabytes, fetched over connections that drop. So every transfer

- streams into ``<name>.part`` and resumes it with an HTTP ``Range`` request, after a kill or a dropped connection;
- retries transient failures (connection reset, timeout, HTTP 5xx/429) with exponential backoff, where only
  consecutive attempts that add no byte count against the limit;
- is checked against the record's size and md5 checksum; only a verified file gets its real name (atomic rename),
  so a file under its final name is always complete and correct, and a bad one is deleted with an error naming
  both checksums.

Archives are unpacked atomically (into a temporary sibling that replaces the target only when every member is
out), refusing members that would land outside the target (absolute paths, ``..``) or that are symlinks or other
special files. Supported archives: plain ``.zip`` files (zip64 included) and split zips ``name.z01 ... name.zNN`` +
``name.zip``, both the Info-ZIP kind written by ``zip -s`` (member offsets counted per part; the parts are read as
one stream whose central directory is rebased to single-part offsets in memory, no joined copy on disk) and plain
byte splits of an ordinary zip. Other formats (tar, 7z, multi-volume archives of other tools) are kept as files.

Only the standard library is used for HTTP (``urllib``), so the stage needs nothing beyond seldflow itself.
"""

from __future__ import annotations

import bisect
import contextlib
import email.utils
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import ssl
import stat
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, NoReturn

from tqdm import tqdm

from seldflow import __version__
from seldflow.errors import InputError
from seldflow.io import atomic_dir, atomic_file

DEFAULT_API_URL = "https://zenodo.org/api"
DATASETS_TABLE = Path(__file__).resolve().parents[2] / "resources" / "datasets.tsv"
# The workflow's `download:` config section; these are its defaults.
DEFAULTS: dict[str, Any] = {"api_url": DEFAULT_API_URL, "retries": 5, "backoff_s": 2.0, "timeout_s": 60.0}
DOWNLOADS_DIR = "downloads"
UNPACKED_DIR = "data"
PART_SUFFIX = ".part"

_CHUNK = 1 << 20
_MAX_BACKOFF_S = 120.0
_USER_AGENT = f"seldflow/{__version__} (dataset download)"
_TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_SPLIT_PART = re.compile(r"^(?P<stem>.+)\.z(?P<number>\d{2,})$", re.IGNORECASE)
_TRUE = {"yes", "true", "1"}
_FALSE = {"no", "false", "0"}


@dataclass(frozen=True)
class RemoteFile:
    """One file of a record: its name, download URL, size in bytes and checksum (``"md5:<hex>"``), when known."""

    name: str
    url: str
    size: int | None = None
    checksum: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """One row of the dataset table: which Zenodo record, which of its files (empty: all) and whether to unpack."""

    name: str
    record_id: str
    files: tuple[str, ...] = ()
    unpack: bool = True
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so Snakemake can store it as a rule parameter (and rerun when it changes)."""
        data = asdict(self)
        data["files"] = list(self.files)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetSpec:
        return cls(**{**data, "files": tuple(data.get("files", ())), "record_id": str(data["record_id"])})


class _TransientError(Exception):
    """A transfer problem worth retrying (the connection closed early, the server sent an unexpected range)."""


# --------------------------------------------------------------------------------------------------------------
# The dataset table


def load_datasets(path: str | os.PathLike[str] = DATASETS_TABLE) -> dict[str, DatasetSpec]:
    """Read the tab-separated dataset table (columns ``dataset record files unpack [note]``).

    ``files`` is a comma-separated list of file names or glob patterns; ``*`` or an empty cell means every file of
    the record. Lines starting with ``#`` are comments. Errors name the table, row and column.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "dataset table not found")
    rows = [
        (number, line)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not rows:
        raise InputError(path, "dataset table is empty")
    header = rows[0][1].split("\t")
    missing = [column for column in ("dataset", "record", "files", "unpack") if column not in header]
    if missing:
        raise InputError(path, f"header lacks column(s) {missing}; it has {header}", row=rows[0][0])
    specs: dict[str, DatasetSpec] = {}
    for number, line in rows[1:]:
        cells = line.split("\t")
        if len(cells) > len(header):
            raise InputError(path, f"{len(cells)} tab-separated cells, the header has {len(header)}", row=number)
        row = dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True))
        spec = _parse_row(path, number, row)
        if spec.name in specs:
            raise InputError(path, f"dataset '{spec.name}' is listed twice", row=number, field="dataset")
        specs[spec.name] = spec
    return specs


def _parse_row(path: Path, number: int, row: Mapping[str, str]) -> DatasetSpec:
    name, record = row["dataset"].strip(), row["record"].strip()
    if not _NAME.match(name):
        raise InputError(path, f"'{name}' is not a valid name (letters, digits, _ and -)", row=number, field="dataset")
    if not record.isdigit():
        raise InputError(path, f"'{record}' is not a numeric Zenodo record id", row=number, field="record")
    files = tuple(item.strip() for item in row["files"].split(",") if item.strip())
    if files == ("*",):
        files = ()
    for item in files:
        if "/" in item or "\\" in item:
            raise InputError(path, f"'{item}' is not a file name of the record", row=number, field="files")
    unpack = row["unpack"].strip().lower()
    if unpack not in _TRUE | _FALSE:
        raise InputError(path, f"'{row['unpack']}' is not yes or no", row=number, field="unpack")
    return DatasetSpec(name, record, files, unpack in _TRUE, row.get("note", "").strip())


# --------------------------------------------------------------------------------------------------------------
# Zenodo records


def parse_record(payload: Any, *, source: str) -> list[RemoteFile]:
    """The files of a Zenodo record as returned by ``GET /api/records/<id>``.

    Accepts the record serialisation (``files: [{key, size, checksum: "md5:...", links: {self}}]``) and the
    InvenioRDM one (``files: {entries: {<key>: {..., links: {content}}}}``), so a change of Zenodo's default
    serialiser does not break downloads.
    """
    if not isinstance(payload, dict):
        raise InputError(source, "not a Zenodo record (expected a JSON object)")
    files = payload.get("files")
    if isinstance(files, dict):
        files = list((files.get("entries") or {}).values())
    if not isinstance(files, list) or not files:
        raise InputError(source, "the record lists no files (restricted or embargoed?)", field="files")
    remote = []
    for index, entry in enumerate(files):
        if not isinstance(entry, dict):
            raise InputError(source, "file entry is not an object", field=f"files[{index}]")
        name = entry.get("key") or entry.get("filename")
        links = entry.get("links") or {}
        url = links.get("content") or links.get("download") or links.get("self")
        if not isinstance(name, str) or not name or not isinstance(url, str):
            raise InputError(source, "file entry lacks a name or a download link", field=f"files[{index}]")
        if "/" in name or "\\" in name or name in (".", ".."):
            raise InputError(source, f"file name '{name}' is not a plain file name", field=f"files[{index}]")
        size = entry.get("size", entry.get("filesize"))
        checksum = entry.get("checksum")
        if isinstance(checksum, str) and checksum and ":" not in checksum:
            checksum = f"md5:{checksum}"  # the deposition API gives a bare md5
        remote.append(
            RemoteFile(
                name=name,
                url=url,
                size=int(size) if isinstance(size, int | float) else None,
                checksum=checksum.lower() if isinstance(checksum, str) and checksum else None,
            )
        )
    return remote


def fetch_record(
    record_id: str | int,
    *,
    api_url: str = DEFAULT_API_URL,
    retries: int = DEFAULTS["retries"],
    backoff_s: float = DEFAULTS["backoff_s"],
    timeout_s: float = DEFAULTS["timeout_s"],
) -> list[RemoteFile]:
    """List the files of a Zenodo record (``GET {api_url}/records/{record_id}``), retrying transient failures."""
    url = f"{api_url.rstrip('/')}/records/{record_id}"
    failures = 0
    while True:
        try:
            body = _read_url(url, timeout_s)
            break
        except Exception as exc:
            if not _is_transient(exc):
                _raise_permanent(url, exc)
            failures += 1
            if failures > retries:
                raise InputError(url, f"failed after {failures} attempts: {_describe(exc)}") from exc
            _pause(url, exc, failures, retries, backoff_s)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(url, f"not a Zenodo record (invalid JSON: {exc})") from exc
    return parse_record(payload, source=url)


def select_files(files: Sequence[RemoteFile], wanted: Sequence[str], *, dataset: str) -> list[RemoteFile]:
    """The files of ``files`` named by ``wanted`` (names or glob patterns; empty: all), in ``wanted``'s order.

    A name or pattern that matches nothing is an error listing what the record does hold: a renamed file in a new
    record version should stop the download, not silently skip data.
    """
    if not wanted:
        return list(files)
    chosen: dict[str, RemoteFile] = {}
    for item in wanted:
        matches = [f for f in files if fnmatch.fnmatchcase(f.name, item)]
        if not matches:
            available = ", ".join(f.name for f in files)
            raise InputError(dataset, f"the record has no file matching '{item}' (it has: {available})")
        for match in matches:
            chosen.setdefault(match.name, match)
    return list(chosen.values())


# --------------------------------------------------------------------------------------------------------------
# Transfers


def download_file(
    remote: RemoteFile,
    dest_dir: str | os.PathLike[str],
    *,
    retries: int = DEFAULTS["retries"],
    backoff_s: float = DEFAULTS["backoff_s"],
    timeout_s: float = DEFAULTS["timeout_s"],
    progress: bool = True,
) -> Path:
    """Download ``remote`` into ``dest_dir``, resuming ``<name>.part`` if present; return the verified file.

    A file already under its final name is kept when it matches the record's size and checksum (a rerun costs one
    read, not a transfer). ``retries`` bounds the consecutive failed attempts that add no byte; the n-th waits
    ``backoff_s * 2**(n-1)`` seconds (at most 120 s, or the server's ``Retry-After``).
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / remote.name
    part = dest_dir / (remote.name + PART_SUFFIX)
    if dest.is_file():
        problem = _mismatch(dest, remote)
        if problem is None:
            _say(f"{dest}: already downloaded and verified")
            return dest
        _say(f"{dest}: {problem}; downloading again")
        dest.unlink()
    failures = 0
    while True:
        before = _size(part)
        try:
            _transfer(remote, part, timeout_s=timeout_s, progress=progress)
            break
        except Exception as exc:
            if not _is_transient(exc):
                _raise_permanent(dest, exc, url=remote.url)
            failures = 1 if _size(part) > before else failures + 1
            if failures > retries:
                raise InputError(
                    dest, f"download from {remote.url} failed after {failures} attempts: {_describe(exc)}"
                ) from exc
            _pause(remote.url, exc, failures, retries, backoff_s)
    problem = _mismatch(part, remote)
    if problem is not None:
        part.unlink()
        raise InputError(dest, f"{problem} (from {remote.url}); the bad download was deleted")
    os.replace(part, dest)
    _say(f"{dest}: downloaded and verified")
    return dest


def file_digest(path: str | os.PathLike[str], algorithm: str = "md5") -> str:
    """Hex digest of a file, read in 1 MiB chunks (datasets are far larger than memory)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _mismatch(path: Path, remote: RemoteFile) -> str | None:
    """Why ``path`` is not ``remote`` (size, then checksum), or None when it matches."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"size mismatch: expected {remote.size} bytes, got {size}"
    if remote.checksum is None:
        return None
    algorithm, _, expected = remote.checksum.partition(":")
    try:
        actual = file_digest(path, algorithm)
    except ValueError as exc:
        raise InputError(path, f"unsupported checksum '{remote.checksum}' in the record") from exc
    if actual != expected.lower():
        return f"{algorithm} mismatch: expected {expected}, got {actual}"
    return None


def _transfer(remote: RemoteFile, part: Path, *, timeout_s: float, progress: bool) -> None:
    """One attempt: append the missing bytes to ``part`` (or rewrite it when the server ignores the range)."""
    offset = _size(part)
    if remote.size is not None and offset > remote.size:
        _say(f"{part}: longer than the record's {remote.size} bytes; starting over")
        part.unlink()
        offset = 0
    if remote.size is not None and offset == remote.size and offset > 0:
        return  # complete already: a previous run was stopped before verifying
    opened = _open_stream(remote.url, offset, timeout_s, part)
    if opened is None:
        return
    stream, start, length = opened
    with contextlib.closing(stream):
        if offset and start != offset:
            _say(f"{part}: the server sent the whole file instead of bytes {offset}-; starting over")
        elif offset:
            _say(f"{part}: resuming at byte {offset}")
        total = start + length if length is not None else remote.size
        received = 0
        with (
            open(part, "ab" if start else "wb") as fh,
            _byte_bar(remote.name, total, progress, initial=start) as bar,
        ):
            # read1: whatever has arrived (up to 1 MiB), so a kill or a drop loses nothing already received.
            read = getattr(stream, "read1", stream.read)
            while chunk := read(_CHUNK):
                fh.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
            fh.flush()
            os.fsync(fh.fileno())
    if length is not None and received < length:
        raise _TransientError(f"connection closed after {start + received} of {start + length} bytes")


def _open_stream(url: str, offset: int, timeout_s: float, part: Path) -> tuple[IO[bytes], int, int | None] | None:
    """Open ``url`` from byte ``offset``: (stream, first byte it holds, its length); None when nothing is left."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "file":
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        try:
            fh = open(path, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
        except OSError as exc:
            raise InputError(path, f"cannot read {url} ({exc.strerror or exc})") from exc
        size = os.fstat(fh.fileno()).st_size
        start = offset if offset <= size else 0
        fh.seek(start)
        return fh, start, size - start
    if scheme not in ("http", "https"):
        raise InputError(url, f"unsupported URL scheme '{scheme}' (http, https and file are)")
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:
            raise
        # Range not satisfiable: the part is complete (total == offset) or stale (the file changed on the server).
        total = _content_range(exc.headers.get("Content-Range", ""))[2]
        exc.close()
        if total == offset:
            return None
        part.unlink(missing_ok=True)
        raise _TransientError(f"the server cannot resume at byte {offset} (file changed?); starting over") from exc
    length_header = response.headers.get("Content-Length")
    length = int(length_header) if length_header and length_header.isdigit() else None
    if response.status == 206:
        first = _content_range(response.headers.get("Content-Range", ""))[0]
        if first != offset:
            response.close()
            part.unlink(missing_ok=True)
            raise _TransientError(f"asked for bytes {offset}-, the server sent a range from {first}; starting over")
        return response, offset, length
    return response, 0, length


def _content_range(header: str) -> tuple[int | None, int | None, int | None]:
    """(first, last, total) of a ``Content-Range: bytes first-last/total`` (or ``bytes */total``) header."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", header)
    if not match:
        return None, None, None
    first, last, total = (int(g) if g and g != "*" else None for g in match.groups())
    return first, last, total


def _read_url(url: str, timeout_s: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return response.read()


def _is_transient(exc: BaseException) -> bool:
    """Whether retrying could help: network trouble and server-side errors, not 404s or a full disk."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in _TRANSIENT_HTTP or exc.code >= 500
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, FileNotFoundError | PermissionError):
        return False  # a file:// mirror without the file
    return isinstance(
        exc, urllib.error.URLError | ConnectionError | TimeoutError | HTTPException | ssl.SSLError | _TransientError
    )


def _raise_permanent(where: str | os.PathLike[str], exc: Exception, *, url: str | None = None) -> NoReturn:
    """Re-raise a failure retrying cannot fix: an HTTP error as an :class:`InputError` naming the URL, anything
    else (our own InputErrors, a full disk, bugs) unchanged."""
    source = f" from {url}" if url else ""
    if isinstance(exc, urllib.error.HTTPError):
        raise InputError(where, f"HTTP {exc.code} {exc.reason}{source}") from exc
    if isinstance(exc, urllib.error.URLError):
        raise InputError(where, f"cannot read{source}: {exc.reason}") from exc
    raise exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"{exc.reason}"
    if isinstance(exc, _TransientError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _pause(url: str, exc: BaseException, failures: int, retries: int, backoff_s: float) -> None:
    delay = min(backoff_s * 2 ** (failures - 1), _MAX_BACKOFF_S)
    retry_after = _retry_after(exc)
    if retry_after is not None:
        delay = min(max(delay, retry_after), _MAX_BACKOFF_S)
    _say(f"{url}: {_describe(exc)}; retry {failures}/{retries} in {delay:.1f} s")
    time.sleep(delay)


def _retry_after(exc: BaseException) -> float | None:
    """Seconds from a 429/503 ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not isinstance(exc, urllib.error.HTTPError) or exc.headers is None:
        return None
    value = exc.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def _byte_bar(desc: str, total: int | None, progress: bool, *, initial: int = 0) -> tqdm:
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


# --------------------------------------------------------------------------------------------------------------
# Unpacking


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
    _require_free(Path(dest_dir).parent, needed, "unpacked archives")
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
    """Refuse unsafe or colliding members; return the unpacked size in bytes."""
    total = 0
    for info in archive.infolist():
        relative = _safe_member_path(info, label)
        if not info.is_dir():
            _check_owner(owners, relative, str(label))
            total += info.file_size
    return total


def _extract(archive: zipfile.ZipFile, label: Path, into: Path, progress: bool) -> None:
    """Write every member (our own loop: zipfile's ``extract`` silently rewrites the unsafe names we refuse)."""
    members = [(info, _safe_member_path(info, label)) for info in archive.infolist()]
    total = sum(info.file_size for info, _ in members)
    with _byte_bar(f"unpack {label.name}", total, progress) as bar:
        for info, relative in members:
            target = into / relative
            try:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, _CHUNK)
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
        super().__init__(_Segments([*segments, (tail, len(tail))]), _CHUNK)


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


# --------------------------------------------------------------------------------------------------------------
# Whole datasets


def download_dataset(
    dataset: str | DatasetSpec,
    dest_dir: str | os.PathLike[str],
    *,
    table_path: str | os.PathLike[str] = DATASETS_TABLE,
    api_url: str = DEFAULT_API_URL,
    retries: int = DEFAULTS["retries"],
    backoff_s: float = DEFAULTS["backoff_s"],
    timeout_s: float = DEFAULTS["timeout_s"],
    marker: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Fetch a dataset of the table into ``dest_dir``; return the verified downloaded files.

    Layout: ``dest_dir/downloads/<file>`` (kept, so a rerun verifies instead of transferring) and, when the table
    says so, ``dest_dir/data/`` holding every archive unpacked plus the record's other files (all or nothing).
    ``marker`` (the workflow's output) is written last, as a JSON manifest of what was fetched, so its existence
    means the whole dataset is in place.
    """
    spec = dataset if isinstance(dataset, DatasetSpec) else _lookup(dataset, table_path)
    dest_dir = Path(dest_dir)
    options = {"retries": retries, "backoff_s": backoff_s, "timeout_s": timeout_s}
    remote = select_files(fetch_record(spec.record_id, api_url=api_url, **options), spec.files, dataset=spec.name)
    downloads = dest_dir / DOWNLOADS_DIR
    _check_free_space(downloads, remote)
    _say(f"{spec.name}: {len(remote)} file(s) from Zenodo record {spec.record_id}")
    paths = [download_file(file, downloads, progress=progress, **options) for file in remote]
    unpacked = None
    if spec.unpack:
        archives, others = group_archives(paths)
        unpacked = unpack_all(archives, dest_dir / UNPACKED_DIR, files=others, progress=progress)
        _say(f"{spec.name}: unpacked {len(archives)} archive(s) into {unpacked}")
    if marker is not None:
        manifest = {
            "dataset": spec.name,
            "record": spec.record_id,
            "api_url": api_url,
            "files": [
                {"name": file.name, "size": file.size, "checksum": file.checksum, "path": str(path)}
                for file, path in zip(remote, paths, strict=True)
            ],
            "unpacked": str(unpacked) if unpacked is not None else None,
        }
        with atomic_file(marker) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return paths


def _lookup(name: str, table_path: str | os.PathLike[str]) -> DatasetSpec:
    specs = load_datasets(table_path)
    if name not in specs:
        raise InputError(table_path, f"no dataset '{name}' (the table lists {', '.join(specs)})", field="dataset")
    return specs[name]


def _check_free_space(folder: Path, files: Sequence[RemoteFile]) -> None:
    """Fail before transferring anything when the disk cannot hold what is left to download."""
    folder.mkdir(parents=True, exist_ok=True)
    needed = 0
    for file in files:
        if file.size is not None and not (folder / file.name).is_file():
            needed += max(file.size - _size(folder / (file.name + PART_SUFFIX)), 0)
    _require_free(folder, needed, "the downloads")


def _require_free(folder: Path, needed: int, what: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise InputError(folder, f"needs {needed / 1e9:.2f} GB for {what}, {free / 1e9:.2f} GB are free")
