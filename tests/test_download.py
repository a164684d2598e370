"""Download stage against a local Zenodo stand-in: resume, retry, checksums, safe and atomic unpacking, the rule."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import random
import re
import shutil
import stat
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers import REPO, SNAKEMAKE, planned_jobs, tiny_config, write_config
from zenodo_server import Served, ZenodoServer

from seldflow import download
from seldflow.download import (
    DatasetSpec,
    RemoteFile,
    download_dataset,
    download_file,
    fetch_record,
    group_archives,
    load_datasets,
    parse_record,
    select_files,
    split_parts,
    unpack,
)
from seldflow.errors import InputError

FAST = {"retries": 3, "backoff_s": 0.01, "timeout_s": 5.0}

# The `download:` config section and its schema, as handed to the lead for config/config.yaml and config/schema.yaml.
CONFIG_SNIPPET = """
download:
  api_url: https://zenodo.org/api
  retries: 5
  backoff_s: 2.0
  timeout_s: 60
"""
SCHEMA_SNIPPET = """
download:
  type: object
  additionalProperties: false
  default: {}
  description: fetching the datasets of resources/datasets.tsv (rule download, run only on request)
  properties:
    api_url:
      type: string
      pattern: "^(https?|file)://"
      default: https://zenodo.org/api
      description: Zenodo REST API base; a record is read from <api_url>/records/<id>
    retries:
      type: integer
      minimum: 0
      default: 5
      description: consecutive failed attempts (without a byte of progress) retried before giving up
    backoff_s:
      type: number
      minimum: 0
      default: 2.0
      description: delay before the first retry in seconds, doubled for each further one (at most 120 s)
    timeout_s:
      type: number
      exclusiveMinimum: 0
      default: 60
      description: connection and read timeout of each request in seconds
