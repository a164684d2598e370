"""Tests of the TAU-NIGENS Spatial Sound Events 2020 adapter (folds, pairing, errors) and of DOAnet's overlap
augmentation (``augment_files.py``: which pairs, names, sox-mix audio, concatenated metadata), on tiny real WAV and
CSV trees."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seldflow.errors import InputError
from seldflow.formats.events import frame_slots
from seldflow.metrics.doa_mot import read_file
from seldflow.tau_nigens2020 import (
    SAMPLE_RATE,
    dev_recordings,
    find_recordings,
    overlap_augment,
    plan_overlap_pairs,
    read_metadata,
    split_folds,
)

SAMPLES = 480  # 20 ms: enough for real files, tiny on disk


def scene(root: Path, stem: str, rows: list[str], *, fmt: str = "foa", value: float = 0.0, samples: int = SAMPLES):
    """One scene: a 4-channel 16-bit WAV holding ``value`` (channel c: value · (c + 1) / 4) and its CSV rows."""
    (root / f"{fmt}_dev").mkdir(parents=True, exist_ok=True)
    (root / "metadata_dev").mkdir(parents=True, exist_ok=True)
    audio = np.full((samples, 4), value) * (np.arange(1, 5) / 4)
    sf.write(str(root / f"{fmt}_dev" / f"{stem}.wav"), audio, SAMPLE_RATE, subtype="PCM_16")
    (root / "metadata_dev" / f"{stem}.csv").write_text("".join(row + "\n" for row in rows))


def dev_tree(root: Path) -> None:
    for fold in range(1, 7):
        for room in (1, 2):
            scene(root, f"fold{fold}_room{room}_mix{room:03d}_ov1", [f"0,{fold},0,10,{room}"])
        scene(root, f"fold{fold}_room1_mix003_ov2", ["0,1,0,10,0", "0,2,0,-20,5"])


def test_splits_are_the_doanet_folds() -> None:
    assert split_folds("test") == (1,) and split_folds("validation") == (2,)
    assert split_folds("train") == (3, 4, 5, 6)
    with pytest.raises(ValueError, match="unknown split"):
        split_folds("dev")


def test_dev_recordings_lists_a_split_with_its_metadata(tmp_path: Path) -> None:
    dev_tree(tmp_path)
    test = dev_recordings(tmp_path, "foa", split="test")
    assert [r.stem for r in test] == ["fold1_room1_mix001_ov1", "fold1_room1_mix003_ov2", "fold1_room2_mix002_ov1"]
    first = test[1]
    assert (first.fold, first.room, first.mix, first.overlap, first.augmented) == (1, 1, "mix003", 2, False)
    assert first.audio == tmp_path / "foa_dev" / "fold1_room1_mix003_ov2.wav"
    assert read_metadata(first.metadata)[:, 4].tolist() == [0, 5]
    train = dev_recordings(tmp_path, "foa", split="train")
    assert sorted({r.fold for r in train}) == [3, 4, 5, 6] and len(train) == 12
    assert len(dev_recordings(tmp_path, "foa")) == 18


def test_missing_folders_and_files_are_named(tmp_path: Path) -> None:
    dev_tree(tmp_path)
    with pytest.raises(InputError, match=r"mic_dev: folder not found: unpack .*Zenodo 3870859"):
        dev_recordings(tmp_path, "mic")
    (tmp_path / "metadata_dev" / "fold2_room1_mix001_ov1.csv").unlink()
    with pytest.raises(InputError, match=r"fold2_room1_mix001_ov1\.wav: recording has no metadata file"):
        dev_recordings(tmp_path, split="validation")
    assert len(dev_recordings(tmp_path, split="test")) == 3  # other folds are not affected
    (tmp_path / "foa_dev" / "fold2_room1_mix001_ov1.wav").unlink()
    (tmp_path / "foa_dev" / "fold1_room2_mix002_ov1.wav").unlink()
    with pytest.raises(InputError, match=r"fold1_room2_mix002_ov1\.csv: metadata file has no recording"):
        dev_recordings(tmp_path, split="test")


def test_bad_names_audio_and_metadata_raise_input_errors(tmp_path: Path) -> None:
    dev_tree(tmp_path)
    scene(tmp_path, "fold1_mix009", [])
    with pytest.raises(InputError, match=r"fold1_mix009\.wav: name 'fold1_mix009' does not follow"):
        dev_recordings(tmp_path)
    (tmp_path / "foa_dev" / "fold1_mix009.wav").unlink()
    (tmp_path / "metadata_dev" / "fold1_mix009.csv").unlink()
    sf.write(str(tmp_path / "foa_dev" / "fold1_room1_mix001_ov1.wav"), np.zeros((10, 2)), SAMPLE_RATE)
    with pytest.raises(InputError, match=r"fold1_room1_mix001_ov1\.wav: field 'channels': has 2 channels"):
        dev_recordings(tmp_path, split="test")
    (tmp_path / "bad.csv").write_text("0,1,0,10,95\n")
    with pytest.raises(InputError, match=r"bad\.csv: row 1: field 'elevation'"):
        read_metadata(tmp_path / "bad.csv")
    (tmp_path / "metadata_dev" / "notes.csv").write_text("")
    with pytest.raises(InputError, match=r"notes\.csv: name 'notes' does not follow"):
        dev_recordings(tmp_path)
    (tmp_path / "metadata_dev" / "notes.csv").unlink()
    with pytest.raises(InputError, match="no recordings of fold"):
        find_recordings(tmp_path / "foa_dev", tmp_path / "metadata_dev", folds=[7], check_audio=False)


# --------------------------------------------------------------------------------------------------------------
# Overlap augmentation
# --------------------------------------------------------------------------------------------------------------


def test_pairs_are_the_first_combinations_per_fold_and_room(tmp_path: Path) -> None:
    # Room 1 of fold 3 holds 5 single-source scenes: C(5, 2) = 10 pairs, multiplier 1 keeps the first 5.
    for k in range(1, 6):
        scene(tmp_path, f"fold3_room1_mix{k:03d}_ov1", [f"{k},0,0,0,0"])
    scene(tmp_path, "fold3_room1_mix006_ov2", [])  # not single-source
    scene(tmp_path, "fold3_room1_aug001002_ov1", [])  # already augmented
    scene(tmp_path, "fold3_room2_mix007_ov1", [])  # alone in its room: no pair
    scene(tmp_path, "fold1_room1_mix008_ov1", [])  # test fold
    scene(tmp_path, "fold1_room1_mix009_ov1", [])
    recordings = dev_recordings(tmp_path)
    pairs = plan_overlap_pairs(recordings, multiplier=1)
    names = [(a.mix, b.mix) for a, b in pairs]
    expected = list(itertools.combinations([f"mix{k:03d}" for k in range(1, 6)], 2))[:5]
    assert names == expected
    assert len(plan_overlap_pairs(recordings)) == 10  # 4 x 5 = 20 allowed, only 10 exist
    seeded = plan_overlap_pairs(recordings, multiplier=1, seed=7)
    assert seeded == plan_overlap_pairs(recordings, multiplier=1, seed=7) and len(seeded) == 5
    assert {frozenset((a.mix, b.mix)) for a, b in seeded} <= {
        frozenset(p) for p in itertools.combinations([f"mix{k:03d}" for k in range(1, 6)], 2)
    }


def test_overlap_augment_mixes_audio_and_concatenates_metadata(tmp_path: Path) -> None:
    data = tmp_path / "data"
    scene(data, "fold3_room1_mix001_ov1", ["0,4,0,10,20", "1,4,0,12,20", "3,4,0,14,20"], value=0.5)
    scene(data, "fold3_room1_mix002_ov1", ["1,7,0,-90,-10", "2,7,0,-91,-10"], value=0.25, samples=SAMPLES // 2)
    scene(data, "fold1_room1_mix003_ov1", ["0,1,0,0,0"])
    scene(data, "fold1_room1_mix004_ov1", ["0,1,0,0,0"])
    out_audio, out_meta = tmp_path / "aug" / "foa_dev", tmp_path / "aug" / "metadata_dev"
    stems = overlap_augment(data / "foa_dev", data / "metadata_dev", out_audio, out_meta)
    assert stems == ["fold3_room1_aug001002_ov1"]
    assert sorted(p.name for p in out_audio.iterdir()) == ["fold3_room1_aug001002_ov1.wav"]
    audio, rate = sf.read(str(out_audio / f"{stems[0]}.wav"), always_2d=True)
    assert rate == SAMPLE_RATE and audio.shape == (SAMPLES, 4)
    gains = np.arange(1, 5) / 4
    np.testing.assert_allclose(audio[0], (0.5 + 0.25) / 2 * gains, atol=1 / 32768)  # both halves
    np.testing.assert_allclose(audio[-1], 0.5 / 2 * gains, atol=1 / 32768)  # the shorter input has ended
    assert sf.info(str(out_audio / f"{stems[0]}.wav")).subtype == "PCM_16"
    text = (out_meta / f"{stems[0]}.csv").read_text()
    assert text.splitlines() == ["0,4,0,10,20", "1,4,0,12,20", "3,4,0,14,20", "1,7,0,-90,-10", "2,7,0,-91,-10"]
    # Frame-aligned, the first file's source in slot 0: frame 1 holds (12, 20) then (-90, -10).
    table = read_file(out_meta / f"{stems[0]}.csv")
    frame1 = table[table[:, 0] == 1]
    assert frame1[:, 3].tolist() == [12, -90] and frame_slots(table).tolist() == [0, 0, 0, 1, 0]


def test_overlap_augment_refuses_a_bad_scene_before_writing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    scene(data, "fold4_room1_mix001_ov1", ["0,4,0,10,20", "0,5,0,10,20"])  # two sources in an ov1 scene
    scene(data, "fold4_room1_mix002_ov1", ["1,7,0,-90,-10"])
    out = tmp_path / "aug"
    with pytest.raises(InputError, match=r"mix001_ov1\.csv: single-source \(ov1\) scene has 2 sources in frame 0"):
        overlap_augment(data / "foa_dev", data / "metadata_dev", out / "a", out / "m")
    assert not out.exists()
