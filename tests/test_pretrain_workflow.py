"""The pretraining data in the workflow: the plan (one job per shard, as a cluster array), a bad section refused
before any job, a user bank used as it is, and a tiny run to the released layout that the adapter reads."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from helpers import default_config, planned_jobs, run_snakemake, tiny_config, write_config
from pretrain_helpers import write_fake_bank

from seldflow.pretrain.datasynth import open_subset


def pretrain_config(**subsets: tuple[int, int]) -> dict:
    """The tiny SELD config plus a pretraining section of a few classes, 16-kHz 1-s mixtures, shards of 3."""
    config = tiny_config()
    section = copy.deepcopy(default_config()["pretraining"])
    section["bank"].update(clips_per_subclass={"train": 1, "test": 1}, classes=3, min_seconds=0.3, max_seconds=0.8)
    section.update(sample_rate=16000, clip_seconds=1.0, shard_clips=3, events_per_class=5)
    section["rooms"].update(size_m=[[5.0, 6.0], [5.0, 6.0], [3.0, 3.5]], rt60_s=[0.2, 0.4])
    section["subsets"] = {
        name: {"fold": 0, "clips": clips, "max_polyphony": ov, "source_split": "train"}
        for name, (clips, ov) in subsets.items()
    }
    config["pretraining"] = section
    return config


def test_dry_run_plans_one_job_per_shard(tmp_path: Path) -> None:
    write_config(tmp_path, pretrain_config(train7_ov1_1=(7, 1), train3_ov3_1=(3, 3)))
    result = run_snakemake(tmp_path, "-n", "pretrain_data")
    # 7 clips in shards of 3: 3 jobs; 3 clips: 1 job.
    assert planned_jobs(result) == {
        "pretrain_bank": 1,
        "pretrain_synthesis": 4,
        "pretrain_subset": 2,
        "pretrain_data": 1,
    }


def test_one_shard_is_a_target_of_its_own(tmp_path: Path) -> None:
    """What a cluster job array runs: each shard output on its own."""
    write_config(tmp_path, pretrain_config(train7_ov1_1=(7, 1)))
    one = run_snakemake(tmp_path, "-n", "results/pretrain/shards/train7_ov1_1/0002")
    assert planned_jobs(one) == {"pretrain_bank": 1, "pretrain_synthesis": 1}


def test_a_bad_section_fails_the_dry_run_naming_the_key(tmp_path: Path) -> None:
    write_config(tmp_path, pretrain_config(train7_ov2_1=(7, 1)))
    result = run_snakemake(tmp_path, "-n", "pretrain_data", check=False)
    assert result.returncode != 0
    assert "pretraining.subsets.train7_ov2_1.max_polyphony" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_a_user_bank_replaces_the_procedural_one(tmp_path: Path) -> None:
    config = pretrain_config(train2_ov2_1=(2, 2))
    write_fake_bank(tmp_path / "fsd" / "train", {"Dog": {"Bark": 1}, "Cat": {"Meow": 1}})
    config["pretraining"]["bank"]["path"] = str(tmp_path / "fsd")
    write_config(tmp_path, config)
    assert planned_jobs(run_snakemake(tmp_path, "-n", "pretrain_data")) == {
        "pretrain_synthesis": 1,
        "pretrain_subset": 1,
        "pretrain_data": 1,
    }


@pytest.mark.slow
def test_tiny_run_writes_subsets_the_adapter_reads(tmp_path: Path) -> None:
    write_config(tmp_path, pretrain_config(train4_ov1_1=(4, 1), train2_ov3_1=(2, 3)))
    run_snakemake(tmp_path, "pretrain_data")
    for name, (clips, ov) in {"train4_ov1_1": (4, 1), "train2_ov3_1": (2, 3)}.items():
        subset = open_subset(tmp_path / "results" / "pretrain" / "DataSynthSELD" / name)
        assert len(subset.clips) == clips and subset.max_polyphony == ov and len(subset.labels) == 3
        for clip in subset.clips:
            subset.read_events(clip)
    assert planned_jobs(run_snakemake(tmp_path, "-n", "pretrain_data")) == {}