"""


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def server() -> Iterator[ZenodoServer]:
    with ZenodoServer() as running:
        yield running


def remote_for(server: ZenodoServer, record: str, name: str) -> RemoteFile:
    return next(f for f in fetch_record(record, api_url=server.api_url, **FAST) if f.name == name)


def file_requests(server: ZenodoServer, name: str) -> list[str | None]:
    return [ranged for path, ranged in server.requests if path.endswith(f"/{name}")]


# --------------------------------------------------------------------------------------------------------------
# Records


def test_fetch_record_lists_names_sizes_checksums_and_links(server: ZenodoServer) -> None:
    data = payload(1000)
    server.add_record("123", {"a.zip": data, "notes.txt": b"hello\n"})
    files = fetch_record("123", api_url=server.api_url + "/", **FAST)
    assert [f.name for f in files] == ["a.zip", "notes.txt"]
    assert files[0] == RemoteFile("a.zip", server.file_url("123", "a.zip"), 1000, f"md5:{md5(data)}")


def test_parse_record_accepts_the_inveniordm_files_shape() -> None:
    entry = {"key": "x.zip", "size": 3, "checksum": "md5:ABC", "links": {"self": "u/x.zip", "content": "u/x/content"}}
    files = parse_record({"files": {"enabled": True, "entries": {"x.zip": entry}}}, source="rec")
    assert files == [RemoteFile("x.zip", "u/x/content", 3, "md5:abc")]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": 1}, "lists no files"),
        ({"files": [{"key": "../x", "links": {"self": "u"}}]}, "not a plain file name"),
        ({"files": [{"size": 3}]}, "lacks a name or a download link"),
    ],
)
def test_parse_record_rejects_unusable_records(record: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_record(record, source="rec")


def test_unknown_record_fails_at_once_naming_the_url(server: ZenodoServer) -> None:
    with pytest.raises(InputError, match=r"/api/records/999: HTTP 404"):
        fetch_record("999", api_url=server.api_url, **FAST)
    assert len(server.requests) == 1


def test_record_api_overload_is_retried(server: ZenodoServer) -> None:
    server.add_record("7", {"f.bin": b"x"})
    server.api_fail_with = [429, 503]
    assert [f.name for f in fetch_record("7", api_url=server.api_url, **FAST)] == ["f.bin"]
    assert len(server.requests) == 3


def test_select_files_by_name_and_pattern_and_names_what_is_missing() -> None:
    files = [RemoteFile(name, f"u/{name}") for name in ("a.z01", "a.zip", "b.zip", "readme.txt")]
    assert [f.name for f in select_files(files, ["readme.txt", "a.*"], dataset="d")] == ["readme.txt", "a.z01", "a.zip"]
    assert select_files(files, [], dataset="d") == files
    with pytest.raises(InputError, match=r"d: .*no file matching 'c.zip' \(it has: a.z01, a.zip, b.zip, readme.txt\)"):
        select_files(files, ["c.zip"], dataset="d")


# --------------------------------------------------------------------------------------------------------------
# Transfers


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_dropped_connection_is_resumed_with_a_range_request(server: ZenodoServer, tmp_path: Path, reset: bool) -> None:
    data = payload(300_000, seed=1)
    server.add_record("1", {"big.bin": Served(data, drop_after=100_000, reset=reset)})
    path = download_file(remote_for(server, "1", "big.bin"), tmp_path, progress=False, **FAST)
    assert path == tmp_path / "big.bin"
    assert md5(path.read_bytes()) == md5(data)
    assert not (tmp_path / "big.bin.part").exists()
    ranges = file_requests(server, "big.bin")
    assert len(ranges) == 2 and ranges[0] is None
    if not reset:  # a reset may discard bytes already received; a clean close delivers all 100 kB first
        assert ranges[1] == "bytes=100000-"


def test_a_part_left_by_a_killed_run_is_resumed(server: ZenodoServer, tmp_path: Path) -> None:
    data = payload(50_000, seed=2)
    server.add_record("1", {"f.bin": data})
    (tmp_path / "f.bin.part").write_bytes(data[:20_000])
    path = download_file(remote_for(server, "1", "f.bin"), tmp_path, progress=False, **FAST)
    assert path.read_bytes() == data
    assert file_requests(server, "f.bin") == ["bytes=20000-"]


def test_a_killed_download_leaves_only_a_resumable_part(server: ZenodoServer, tmp_path: Path) -> None:
    data = payload(200_000, seed=14)
    server.add_record("1", {"f.bin": Served(data, stall_s=5.0, stall_after=64_000)})
    remote = remote_for(server, "1", "f.bin")
    code = (
        "import sys; from seldflow.download import RemoteFile, download_file; "
        "download_file(RemoteFile(*sys.argv[1:3], int(sys.argv[3]), sys.argv[4]), sys.argv[5], progress=False)"
    )
    args = [remote.name, remote.url, str(remote.size), remote.checksum, str(tmp_path)]
    child = subprocess.Popen([sys.executable, "-c", code, *args], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while download._size(tmp_path / "f.bin.part") < 64_000:  # the child is now stalled mid-file: kill it
            assert child.poll() is None and time.monotonic() < deadline, "the child never wrote its first bytes"
            time.sleep(0.02)
    finally:
        child.kill()
        child.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin.part"]
    assert (tmp_path / "f.bin.part").read_bytes() == data[:64_000]
    assert download_file(remote, tmp_path, progress=False, **FAST).read_bytes() == data
    assert file_requests(server, "f.bin")[-1] == "bytes=64000-"


def test_server_answering_200_to_a_range_restarts_cleanly(server: ZenodoServer, tmp_path: Path) -> None:
    data = payload(50_000, seed=3)
    server.add_record("1", {"f.bin": Served(data, ignore_range=True)})
    (tmp_path / "f.bin.part").write_bytes(b"\0" * 30_000)  # not even the right bytes: must be overwritten
    path = download_file(remote_for(server, "1", "f.bin"), tmp_path, progress=False, **FAST)
    assert path.read_bytes() == data


def test_part_longer_than_the_file_starts_over(server: ZenodoServer, tmp_path: Path) -> None:
    data = payload(10_000, seed=4)
    server.add_record("1", {"f.bin": data})
    (tmp_path / "f.bin.part").write_bytes(payload(20_000))
    assert download_file(remote_for(server, "1", "f.bin"), tmp_path, progress=False, **FAST).read_bytes() == data
    assert file_requests(server, "f.bin") == [None]


def test_checksum_mismatch_deletes_the_file_and_names_both_checksums(server: ZenodoServer, tmp_path: Path) -> None:
    data = payload(40_000, seed=5)
    server.add_record("1", {"bad.zip": Served(data, corrupt_at=12_345)})
    served = bytearray(data)
    served[12_345] ^= 0xFF
    with pytest.raises(InputError) as caught:
        download_file(remote_for(server, "1", "bad.zip"), tmp_path, progress=False, **FAST)
    message = str(caught.value)
    assert caught.value.path == str(tmp_path / "bad.zip")
    assert f"md5 mismatch: expected {md5(data)}, got {md5(bytes(served))}" in message
    assert list(tmp_path.iterdir()) == []


def test_transient_server_errors_are_retried(server: ZenodoServer, tmp_path: Path) -> None:
    data = payload(5_000, seed=6)
    server.add_record("1", {"f.bin": Served(data, fail_with=[503, 502])})
    assert download_file(remote_for(server, "1", "f.bin"), tmp_path, progress=False, **FAST).read_bytes() == data
    assert len(file_requests(server, "f.bin")) == 3


def test_retries_are_bounded(server: ZenodoServer, tmp_path: Path) -> None:
    server.add_record("1", {"f.bin": Served(b"x", fail_with=[503] * 10)})
    remote = remote_for(server, "1", "f.bin")
    with pytest.raises(InputError, match=r"f.bin: download from .*/files/1/f.bin failed after 3 attempts: HTTP 503"):
        download_file(remote, tmp_path, progress=False, **{**FAST, "retries": 2})
    assert len(file_requests(server, "f.bin")) == 3


def test_missing_file_is_not_retried(server: ZenodoServer, tmp_path: Path) -> None:
    remote = RemoteFile("gone.bin", f"{server.base_url}/files/1/gone.bin", 3, None)
    with pytest.raises(InputError, match=r"gone.bin: HTTP 404 .* from http://127.0.0.1"):
        download_file(remote, tmp_path, progress=False, **FAST)
    assert len(server.requests) == 1


def test_a_stalled_transfer_times_out_and_resumes(server: ZenodoServer, tmp_path: Path) -> None:
    data = payload(20_000, seed=7)
    server.add_record("1", {"f.bin": Served(data, stall_s=1.0)})
    remote = remote_for(server, "1", "f.bin")
    path = download_file(remote, tmp_path, progress=False, **{**FAST, "timeout_s": 0.3})
    assert path.read_bytes() == data


def test_a_verified_file_is_not_downloaded_again_and_a_stale_one_is(server: ZenodoServer, tmp_path: Path) -> None:
    data = payload(8_000, seed=8)
    server.add_record("1", {"f.bin": data})
    remote = remote_for(server, "1", "f.bin")
    download_file(remote, tmp_path, progress=False, **FAST)
    download_file(remote, tmp_path, progress=False, **FAST)
    assert len(file_requests(server, "f.bin")) == 1
    (tmp_path / "f.bin").write_bytes(data[::-1])  # e.g. a new version of the record
    assert download_file(remote, tmp_path, progress=False, **FAST).read_bytes() == data
    assert len(file_requests(server, "f.bin")) == 2


def test_file_urls_download_and_resume(tmp_path: Path) -> None:
    data = payload(30_000, seed=9)
    source = tmp_path / "mirror" / "f.bin"
    source.parent.mkdir()
    source.write_bytes(data)
    remote = RemoteFile("f.bin", source.as_uri(), len(data), f"md5:{md5(data)}")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "f.bin.part").write_bytes(data[:1000])
    assert download_file(remote, dest, progress=False, **FAST).read_bytes() == data
    with pytest.raises(InputError, match="cannot read"):
        download_file(RemoteFile("g.bin", (tmp_path / "nope").as_uri()), dest, progress=False, **FAST)


# --------------------------------------------------------------------------------------------------------------
# Unpacking


def make_zip(path: Path, members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


MEMBERS = {"top/a.txt": b"alpha\n" * 500, "top/sub/b.bin": payload(20_000, seed=10), "c.txt": b""}


def test_unpack_plain_zip_replaces_the_target(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "x.zip", MEMBERS)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("from an earlier run")
    assert unpack(archive, tmp_path / "out") == tmp_path / "out"
    assert tree(tmp_path / "out") == MEMBERS
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/tmp/evil.txt", "..\\evil.txt", "C:/evil.txt"])
def test_member_escaping_the_target_is_refused_and_nothing_is_left(tmp_path: Path, name: str) -> None:
    archive = make_zip(tmp_path / "slip.zip", {"good.txt": b"fine", name: b"pwned"})
    with pytest.raises(InputError, match=re.escape(f"slip.zip: member '{name}' would be written outside")):
        unpack(archive, tmp_path / "out" / "data")
    # Refused while reading the central directory: not even the target's parent was created.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slip.zip"]


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("data/passwd")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as archive:
        archive.writestr("data/ok.txt", b"ok")
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(InputError, match=r"link.zip: member 'data/passwd' is a symbolic link"):
        unpack(tmp_path / "link.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_corrupt_member_leaves_the_previous_tree_untouched(tmp_path: Path) -> None:
    members = {"a.bin": payload(5_000, seed=11), "b.bin": payload(5_000, seed=12)}
    data = bytearray(make_zip(tmp_path / "x.zip", members, compression=zipfile.ZIP_STORED).read_bytes())
    data[data.find(members["b.bin"][:64]) + 100] ^= 0xFF
    (tmp_path / "x.zip").write_bytes(bytes(data))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("previous unpack")
    with pytest.raises(InputError, match=r"x.zip: cannot unpack member 'b.bin' \(Bad CRC-32"):
        unpack(tmp_path / "x.zip", tmp_path / "out")
    assert tree(tmp_path / "out") == {"keep.txt": b"previous unpack"}
    assert leftovers(tmp_path) == []


def test_two_archives_writing_the_same_file_are_refused(tmp_path: Path) -> None:
    first = make_zip(tmp_path / "first.zip", {"shared/x.txt": b"1", "shared/a.txt": b"a"})
    second = make_zip(tmp_path / "second.zip", {"shared/x.txt": b"2"})
    with pytest.raises(InputError, match=r"second.zip: 'shared/x.txt' would overwrite the same path from .*first.zip"):
        download.unpack_all([[first], [second]], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def info_zip_split(tmp_path: Path, *, zip64: bool = False) -> tuple[Path, dict[str, bytes]]:
    """A split archive written by Info-ZIP's ``zip -s`` (member data crossing part boundaries)."""
    source = tmp_path / "src"
    members = {
        "bank/speech.txt": b"".join(b"%d hello\n" % i for i in range(30_000)),
        "bank/noise.bin": payload(150_000),
    }
    for name, data in members.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    flags = ["-fz"] if zip64 else []
    subprocess.run(["zip", "-q", "-r", *flags, "-s", "64k", str(tmp_path / "bank.zip"), "bank"], cwd=source, check=True)
    return tmp_path / "bank.zip", members


