"""Shards: slicing, the split check that runs before feature work, and the virtual index over feature shards."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from seldflow.clipstore import ClipStore
from seldflow.errors import InputError
from seldflow.feature_files import open_feature_file, read_clip_names
from seldflow.features import check_split, clip_signatures, extract_split
from seldflow.io import write_audio
from seldflow.labels import write_labels
from seldflow.shards import (
    files_digest,
    folder_signature,
    gather_files,
    read_manifest,
    shard_count,
    shard_names,
    shard_range,
    shard_signature,
    write_index,
    write_manifest,
)
from seldflow.tasks import build_task

SR = 24000
CLIP = 120000
PARAMS = {"kind": "pfoa", "lr_swap": True, "n_fft": 1024, "win_length": 960, "hop_length": 480, "n_mels": 64}


def test_shard_slicing_covers_every_clip_once() -> None:
    assert shard_count(0, 4) == 1 and shard_count(8, 4) == 2 and shard_count(9, 4) == 3
    assert shard_names(9, 4) == ["0000", "0001", "0002"]
    covered = [i for shard in range(shard_count(9, 4)) for i in shard_range(shard, 4, 9)]
    assert covered == list(range(9))
    with pytest.raises(ValueError):
        shard_range(3, 4, 9)
    with pytest.raises(ValueError):
        shard_count(5, 0)


def test_manifest_round_trip_sorts(tmp_path: Path) -> None:
    write_manifest(tmp_path / "m.txt", ["b", "a", "c"])
    assert read_manifest(tmp_path / "m.txt") == ["a", "b", "c"]
    with pytest.raises(InputError, match="manifest not found"):
        read_manifest(tmp_path / "missing.txt")


@pytest.fixture
def split(tmp_path: Path) -> tuple[Path, Path]:
    audio, meta = tmp_path / "audio", tmp_path / "meta"
    rng = np.random.default_rng(0)
    for k in range(3):
        left = rng.uniform(-0.5, 0.5, CLIP).astype(np.float32)
        write_audio(audio / f"clip{k}.wav", np.stack([left, (0.2 + 0.1 * k) * left]), SR)
        write_labels(meta / f"clip{k}.csv", np.array([[k, k, 0, 10 * k - 20, 100 + k, 0]]))
    return audio, meta


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sharded(audio: Path, meta: Path, root: Path, size: int) -> Path:
    stems = check_split(audio, meta, channels=2)
    shards = []
    for shard in range(shard_count(len(stems), size)):
        out = root / "split" / f"shard-{shard:04d}.h5"
        extract_split(
            audio, out, metadata_dir=meta, clips=[stems[i] for i in shard_range(shard, size, len(stems))], **PARAMS
        )
        shards.append(out)
    write_index(shards, root / "split.h5")
    return root / "split.h5"


def test_index_over_shards_reads_like_the_single_file(split: tuple[Path, Path], tmp_path: Path) -> None:
    audio, meta = split
    whole = tmp_path / "whole.h5"
    extract_split(audio, whole, metadata_dir=meta, **PARAMS)
    index = _sharded(audio, meta, tmp_path / "sharded", size=2)
    with h5py.File(whole, "r") as a, h5py.File(index, "r") as b:
        assert b["features"].is_virtual
        for name in ("features", "label_rows", "clips"):
            np.testing.assert_array_equal(a[name][()], b[name][()])
        assert {k: v for k, v in a.attrs.items() if k != "digest"} == {
            k: v for k, v in b.attrs.items() if k != "shards"
        }
        assert [entry["file"] for entry in json.loads(b.attrs["shards"])] == [
            "split/shard-0000.h5",
            "split/shard-0001.h5",
        ]
    # Training reads the index like any feature file, streamed or in memory, with the same clips and labels.
    feature_file = open_feature_file(index)
    assert feature_file.names == open_feature_file(whole).names
    task = build_task(None)
    streamed = ClipStore([feature_file], np.arange(6), task, max_memory_mb=0)
    in_memory = ClipStore([open_feature_file(whole)], np.arange(6), task, max_memory_mb=1024)
    assert not streamed.in_memory and in_memory.in_memory
    features, labels = streamed.batch(np.array([5, 1, 3]))
    expected_features, expected_labels = in_memory.batch(np.array([5, 1, 3]))
    assert expected_labels.any()  # the clips have events, so the targets are compared on something
    with h5py.File(whole, "r") as a:
        np.testing.assert_array_equal(features, a["features"][()][[5, 1, 3]])
    np.testing.assert_array_equal(features, expected_features)
    np.testing.assert_array_equal(labels, expected_labels)


def test_index_moves_with_its_folder_and_is_reproducible(split: tuple[Path, Path], tmp_path: Path) -> None:
    audio, meta = split
    first = _sharded(audio, meta, tmp_path / "a", size=2)
    again = _sharded(audio, meta, tmp_path / "b", size=2)
    assert _sha(first) == _sha(again)
    shutil.move(tmp_path / "a", tmp_path / "moved")
    with h5py.File(tmp_path / "moved" / "split.h5", "r") as h5:
        assert read_clip_names(tmp_path / "moved" / "split.h5", h5)[0] == "clip0"
        assert np.isfinite(h5["features"][-1]).all()


def test_changed_shard_changes_the_index(split: tuple[Path, Path], tmp_path: Path) -> None:
    audio, meta = split
    before = _sha(_sharded(audio, meta, tmp_path / "a", size=2))
    write_labels(meta / "clip2.csv", np.array([[3, 1, 0, 45, 250, 0]]))
    assert _sha(_sharded(audio, meta, tmp_path / "b", size=2)) != before


def test_missing_shard_is_refused_not_read_as_fill_values(split: tuple[Path, Path], tmp_path: Path) -> None:
    audio, meta = split
    index = _sharded(audio, meta, tmp_path, size=2)
    (tmp_path / "split" / "shard-0001.h5").unlink()
    with pytest.raises(InputError, match=r"shard-0001\.h5 not found"):
        open_feature_file(index)


def test_shards_with_other_settings_are_not_joined(split: tuple[Path, Path], tmp_path: Path) -> None:
    audio, meta = split
    extract_split(audio, tmp_path / "a.h5", metadata_dir=meta, clips=["clip0"], **PARAMS)
    extract_split(audio, tmp_path / "b.h5", metadata_dir=meta, clips=["clip1"], **{**PARAMS, "lr_swap": False})
    with pytest.raises(InputError, match=r"b\.h5: field 'config'"):
        write_index([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "index.h5")
    assert not (tmp_path / "index.h5").exists()


def test_check_split_names_every_missing_extra_and_malformed_file(split: tuple[Path, Path]) -> None:
    audio, meta = split
    assert check_split(audio, meta, channels=2) == ["clip0", "clip1", "clip2"]
    (meta / "clip1.csv").unlink()
    (meta / "stray.csv").write_text("frame,class,source,azimuth,distance,onscreen\n")
    (audio / "notes.txt").write_text("x")
    write_audio(audio / "clip2.wav", np.zeros((2, 1000), dtype=np.float32), SR)
    with pytest.raises(InputError) as error:
        check_split(audio, meta, channels=2)
    message = str(error.value)
    assert "4 problem(s)" in message
    for expected in ("clip1.csv", "stray.csv", "notes.txt", "clip2.wav: 2 channels, 24000 Hz, 1000 samples"):
        assert expected in message


def _edit_in_place(path: Path, text: str) -> None:
    """Rewrite a file's bytes in place (same inode, folder untouched) and put its old modification time back."""
    stat = path.stat()
    with path.open("r+", encoding="utf-8") as fh:
        fh.truncate(0)
        fh.write(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))


