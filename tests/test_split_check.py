"""The split check reads every label file of a split before any feature job and reports every problem in one error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seldflow.errors import InputError
from seldflow.features import check_split, label_azimuth_limit
from seldflow.io import write_audio
from seldflow.labels import CSV_COLUMNS
from seldflow.tasks import build_task

SR = 24000
SECOND = SR  # one-second clips: 10 label frames
HEADER = ",".join(CSV_COLUMNS) + "\n"


def write_split(
    audio: Path, meta: Path, labels: dict[str, str], *, channels: int = 2, samples: int = SECOND
) -> tuple[Path, Path]:
    """Silent clips of ``channels`` channels, one per label file, with the given label file texts."""
    meta.mkdir(parents=True)
    for stem, text in labels.items():
        write_audio(audio / f"{stem}.wav", np.zeros((channels, samples), dtype=np.float32), SR)
        (meta / f"{stem}.csv").write_text(text)
    return audio, meta


def _split(root: Path, labels: dict[str, str], channels: int = 2) -> tuple[Path, Path]:
    return write_split(root / "audio", root / "meta", labels, channels=channels)


def _problems(audio: Path, meta: Path, **options) -> str:
    with pytest.raises(InputError) as error:
        check_split(audio, meta, sample_rate=SR, clip_samples=SECOND, **options)
    return str(error.value)


STEREO_LABELS = {
    "a_unknown_class": HEADER + "0,1,0,10,100,0\n1,13,0,10,100,0\n",
    "b_not_a_number": HEADER + "0,1,0,10,100,0\n1,1,0,10,100,0\n2,1,0,10,far,0\n",
    "c_missing_column": HEADER + "0,1,0,10,100\n",
    "d_empty": "",
    # Two rows behind the front half; only the first is named, with a count of the rest.
    "e_unfolded": HEADER + "0,1,0,120,100,0\n1,1,0,-135,100,0\n2,1,0,45,100,0\n",
    # The blank line 3 is skipped by the reader: the repeat is on file line 5, the first occurrence on line 2.
    "f_repeat": HEADER + "1,2,0,10,100,0\n\n1,2,1,-10,100,0\n1,2,0,40,100,0\n",
    "g_huge": HEADER + "0,1,99999999999999999999,10,100,0\n",
    "h_identical_repeat": HEADER + "1,2,0,10,100,0\n1,2,0,10,100,0\n",
    "i_fine": HEADER + "0,1,0,-90,100,1\n9,12,2,90,250,0\n",
}


def test_every_bad_stereo_label_file_is_named_with_row_and_field(tmp_path: Path) -> None:
    audio, meta = _split(tmp_path, STEREO_LABELS)
    message = _problems(audio, meta, channels=2, task=build_task(None), azimuth_limit=label_azimuth_limit("pfoa"))
    assert "7 problem(s)" in message
    expected = [
        ("a_unknown_class", "row 3: field 'class'", "unknown class index 13"),
        ("b_not_a_number", "row 4: field 'distance'", "not a number: 'far'"),
        ("c_missing_column", "row 2", "expected 6 columns, found 5"),
        ("d_empty", "row 1", "empty file"),
        ("e_unfolded", "row 2: field 'azimuth'", "azimuth 120 outside -90..90 (stereo labels are folded to the front)"),
        ("f_repeat", "row 5: field 'azimuth'", "frame 1, class 2, source 0 also on row 2 at another position"),
        ("g_huge", "row 2: field 'source'", "integer '99999999999999999999' out of range"),
    ]
    for stem, where, what in expected:
        assert f"{meta / stem}.csv: {where}: {what}" in message
    assert "and 1 more row(s) like it" in message
    for stem in ("h_identical_repeat", "i_fine"):
        assert stem not in message


def test_stereo_range_applies_to_stereo_kinds_only() -> None:
    assert label_azimuth_limit("pfoa") == label_azimuth_limit("logmel") == 90.0
    assert label_azimuth_limit("foa") is None and label_azimuth_limit("mic") is None


def test_default_task_reads_dcase2025_labels_and_a_clean_split_passes(tmp_path: Path) -> None:
    audio, meta = _split(tmp_path, {"a": HEADER + "0,1,0,120,100,0\n", "b": HEADER})
    # Without an azimuth limit (FOA clips keep the full circle) the same labels are fine.
    assert check_split(audio, meta, channels=2, sample_rate=SR, clip_samples=SECOND) == ["a", "b"]
    assert "row 2: field 'azimuth'" in _problems(audio, meta, channels=2, azimuth_limit=90.0)


DCASE2021_LABELS = {
    "a_unknown_class": "0,12,0,10,0\n",
    "b_track": "0,1,0,10,0\n3,1,-1,10,0\n",
    "c_elevation": "0,1,0,10,95\n",
    "d_repeat": "2,4,1,170,20\n2,4,1,170,-20\n",
    "e_late_frame": "10,1,0,10,0\n",
    # Full azimuth range, an empty file (a clip without events) and an identical repeat are all fine.
    "f_fine": "0,1,0,-170,-90\n0,1,0,-170,-90\n4,11,2,180,90\n",
    "g_empty": "",
}


def test_dcase2021_labels_and_channel_count_for_foa_in_one_error(tmp_path: Path) -> None:
    audio, meta = _split(tmp_path, DCASE2021_LABELS, channels=4)
    write_audio(audio / "b_track.wav", np.zeros((2, SECOND), dtype=np.float32), SR)  # stereo file among FOA clips
    task = build_task({"label_format": "dcase2021"})
    message = _problems(audio, meta, channels=4, task=task, azimuth_limit=label_azimuth_limit("foa"))
    assert "6 problem(s)" in message
    assert f"{audio / 'b_track'}.wav: 2 channels, 24000 Hz, 24000 samples; expected 4" in message
    expected = [
        ("a_unknown_class", "row 1: field 'class'", "unknown class index 12 (0..11)"),
        ("b_track", "row 2: field 'track'", "track index -1"),
        ("c_elevation", "row 1: field 'elevation'", "elevation 95 out of range -90..90"),
        ("d_repeat", "row 2: field 'elevation'", "frame 2, class 4, track 1 also on row 1 at another position"),
        ("e_late_frame", "field 'frame'", "frame 10 is past the clip's 10 label frames"),
    ]
    for stem, where, what in expected:
        assert f"{meta / stem}.csv: {where}: {what}" in message
    assert "f_fine" not in message and "g_empty" not in message


def test_label_problems_come_with_the_file_problems_of_the_same_split(tmp_path: Path) -> None:
    audio, meta = _split(tmp_path, {"a": HEADER + "0,13,0,10,100,0\n", "b": HEADER})
    (meta / "b.csv").unlink()
    (audio / "notes.txt").write_text("x")
    message = _problems(audio, meta, channels=2)
    assert "3 problem(s)" in message
    assert "b.csv" in message and "notes.txt" in message and "a.csv: row 2: field 'class'" in message