needs_zip = pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP `zip` is not installed")


@needs_zip
@pytest.mark.parametrize("zip64", [False, True], ids=["zip", "zip64"])
def test_info_zip_split_archive_is_unpacked(tmp_path: Path, zip64: bool) -> None:
    archive, members = info_zip_split(tmp_path, zip64=zip64)
    parts = split_parts(archive)
    assert len(parts) > 3 and [p.suffix for p in parts[:2]] == [".z01", ".z02"] and parts[-1] == archive
    unpack(archive, tmp_path / "out")
    assert tree(tmp_path / "out") == members


@needs_zip
def test_split_archive_with_a_missing_or_misplaced_part_is_refused(tmp_path: Path) -> None:
    archive, _ = info_zip_split(tmp_path)
    parts = split_parts(archive)
    with pytest.raises(InputError, match=r"bank.zip: the archive has \d+ parts, \d+ were given"):
        unpack([*parts[:1], *parts[2:]], tmp_path / "out")
    with pytest.raises(InputError, match="is not where the central directory says"):
        unpack([parts[1], parts[0], *parts[2:]], tmp_path / "out")
    parts[1].unlink()
    with pytest.raises(InputError, match=r"bank.zip: split archive parts are not numbered"):
        split_parts(archive)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_byte_split_zip_is_unpacked(tmp_path: Path) -> None:
    """The other common kind: an ordinary zip cut into pieces (offsets count from the start of the first)."""
    data = make_zip(tmp_path / "whole.zip", MEMBERS).read_bytes()
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    names = ["cut.z01", "cut.z02", "cut.zip"]
    for name, start, end in zip(names, cuts[:-1], cuts[1:], strict=True):
        (tmp_path / name).write_bytes(data[start:end])
    archives, others = group_archives([tmp_path / n for n in ("cut.zip", "cut.z02", "cut.z01", "readme.txt")])
    assert archives == [[tmp_path / n for n in names]] and others == [tmp_path / "readme.txt"]
    unpack(archives[0], tmp_path / "out")
    assert tree(tmp_path / "out") == MEMBERS


