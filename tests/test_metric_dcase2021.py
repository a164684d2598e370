"""Tests of the segment-based DCASE2021–2023 SELD metrics: one hand-computed test per official quirk, parity with
the official scorers on seeded random cases, the registry and the ``seldflow score --metric`` command.

Formulas used in the hand computations (float64 eps ignored):
ER = (S + D + I) / N_ref; F (2021) = TP / (TP + (FP + FP_spatial + FN) / 2); F (2022/2023) = TP / (TP +
FP_spatial + (FP + FN) / 2); LE = Σ track mean angle / DE_TP (180 if none); LR = DE_TP / (DE_TP + DE_FN);
SELD = (ER + 1 - F + LE / 180 + 1 - LR) / 4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from seld_parity_cases import parity_runs, write_case_files

from seldflow.cli import main as cli_main
from seldflow.errors import ConfigError, InputError
from seldflow.formats.dcase2021 import write_events
from seldflow.metrics import METRICS, get_metric
from seldflow.metrics.dcase2021 import compute_metrics
from seldflow.score import score_dirs


def events(*rows: tuple[float, ...]) -> np.ndarray:
    """Event rows ``frame, class, track, azimuth, elevation`` (distance NaN)."""
    table = np.array([(*row, np.nan) for row in rows], dtype=np.float64)
    return table.reshape(-1, 6)


def source(frames: range, cls: int = 0, azimuth: float = 0.0, elevation: float = 0.0, track: int = 0) -> np.ndarray:
    """One static source over ``frames``."""
    return events(*[(f, cls, track, azimuth, elevation) for f in frames])


def score(ref: np.ndarray, pred: np.ndarray, edition: str, **options: object) -> dict:
    return compute_metrics({"a": ref}, {"a": pred}, edition=edition, **options)  # type: ignore[arg-type]


def assert_scores(result: dict, **expected: float) -> None:
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, abs=1e-12), name


# --------------------------------------------------------------------------------------------------------------
# Segments and file length
# --------------------------------------------------------------------------------------------------------------


def test_dcase2021_files_are_600_frames_long() -> None:
    ref = source(range(10))
    late = score(ref, np.vstack([ref, source(range(600, 601), cls=1)]), "dcase2021")
    last = score(ref, np.vstack([ref, source(range(599, 600), cls=1)]), "dcase2021")

    # Frame 600 is outside the 60 segments: a perfect score.
    assert_scores(late, ER=0.0, F=1.0, LE=0.0, LR=1.0, SELD=0.0)
    assert late["n_segments"] == 60
    # Frame 599 (segment 59): one insertion, ER = 1/1; F = 1 / (1 + 0.5 * 1) = 2/3; SELD = (1 + 1/3) / 4 = 1/3.
    assert_scores(last, ER=1.0, F=2 / 3, LE=0.0, LR=1.0, SELD=1 / 3)


@pytest.mark.parametrize("edition", ["dcase2022", "dcase2023"])
def test_segments_come_from_the_largest_reference_frame_index(edition: str) -> None:
    # L = 20: ceil(20 / 10) = 2 segments, frames 0..19; annotated frame 20 itself is dropped.
    ref = source(range(21))
    at_20 = score(ref, np.vstack([ref, source(range(20, 21), cls=1)]), edition, average="micro")
    at_19 = score(ref, np.vstack([ref, source(range(19, 20), cls=1)]), edition, average="micro")
    # L = 21: 3 segments, frames 0..29: frame 25, after the last annotation, is scored.
    ref_21 = source(range(22))
    at_25 = score(ref_21, np.vstack([ref_21, source(range(25, 26), cls=1)]), edition, average="micro")

    assert (at_20["n_segments"], at_20["TP"], at_20["FP"], at_20["N_ref"]) == (2, 2, 0, 2)
    assert (at_19["FP"], at_25["n_segments"], at_25["FP"]) == (1, 3, 1)
    # at_19: TP 2, FP 1 -> F = 2 / (2 + 0.5) = 0.8; one insertion over N_ref 2 -> ER = 0.5.
    assert_scores(at_19, ER=0.5, F=0.8)


def test_empty_reference_has_no_segments() -> None:
    result = compute_metrics(
        {"empty": events(), "b": source(range(11))},
        {"empty": source(range(30), cls=2), "b": source(range(11))},
        edition="dcase2023",
        average="micro",
    )

    assert (result["n_files"], result["n_segments"], result["FP"], result["TP"]) == (2, 1, 0, 1)


# --------------------------------------------------------------------------------------------------------------
# Counting within a segment
# --------------------------------------------------------------------------------------------------------------


def test_class_in_both_without_a_common_frame_adds_the_predicted_count_to_fn() -> None:
    ref = source(range(5))  # N_ref = 1 in frames 0..4
    pred = np.vstack([source(range(5, 10), azimuth=0), source(range(5, 10), azimuth=90, track=1)])  # N_pred = 2

    result = score(ref, pred, "dcase2021")

    # FN += N_pred = 2 (not N_ref = 1), no FP. ER: D = 2 over N_ref 1 = 2. F = 0. LE = 180, LR = 0 / 2 = 0.
    assert (result["TP"], result["FP"], result["FN"], result["DE_FN"], result["N_ref"]) == (0, 0, 2, 2, 1)
    # SELD = (2 + 1 + 1 + 1) / 4 = 1.25
    assert_scores(result, ER=2.0, F=0.0, LE=180.0, LR=0.0, SELD=1.25)


def test_angles_are_averaged_over_the_segment_before_the_threshold() -> None:
    ref = source(range(10))
    pred = np.vstack([source(range(7), azimuth=10), source(range(7, 10), azimuth=40)])

    result = score(ref, pred, "dcase2021")

    # Track mean (7 * 10 + 3 * 40) / 10 = 19 <= 20: one TP with LE 19; SELD = 19 / 180 / 4.
    assert (result["TP"], result["FP_spatial"]) == (1, 0)
    assert_scores(result, ER=0.0, F=1.0, LE=19.0, LR=1.0, SELD=19 / 720)


def test_threshold_is_inclusive() -> None:
    # A 45° error is exactly 45.0 in float64 (20° is not: 19.999999999999993), so test at a 45° threshold.
    ref = source(range(10))
    at = score(ref, source(range(10), azimuth=45), "dcase2021", doa_threshold=45.0)
    above = score(ref, source(range(10), azimuth=45), "dcase2021", doa_threshold=44.999)

    assert (at["TP"], at["FP_spatial"]) == (1, 0)
    assert (above["TP"], above["FP_spatial"]) == (0, 1)


def test_distance_is_great_circle_not_azimuth_difference() -> None:
    # (0°, 60°) to (180°, 60°): cos = sin²60 + cos²60 cos 180 = 0.75 - 0.25 = 0.5 -> 60°, not 180°.
    result = score(source(range(10), elevation=60), source(range(10), azimuth=180, elevation=60), "dcase2021")

    assert result["LE"] == pytest.approx(60.0)


def test_a_track_is_the_row_position_in_its_frame_not_the_track_column() -> None:
    # Source A (track 0) in frames 0..4, source B (track 1) in frames 5..9: both are row 0 of their frames, so
    # the official code sees one track. Errors 30° then 0°: one track with mean 15° -> one TP, not a spatial FP.
    ref = np.vstack([source(range(5), azimuth=0, track=0), source(range(5, 10), azimuth=90, track=1)])
    pred = np.vstack([source(range(5), azimuth=30), source(range(5, 10), azimuth=90)])

    result = score(ref, pred, "dcase2021")

    assert (result["TP"], result["FP_spatial"], result["DE_TP"], result["N_ref"]) == (1, 0, 1, 1)
    assert result["LE"] == pytest.approx(15.0)


def test_extra_predicted_tracks_are_false_positives() -> None:
    ref = source(range(10))
    pred = np.vstack([source(range(10)), source(range(3, 4), azimuth=120, track=1)])  # N_pred = 2 in frame 3

    result = score(ref, pred, "dcase2021")

    # TP 1, FP 1 -> F = 1 / (1 + 0.5) = 2/3; ER: I = 1 over N_ref 1 -> 1; SELD = (1 + 1/3) / 4 = 1/3.
    assert (result["TP"], result["FP"], result["FN"]) == (1, 1, 0)
    assert_scores(result, ER=1.0, F=2 / 3, LE=0.0, LR=1.0, SELD=1 / 3)


def test_missing_reference_tracks_are_false_negatives() -> None:
    ref = np.vstack([source(range(10)), source(range(10), azimuth=90, track=1)])  # N_ref = 2

    result = score(ref, source(range(10)), "dcase2021")

    # TP 1, FN 1 -> F = 2/3; ER: D = 1 over N_ref 2 = 0.5; LR = 1 / (1 + 1) = 0.5.
    # SELD = (0.5 + 1/3 + 0 + 0.5) / 4 = 1/3.
    assert_scores(result, ER=0.5, F=2 / 3, LE=0.0, LR=0.5, SELD=1 / 3)


def test_spatial_false_positive_weighs_half_in_2021_and_fully_from_2022() -> None:
    # Class 0 exact (TP), class 1 30° off (spatial FP), both over segment 0.
    ref = np.vstack([source(range(10), cls=0), source(range(10), cls=1)])
    pred = np.vstack([source(range(10), cls=0), source(range(10), cls=1, azimuth=30)])

    y2021 = score(ref, pred, "dcase2021")
    y2023 = score(ref, pred, "dcase2023", average="micro", n_classes=12)

    # ER: the spatial FP is an insertion, I = 1 over N_ref 2 = 0.5; LE = (0 + 30) / 2 = 15; LR = 1.
    # 2021: F = 1 / (1 + 0.5 * 1) = 2/3, SELD = (0.5 + 1/3 + 15/180) / 4 = 11/48.
    assert_scores(y2021, ER=0.5, F=2 / 3, LE=15.0, LR=1.0, SELD=11 / 48)
    # 2023: F = 1 / (1 + 1) = 1/2, SELD = (0.5 + 0.5 + 15/180) / 4 = 13/48.
    assert_scores(y2023, ER=0.5, F=0.5, LE=15.0, LR=1.0, SELD=13 / 48)


def test_substitution_pairs_a_miss_with_a_false_alarm_in_one_segment() -> None:
    ref = source(range(10), cls=0)
    pred = source(range(10), cls=1)

    result = score(ref, pred, "dcase2021")

    # FN 1 (class 0) and FP 1 (class 1) in segment 0: S = 1, ER = 1 / 1.
    assert (result["S"], result["D"], result["I"]) == (1, 0, 0)
    assert result["ER"] == pytest.approx(1.0)


def test_macro_averages_over_all_classes_absent_ones_included() -> None:
    ref = source(range(11), cls=4)  # L = 10: one segment

    result = score(ref, ref, "dcase2023")

    # Class 4: F 1, LE 0, LR 1, SELD 0. The 12 absent classes: F 0, LE 180, LR 0, SELD (0 + 1 + 1 + 1) / 4 = 3/4.
    # F = 1/13, LE = 12 * 180 / 13, LR = 1/13, SELD = 12 * 3/4 / 13 = 9/13.
    assert_scores(result, ER=0.0, F=1 / 13, LE=12 * 180 / 13, LR=1 / 13, SELD=9 / 13)
    assert result["classwise"]["F"][4] == pytest.approx(1.0)
    assert result["classwise"]["LE"][0] == 180.0
    assert len(result["classwise"]["SELD"]) == 13


def test_micro_average_pools_all_classes() -> None:
    ref = source(range(11), cls=4)

    result = score(ref, ref, "dcase2023", average="micro")

    assert_scores(result, ER=0.0, F=1.0, LE=0.0, LR=1.0, SELD=0.0)


# --------------------------------------------------------------------------------------------------------------
# Clip pairing and validation
# --------------------------------------------------------------------------------------------------------------


class TestMissingPrediction:
    """Clip "a" is predicted perfectly (1 TP); clip "b" (1 reference event) has no prediction."""

    refs = {"a": source(range(11)), "b": source(range(11))}  # noqa: RUF012
    preds = {"a": source(range(11))}  # noqa: RUF012

    def test_error_is_the_default(self) -> None:
        with pytest.raises(InputError, match=r"no prediction for 1 reference clip.*: b"):
            compute_metrics(self.refs, self.preds, edition="dcase2023")

    def test_skip_is_the_official_behaviour(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = compute_metrics(self.refs, self.preds, edition="dcase2023", average="micro", missing="skip")

        assert (result["n_files"], result["TP"], result["FN"]) == (1, 1, 0)
        assert "warning" in capsys.readouterr().err

    def test_empty_counts_the_missed_events(self) -> None:
        result = compute_metrics(self.refs, self.preds, edition="dcase2023", average="micro", missing="empty")

        # TP 1, FN 1 -> F = 2/3.
        assert (result["n_files"], result["TP"], result["FN"]) == (2, 1, 1)
        assert result["F"] == pytest.approx(2 / 3)


def test_prediction_without_reference_is_an_error() -> None:
    with pytest.raises(InputError, match="stray"):
        compute_metrics({"a": source(range(3))}, {"a": source(range(3)), "stray": source(range(3))})


def test_tables_are_validated() -> None:
    with pytest.raises(InputError, match=r"clip 'a'.*class index in 0\.\.11"):
        compute_metrics({"a": source(range(3), cls=12)}, {"a": events()}, edition="dcase2021")
    with pytest.raises(InputError, match="shape"):
        compute_metrics({"a": np.zeros((2, 5))}, {"a": events()})


def test_unknown_edition_and_average_are_rejected() -> None:
    with pytest.raises(ValueError, match="edition"):
        compute_metrics({}, {}, edition="dcase2020")
    with pytest.raises(ValueError, match="average"):
        compute_metrics({}, {}, average="weighted")


# --------------------------------------------------------------------------------------------------------------
# Parity with the official scorers
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "run", parity_runs("dcase2021", "dcase2022", "dcase2023"), ids=lambda r: f"{r['metric']}-{r['seed']}"
)
def test_parity_with_the_official_scorer(tmp_path: Path, run: dict) -> None:
    ref_dir, pred_dir = write_case_files(tmp_path, run)

    result = score_dirs(ref_dir, pred_dir, metric=run["metric"], average=run["average"])

    official = run["official"]
    for name in ("ER", "F", "LE", "LR", "SELD"):
        assert result[name] == pytest.approx(official[name], abs=1e-9), name
    if run["average"] == "macro":
        rows = [[result["ER"]] * run["n_classes"]] + [result["classwise"][k] for k in ("F", "LE", "LR", "SELD")]
        np.testing.assert_allclose(rows, official["classwise"], atol=1e-9)


# --------------------------------------------------------------------------------------------------------------
# Registry and command line
# --------------------------------------------------------------------------------------------------------------


def test_registry_defaults() -> None:
    assert set(METRICS) == {"dcase2021", "dcase2022", "dcase2023", "dcase2024", "dcase2025", "doa-mot"}
    assert [METRICS[name].n_classes for name in ("dcase2021", "dcase2022", "dcase2023", "dcase2024")] == [
        12,
        13,
        13,
        13,
    ]
    with pytest.raises(ConfigError, match=r"unknown metric 'dcase2019'.*dcase2021.*dcase2025"):
        get_metric("dcase2019")


def test_metric_rejects_options_it_does_not_have() -> None:
    with pytest.raises(ConfigError, match="onscreen"):
        get_metric("dcase2021").score({}, {}, onscreen=True)


def test_cli_scores_with_the_chosen_metric(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_events(tmp_path / "ref" / "dev-test" / "a.csv", source(range(10)))
    write_events(tmp_path / "pred" / "a.csv", source(range(10), azimuth=30))

    status = cli_main(
        ["score", "--metric", "dcase2021", "--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred")]
    )

    report = json.loads(capsys.readouterr().out)
    assert status == 0
    # One spatial FP: ER = 1 (insertion), F = 0, LE = 30, LR = 1 -> SELD = (1 + 1 + 30/180 + 0) / 4 = 13/24.
    assert {k: report[k] for k in ("ER", "F", "LE", "LR")} == pytest.approx(
        {"ER": 1.0, "F": 0.0, "LE": 30.0, "LR": 1.0}
    )
    assert report["SELD"] == pytest.approx(13 / 24)
    assert len(report["classwise"]["F"]) == 12
    assert report["settings"]["metric"] == "dcase2021"
    assert report["settings"]["splits"] == [str(tmp_path / "ref" / "dev-test")]


def test_cli_classes_option_and_bad_input_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_events(tmp_path / "ref" / "a.csv", source(range(11), cls=2))
    write_events(tmp_path / "pred" / "a.csv", source(range(11), cls=2))
    args = ["score", "--metric", "dcase2023", "--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred")]

    assert cli_main([*args, "--classes", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["F"] == pytest.approx(1 / 4)  # macro over 4 classes, one perfect

    assert cli_main([*args, "--classes", "2"]) == 1  # class 2 unknown with 2 classes: a data error
    assert "a.csv: row 1: field 'class'" in capsys.readouterr().err
    assert cli_main([*args, "--onscreen"]) == 1
    assert "onscreen" in capsys.readouterr().err
