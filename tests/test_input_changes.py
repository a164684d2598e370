"""Folder datasets through the real workflow: an in-place edit reruns exactly the shards it affects, and bad label
contents stop the split check, all of them named, before any feature job."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import soundfile as sf
from helpers import planned_jobs, run_snakemake, tiny_config, write_config
from test_split_check import DCASE2021_LABELS, write_split
from test_workflow import _folder_dataset

from seldflow.labels import CLIP_SAMPLES

SPLITS = ("dev-train-x", "dev-test-x")


def _folder_config(root: Path, **dataset: Any) -> dict[str, Any]:
    config = tiny_config()
    del config["synthesis"]
    splits = {"train_splits": [SPLITS[0]], "test_splits": [SPLITS[1]]}
    config["dataset"] = {"source": "folder", "root": str(root), "shard_clips": 4, **splits, **dataset}
    return config


def _targets(kind: str = "pfoa") -> list[str]:
    return [f"results/features/{kind}/{split}.h5" for split in SPLITS]


def _shard_times(workdir: Path) -> dict[str, int]:
    shards = sorted((workdir / "results" / "features" / "pfoa").glob("*/shard-*.h5"))
    return {f"{path.parent.name}/{path.stem}": path.stat().st_mtime_ns for path in shards}


def _rewrite_in_place(path: Path, data: bytes, *, keep_mtime: bool) -> None:
    """New bytes into the same file (same inode, its folder untouched), as an editor saving in place does."""
    stat = path.stat()
    with path.open("r+b") as fh:
        fh.truncate(0)
        fh.write(data)
    if keep_mtime:  # an older copy put back: a comparison of modification times alone would miss it
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.slow
def test_in_place_edits_rerun_only_the_affected_shards(tmp_path: Path) -> None:
    root = tmp_path / "dataset"
    for split in SPLITS:
        (root / "stereo_dev" / split).mkdir(parents=True)
        _folder_dataset(root, split, 5)  # shards 0000 (clips 1-4) and 0001 (clip 5)
    write_config(tmp_path, _folder_config(root))
    run_snakemake(tmp_path, *_targets())
    assert planned_jobs(run_snakemake(tmp_path, "-n", *_targets())) == {}
    before = _shard_times(tmp_path)

    stem = "fold3_room1_mix{:03d}_deg000_start0000"
    label = root / "metadata_dev" / SPLITS[0] / f"{stem.format(5)}.csv"
    text = label.read_text().replace(",30,", ",-45,")
    _rewrite_in_place(label, text.encode(), keep_mtime=True)
    clip = root / "stereo_dev" / SPLITS[1] / f"{stem.format(2)}.wav"
    audio, rate = sf.read(clip)
    sf.write(clip.with_suffix(".tmp.wav"), -audio, rate, subtype="PCM_16")  # same size, other samples
    _rewrite_in_place(clip, clip.with_suffix(".tmp.wav").read_bytes(), keep_mtime=False)
    clip.with_suffix(".tmp.wav").unlink()

    # Both splits are checked again (the shards follow once their manifests are rewritten), nothing else.
    dry = run_snakemake(tmp_path, "-n", *_targets())
    assert planned_jobs(dry) == {"split_check": 2, "feature_index": 2}
    run_snakemake(tmp_path, *_targets())
    after = _shard_times(tmp_path)
    changed = {shard for shard in before if after[shard] != before[shard]}
    assert changed == {f"{SPLITS[0]}/shard-0001", f"{SPLITS[1]}/shard-0000"}
    with h5py.File(tmp_path / "results" / "features" / "pfoa" / f"{SPLITS[0]}.h5") as h5:
        clips = [name.decode() for name in h5["clips"][()]]
        rows = h5["label_rows"][()]
    edited = rows[rows[:, 0] == clips.index(stem.format(5))]
    assert len(edited) == 50 and set(edited[:, 4]) == {-45}  # column 0 is the clip index, 4 the azimuth
    assert planned_jobs(run_snakemake(tmp_path, "-n", *_targets())) == {}


def test_bad_dcase2021_labels_and_channel_counts_stop_the_split_check(tmp_path: Path) -> None:
    root = tmp_path / "dataset"
    for split in SPLITS:
        audio, meta = root / "foa_dev" / split, root / "metadata_dev" / split
        write_split(audio, meta, DCASE2021_LABELS, channels=4, samples=CLIP_SAMPLES)
    stereo = root / "foa_dev" / SPLITS[0] / "b_track.wav"
    sf.write(stereo, np.zeros((CLIP_SAMPLES, 2)), 24000)
    config = _folder_config(root, label_format="dcase2021")
    config["features"]["kind"] = "foa"
    write_config(tmp_path, config)
    assert planned_jobs(run_snakemake(tmp_path, "-n", *_targets("foa"))) == {"split_check": 2, "feature_index": 2}

    result = run_snakemake(tmp_path, "--keep-going", *_targets("foa"), check=False)
    assert result.returncode != 0
    for split in SPLITS:
        log = (tmp_path / "results" / "logs" / "split_check" / "foa" / f"{split}.log").read_text()
        meta = root / "metadata_dev" / split
        assert f"{meta / 'a_unknown_class'}.csv: row 1: field 'class': unknown class index 12" in log
        assert f"{meta / 'b_track'}.csv: row 2: field 'track'" in log
        assert f"{meta / 'c_elevation'}.csv: row 1: field 'elevation'" in log
        assert f"{meta / 'd_repeat'}.csv: row 2: field 'elevation'" in log
        # e_late_frame's frame 10 is inside these 5-s clips; the training split also has the stereo file.
        assert ("5 problem(s)" if split == SPLITS[0] else "4 problem(s)") in log
    train_log = (tmp_path / "results" / "logs" / "split_check" / "foa" / f"{SPLITS[0]}.log").read_text()
    assert f"{stereo}: 2 channels, 24000 Hz" in train_log
    assert not list((tmp_path / "results" / "features").rglob("*.h5"))
