"""Download stage: fetch public datasets from Zenodo records, verify them and unpack them safely.

Real SELD data (the DCASE2025 stereo set, STARSS23, FSD50K, measured room responses) lives in Zenodo records of
tens of gigabytes, fetched over connections that drop. So every transfer

- streams into ``<name>.part`` and resumes it with an HTTP ``Range`` request, after a kill or a dropped connection;
- retries transient failures (connection reset, timeout, HTTP 5xx/429) with exponential backoff, where only
  consecutive attempts that add no byte count against the limit;
- is checked against the record's size and md5 checksum; only a verified file gets its real name (atomic rename),
  so a file under its final name is always complete and correct, and a bad one is deleted with an error naming
  both checksums.

Archives are unpacked by :mod:`seldflow.archives` (plain and split zips, hostile members refused, atomic).
:func:`marker_path` is the one place that spells where a dataset lives and which file says it is complete; the
workflow's rules and scripts ask it rather than writing the path themselves.

Only the standard library is used for HTTP (``urllib``), so the stage needs nothing beyond seldflow itself.
"""

from __future__ import annotations

import contextlib
import email.utils
import fnmatch
import hashlib
import json
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from http.client import HTTPException
from pathlib import Path
from typing import IO, Any, NoReturn

from tqdm import tqdm

from seldflow import __version__
from seldflow.archives import CHUNK, byte_bar, group_archives, require_free, unpack_all
from seldflow.errors import InputError
from seldflow.io import atomic_file

DEFAULT_API_URL = "https://zenodo.org/api"
DATASETS_TABLE = Path(__file__).resolve().parents[2] / "resources" / "datasets.tsv"
# The workflow's `download:` config section; these are its defaults.
DEFAULTS: dict[str, Any] = {"api_url": DEFAULT_API_URL, "retries": 5, "backoff_s": 2.0, "timeout_s": 60.0}
# Where the workflow keeps each dataset (relative to its working directory) and the file written when one is whole.
RESOURCES_DIR = "resources"
MARKER_NAME = ".complete"
DOWNLOADS_DIR = "downloads"
UNPACKED_DIR = "data"
PART_SUFFIX = ".part"

_MAX_BACKOFF_S = 120.0
_USER_AGENT = f"seldflow/{__version__} (dataset download)"
_TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_TRUE = {"yes", "true", "1"}
_FALSE = {"no", "false", "0"}


def dataset_dir(dataset: str) -> str:
    """The workflow's folder of one dataset, ``resources/<dataset>`` (``dataset`` may be a ``{wildcard}``)."""
    return f"{RESOURCES_DIR}/{dataset}"


def marker_path(dataset: str) -> str:
    """The download marker of one dataset, ``resources/<dataset>/.complete``: the rule's output, every consumer's input.

    Written last, so its existence means the whole dataset is in place. ``dataset`` may be a ``{wildcard}``, which
    gives the download rule's output pattern.
    """
    return f"{dataset_dir(dataset)}/{MARKER_NAME}"


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
        for chunk in iter(lambda: fh.read(CHUNK), b""):
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
            byte_bar(remote.name, total, progress, initial=start) as bar,
        ):
            # read1: whatever has arrived (up to 1 MiB), so a kill or a drop loses nothing already received.
            read = getattr(stream, "read1", stream.read)
            while chunk := read(CHUNK):
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
    require_free(folder, needed, "the downloads")
