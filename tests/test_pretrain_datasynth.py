"""The DataSynthSELD adapter on a tiny fake release (real FLAC files, the release's class table with mids) and on a
subset this project rendered: clips, vocabulary, polyphony, the DCASE2021-style export, and every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pretrain_helpers import small_settings, write_fake_bank

from seldflow.errors import InputError
from seldflow.formats import dcase2021
from seldflow.io import read_audio
from seldflow.pretrain.datasynth import export_dcase, open_subset
from seldflow.pretrain.synthesis import gather_subset, synthesize_shard

SR = 24000
STEMS = ("fold0_room0_mix1", "fold0_room0_mix2")
CLASS_TABLE = (
    "id\tmid\tlabel\tnum_clip\ttotal_duration\n"
    "0\t/m/0bt9lr\tDog\t2\t1.5\n1\t/m/01yrx\tCat\t1\t0.5\n2\t/m/07pp_mv\tAlarm\t0\t0.0\n"
)
# frame, class, track, azimuth, elevation: integers, as the release writes them.
LABELS = "0,0,0,-30,10\n1,0,0,-30,10\n3,1,0,120,-5\n"


def fake_release(root: Path, subset: str = "train2_ov1_1", *, frames: int = 6000) -> Path:
    """``<root>/<subset>/{foa,mic,sum,metadata}`` with two clips and ``<root>/cls_indices_train.tsv``."""
    rng = np.random.default_rng(0)
    folder = root / subset
    for fmt, channels in (("foa", 4), ("mic", 4), ("sum", 1)):
        (folder / fmt).mkdir(parents=True)
        for stem in STEMS:
            audio = np.clip(0.1 * rng.standard_normal((frames, channels)), -0.9, 0.9)
            sf.write(folder / fmt / f"{stem}.flac", audio, SR, subtype="PCM_16", format="FLAC")
    (folder / "metadata").mkdir()
    for stem in STEMS:
        (folder / "metadata" / f"{stem}.csv").write_text(LABELS)
    (root / "cls_indices_train.tsv").write_text(CLASS_TABLE)
    return folder


def test_a_released_subset_opens_with_its_vocabulary_and_polyphony(tmp_path: Path) -> None:
    subset = open_subset(fake_release(tmp_path))
    assert subset.labels == ("Dog", "Cat", "Alarm")
    assert subset.max_polyphony == 1 and subset.sample_rate == SR
    assert [clip.stem for clip in subset.clips] == list(STEMS)
    assert set(subset.clips[0].audio) == {"foa", "mic", "sum"}
    events = subset.read_events(subset.clips[0])
    np.testing.assert_array_equal(events[:, :5], [[0, 0, 0, -30, 10], [1, 0, 0, -30, 10], [3, 1, 0, 120, -5]])


def test_export_writes_a_dcase2021_style_split(tmp_path: Path) -> None:
    subset = open_subset(fake_release(tmp_path / "release"))
    assert export_dcase(subset, tmp_path / "dcase", "pretrain-ov1", max_clips=1) == 1
    wav = tmp_path / "dcase" / "foa_dev" / "pretrain-ov1" / f"{STEMS[0]}.wav"
    exported = read_audio(wav, sample_rate=SR, channels=4)
    original, _ = sf.read(str(subset.clips[0].audio["foa"]), dtype="float32", always_2d=True)
    np.testing.assert_array_equal(exported, original.T)  # 16-bit in, 16-bit out: lossless
    assert sorted(p.name for p in (tmp_path / "dcase" / "mic_dev" / "pretrain-ov1").iterdir()) == [f"{STEMS[0]}.wav"]
    labels = dcase2021.read_events(
        tmp_path / "dcase" / "metadata_dev" / "pretrain-ov1" / f"{STEMS[0]}.csv", n_classes=3
    )
    np.testing.assert_array_equal(labels, subset.read_events(subset.clips[0]))


def test_a_subset_rendered_here_opens_with_its_own_class_table(tmp_path: Path) -> None:
    write_fake_bank(tmp_path / "bank", {"alarm": {"beep": 1}, "dog": {"bark": 2}})
    synthesize_shard(
        bank_dir=tmp_path / "bank",
        out_dir=tmp_path / "shard",
        fold=0,
        max_polyphony=2,
        first_clip=0,
        n_clips=2,
        seed=1,
        events_per_class=4,
        settings=small_settings(clip_seconds=2.0),
    )
    gather_subset([tmp_path / "shard"], tmp_path / "root" / "train2_ov2_1")
    subset = open_subset(tmp_path / "root" / "train2_ov2_1")
    assert subset.labels == ("alarm", "dog") and subset.max_polyphony == 2 and len(subset.clips) == 2
    for clip in subset.clips:
        subset.read_events(clip)


def _break(folder: Path, how: str) -> None:
    if how == "missing mic":
        (folder / "mic" / f"{STEMS[1]}.flac").unlink()
    elif how == "labels without audio":
        (folder / "metadata" / "fold0_room0_mix9.csv").write_text(LABELS)
    elif how == "stray file":
        (folder / "sum" / "notes.txt").write_text("x")
    elif how == "wrong channels":
        sf.write(folder / "sum" / f"{STEMS[0]}.flac", np.zeros((6000, 2)), SR, format="FLAC")
    elif how == "different lengths":
        sf.write(folder / "sum" / f"{STEMS[0]}.flac", np.zeros((5000, 1)), SR, format="FLAC")
    elif how == "not audio":
        (folder / "foa" / f"{STEMS[0]}.flac").write_bytes(b"not a flac file")
    elif how == "two files of a clip":
        sf.write(folder / "foa" / f"{STEMS[0]}.wav", np.zeros((6000, 4)), SR)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing mic", f"{STEMS[1]}.csv: no mic audio"),
        ("labels without audio", "fold0_room0_mix9.csv: no foa audio"),
        ("stray file", "not a .flac or .wav file"),
        ("wrong channels", "2 channels, sum has 1"),
        ("different lengths", "formats of different lengths"),
        ("not audio", "cannot read audio"),
        ("two files of a clip", "second file of clip"),
    ],
)
def test_bad_release_folders_are_one_error_naming_the_file(tmp_path: Path, how: str, message: str) -> None:
    folder = fake_release(tmp_path)
    _break(folder, how)
    with pytest.raises(InputError, match=message):
        open_subset(folder)


def test_a_frame_beyond_the_subsets_polyphony_is_an_error(tmp_path: Path) -> None:
    folder = fake_release(tmp_path)
    (folder / "metadata" / f"{STEMS[0]}.csv").write_text("0,0,0,-30,10\n0,1,1,120,-5\n")
    subset = open_subset(folder)
    with pytest.raises(InputError, match="frame 0 holds 2 events, more than the subset's ov1"):
        subset.read_events(subset.clips[0])


def test_missing_folders_and_class_tables_are_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="subset folder not found"):
        open_subset(tmp_path / "train1_ov1_1")
    folder = fake_release(tmp_path)
    (tmp_path / "cls_indices_train.tsv").unlink()
    with pytest.raises(InputError, match="no class table"):
        open_subset(folder)
    (tmp_path / "cls_indices_train.tsv").write_text(CLASS_TABLE)
    for path in (folder / "mic").iterdir():
        path.unlink()
    (folder / "mic").rmdir()
    with pytest.raises(InputError, match="layout not found"):
        open_subset(folder)
    assert len(open_subset(folder, formats=("foa", "sum")).clips) == 2  # the formats asked for only


def test_a_label_of_a_class_beyond_the_vocabulary_is_an_error(tmp_path: Path) -> None:
    folder = fake_release(tmp_path)
    (folder / "metadata" / f"{STEMS[0]}.csv").write_text("0,5,0,-30,10\n")
    subset = open_subset(folder)
    with pytest.raises(InputError, match="unknown class index 5"):
        subset.read_events(subset.clips[0])
