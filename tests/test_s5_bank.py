"""S5 bank folder adapters and the cleaning of added clips (library and stage entry), on tiny trees and crafted
signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seldflow.errors import ConfigError, InputError
from seldflow.s5.bank import read_dev_bank, read_rooms, scan_class_folders, scan_single_class, with_added
from seldflow.s5.cleaning import (
    KEPT,
    LOW_AMPLITUDE,
    LOW_AMPLITUDE_SEGMENT,
    TOO_SHORT,
    TOO_SHORT_AFTER_TRIM,
    CleaningSettings,
    added_bank_folders,
    check_added_banks,
    clean_clip,
    clean_folder,
    run_cleaning,
)
from seldflow.synthesize.sofa import write_sofa

RATE = 8000
CLASSES = ("Buzzer", "Speech")


def _wav(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(audio, dtype=np.float32).T, rate)
    return path


def _tree(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for label in CLASSES:
        for k in range(2):
            _wav(root / "sound_event/train" / label / f"{label}_{k}.wav", 0.3 * rng.standard_normal(RATE // 2))
    _wav(root / "interference/train/Engine/e.wav", 0.3 * rng.standard_normal(RATE // 2))
    _wav(root / "noise/train/n.wav", 0.1 * rng.standard_normal((4, RATE)))
    return root


def test_dev_layout_is_read_per_class(tmp_path: Path) -> None:
    bank = read_dev_bank(_tree(tmp_path), "train", sample_rate=RATE, classes=CLASSES)
    assert bank.target_labels == CLASSES and bank.interferer_labels == ("Engine",)
    assert [bank.relative(p) for p in bank.targets["Speech"]] == [
        "sound_event/train/Speech/Speech_0.wav",
        "sound_event/train/Speech/Speech_1.wav",
    ]
    assert bank.clip_info(bank.noise[0]).channels == 4 and bank.clip_info(bank.noise[0]).frames == RATE
    assert bank.resolve("noise/train/n.wav") == bank.noise[0]
    np.testing.assert_array_equal(
        bank.read(bank.noise[0], 10, 5), sf.read(str(bank.noise[0]), dtype="float64")[0][10:15].T
    )


def test_empty_class_folder_is_an_error(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    for path in (root / "sound_event/train/Speech").iterdir():
        path.unlink()
    with pytest.raises(InputError, match=r"no \.wav files for target class 'Speech'"):
        read_dev_bank(root, "train", sample_rate=RATE, classes=CLASSES)


def test_unknown_class_folder_is_an_error(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    _wav(root / "sound_event/train/Speeech/x.wav", np.ones(100) * 0.1)
    with pytest.raises(InputError, match="unknown target class folder 'Speeech'"):
        read_dev_bank(root, "train", sample_rate=RATE, classes=CLASSES)


def test_wrong_rate_and_multichannel_sources_are_errors(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    bad = _wav(root / "sound_event/train/Buzzer/fast.wav", np.zeros(100), rate=16000)
    with pytest.raises(InputError, match="16000 Hz, the bank is 8000 Hz") as info:
        read_dev_bank(root, "train", sample_rate=RATE, classes=CLASSES)
    assert info.value.path == str(bad.resolve()) and info.value.field == "sample_rate"
    bad.unlink()
    _wav(root / "sound_event/train/Buzzer/stereo.wav", np.zeros((2, 100)))
    with pytest.raises(InputError, match="2 channels, a source clip must be mono"):
        read_dev_bank(root, "train", sample_rate=RATE, classes=CLASSES)


def test_mono_noise_is_an_error(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    _wav(root / "noise/train/n.wav", np.zeros(100))
    with pytest.raises(InputError, match="noise file needs one channel per room channel"):
        read_dev_bank(root, "train", sample_rate=RATE, classes=CLASSES)


def test_added_target_folders(tmp_path: Path) -> None:
    root = _tree(tmp_path / "dev")
    fsd = tmp_path / "fsd"
    _wav(fsd / "Alarm_clock/1.wav", np.full(50, 0.1))
    _wav(fsd / "Unrelated/2.wav", np.full(50, 0.1))
    found = scan_class_folders(fsd, class_map={"Alarm_clock": "AlarmClock"})
    assert list(found) == ["AlarmClock"] and [p.name for p in found["AlarmClock"]] == ["1.wav"]
    ears = tmp_path / "ears"
    _wav(ears / "p001/a.wav", np.full(50, 0.1))
    _wav(ears / "p002/b.wav", np.full(50, 0.1))
    speech = scan_single_class(ears, "Speech")
    assert [p.name for p in speech["Speech"]] == ["a.wav", "b.wav"]
    bank = read_dev_bank(root, "train", sample_rate=RATE, classes=CLASSES).with_targets({**found, **speech})
    assert bank.target_labels == ("AlarmClock", "Buzzer", "Speech")
    assert len(bank.targets["Speech"]) == 4
    assert bank.relative(speech["Speech"][0]) == "../ears/p001/a.wav"
    (fsd / "Empty").mkdir()
    with pytest.raises(InputError, match=r"holds no \.wav files"):
        scan_class_folders(fsd)


def test_rooms_are_named_by_file_and_resampled(tmp_path: Path) -> None:
    irs = np.zeros((2, 4, 160), dtype=np.float32)
    irs[:, :, 10] = 1.0
    write_sofa(tmp_path / "r.sofa", irs, np.eye(3)[:2], 16000, room_name="shared-name")
    (room,) = read_rooms(tmp_path, sample_rate=RATE)
    assert room.name == "r.sofa" and room.sample_rate == RATE and room.irs.shape == (2, 4, 80)
    (same,) = read_rooms(tmp_path, sample_rate=16000)
    np.testing.assert_array_equal(same.irs, irs)


# --- cleaning ----------------------------------------------------------------------------------------------------

# At 1 kHz the 10 s window is 10,000 samples: the checks run on their real durations, yet stay fast.
LOW = 1000
SETTINGS = CleaningSettings(target_rate=LOW)


def _tone(seconds: float, rate: int = LOW, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * 50.0 * t)


def test_quiet_ten_second_window_drops_a_clip() -> None:
    clip = _tone(25.0)
    clip[8000:19000] *= 0.01  # 11 s below the threshold: some 10 s window lies inside it
    assert clean_clip(clip, LOW, SETTINGS).status == LOW_AMPLITUDE_SEGMENT
    clip = _tone(25.0)
    clip[8000:17000] *= 0.01  # 9 s quiet: every 10 s window still holds loud samples
    assert clean_clip(clip, LOW, SETTINGS).status == KEPT
    short = _tone(9.0)
    short[1000:8000] *= 0.01  # shorter than one window: never scanned (the official loop has no window)
    assert clean_clip(short, LOW, SETTINGS).status == KEPT


def test_low_amplitude_and_short_clips_are_dropped() -> None:
    assert clean_clip(_tone(1.0, amplitude=0.019), LOW, SETTINGS).status == LOW_AMPLITUDE
    assert clean_clip(_tone(0.099), LOW, SETTINGS).status == TOO_SHORT
    padded = np.concatenate([np.zeros(200), np.full(50, 0.5), np.zeros(200)])
    assert clean_clip(padded, LOW, SETTINGS).status == TOO_SHORT_AFTER_TRIM


def test_zero_trim_and_resampling() -> None:
    body = np.concatenate([[0.3], _tone(0.5)[1:], [-0.2]])  # non-zero first and last samples
    padded = np.concatenate([np.zeros(123), body, np.zeros(77)])
    kept = clean_clip(padded, LOW, SETTINGS)
    assert kept.status == KEPT and np.array_equal(kept.audio, body)
    rate = 2000
    up = clean_clip(_tone(1.0, rate=rate), rate, SETTINGS)
    assert up.status == KEPT and up.audio.size == LOW
    spectrum = np.abs(np.fft.rfft(up.audio))
    assert np.argmax(spectrum) == 50  # the 50 Hz tone stays at 50 Hz (1 Hz bins)


def test_clean_folder_mirrors_kept_clips(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _wav(src / "Engine/good.wav", _tone(0.5, rate=2000), rate=2000)
    _wav(src / "Engine/quiet.wav", _tone(0.5, rate=2000, amplitude=0.01), rate=2000)
    _wav(src / "Siren/stereo.flac", np.stack([_tone(0.5, rate=2000)] * 2), rate=2000)
    statuses = clean_folder(src, tmp_path / "out", SETTINGS)
    assert statuses == {"Engine/good.wav": KEPT, "Engine/quiet.wav": LOW_AMPLITUDE, "Siren/stereo.flac": KEPT}
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.wav"))
    assert written == ["Engine/good.wav", "Siren/stereo.wav"]
    info = sf.info(str(tmp_path / "out/Siren/stereo.wav"))
    assert info.samplerate == LOW and info.channels == 1 and info.frames == 500


# --- the cleaning stage: added banks named in the config ---------------------------------------------------------

EARS_BANK = {"name": "ears", "layout": "single_class", "label": "Speech", "role": "target", "splits": ["train"]}


def _ears(root: Path) -> Path:
    """An EARS-like tree at 16 kHz: two speakers with a file name in common, one quiet clip, one too short."""
    _wav(root / "p001/a.wav", _tone(0.5, rate=16000), rate=16000)
    _wav(root / "p001/short.wav", _tone(0.05, rate=16000), rate=16000)
    _wav(root / "p002/a.wav", _tone(0.5, rate=16000, amplitude=0.3), rate=16000)
    _wav(root / "p002/quiet.wav", _tone(0.5, rate=16000, amplitude=0.01), rate=16000)
    return root


def _rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


def test_added_bank_is_cleaned_at_the_generator_rate_and_joins_the_bank(tmp_path: Path) -> None:
    bank = {**EARS_BANK, "path": str(_ears(tmp_path / "ears"))}
    out, csv_path = tmp_path / "added" / "ears", tmp_path / "added" / "ears.csv"
    run_cleaning(bank, generator={"sample_rate": RATE}, cleaning={}, out_dir=out, statuses_out=csv_path)
    # Files are numbered in sorted order (0-3), so the two a.wav of different speakers do not collide.
    assert _rows(csv_path) == [
        ["source", "status", "cleaned"],
        ["p001/a.wav", KEPT, "Speech/00000_a.wav"],
        ["p001/short.wav", TOO_SHORT, ""],
        ["p002/a.wav", KEPT, "Speech/00002_a.wav"],
        ["p002/quiet.wav", LOW_AMPLITUDE, ""],
    ]
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav"))
    assert written == ["Speech/00000_a.wav", "Speech/00002_a.wav"]
    info = sf.info(str(out / "Speech/00002_a.wav"))
    assert (info.samplerate, info.channels, info.frames) == (RATE, 1, RATE // 2)  # 0.5 s, 16 kHz -> 8 kHz
    dev = read_dev_bank(_tree(tmp_path / "dev"), "train", sample_rate=RATE, classes=CLASSES)
    joined = with_added(dev, {"target": [out]})
    assert len(joined.targets["Speech"]) == 4 and joined.targets["Buzzer"] == dev.targets["Buzzer"]
    assert with_added(dev, {"interferer": [out]}).interferer_labels == ("Engine", "Speech")


def test_cleaning_thresholds_come_from_the_config(tmp_path: Path) -> None:
    bank = {**EARS_BANK, "path": str(_ears(tmp_path / "ears"))}
    csv_path = tmp_path / "ears.csv"
    # A 0.4 threshold drops the 0.3-amplitude speaker too; 0.04 s keeps the 0.05-s clip.
    run_cleaning(
        bank,
        generator={"sample_rate": RATE},
        cleaning={"amp_threshold": 0.4, "min_length": 0.04},
        out_dir=tmp_path / "out",
        statuses_out=csv_path,
    )
    assert [row[1] for row in _rows(csv_path)[1:]] == [KEPT, KEPT, LOW_AMPLITUDE, LOW_AMPLITUDE]


def test_class_folder_bank_is_renamed_by_its_class_map(tmp_path: Path) -> None:
    fsd = tmp_path / "fsd"
    _wav(fsd / "Alarm_clock/1.wav", _tone(0.5), rate=LOW)
    _wav(fsd / "Unrelated/2.wav", _tone(0.5), rate=LOW)
    bank = {"name": "fsd", "path": str(fsd), "layout": "class_folders", "role": "target", "splits": ["train"]}
    mapped = {**bank, "class_map": {"Alarm_clock": "AlarmClock"}}
    run_cleaning(
        mapped, generator={"sample_rate": LOW}, cleaning={}, out_dir=tmp_path / "out", statuses_out=tmp_path / "s.csv"
    )
    assert [p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.wav")] == [
        "AlarmClock/00000_1.wav"
    ]
    # Without a map, a target bank's folders must be S5 classes; an interferer bank's may be anything.
    with pytest.raises(InputError, match=r"class folders \['Alarm_clock', 'Unrelated'\] of a target bank"):
        run_cleaning(
            bank, generator={"sample_rate": LOW}, cleaning={}, out_dir=tmp_path / "x", statuses_out=tmp_path / "x.csv"
        )
    interferers = {**bank, "role": "interferer"}
    run_cleaning(
        interferers,
        generator={"sample_rate": LOW},
        cleaning={},
        out_dir=tmp_path / "i",
        statuses_out=tmp_path / "i.csv",
    )
    assert sorted(p.name for p in (tmp_path / "i").iterdir()) == ["Alarm_clock", "Unrelated"]


def test_a_bank_without_a_surviving_clip_is_an_error(tmp_path: Path) -> None:
    ears = tmp_path / "ears"
    _wav(ears / "p001/quiet.wav", _tone(0.5, amplitude=0.01), rate=LOW)
    bank = {**EARS_BANK, "path": str(ears)}
    with pytest.raises(InputError, match="no clip of added bank 'ears' passed the cleaning") as error:
        run_cleaning(
            bank, generator={"sample_rate": LOW}, cleaning={}, out_dir=tmp_path / "o", statuses_out=tmp_path / "o.csv"
        )
    assert error.value.path == str(ears.resolve())


def test_added_banks_feed_the_splits_they_list() -> None:
    banks = [
        {**EARS_BANK, "splits": ["train", "test"]},
        {"name": "bg", "layout": "class_folders", "role": "interferer", "splits": ["train"]},
    ]
    assert added_bank_folders(banks, "results/s5/added", ["train", "valid", "test"]) == {
        "train": {"target": ["results/s5/added/ears"], "interferer": ["results/s5/added/bg"]},
        "valid": {},
        "test": {"target": ["results/s5/added/ears"]},
    }


@pytest.mark.parametrize(
    ("banks", "key"),
    [
        ([EARS_BANK, EARS_BANK], "s5.added_banks.1.name"),
        ([{**EARS_BANK, "label": "Speeech"}], "s5.added_banks.0"),
        ([{"name": "f", "layout": "class_folders", "role": "target", "class_map": {"a": "Alarm"}}], "s5.added_banks.0"),
    ],
)
def test_added_bank_config_errors_name_the_entry(banks: list[dict], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_added_banks({"added_banks": banks})
    assert error.value.key == key
    check_added_banks({"added_banks": [{**EARS_BANK, "role": "interferer", "label": "Engine"}]})  # any class