def test_manifest_signatures_change_only_for_the_shard_of_an_edited_file(
    split: tuple[Path, Path], tmp_path: Path
) -> None:
    audio, meta = split
    stems = check_split(audio, meta, channels=2)
    manifest = tmp_path / "clips.txt"

    def signatures() -> tuple[list[str], str]:
        write_manifest(manifest, stems, clip_signatures(audio, meta, stems))
        return [shard_signature(manifest, shard, 2) for shard in range(2)], folder_signature([audio, meta])

    shards, folders = signatures()
    assert read_manifest(manifest) == stems and len(set(shards)) == 2
    assert signatures() == (shards, folders)  # nothing changed, nothing reruns
    # An in-place edit that even turns the clock back (an older copy restored) still shows.
    _edit_in_place(meta / "clip2.csv", "frame,class,source,azimuth,distance,onscreen\n1,1,0,-45,100,0\n")
    edited, edited_folders = signatures()
    assert edited[0] == shards[0] and edited[1] != shards[1] and edited_folders != folders
    # Clips are part of a shard's signature too: one more clip changes the shard it lands in.
    write_manifest(manifest, [*stems, "clip3"], clip_signatures(audio, meta, stems))
    assert shard_signature(manifest, 0, 2) == edited[0] and shard_signature(manifest, 1, 2) != edited[1]


def test_signatures_of_missing_files_and_manifests_without_signatures(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"1234")
    present = files_digest([tmp_path / "a.wav"])
    assert files_digest([tmp_path / "a.wav", tmp_path / "none.csv"]) != present  # a missing file counts
    (tmp_path / "b.wav").write_bytes(b"1234")
    assert files_digest([tmp_path / "b.wav"]) == present  # contents, not names or times
    (tmp_path / "b.wav").write_bytes(b"1235")
    assert files_digest([tmp_path / "b.wav"]) != present
    assert folder_signature([tmp_path / "gone"]) != folder_signature([tmp_path])
    (tmp_path / "old.txt").write_text("b\na\n")  # a manifest written before signatures existed
    assert read_manifest(tmp_path / "old.txt") == ["b", "a"]
    assert shard_signature(tmp_path / "old.txt", 0, 4) == shard_signature(tmp_path / "old.txt", 0, 4)


def test_a_shard_with_a_missing_clip_names_it(split: tuple[Path, Path], tmp_path: Path) -> None:
    audio, meta = split
    with pytest.raises(InputError, match=r"clips of this shard not found: clip9\.wav"):
        extract_split(audio, tmp_path / "s.h5", metadata_dir=meta, clips=["clip0", "clip9"], **PARAMS)
    assert not (tmp_path / "s.h5").exists()


def test_gather_links_shard_files_and_refuses_duplicates(tmp_path: Path) -> None:
    for shard, names in (("0", ["a.wav", "b.wav"]), ("1", ["c.wav"])):
        for name in names:
            (tmp_path / shard).mkdir(exist_ok=True)
            (tmp_path / shard / name).write_text(name)
    (tmp_path / "1" / ".snakemake_timestamp").write_text("")
    (tmp_path / "0" / ".snakemake_timestamp").write_text("")
    assert gather_files([tmp_path / "0", tmp_path / "1"], tmp_path / "all") == 3
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["a.wav", "b.wav", "c.wav"]
    assert (tmp_path / "all" / "c.wav").stat().st_ino == (tmp_path / "1" / "c.wav").stat().st_ino
    (tmp_path / "1" / "a.wav").write_text("again")
    with pytest.raises(InputError, match=r"a\.wav: file name also produced by shard"):
        gather_files([tmp_path / "0", tmp_path / "1"], tmp_path / "dup")
    assert not (tmp_path / "dup").exists()
