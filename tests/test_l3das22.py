"""L3DAS22 Task 2 adapter: a fake tree in the real layout becomes DCASE2021-style FOA clips with 3-D labels.

The recordings are plane waves written by hand (noise with the first-order gains of one source position), and the
label CSVs use the dataset's header and units (seconds, metres relative to microphone A), so the expected frames,
azimuths, elevations and intensity directions follow from arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import REPO, planned_jobs, run_snakemake

from seldflow.errors import InputError
from seldflow.formats.dcase2021 import read_events
from seldflow.formats.events import EV_AZIMUTH, EV_CLASS, EV_ELEVATION, EV_FRAME, EV_TRACK
from seldflow.l3das22 import ACN_CHANNELS, CLASSES, convert_split, direction_deg, read_l3das_labels

SR = 32000
SECONDS = 2.5
HEADER = "File,Start,End,Class,X,Y,Z"
FUMA_ORDER = ("W", "X", "Y", "Z")


@dataclass(frozen=True)
class Label:
    """One label row: times in seconds, class name, position in metres relative to microphone A."""

    start: float
    end: float
    cls: str
    position: tuple[float, float, float]


# The sound in every recording comes from POSITION; the labels also hold a second event elsewhere.
POSITION = (0.5, -1.5, 0.3)
LABELS = (
    Label(0.34, 1.26, "Knock", POSITION),
    Label(2.0, 2.44, "Writing", (-1.0, 0.0, 1.0)),
)


def plane_wave(position: tuple[float, float, float], order: tuple[str, ...], seed: int = 0) -> np.ndarray:
    """``(samples, 4)`` noise arriving from ``position``: W = s, X/Y/Z = s times the unit vector (SN3D, order 1)."""
    signal = np.random.default_rng(seed).uniform(-0.3, 0.3, round(SR * SECONDS))
    unit = np.asarray(position) / np.linalg.norm(position)
    gains = {"W": 1.0, "X": unit[0], "Y": unit[1], "Z": unit[2]}
    return np.stack([signal * gains[name] for name in order], axis=1)


def write_recording(
    section: Path, stem: str, labels: tuple[Label, ...] = LABELS, order: tuple[str, ...] = ACN_CHANNELS
) -> None:
    """Both microphones' WAVs of ``stem`` (``split{N}_ov{K}_{i}``) and its label CSV, in the dataset's layout."""
    (section / "data").mkdir(parents=True, exist_ok=True)
    (section / "labels").mkdir(parents=True, exist_ok=True)
    for mic in ("A", "B"):
        sf.write(section / "data" / f"{stem}_{mic}.wav", plane_wave(POSITION, order), SR, subtype="PCM_16")
    rows = [f"{stem},{lb.start},{lb.end},{lb.cls},{lb.position[0]},{lb.position[1]},{lb.position[2]}" for lb in labels]
    (section / "labels" / f"label_{stem}.csv").write_text("\n".join([HEADER, *rows]) + "\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Train and test folders: the first nested twice as the Kaggle archives unpack, the second once."""
    root = tmp_path / "L3DAS22"
    train = root / "L3DAS22_Task2_train" / "L3DAS22_Task2_train"
    write_recording(train, "split0_ov1_0")
    write_recording(train, "split1_ov2_3")
    write_recording(root / "L3DAS22_Task2_test", "split5_ov1_7")
    return root


def convert(root: Path, out: Path, splits: list[int], **kwargs) -> tuple[Path, Path]:
    audio, metadata = out / "foa_dev" / "s", out / "metadata_dev" / "s"
    convert_split(root, audio, metadata, dataset_splits=splits, sample_rate=SR, **kwargs)
    return audio, metadata


def intensity_direction(clip: np.ndarray) -> tuple[float, float]:
    """Azimuth and elevation (degrees) of the mean active intensity of an ACN ``(4, samples)`` clip."""
    w, y, z, x = clip
    return direction_deg(float(np.mean(w * x)), float(np.mean(w * y)), float(np.mean(w * z)))


