"""Download stage against a local Zenodo stand-in: resume, retry, checksums, whole datasets, the marker, the rule.

The archive reader it unpacks with is tested in test_archives.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from archive_helpers import make_zip, payload, tree
from helpers import REPO, SNAKEMAKE, planned_jobs, tiny_config, write_config
from zenodo_server import Served, ZenodoServer

from seldflow import download
from seldflow.download import (
    DatasetSpec,
    RemoteFile,
    download_dataset,
    download_file,
    fetch_record,
    load_datasets,
    marker_path,
    parse_record,
    select_files,
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
        "dcase2025_task4": "15117227",
        "tau_nigens2020": "3870859",
    }
    assert specs["dcase2025_stereo"].files == ("stereo_dev.zip", "metadata_dev.zip", "stereo_eval.zip")
    assert specs["tau_srir"].files == tuple(f"TAU-SRIR_DB.{s}" for s in ("z01", "z02", "z03", "zip"))
    assert specs["tau_nigens2020"].files == (
        *(f"{audio}_dev.{part}" for audio in ("foa", "mic") for part in ("z01", "z02", "zip")),
        "metadata_dev.zip",
    )
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
    monkeypatch.setattr(shutil, "disk_usage", lambda _: SimpleNamespace(total=100, used=90, free=10))
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
    result = subprocess.run([*command, marker_path("demo")], capture_output=True, text=True)
    log = workdir / "results" / "logs" / "download" / "demo.log"
    assert result.returncode == 0, result.stderr + (log.read_text() if log.exists() else "")
    assert json.loads((workdir / marker_path("demo")).read_text())["dataset"] == "demo"
    assert (workdir / "resources" / "demo" / "data" / "bank" / "x.wav").is_file()
    assert "downloaded and verified" in log.read_text()
    assert (workdir / "results" / "benchmarks" / "download" / "demo.tsv").is_file()
