"""Archive reader: plain and split zips unpacked atomically, hostile archives refused before a byte is written."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import stat
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
from archive_helpers import leftovers, make_zip, payload, tree

from seldflow import archives
from seldflow.archives import group_archives, split_parts, unpack, unpack_all
from seldflow.errors import InputError

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
        unpack_all([[first], [second]], tmp_path / "out")
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
    fields = list(archives._CENTRAL.unpack_from(entry))
    fields[15], fields[18] = 1, 10  # on disk 1 (the second part), 10 bytes into it
    moved = archives._CENTRAL.pack(*fields) + entry[archives._CENTRAL.size :]
    rebased, absolute = archives._rebase_central_entry(moved, [0, 5 << 32], Path("x.zip"))
    assert absolute == (5 << 32) + 10
    out = archives._CENTRAL.unpack_from(rebased)
    assert out[15] == 0 and out[18] == 0xFFFFFFFF
    assert struct.unpack_from("<HHQ", rebased, archives._CENTRAL.size + out[12]) == (1, 8, absolute)
    again, same = archives._rebase_central_entry(rebased, [0], Path("x.zip"))  # reads its own zip64 extra back
    assert same == absolute and again == rebased


def zip_with_duplicates(path: Path, first: str, second: str) -> Path:
    """A zip holding two members whose paths are the same once normalised (``zipfile`` warns, and writes both)."""
    with pytest.warns(UserWarning, match="Duplicate name") if first == second else contextlib.nullcontext():
        make_zip_pairs(path, [("ok.txt", b"fine"), (first, b"innocent"), (second, b"smuggled")])
    return path


def make_zip_pairs(path: Path, members: list[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("data/a.txt", "data/a.txt", r"member 'data/a\.txt' appears twice; refusing to unpack"),
        ("data/a.txt", "data/./a.txt", r"member 'data/\./a\.txt' appears twice \(first as 'data/a\.txt'\)"),
        ("data/a.txt", "data\\a.txt", r"member 'data\\a\.txt' appears twice \(first as 'data/a\.txt'\)"),
    ],
    ids=["same", "dot", "backslash"],
)
def test_duplicate_member_names_are_refused_and_nothing_is_left(
    tmp_path: Path, first: str, second: str, message: str
) -> None:
    """Two members for one path: which lands depends on the reader, so the archive is refused like a zip slip."""
    archive = zip_with_duplicates(tmp_path / "dup.zip", first, second)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("previous unpack")
    with pytest.raises(InputError, match=rf"dup\.zip: {message}"):
        unpack(archive, tmp_path / "out")
    assert tree(tmp_path / "out") == {"keep.txt": b"previous unpack"}
    assert leftovers(tmp_path) == []


def test_duplicate_member_in_a_split_archive_is_refused(tmp_path: Path) -> None:
    data = zip_with_duplicates(tmp_path / "whole.zip", "x.bin", "x.bin").read_bytes()
    (tmp_path / "cut.z01").write_bytes(data[: len(data) // 2])
    (tmp_path / "cut.zip").write_bytes(data[len(data) // 2 :])
    with pytest.raises(InputError, match=r"cut\.zip: member 'x\.bin' appears twice"):
        unpack(tmp_path / "cut.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()