def test_orphan_split_part_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"x.z01: split archive part without its final x.zip"):
        group_archives([tmp_path / "x.z01", tmp_path / "y.zip"])


def test_central_entry_rebased_past_4_gib_uses_zip64() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("a.txt", b"abc")
    data = archive.getvalue()
    entry = data[data.find(b"PK\x01\x02") : data.find(b"PK\x05\x06")]
    fields = list(download._CENTRAL.unpack_from(entry))
    fields[15], fields[18] = 1, 10  # on disk 1 (the second part), 10 bytes into it
    moved = download._CENTRAL.pack(*fields) + entry[download._CENTRAL.size :]
    rebased, absolute = download._rebase_central_entry(moved, [0, 5 << 32], Path("x.zip"))
    assert absolute == (5 << 32) + 10
    out = download._CENTRAL.unpack_from(rebased)
    assert out[15] == 0 and out[18] == 0xFFFFFFFF
    assert struct.unpack_from("<HHQ", rebased, download._CENTRAL.size + out[12]) == (1, 8, absolute)
    again, same = download._rebase_central_entry(rebased, [0], Path("x.zip"))  # reads its own zip64 extra back
    assert same == absolute and again == rebased


# --------------------------------------------------------------------------------------------------------------
# Datasets


def test_repository_table_lists_the_datasets() -> None:
    specs = load_datasets()
    assert {name: spec.record_id for name, spec in specs.items()} == {
        "dcase2025_stereo": "15559774",
        "starss23": "7880637",
        "dcase2021_task3": "5476980",
        "fsd50k": "4060432",
        "fsd50k_dcase_selection": "6406873",
        "tau_srir": "6408611",
        "metu_sparg": "2635758",
    }
    assert specs["dcase2025_stereo"].files == ("stereo_dev.zip", "metadata_dev.zip", "stereo_eval.zip")
    assert specs["tau_srir"].files == tuple(f"TAU-SRIR_DB.{s}" for s in ("z01", "z02", "z03", "zip"))
    assert specs["starss23"].files == () and not specs["fsd50k_dcase_selection"].unpack
    assert DatasetSpec.from_dict(specs["tau_srir"].to_dict()) == specs["tau_srir"]


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("x\t12\t*\tmaybe", r"row 3: field 'unpack': 'maybe' is not yes or no"),
        ("x\tabc\t*\tyes", r"row 3: field 'record': 'abc' is not a numeric"),
        ("x y\t12\t*\tyes", r"row 3: field 'dataset'"),
        ("a\t12\t*\tyes", r"row 3: field 'dataset': dataset 'a' is listed twice"),
        ("x\t12\tdir/f.zip\tyes", r"row 3: field 'files'"),
    ],
)
def test_table_errors_name_row_and_column(tmp_path: Path, row: str, match: str) -> None:
    table = tmp_path / "datasets.tsv"
    table.write_text(f"dataset\trecord\tfiles\tunpack\na\t1\t*\tyes\n{row}\n")
    with pytest.raises(InputError, match=match):
        load_datasets(table)


