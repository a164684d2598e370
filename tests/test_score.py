"""Tests of the official DCASE2025 SELD metric: one test per scorer quirk, on hand-made labels.

Expected values are derived by hand from the metric's definition:
class-wise F = TP / (TP + FP_spatial + (FP + FN) / 2), macro F = mean over all 13 classes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from seldflow.errors import InputError
from seldflow.labels import N_CLASSES, write_labels
from seldflow.metrics.common import label_file_listing
from seldflow.metrics.dcase2025 import compute_metrics, jackknife
from seldflow.score import load_label_dir, main, score_dirs, to_json


def rows(*events: tuple[int, int, int, int, int, int]) -> np.ndarray:
    """Label rows ``frame, class, source, azimuth, distance_cm, onscreen``."""
    return np.array(events, dtype=np.int64).reshape(-1, 6)


def track(frames: range, cls: int = 0, azimuth: int = 10, distance: int = 200, onscreen: int = 0) -> np.ndarray:
    """One source of class ``cls`` active, unmoving, over ``frames``."""
    return rows(*[(f, cls, 0, azimuth, distance, onscreen) for f in frames])


def drop_frame(table: np.ndarray, frame: int) -> np.ndarray:
    return table[table[:, 0] != frame]


def single_class_f(f_class: float) -> float:
    """Macro F of a result where only one class has a non-zero F."""
    return f_class / N_CLASSES


# --------------------------------------------------------------------------------------------------------------
# Frame range
# --------------------------------------------------------------------------------------------------------------


def test_last_annotated_frame_is_never_scored() -> None:
    ref = track(range(50))  # frames 0..49, so frames 0..48 are scored

    missing_49 = compute_metrics({"a": ref}, {"a": drop_frame(ref, 49)})
    missing_48 = compute_metrics({"a": ref}, {"a": drop_frame(ref, 48)})

    assert (missing_49["TP"], missing_49["FN"]) == (49, 0)
    assert missing_49["F"] == pytest.approx(single_class_f(1.0))
    assert (missing_48["TP"], missing_48["FN"]) == (48, 1)
    assert missing_48["F"] == pytest.approx(single_class_f(48 / 48.5))


def test_frames_after_the_last_reference_frame_are_ignored() -> None:
    ref = track(range(11))  # scored frames 0..9
    late_false_alarms = rows((10, 1, 0, 0, 100, 0), (20, 2, 0, 0, 100, 0), (60, 3, 0, 0, 100, 0))
    early_false_alarm = rows((9, 1, 0, 0, 100, 0))

    late = compute_metrics({"a": ref}, {"a": np.vstack([ref, late_false_alarms])})
    early = compute_metrics({"a": ref}, {"a": np.vstack([ref, early_false_alarm])})

    assert late["FP"] == 0
    assert late["n_scored_frames"] == 10
    assert early["FP"] == 1


def test_reference_without_events_is_not_scored() -> None:
    perfect = track(range(5))
    false_alarms = track(range(50), cls=3)
    refs = {"empty": rows(), "only_frame_0": track(range(1), cls=4), "b": perfect}
    preds = {"empty": false_alarms, "only_frame_0": false_alarms, "b": perfect}

    result = compute_metrics(refs, preds)

    assert (result["FP"], result["FN"]) == (0, 0)
    assert result["F"] == pytest.approx(single_class_f(1.0))
    assert (result["n_files"], result["n_scored_files"]) == (3, 1)


# --------------------------------------------------------------------------------------------------------------
# Averaging
# --------------------------------------------------------------------------------------------------------------


def test_macro_f_counts_absent_classes_as_zero_and_micro_does_not() -> None:
    ref = track(range(10), cls=5)

    macro = compute_metrics({"a": ref}, {"a": ref})
    micro = compute_metrics({"a": ref}, {"a": ref}, average="micro")

    assert macro["F"] == pytest.approx(1 / 13)
    assert macro["classwise_F"] == pytest.approx([0.0] * 5 + [1.0] + [0.0] * 7)
    assert micro["F"] == pytest.approx(1.0)


def test_errors_are_nan_for_classes_without_matches_and_left_out_of_the_mean() -> None:
    ref = np.vstack([track(range(3), cls=0, azimuth=0), track(range(3), cls=1, azimuth=0)])
    pred = np.vstack([track(range(3), cls=0, azimuth=30), track(range(3), cls=2, azimuth=0)])

    result = compute_metrics({"a": ref}, {"a": pred})

    assert result["DOAE"] == pytest.approx(30.0)
    assert math.isnan(result["classwise_DOAE"][1])
    assert math.isnan(result["classwise_RDE"][2])
    assert json.loads(to_json(result))["classwise_DOAE"][1] is None


# --------------------------------------------------------------------------------------------------------------
# Thresholds and errors
# --------------------------------------------------------------------------------------------------------------


def test_doa_threshold_is_strict_and_doae_averages_every_matched_pair() -> None:
    ref = track(range(3), azimuth=0)  # scored frames 0, 1
    pred = rows((0, 0, 0, 20, 200, 0), (1, 0, 0, -21, 200, 0))

    result = compute_metrics({"a": ref}, {"a": pred})

    assert (result["TP"], result["FP_spatial"]) == (1, 1)
    assert result["F"] == pytest.approx(single_class_f(1 / 2))
    assert result["DOAE"] == pytest.approx((20 + 21) / 2)


def test_relative_distance_threshold_is_strict() -> None:
    ref = track(range(3), distance=100)
    pred = rows((0, 0, 0, 10, 200, 0), (1, 0, 0, 10, 201, 0))  # relative errors 1.0 and 1.01

    result = compute_metrics({"a": ref}, {"a": pred})

    assert (result["TP"], result["FP_spatial"]) == (1, 1)
    assert result["RDE"] == pytest.approx((1.0 + 1.01) / 2)
    assert result["DistE"] == pytest.approx((100 + 101) / 2)


def test_absolute_distance_threshold_when_given() -> None:
    ref = track(range(3), distance=100)
    pred = rows((0, 0, 0, 10, 150, 0), (1, 0, 0, 10, 151, 0))

    result = compute_metrics({"a": ref}, {"a": pred}, dist_threshold=50)

    assert (result["TP"], result["FP_spatial"]) == (1, 1)


@pytest.mark.parametrize(("reference", "predicted"), [(30, 150), (-30, -150), (170, 10), (-170, -10)])
def test_front_back_mirror_azimuths_have_zero_error(reference: int, predicted: int) -> None:
    result = compute_metrics({"a": track(range(2), azimuth=reference)}, {"a": track(range(2), azimuth=predicted)})

    assert result["DOAE"] == pytest.approx(0.0)
    assert result["TP"] == 1


def test_spatially_wrong_match_counts_as_false_positive_and_false_negative() -> None:
    ref = track(range(4), azimuth=0)  # scored frames 0, 1, 2
    pred = rows(
        (0, 0, 0, 0, 200, 0),  # correct
        (1, 0, 0, 60, 200, 0),  # matched but 60 degrees off: FP and FN at once
        (2, 0, 0, 0, 200, 0),  # correct ...
        (2, 0, 1, 45, 200, 0),  # ... plus a surplus same-class track: FP only
    )

    result = compute_metrics({"a": ref}, {"a": pred})

    assert (result["TP"], result["FP_spatial"], result["FP"], result["FN"]) == (2, 1, 1, 0)
    # 2 TP / (2 TP + 2 false positives + 1 false negative)
    assert result["classwise_F"][0] == pytest.approx(4 / 7)


# --------------------------------------------------------------------------------------------------------------
# Track matching
# --------------------------------------------------------------------------------------------------------------


def test_hungarian_matching_minimises_the_total_azimuth_error() -> None:
    ref = rows((0, 0, 0, 0, 100, 0), (0, 0, 1, 20, 100, 0), (1, 0, 0, 0, 100, 0))
    # Pairing in file order (0-40, 20-19) or greedily by the closest pair (20-19, then 0-40) fails one track;
    # the optimal assignment (0-19, 20-40) has errors 19 and 20, both within the threshold.
    pred = rows((0, 0, 0, 40, 100, 0), (0, 0, 0, 19, 100, 0))

    result = compute_metrics({"a": ref}, {"a": pred})

    assert (result["TP"], result["FP_spatial"], result["matched"]) == (2, 0, 2)
    assert result["DOAE"] == pytest.approx((19 + 20) / 2)


@pytest.mark.parametrize(("first_distance", "second_distance", "expected_rde"), [(100, 300, 0.0), (300, 100, 2.0)])
def test_equally_close_tracks_pair_with_the_first_in_file_order(
    first_distance: int, second_distance: int, expected_rde: float
) -> None:
    ref = track(range(2), azimuth=10, distance=100)
    pred = rows((0, 0, 0, 0, first_distance, 0), (0, 0, 1, 20, second_distance, 0))

    result = compute_metrics({"a": ref}, {"a": pred})

    assert result["RDE"] == pytest.approx(expected_rde)
    assert (result["matched"], result["FP"]) == (1, 1)


def test_surplus_reference_tracks_are_false_negatives() -> None:
    ref = rows(*[(f, 0, s, az, 100, 0) for f in range(2) for s, az in enumerate((-60, 0, 60))])
    pred = rows((0, 0, 0, 55, 100, 0))

    result = compute_metrics({"a": ref}, {"a": pred})

    assert (result["TP"], result["FN"], result["FP"]) == (1, 2, 0)
    assert result["DOAE"] == pytest.approx(5.0)


# --------------------------------------------------------------------------------------------------------------
# On-screen flag
# --------------------------------------------------------------------------------------------------------------


def test_onscreen_accuracy_and_onscreen_aware_f() -> None:
    ref = track(range(4), onscreen=1)
    pred = rows((0, 0, 0, 10, 200, 1), (1, 0, 0, 10, 200, 0), (2, 0, 0, 10, 200, 1))

    plain = compute_metrics({"a": ref}, {"a": pred})
    aware = compute_metrics({"a": ref}, {"a": pred}, req_onscreen=True)

    assert plain["OnscreenAcc"] == pytest.approx(2 / 3)
    assert plain["classwise_F"][0] == pytest.approx(1.0)
    assert aware["classwise_F"][0] == pytest.approx(2 / 3)


# --------------------------------------------------------------------------------------------------------------
# Clip pairing
# --------------------------------------------------------------------------------------------------------------


def test_prediction_without_reference_is_an_error() -> None:
    with pytest.raises(InputError, match="stray_clip"):
        compute_metrics({"a": track(range(3))}, {"a": track(range(3)), "stray_clip": track(range(3))})


class TestMissingPrediction:
    """Reference "a" scores 4 TP (frames 0..3); "b" has 2 scored reference events but no prediction."""

    refs = {"a": track(range(5)), "b": track(range(3))}  # noqa: RUF012
    preds = {"a": track(range(5))}  # noqa: RUF012

    def test_error_lists_the_clips(self) -> None:
        with pytest.raises(InputError, match=r"no prediction for 1 reference clip.*: b"):
            compute_metrics(self.refs, self.preds)

    def test_skip_reproduces_the_official_scorer_and_warns(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = compute_metrics(self.refs, self.preds, missing="skip")

        assert (result["FN"], result["n_files"]) == (0, 1)
        assert result["F"] == pytest.approx(single_class_f(1.0))
        assert "warning" in capsys.readouterr().err.lower()

    def test_empty_counts_its_events_as_missed(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = compute_metrics(self.refs, self.preds, missing="empty")

        assert (result["TP"], result["FN"], result["n_files"]) == (4, 2, 2)
        assert result["F"] == pytest.approx(single_class_f(4 / 5))
        assert capsys.readouterr().err == ""


def test_malformed_rows_are_rejected_with_the_clip_name() -> None:
    with pytest.raises(InputError, match=r"clip 'a'.*13"):
        compute_metrics({"a": rows((0, 13, 0, 0, 100, 0), (1, 0, 0, 0, 100, 0))}, {"a": rows()})
    with pytest.raises(InputError, match="shape"):
        compute_metrics({"a": np.zeros((3, 5))}, {"a": rows()})


# --------------------------------------------------------------------------------------------------------------
# Jackknife
# --------------------------------------------------------------------------------------------------------------


def test_jackknife_leaves_each_clip_out() -> None:
    # One scored frame per clip; DOA errors 0, 10, 20; clip b misses a second event (an FN).
    refs = {
        "a": track(range(2), azimuth=0),
        "b": rows((0, 0, 0, 0, 100, 0), (0, 1, 0, 0, 100, 0), (1, 0, 0, 0, 100, 0)),
        "c": track(range(2), azimuth=0),
    }
    preds = {"a": track(range(1), azimuth=0), "b": track(range(1), azimuth=10), "c": track(range(1), azimuth=20)}

    result = jackknife(refs, preds, average="micro")

    t = stats.t.ppf(0.975, 2)
    # DOAE: global 10, leave-one-out 15, 10, 5: no bias, std error sqrt(2 * 50 / 3).
    doae = result["DOAE"]
    assert (doae["value"], doae["estimate"], doae["bias"]) == pytest.approx((10.0, 10.0, 0.0))
    assert doae["std_err"] == pytest.approx(math.sqrt(100 / 3))
    assert doae["interval"] == pytest.approx([10 - t * math.sqrt(100 / 3), 10 + t * math.sqrt(100 / 3)])
    # F: global 3 TP, 1 FN -> 6/7; leave-one-out 4/5, 1, 4/5 (mean 13/15).
    f = result["F"]
    assert f["value"] == pytest.approx(6 / 7)
    assert f["bias"] == pytest.approx(2 * (13 / 15 - 6 / 7))
    assert f["estimate"] == pytest.approx(6 / 7 - 2 * (13 / 15 - 6 / 7))
    assert f["std_err"] == pytest.approx(math.sqrt(2 * ((1 / 15) ** 2 + (2 / 15) ** 2 + (1 / 15) ** 2) / 3))


# --------------------------------------------------------------------------------------------------------------
# Directories and command line
# --------------------------------------------------------------------------------------------------------------


def write_clips(folder: Path, clips: dict[str, np.ndarray]) -> None:
    for name, table in clips.items():
        write_labels(folder / f"{name}.csv", table)


def test_load_label_dir_reads_split_subfolders_and_flat_folders(tmp_path: Path) -> None:
    write_clips(tmp_path / "ref" / "dev-test-sony", {"a": track(range(3))})
    write_clips(tmp_path / "ref" / "dev-test-tau", {"b": track(range(2), cls=4)})
    write_clips(tmp_path / "pred", {"a": rows((70, 1, 0, -170, 50, 1)), "b": rows()})
    (tmp_path / "pred" / "notes.txt").write_text("not a label file\n")

    refs = load_label_dir(tmp_path / "ref")
    preds = load_label_dir(tmp_path / "pred")

    assert sorted(refs) == ["a", "b"]
    np.testing.assert_array_equal(refs["b"], track(range(2), cls=4))
    assert sorted(preds) == ["a", "b"]
    np.testing.assert_array_equal(preds["a"], rows((70, 1, 0, -170, 50, 1)))
    assert preds["b"].shape == (0, 6)


def test_load_label_dir_rejects_duplicates_empty_and_missing_folders(tmp_path: Path) -> None:
    write_clips(tmp_path / "dup" / "split1", {"a": track(range(3))})
    write_clips(tmp_path / "dup" / "split2", {"a": track(range(3))})
    (tmp_path / "empty").mkdir()

    with pytest.raises(InputError, match="duplicate clip name 'a'"):
        load_label_dir(tmp_path / "dup")
    with pytest.raises(InputError, match=r"no \.csv"):
        load_label_dir(tmp_path / "empty")
    with pytest.raises(InputError, match="not found"):
        load_label_dir(tmp_path / "absent")


def test_load_label_dir_still_validates_fields(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("frame,class,source,azimuth,distance,onscreen\n3,0,0,10,100,2\n")

    with pytest.raises(InputError, match="onscreen") as info:
        load_label_dir(tmp_path)
    assert info.value.row == 2


def test_score_dirs_reports_the_audio_visual_mode_only_when_asked(tmp_path: Path) -> None:
    write_clips(tmp_path / "ref" / "split", {"a": track(range(4), onscreen=1)})
    write_clips(tmp_path / "pred", {"a": rows((0, 0, 0, 10, 200, 1), (1, 0, 0, 10, 200, 0), (2, 0, 0, 10, 200, 1))})

    audio = score_dirs(tmp_path / "ref", tmp_path / "pred")
    visual = score_dirs(tmp_path / "ref", tmp_path / "pred", onscreen=True, jackknife=True)

    assert "OnscreenAcc" not in audio
    assert "F_audio" not in audio
    assert audio["F"] == pytest.approx(single_class_f(1.0))
    # The official audio-visual mode reports its on-screen-aware F under the same names as the audio-only mode.
    assert visual["OnscreenAcc"] == pytest.approx(2 / 3)
    assert visual["F"] == pytest.approx(single_class_f(2 / 3))
    assert visual["classwise_F"][0] == pytest.approx(2 / 3)
    assert (visual["TP"], visual["FP_spatial"]) == (2, 1)
    assert visual["F_audio"] == pytest.approx(single_class_f(1.0))
    assert visual["classwise_F_audio"][0] == pytest.approx(1.0)
    assert visual["DOAE"] == audio["DOAE"]
    assert set(visual["intervals"]) == {"F", "DOAE", "DistE", "RDE", "OnscreenAcc", "F_audio"}
    assert visual["intervals"]["F"]["value"] == pytest.approx(visual["F"])


def test_cli_prints_one_json_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_clips(tmp_path / "ref" / "split", {"a": track(range(3), azimuth=0)})
    write_clips(tmp_path / "pred", {"a": rows((0, 0, 0, 21, 200, 0), (1, 0, 0, 21, 200, 0))})

    status = main(["--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred"), "--doa-threshold", "21"])

    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert report["F"] == pytest.approx(single_class_f(1.0))
    assert report["DOAE"] == pytest.approx(21.0)
    assert len(report["classwise_F"]) == N_CLASSES
    assert report["settings"]["dist_threshold"] is None


def test_cli_reports_bad_input_on_stderr_with_status_1(tmp_path: Path) -> None:
    write_clips(tmp_path / "ref", {"a": track(range(3)), "b": track(range(3))})
    write_clips(tmp_path / "pred", {"a": track(range(3))})

    completed = subprocess.run(
        [sys.executable, "-m", "seldflow.score", "--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 1  # a data error, not argparse's usage status
    assert completed.stdout == ""
    assert completed.stderr.startswith("error: ")
    assert "b" in completed.stderr


def test_score_dirs_scores_whole_predicted_splits_only(tmp_path: Path) -> None:
    """A metadata_dev-style root with a training split: only splits with predictions count, each one whole."""
    write_clips(tmp_path / "metadata_dev" / "dev-train", {"t1": track(range(5), cls=2), "t2": track(range(5))})
    write_clips(tmp_path / "metadata_dev" / "dev-test", {"a": track(range(5)), "b": track(range(5), cls=4)})
    write_clips(tmp_path / "pred", {"a": track(range(5)), "b": track(range(5), cls=4)})

    report = score_dirs(tmp_path / "metadata_dev", tmp_path / "pred")
    assert report["settings"]["splits"] == [str(tmp_path / "metadata_dev" / "dev-test")]
    assert (report["n_files"], report["TP"], report["FN"]) == (2, 8, 0)
    assert report["F"] == pytest.approx(2 / N_CLASSES)

    (tmp_path / "pred" / "b.csv").unlink()
    with pytest.raises(InputError, match="no prediction for 1 reference clip"):
        score_dirs(tmp_path / "metadata_dev", tmp_path / "pred")


def test_score_dirs_takes_one_folder_per_split(tmp_path: Path) -> None:
    write_clips(tmp_path / "ref1", {"a": track(range(5))})
    write_clips(tmp_path / "ref2", {"b": track(range(5), cls=4)})
    write_clips(tmp_path / "pred1", {"a": track(range(5))})
    write_clips(tmp_path / "pred2", {"b": rows()})

    report = score_dirs([tmp_path / "ref1", tmp_path / "ref2"], [tmp_path / "pred1", tmp_path / "pred2"])
    assert (report["n_files"], report["TP"], report["FN"]) == (2, 4, 4)

    write_clips(tmp_path / "pred2", {"a": track(range(5))})
    with pytest.raises(InputError, match="duplicate clip name 'a'"):
        score_dirs([tmp_path / "ref1", tmp_path / "ref2"], [tmp_path / "pred1", tmp_path / "pred2"])


def test_label_file_listing_sorts_names_across_folders_and_keeps_each_file_s_folder(tmp_path: Path) -> None:
    write_clips(tmp_path / "ref" / "split2", {"b": rows(), "é-clip": rows()})
    write_clips(tmp_path / "ref" / "split1", {"c": rows(), "a": rows()})
    write_clips(tmp_path / "more", {"aa": rows()})
    (tmp_path / "ref" / "notes.txt").write_text("not a label file")

    listing = label_file_listing([tmp_path / "ref", tmp_path / "more"])
    names = listing.names(np.arange(len(listing.stems)))
    assert names == ["a", "aa", "b", "c", "é-clip"]
    folders = [Path(listing.folders[index]).name for index in listing.folder.tolist()]
    assert folders == ["split1", "more", "split2", "split1", "split2"]
    found, position = listing.contains(np.array([b"c", b"zz", b"a"]))
    assert found.tolist() == [True, False, True] and position[found].tolist() == [3, 0]
