"""Pretraining mixtures: quotas spread over subclasses, ov subsets that respect their polyphony, shards that equal
one job byte for byte, labels that describe the rendered scene and read back through the DCASE2021 reader, the
class table, gathering, and configuration errors caught before any job."""

from __future__ import annotations

import collections
import copy
import functools
import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from helpers import REPO
from pretrain_helpers import SR, small_settings, write_fake_bank

from seldflow.errors import ConfigError, InputError
from seldflow.formats import dcase2021
from seldflow.formats.events import EV_AZIMUTH, EV_CLASS, EV_ELEVATION, EV_FRAME, EV_TRACK
from seldflow.pretrain.bank import read_bank
from seldflow.pretrain.synthesis import (
    SynthesisSettings,
    check_pretraining,
    class_quotas,
    event_pool,
    gather_subset,
    read_class_table,
    render_clip,
    synthesize_shard,
    write_class_table,
)
from seldflow.synthesize.mixtures import clip_rng
from seldflow.synthesize.sources import read_source

BANK = {"alarm": {"beep": 2, "ring": 3}, "dog": {"bark": 2}, "engine": {"idle": 1, "rev": 2, "start": 2}}


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bank")
    write_fake_bank(root, BANK)
    return root


def test_pool_spreads_each_class_quota_evenly_over_its_subclasses(tmp_path: Path) -> None:
    write_fake_bank(tmp_path, {"A": {"a1": 2, "a2": 1, "a3": 5}, "B": {"b1": 3}})
    bank = read_bank(tmp_path)
    quotas = class_quotas(bank, 7, {"B": 4})
    assert quotas == [7, 4]
    pool = event_pool(bank, quotas, seed=1)
    per_subclass = collections.Counter(entry.subclass for entry in pool)
    # 7 over three subclasses: 3, 2, 2 (the first takes the remainder); B's 4 all in its one subclass.
    assert per_subclass == {"a1": 3, "a2": 2, "a3": 2, "b1": 4}
    assert collections.Counter(entry.class_index for entry in pool) == {0: 7, 1: 4}
    # Within a subclass the files are cycled: each used as evenly as the count allows.
    files = collections.Counter(entry.path.name for entry in pool if entry.subclass == "b1")
    assert sorted(files.values()) == [1, 1, 2]
    assert len({entry.path for entry in pool if entry.subclass == "a3"}) == 2
    again, other = event_pool(bank, quotas, seed=1), event_pool(bank, quotas, seed=2)
    assert again == pool
    assert other != pool
    assert collections.Counter(entry.subclass for entry in other) == per_subclass


def test_a_quota_for_an_unknown_class_is_an_error(bank_dir: Path) -> None:
    with pytest.raises(InputError, match="cat"):
        class_quotas(read_bank(bank_dir), 5, {"cat": 3})


def _render(bank_dir: Path, max_polyphony: int, k: int, **overrides: object):
    settings = small_settings(**overrides)
    bank = read_bank(bank_dir)
    pool = event_pool(bank, class_quotas(bank, 10), seed=5)
    load = functools.lru_cache(maxsize=None)(functools.partial(read_source, sample_rate=settings.sample_rate))
    return render_clip(clip_rng(5, 0, k), pool, load, max_polyphony, settings), settings


