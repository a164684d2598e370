"""The DCASE2025 stereo SELD metric against the official scorer: recorded parity, prediction reading, track slots.

Expectations come from the official code's documented behaviour, not from seldflow: the parity fixture holds the
official scorer's own numbers on seeded cases (see ``dcase2025_parity_cases``); the hand-made cases follow what its
reader (``load_labels``: first line skipped, ``int()`` for frame / class / source / onscreen, ``float()`` for
azimuth and distance, columns after the sixth ignored) and its track filing (``organize_labels``: ten slots per
class and frame) do. F = TP / (TP + FP_spatial + (FP + FN) / 2) per class, macro F = mean over the 13 classes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from dcase2025_parity_cases import HEADER, case_digest, fixture, make_case, write_case

from seldflow.errors import InputError
from seldflow.labels import N_CLASSES, write_labels
from seldflow.metrics.dcase2025 import compute_metrics, official_tracks, read_file
from seldflow.score import main, score_dirs

PARITY = fixture()
MODES = ("audio/macro", "audio/micro", "audio_visual/macro", "audio_visual/micro")
CLASSWISE_ROWS = ("F", "DOAE", "DistE", "RDE", "OnscreenAcc")


# --------------------------------------------------------------------------------------------------------------
# Parity with the official scorer
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parity_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, Path]]:
    """Each fixture seed's case, regenerated and written once; the written bytes must be those scored upstream."""
    folders = {}
    for run in PARITY["runs"]:
        folder = tmp_path_factory.mktemp(f"case{run['seed']}")
        folders[run["seed"]] = write_case(folder, make_case(run["seed"]))
        assert case_digest(folder) == run["digest"], "the case generator changed: re-record the fixture"
    return folders


def official(value: float | None) -> float:
    return math.nan if value is None else value


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", [run["seed"] for run in PARITY["runs"]])
def test_scores_equal_the_official_scorer(
    seed: int, mode: str, parity_folders: dict[int, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    expected = next(run for run in PARITY["runs"] if run["seed"] == seed)["results"][mode]
    modality, average = mode.split("/")
    visual = modality == "audio_visual"
    ref_dir, pred_dir = parity_folders[seed]

    report = score_dirs(ref_dir, pred_dir, missing="skip", average=average, onscreen=visual)

    capsys.readouterr()  # the warning about the reference without a prediction
    names = CLASSWISE_ROWS if visual else CLASSWISE_ROWS[:-1]
    for name in names:
        assert report[name] == pytest.approx(official(expected[name]), rel=1e-9, abs=1e-12, nan_ok=True), name
    if average == "macro":
        for row, name in enumerate(names):
            want = [official(value) for value in expected["classwise"][row]]
            got = report[f"classwise_{name}"]
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12, nan_ok=True), f"classwise_{name}"


def test_the_fixture_names_the_official_commit() -> None:
    assert PARITY["official"] == {
        "repository": "partha2409/DCASE2025_seld_baseline",
        "commit": "42a48b6456b73be35ad0e1a9ffeb6ceef83ae0bd",
        "files": ["metrics.py", "utils.py"],
    }
    assert {mode for run in PARITY["runs"] for mode in run["results"]} == set(MODES)


# --------------------------------------------------------------------------------------------------------------
# Prediction files: what the official reader accepts
# --------------------------------------------------------------------------------------------------------------


def reference_track(frames: range, azimuth: int = 10, distance: int = 200, onscreen: int = 1) -> np.ndarray:
    """One class-0 source over ``frames`` (the last frame is not scored)."""
    return np.array([[f, 0, 0, azimuth, distance, onscreen] for f in frames], dtype=np.int64)


def run_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], reference: np.ndarray, prediction: str, *args: str
) -> dict:
    """Run ``seldflow score`` on one clip (reference rows, prediction text); it must succeed: the printed report."""
    write_labels(tmp_path / "ref" / "split" / "a.csv", reference)
    (tmp_path / "pred").mkdir(exist_ok=True)
    (tmp_path / "pred" / "a.csv").write_text(prediction)
    status = main(["--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred"), *args])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(captured.out)