def test_splits_pick_recordings_by_number_and_clips_cover_each_recording(tree: Path, tmp_path: Path) -> None:
    audio, metadata = convert(tree, tmp_path / "out", [0, 1], clip_seconds=1.0)
    stems = [f"{recording}_start{start:04d}" for recording in ("split0_ov1_0", "split1_ov2_3") for start in (0, 10, 20)]
    assert sorted(p.stem for p in audio.glob("*.wav")) == stems
    assert sorted(p.stem for p in metadata.glob("*.csv")) == stems
    # 2.5 s in 1-s clips: the last clip holds 0.5 s of sound and 0.5 s of zeros.
    last, rate = sf.read(audio / "split0_ov1_0_start0020.wav", always_2d=True)
    assert rate == SR and last.shape == (SR, 4)
    assert np.abs(last[: SR // 2]).max() > 0.01
    assert not last[SR // 2 :].any()


def test_labels_land_on_their_100ms_frames_with_dcase_directions(tree: Path, tmp_path: Path) -> None:
    _, metadata = convert(tree, tmp_path / "out", [5], clip_seconds=1.0)
    first = read_events(metadata / "split5_ov1_7_start0000.csv", n_classes=len(CLASSES))
    second = read_events(metadata / "split5_ov1_7_start0010.csv", n_classes=len(CLASSES))
    third = read_events(metadata / "split5_ov1_7_start0020.csv", n_classes=len(CLASSES))
    # Knock, 0.34-1.26 s: frames round(3.4) = 3 up to round(12.6) = 13, split over the first two clips.
    assert first[:, EV_FRAME].tolist() == list(range(3, 10))
    assert second[:, EV_FRAME].tolist() == [0, 1, 2]
    knock = np.concatenate([first, second])
    assert set(knock[:, EV_CLASS]) == {CLASSES.index("Knock")} and set(knock[:, EV_TRACK]) == {0}
    # (0.5, -1.5, 0.3) m: X front, Y left, Z up, so the source is to the right and a little up.
    assert knock[:, EV_AZIMUTH] == pytest.approx(math.degrees(math.atan2(-1.5, 0.5)))
    assert knock[:, EV_ELEVATION] == pytest.approx(math.degrees(math.atan2(0.3, math.hypot(0.5, -1.5))))
    # Writing, 2.0-2.44 s, behind and above: frames 20-23, i.e. 0-3 of the last clip, track 1 (second row).
    assert third[:, EV_FRAME].tolist() == [0, 1, 2, 3]
    assert set(third[:, EV_CLASS]) == {13} and set(third[:, EV_TRACK]) == {1}
    assert third[:, EV_AZIMUTH] == pytest.approx(180.0)
    assert third[:, EV_ELEVATION] == pytest.approx(45.0)


@pytest.mark.parametrize("order", [ACN_CHANNELS, FUMA_ORDER], ids=["acn", "fuma"])
def test_clips_are_acn_whatever_the_files_order(order: tuple[str, ...], tmp_path: Path) -> None:
    """The intensity of the written clip, read as ACN W, Y, Z, X, points where the label says."""
    root = tmp_path / "L3DAS22"
    write_recording(root / "L3DAS22_Task2_dev", "split4_ov1_0", order=order)
    audio, metadata = convert(root, tmp_path / "out", [4], channel_order=order)
    clip, _ = sf.read(audio / "split4_ov1_0_start0000.wav", always_2d=True)
    labels = read_events(metadata / "split4_ov1_0_start0000.csv", n_classes=len(CLASSES))
    azimuth, elevation = intensity_direction(clip.T)
    assert azimuth == pytest.approx(labels[0, EV_AZIMUTH], abs=0.5)
    assert elevation == pytest.approx(labels[0, EV_ELEVATION], abs=0.5)


def test_the_default_30s_clip_keeps_a_recording_whole(tree: Path, tmp_path: Path) -> None:
    audio, metadata = convert(tree, tmp_path / "out", [5])
    assert [p.name for p in audio.iterdir()] == ["split5_ov1_7_start0000.wav"]
    assert sf.info(str(audio / "split5_ov1_7_start0000.wav")).frames == 30 * SR
    events = read_events(metadata / "split5_ov1_7_start0000.csv", n_classes=len(CLASSES))
    assert events[:, EV_FRAME].tolist() == [*range(3, 13), *range(20, 24)]


def test_microphone_b_sees_the_sources_from_its_own_position(tree: Path, tmp_path: Path) -> None:
    # B 1.5 m to the right of A would hear the first source straight ahead-up: (0.5, 0, 0.3) from B.
    _, metadata = convert(tree, tmp_path / "out", [5], mic="B", mic_offset_m=(0.0, -1.5, 0.0))
    events = read_events(metadata / "split5_ov1_7_start0000.csv", n_classes=len(CLASSES))
    assert events[0, EV_AZIMUTH] == pytest.approx(0.0)
    assert events[0, EV_ELEVATION] == pytest.approx(math.degrees(math.atan2(0.3, 0.5)))


def test_label_columns_are_found_by_header_name(tmp_path: Path) -> None:
    path = tmp_path / "label_split0_ov1_0.csv"
    path.write_text("Class,Z,Y,X,End,Start,File\nLaughter,0,1,0,0.5,0.1,x\n")
    (event,), problems = read_l3das_labels(path)
    assert problems == []
    assert (event.cls, event.start, event.end) == (CLASSES.index("Laughter"), 0.1, 0.5)
    assert (event.azimuth, event.elevation) == pytest.approx((90.0, 0.0))


def test_every_problem_of_a_tree_is_named_at_once(tree: Path, tmp_path: Path) -> None:
    train = tree / "L3DAS22_Task2_train" / "L3DAS22_Task2_train"
    bad_rows = (
        Label(0.1, 0.5, "Bicycle", (1.0, 0.0, 0.0)),
        Label(0.9, 0.4, "Knock", (1.0, 0.0, 0.0)),
        Label(0.1, 0.5, "Knock", (0.0, 0.0, 0.0)),
        Label(40.0, 41.0, "Knock", (1.0, 0.0, 0.0)),
    )
    write_recording(train, "split0_ov3_1", labels=bad_rows)
    with (train / "labels" / "label_split0_ov3_1.csv").open("a") as fh:
        fh.write("split0_ov3_1,0.1,0.2,Knock,north,0,0\n")
    (train / "data" / "notes.txt").write_text("not audio")
    (train / "labels" / "label_split0_ov1_0.csv").rename(train / "labels" / "label_split0_ov1_9.csv")
    sf.write(train / "data" / "split1_ov1_5_A.wav", np.zeros((SR, 2)), SR)
    (train / "labels" / "label_split1_ov1_5.csv").write_text(HEADER + "\n")
    sf.write(train / "data" / "split1_ov1_6_A.wav", np.zeros((16000, 4)), 16000)
    (train / "labels" / "label_split1_ov1_6.csv").write_text("Start,End,Class\n")
    out = tmp_path / "out"
    with pytest.raises(InputError) as excinfo:
        convert(tree, out, [0, 1, 2])
    message = str(excinfo.value)
    expected = [
        "notes.txt: not an L3DAS22 Task 2 recording name",
        "split0_ov1_0_A.wav: recording has no label file labels/label_split0_ov1_0.csv",
        "label_split0_ov1_9.csv: label file has no recording of microphone A",
        "label_split0_ov3_1.csv: row 2: field 'Class': unknown class 'Bicycle'",
        "label_split0_ov3_1.csv: row 3: field 'End': ends at 0.4 s, before its start 0.9 s",
        "label_split0_ov3_1.csv: row 4: field 'X': source at the microphone position",
        "label_split0_ov3_1.csv: row 5: field 'Start': starts at 40 s, after the recording's end",
        "label_split0_ov3_1.csv: row 6: field 'X': not a number: 'north'",
        "split1_ov1_5_A.wav: field 'channels': has 2 channels, expected 4",
        "split1_ov1_6_A.wav: field 'sample_rate': sample rate is 16000 Hz",
        "label_split1_ov1_6.csv: row 1: header lacks the column(s) X, Y, Z",
        "dataset split 2 has no recordings of microphone A",
    ]
    for text in expected:
        assert text in message
    assert f"{len(expected)} problem(s)" in message
    assert not out.exists()


def test_workflow_plans_the_l3das22_splits_from_split_to_score(tmp_path: Path) -> None:
    """The layered config's DAG starts at the adapter for both splits and ends at the scores; nothing downloads."""
    root = tmp_path / "L3DAS22"
    root.mkdir()
    result = run_snakemake(
        tmp_path,
        "-n",
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        str(REPO / "config" / "l3das22.yaml"),
        "--config",
        f"l3das22={{'root': '{root}'}}",
    )
    assert planned_jobs(result) == {
        "l3das22_split": 2,
        "split_check": 2,
        "feature_index": 2,
        "train": 1,
        "infer": 1,
        "score": 1,
        "report": 1,
        "summary": 1,
        "model_table": 1,
        "all": 1,
    }
    assert "results/l3das22/L3DAS22_foa/foa_dev/l3das-train" in result.stdout
    assert "results/l3das22/L3DAS22_foa/metadata_dev/l3das-test" in result.stdout
    assert "download" not in planned_jobs(result)