@pytest.mark.parametrize("max_polyphony", [1, 2, 3])
def test_ov_subsets_never_exceed_their_polyphony(bank_dir: Path, max_polyphony: int) -> None:
    reached = 0
    for k in range(6):
        clip, _ = _render(bank_dir, max_polyphony, k, gap_seconds=(0.0, 0.5))
        frames = collections.Counter(clip.labels[:, EV_FRAME].astype(int))
        assert max(frames.values()) <= max_polyphony
        assert set(clip.labels[:, EV_TRACK].astype(int)) <= set(range(max_polyphony))
        reached = max(reached, max(frames.values()))
    assert reached == max_polyphony  # dense tracks do overlap


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def test_labels_describe_the_rendered_scene(bank_dir: Path) -> None:
    """Each event's label direction is the source's direction from the array, and the FOA sound field of the
    event (its intensity vector, reverberation and all, in a small dry room) points there too."""
    for k in range(3):
        clip, settings = _render(bank_dir, 1, k)
        for event in clip.events:
            offset = event.position - clip.room.array
            rows = clip.labels[(clip.labels[:, EV_FRAME] >= event.onset // settings.hop)]
            rows = rows[rows[:, EV_FRAME] < -(-(event.onset + event.length) // settings.hop)]
            assert np.all(rows[:, EV_CLASS] == event.class_index)
            azimuth = np.degrees(np.arctan2(offset[1], offset[0]))
            elevation = np.degrees(np.arctan2(offset[2], np.hypot(offset[0], offset[1])))
            assert np.all(np.abs(rows[:, EV_AZIMUTH] - azimuth) <= 0.5)
            assert np.all(np.abs(rows[:, EV_ELEVATION] - elevation) <= 0.5)
            w, y, z, x = clip.audio["foa"][:, event.onset : event.onset + event.length].astype(np.float64)
            intensity = _unit(np.array([np.sum(w * x), np.sum(w * y), np.sum(w * z)]))
            assert np.degrees(np.arccos(np.clip(intensity @ _unit(offset), -1, 1))) < 15


def test_formats_share_one_gain_and_the_clip_length(bank_dir: Path) -> None:
    clip, settings = _render(bank_dir, 3, 0)
    n = round(settings.clip_seconds * SR)
    assert clip.audio["foa"].shape == (4, n) and clip.audio["mic"].shape == (4, n) and clip.audio["sum"].shape == (1, n)
    peaks = {name: float(np.max(np.abs(audio))) for name, audio in clip.audio.items()}
    assert max(peaks.values()) == pytest.approx(settings.peak_level, rel=1e-5)
    assert all(0 < peak <= settings.peak_level * (1 + 1e-6) for peak in peaks.values())
    # The dry sum is silent exactly where no event plays.
    active = np.zeros(n, dtype=bool)
    for event in clip.events:
        active[event.onset : event.onset + event.length] = True
    assert not np.any(clip.audio["sum"][0, ~active])


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _shard(bank_dir: Path, out: Path, first: int, count: int, **kwargs: object) -> None:
    synthesize_shard(
        bank_dir=bank_dir,
        out_dir=out,
        fold=0,
        max_polyphony=2,
        first_clip=first,
        n_clips=count,
        seed=11,
        events_per_class=6,
        settings=small_settings(clip_seconds=2.0),
        **kwargs,
    )


@pytest.fixture(scope="module")
def shards(bank_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shards")
    _shard(bank_dir, root / "whole", 0, 4)
    _shard(bank_dir, root / "again", 0, 4)
    _shard(bank_dir, root / "s0", 0, 3)
    _shard(bank_dir, root / "s1", 3, 1)
    return root


def test_same_seed_same_bytes_and_shards_equal_one_job(shards: Path) -> None:
    whole = _files(shards / "whole")
    assert whole == _files(shards / "again")
    assert {name for name in whole if name.startswith("foa/")} == {
        f"foa/fold0_room0_mix{k:06d}.flac" for k in range(1, 5)
    }
    split = {**_files(shards / "s0"), **_files(shards / "s1")}
    assert {name: digest for name, digest in split.items() if "/" in name} == {
        name: digest for name, digest in whole.items() if "/" in name
    }


def test_shard_layout_formats_and_labels_read_back(bank_dir: Path, shards: Path) -> None:
    bank = read_bank(bank_dir)
    for k in range(4):
        stem = f"fold0_room0_mix{k + 1:06d}"
        channels = {name: sf.info(str(shards / "whole" / name / f"{stem}.flac")) for name in ("foa", "mic", "sum")}
        assert {name: info.channels for name, info in channels.items()} == {"foa": 4, "mic": 4, "sum": 1}
        assert {info.format for info in channels.values()} == {"FLAC"}
        assert {info.frames for info in channels.values()} == {2 * SR}
        events = dcase2021.read_events(shards / "whole" / "metadata" / f"{stem}.csv", n_classes=len(bank.labels))
        clip = render_clip(
            clip_rng(11, 0, k),
            event_pool(bank, class_quotas(bank, 6), seed=11),
            functools.partial(read_source, sample_rate=SR),
            2,
            small_settings(clip_seconds=2.0),
        )
        np.testing.assert_array_equal(events, clip.labels)
        audio, _ = sf.read(str(shards / "whole" / "foa" / f"{stem}.flac"), always_2d=True)
        np.testing.assert_allclose(audio.T, clip.audio["foa"], atol=1 / 32768 + 1e-7)


def test_class_table_counts_the_events_and_their_seconds(bank_dir: Path, shards: Path) -> None:
    bank = read_bank(bank_dir)
    counts, seconds = np.zeros(len(bank.labels)), np.zeros(len(bank.labels))
    for k in range(4):
        clip = render_clip(
            clip_rng(11, 0, k),
            event_pool(bank, class_quotas(bank, 6), seed=11),
            functools.partial(read_source, sample_rate=SR),
            2,
            small_settings(clip_seconds=2.0),
        )
        for event in clip.events:
            counts[event.class_index] += 1
            seconds[event.class_index] += event.length / SR
    table = read_class_table(shards / "whole" / "cls_indices.tsv")
    assert [row["label"] for row in table] == ["alarm", "dog", "engine"]
    assert [row["id"] for row in table] == [0, 1, 2]
    np.testing.assert_array_equal([row["num_clip"] for row in table], counts)
    np.testing.assert_allclose([row["total_duration"] for row in table], seconds, atol=1e-3)


def test_gather_links_the_shards_and_sums_the_counts(shards: Path, tmp_path: Path) -> None:
    clips = gather_subset([shards / "s0", shards / "s1"], tmp_path / "train4_ov2_1")
    assert clips == 4
    gathered = _files(tmp_path / "train4_ov2_1")
    whole = _files(shards / "whole")
    assert {n: d for n, d in gathered.items() if "/" in n} == {n: d for n, d in whole.items() if "/" in n}
    summed = read_class_table(tmp_path / "train4_ov2_1" / "cls_indices.tsv")
    expected = read_class_table(shards / "whole" / "cls_indices.tsv")
    assert [row["num_clip"] for row in summed] == [row["num_clip"] for row in expected]
    assert [row["total_duration"] for row in summed] == pytest.approx([row["total_duration"] for row in expected])


def test_gather_refuses_shards_of_different_vocabularies(shards: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    write_class_table(other / "cls_indices.tsv", ["alarm", "cat", "engine"], [0, 0, 0], [0.0, 0.0, 0.0])
    with pytest.raises(InputError, match="vocabulary differs"):
        gather_subset([shards / "s0", other], tmp_path / "out")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id\tlabel\tnum_clip\n0\ta\t1\n", "missing columns total_duration"),
        ("id\tlabel\tnum_clip\ttotal_duration\n1\ta\t1\t2.0\n", "out of order"),
        ("id\tlabel\tnum_clip\ttotal_duration\n0\ta\tmany\t2.0\n", "not a number"),
        ("id\tlabel\tnum_clip\ttotal_duration\n", "no classes"),
    ],
)
def test_bad_class_tables_are_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cls_indices.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_class_table(path)


def test_the_released_class_table_with_mids_reads(tmp_path: Path) -> None:
    """The release's table has an AudioSet ``mid`` column too."""
    table = tmp_path / "cls_indices_train.tsv"
    table.write_text(
        "id\tmid\tlabel\tnum_clip\ttotal_duration\n0\t/m/0bt9lr\tDog\t12\t34.5\n1\t/m/01yrx\tCat\t3\t4.0\n"
    )
    rows = read_class_table(table)
    assert [(r["id"], r["label"], r["num_clip"], r["total_duration"]) for r in rows] == [
        (0, "Dog", 12, 34.5),
        (1, "Cat", 3, 4.0),
    ]


def _pretraining() -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    section = copy.deepcopy(config["pretraining"])
    section.setdefault("mixtures", {})
    section.setdefault("rooms", {})
    return section


def test_the_default_pretraining_section_passes_its_check() -> None:
    check_pretraining(_pretraining())


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (
            lambda s: s["subsets"].update(
                train8_ov2_1={"fold": 0, "clips": 8, "max_polyphony": 1, "source_split": "train"}
            ),
            "pretraining.subsets.train8_ov2_1.max_polyphony",
        ),
        (
            lambda s: s["subsets"].update(
                train8_ov1_1={"fold": 0, "clips": 9, "max_polyphony": 1, "source_split": "train"}
            ),
            "pretraining.subsets.train8_ov1_1.clips",
        ),
        (
            lambda s: s["subsets"].update(extra={"fold": 0, "clips": 9, "max_polyphony": 1, "source_split": "valid"}),
            "pretraining.subsets.extra.source_split",
        ),
        (lambda s: s.update(class_quotas={"unicorn": 3}), "pretraining.class_quotas"),
        (lambda s: s.update(clip_seconds=2.05), "pretraining.clip_seconds"),
        (lambda s: s.update(sample_rate=24001), "pretraining.sample_rate"),
        (lambda s: s["mixtures"].update(gap_seconds=[2.0, 1.0]), "pretraining.mixtures"),
        (lambda s: s["rooms"].update(size_m=[[5.0, 6.0], [5.0, 6.0], [1.5, 2.0]]), "pretraining.rooms"),
    ],
)
def test_bad_pretraining_sections_name_the_key(mutate, key: str) -> None:
    section = _pretraining()
    mutate(section)
    with pytest.raises(ConfigError) as error:
        check_pretraining(section)
    assert error.value.key == key


def test_settings_refuse_a_clip_off_the_label_grid() -> None:
    with pytest.raises(ValueError, match=r"multiple of 0\.1"):
        SynthesisSettings(clip_seconds=1.25)