@pytest.mark.parametrize(
    ("azimuth", "error"),
    [("370", 0.0), ("-350", 0.0), ("170", 0.0), ("-190", 0.0), ("730.5", 0.5), ("199", 29.0), ("-171", 19.0)],
)
def test_out_of_range_and_fractional_azimuths_are_wrapped_and_folded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], azimuth: str, error: float
) -> None:
    # Reference at 10 degrees; the official scorer wraps to [-180, 180) and folds the rear half: 199 -> -161 -> -19.
    # An error over 20 degrees makes both frames spatial false positives.
    prediction = f"{HEADER}\n0,0,0,{azimuth},200,1\n1,0,0,{azimuth},200,1\n"
    report = run_cli(tmp_path, capsys, reference_track(range(3)), prediction)

    assert report["DOAE"] == pytest.approx(error)
    assert report["F"] == pytest.approx(1 / N_CLASSES if error <= 20 else 0.0)


def test_fractional_azimuths_are_not_rounded_at_the_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 30.4 - 10 = 20.4 > 20: a spatial false positive (rounding to 30 would have passed it).
    report = run_cli(tmp_path, capsys, reference_track(range(3)), f"{HEADER}\n0,0,0,30.4,200,1\n1,0,0,30,200,1\n")

    assert (report["TP"], report["FP_spatial"]) == (1, 1)
    assert report["DOAE"] == pytest.approx(20.2)


def test_fractional_and_negative_distances_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Reference 200 cm. 399.5 cm: relative error 0.9975 passes; -1 cm: 201 / 200 > 1 fails.
    report = run_cli(tmp_path, capsys, reference_track(range(3)), f"{HEADER}\n0,0,0,10,399.5,1\n1,0,0,10,-1,1\n")

    assert (report["TP"], report["FP_spatial"]) == (1, 1)
    assert report["DistE"] == pytest.approx((199.5 + 201) / 2)
    assert report["RDE"] == pytest.approx((199.5 + 201) / 2 / 200)


def test_onscreen_flags_other_than_zero_or_one_are_wrong_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prediction = f"{HEADER}\n0,0,0,10,200,2\n1,0,0,10,200,-1\n2,0,0,10,200,1\n"
    report = run_cli(tmp_path, capsys, reference_track(range(4)), prediction, "--onscreen")

    assert report["OnscreenAcc"] == pytest.approx(1 / 3)
    assert report["classwise_F"][0] == pytest.approx(1 / 3)  # the audio-visual F: 1 TP, 2 spatial FP
    assert report["classwise_F_audio"][0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "prediction",
    [
        "frame,class,track,azimuth,distance,onscreen\n0,0,0,10,200,1\n1,0,0,10,200,1\n",
        "Frame, Class, Source, Azimuth, Distance, Onscreen\n0,0,0,10,200,1\n1,0,0,10,200,1\n",
        f"{HEADER},confidence\n0,0,0,10,200,1,0.7\n1,0,0,10,200,1,0.2\n",
        f"{HEADER}\n0,0,0,10,200,1\n1,0,0,10,200,1\n5,0,0,10,200,1\n900,0,0,10,200,1\n",
        f"{HEADER}\n0,0,-3,10.0,200.0,1\n1,0,12,10,200,1\n",
    ],
    ids=["other-header", "spaced-header", "seventh-column", "frames-past-the-end", "any-source-id"],
)
def test_prediction_layouts_the_official_reader_accepts_score_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prediction: str
) -> None:
    report = run_cli(tmp_path, capsys, reference_track(range(3)), prediction)

    assert (report["TP"], report["FP"], report["FN"]) == (2, 0, 0)


@pytest.mark.parametrize("prediction", ["", f"{HEADER}\n", "\n"], ids=["empty", "header-only", "blank-line"])
def test_empty_prediction_files_are_clips_without_detections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prediction: str
) -> None:
    report = run_cli(tmp_path, capsys, reference_track(range(3)), prediction)

    assert (report["TP"], report["FN"]) == (0, 2)