def publish_demo(server: ZenodoServer, tmp_path: Path) -> Path:
    """Record 42: a plain zip, a byte-split zip, a text file and a zip the table does not ask for."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    bank = make_zip(tmp_path / "bank.zip", {"bank/x.wav": payload(30_000, seed=13)}).read_bytes()
    server.add_record(
        "42",
        {
            "audio.zip": make_zip(tmp_path / "audio.zip", {"stereo_dev/a.wav": payload(20_000)}).read_bytes(),
            "bank.z01": bank[:10_000],
            "bank.zip": bank[10_000:],
            "list.txt": b"1\n2\n",
            "video.zip": make_zip(tmp_path / "video.zip", {"v.mp4": b"0" * 100}).read_bytes(),
        },
    )
    table = tmp_path / "datasets.tsv"
    table.write_text("dataset\trecord\tfiles\tunpack\tnote\ndemo\t42\taudio.zip,bank.*,list.txt\tyes\tdemo\n")
    return table


def test_download_dataset_fetches_verifies_unpacks_and_writes_the_manifest(
    server: ZenodoServer, tmp_path: Path
) -> None:
    table = publish_demo(server, tmp_path)
    dest = tmp_path / "resources" / "demo"
    marker = dest / ".complete"
    paths = download_dataset(
        "demo", dest, table_path=table, api_url=server.api_url, marker=marker, progress=False, **FAST
    )
    assert [p.name for p in paths] == ["audio.zip", "bank.z01", "bank.zip", "list.txt"]
    assert sorted(tree(dest / "data")) == ["bank/x.wav", "list.txt", "stereo_dev/a.wav"]
    manifest = json.loads(marker.read_text())
    assert manifest["record"] == "42" and manifest["unpacked"] == str(dest / "data")
    assert [f["name"] for f in manifest["files"]] == ["audio.zip", "bank.z01", "bank.zip", "list.txt"]
    assert not any(path.endswith("video.zip") for path, _ in server.requests)


def test_download_dataset_from_a_file_mirror(tmp_path: Path) -> None:
    """An offline mirror: ``api_url`` and the file links may be ``file://`` URLs."""
    mirror = tmp_path / "mirror"
    (mirror / "records").mkdir(parents=True)
    archive = make_zip(mirror / "rirs.zip", {"rirs/room.sofa": payload(4_000, seed=15)})
    data = archive.read_bytes()
    entry = {"key": "rirs.zip", "size": len(data), "checksum": f"md5:{md5(data)}", "links": {"self": archive.as_uri()}}
    (mirror / "records" / "77").write_text(json.dumps({"id": 77, "files": [entry]}))
    spec = DatasetSpec("rirs", "77", ("rirs.zip",), True)
    download_dataset(spec, tmp_path / "rirs", api_url=mirror.as_uri(), progress=False, **FAST)
    assert tree(tmp_path / "rirs" / "data") == {"rirs/room.sofa": payload(4_000, seed=15)}
    with pytest.raises(InputError, match=r"records/78: cannot read: .*No such file"):
        fetch_record("78", api_url=mirror.as_uri(), **FAST)