@pytest.mark.parametrize(
    ("prediction", "row", "field", "message"),
    [
        ("0,0,0,10,200,1\n1,0,0,10,200,1\n", 1, None, "header"),
        (f"{HEADER}\n-1,0,0,10,200,1\n", 2, "frame", "negative frame"),
        (f"{HEADER}\n0,13,0,10,200,1\n", 2, "class", "unknown class"),
        (f"{HEADER}\n0,0,0,nan,200,1\n", 2, "azimuth", "finite"),
        (f"{HEADER}\n0,0,0,10,inf,1\n", 2, "distance", "finite"),
        (f"{HEADER}\n0,0,0,10,200,0.7\n", 2, "onscreen", "integer"),
        (f"{HEADER}\n0,0,0.5,10,200,1\n", 2, "source", "integer"),
        (f"{HEADER}\n0,0,0,10,200\n", 2, None, "at least 6 columns"),
    ],
    ids=[
        "event-on-line-1",
        "negative-frame",
        "class-13",
        "nan",
        "inf",
        "fractional-onscreen",
        "fractional-source",
        "5-columns",
    ],
)
def test_predictions_the_official_scorer_would_misread_are_refused(
    tmp_path: Path, prediction: str, row: int, field: str | None, message: str
) -> None:
    path = tmp_path / "a.csv"
    path.write_text(prediction)

    with pytest.raises(InputError, match=message) as info:
        read_file(path, reference=False)
    assert (info.value.row, info.value.field) == (row, field)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("0,0,0,190,200,1", "azimuth"),
        ("0,0,0,10.5,200,1", "azimuth"),
        ("0,0,0,10,-5,1", "distance"),
        ("0,0,0,10,200,2", "onscreen"),
    ],
)
def test_reference_labels_stay_strict(tmp_path: Path, line: str, field: str) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"{HEADER}\n{line}\n")

    with pytest.raises(InputError) as info:
        read_file(path, reference=True)
    assert info.value.field == field


def test_predictions_keep_fractional_values(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"{HEADER}\n3,2,-1,-725.25,-0.5,2\n")

    np.testing.assert_array_equal(read_file(path, reference=False), [[3, 2, -1, -725.25, -0.5, 2]])


# --------------------------------------------------------------------------------------------------------------
# Track slots: at most ten tracks of one class per frame
# --------------------------------------------------------------------------------------------------------------


def crowd(sources: list[int], azimuths: list[float]) -> np.ndarray:
    """Class-0 predictions in frame 0, one row per (source, azimuth)."""
    return np.array([[0, 0, s, az, 200, 1] for s, az in zip(sources, azimuths, strict=True)], dtype=np.float64)


def test_an_eleventh_track_overwrites_slot_zero() -> None:
    # Slots 0..9 fill up (the second source-0 row takes the lowest free slot); the eleventh row overwrites slot 0
    # in place: row 0 (at 50 degrees) is replaced by the last row (at 10 degrees).
    azimuths = [50.0] + [60.0 + k for k in range(9)] + [10.0]
    table = crowd([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 12], azimuths)

    kept = official_tracks(table)

    assert len(kept) == 10
    np.testing.assert_array_equal(kept[0], table[-1])
    np.testing.assert_array_equal(kept[1:], table[1:10])


def test_negative_source_ids_take_slots_of_their_own() -> None:
    table = crowd([-1, -2, *range(10)], [float(k) for k in range(12)])

    np.testing.assert_array_equal(official_tracks(table), table)


def test_crowded_frames_change_the_counts() -> None:
    reference = np.array([[0, 0, 0, 10, 200, 1], [1, 0, 0, 10, 200, 1]], dtype=np.int64)
    prediction = crowd([0] * 11, [50.0] + [60.0 + k for k in range(9)] + [10.0])

    result = compute_metrics({"a": reference}, {"a": prediction}, average="micro")

    # 10 tracks kept, the one at 10 degrees matches: 1 TP, 9 surplus FP.
    assert (result["TP"], result["FP"], result["FP_spatial"], result["FN"]) == (1, 9, 0, 0)
    assert result["DOAE"] == 0.0