def test_download_dataset_refuses_when_the_disk_is_too_small(
    server: ZenodoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = publish_demo(server, tmp_path)
    monkeypatch.setattr(download.shutil, "disk_usage", lambda _: SimpleNamespace(total=100, used=90, free=10))
    with pytest.raises(InputError, match=r"downloads: needs \d+\.\d+ GB for the downloads, 0.00 GB are free"):
        download_dataset("demo", tmp_path / "demo", table_path=table, api_url=server.api_url, **FAST)
    assert file_requests(server, "audio.zip") == []


def test_download_rule_runs_on_request_only(server: ZenodoServer, tmp_path: Path) -> None:
    """The rule file in a minimal Snakefile, with the config section and schema handed to the lead."""
    publish_demo(server, tmp_path / "published")
    workdir = tmp_path / "work"
    (workdir / "resources").mkdir(parents=True)
    shutil.copy(tmp_path / "published" / "datasets.tsv", workdir / "resources" / "datasets.tsv")
    config = tiny_config()
    config["download"] = {**yaml.safe_load(CONFIG_SNIPPET)["download"], "api_url": server.api_url, "backoff_s": 0.01}
    write_config(workdir, config)
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    schema["properties"].setdefault("download", copy.deepcopy(yaml.safe_load(SCHEMA_SNIPPET)["download"]))
    (workdir / "config" / "schema.yaml").write_text(yaml.safe_dump(schema, sort_keys=False))
    (workdir / "Snakefile").write_text(
        'configfile: "config/config.yaml"\n'
        f'include: "{REPO}/rules/common.smk"\n'
        f'include: "{REPO}/rules/download.smk"\n'
        "rule all:\n    default_target: True\n"
    )
    command = [SNAKEMAKE, "--snakefile", str(workdir / "Snakefile"), "--directory", str(workdir), "--cores", "1"]
    default = subprocess.run([*command, "-n"], capture_output=True, text=True)
    assert default.returncode == 0, default.stderr
    assert "download" not in planned_jobs(default)
    result = subprocess.run([*command, "resources/demo/.complete"], capture_output=True, text=True)
    log = workdir / "results" / "logs" / "download" / "demo.log"
    assert result.returncode == 0, result.stderr + (log.read_text() if log.exists() else "")
    assert json.loads((workdir / "resources" / "demo" / ".complete").read_text())["dataset"] == "demo"
    assert (workdir / "resources" / "demo" / "data" / "bank" / "x.wav").is_file()
    assert "downloaded and verified" in log.read_text()
    assert (workdir / "results" / "benchmarks" / "download" / "demo.tsv").is_file()
