"""Tests of the frame-based, distance-aware DCASE2024 SELD metric: hand-computed quirks and official parity.

Formulas used in the hand computations (float64 eps ignored): F = TP / (TP + FP_spatial + (FP + FN) / 2);
LE, DE, RDE = mean DOA / distance (m) / relative distance error over all paired tracks; LR = DE_TP / (DE_TP +
DE_FN); ER = (S + D + I) / N_ref frame-wise; SELD = nanmean(1 - F, LE / 180, RDE), per class under macro.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from seld_parity_cases import parity_runs, write_case_files

from seldflow.cli import main as cli_main
from seldflow.formats.dcase2021 import write_events
from seldflow.metrics.dcase2024 import compute_metrics
from seldflow.score import score_dirs

# Identical directions are sqrt(2e-10) rad apart after the official +1e-10 normalisation: 0.00081028°.
SELF_ANGLE = math.degrees(math.acos(1 / (1 + 1e-10)))


def source(
    frames: range, cls: int = 0, azimuth: float = 0.0, elevation: float = 0.0, distance: float = 2.0, track: int = 0
) -> np.ndarray:
    """One static source over ``frames``; distance in metres."""
    return np.array([[f, cls, track, azimuth, elevation, distance] for f in frames], dtype=np.float64).reshape(-1, 6)


def score(ref: np.ndarray, pred: np.ndarray, **options: object) -> dict:
    return compute_metrics({"a": ref}, {"a": pred}, **options)  # type: ignore[arg-type]


def test_last_reference_frame_and_later_ones_are_not_scored() -> None:
    ref = source(range(5))  # frames 0..3 scored
    missed_4 = score(ref, source(range(4)), average="micro")
    missed_3 = score(ref, source(range(3)), average="micro")
    late = score(ref, np.vstack([ref, source(range(4, 30), cls=3)]), average="micro")

    assert (missed_4["TP"], missed_4["FN"], missed_4["n_scored_frames"]) == (4, 0, 4)
    assert (missed_3["TP"], missed_3["FN"]) == (3, 1)
    assert late["FP"] == 0


def test_identical_directions_are_not_zero_degrees_apart() -> None:
    result = score(source(range(3), azimuth=40, elevation=10), source(range(3), azimuth=40, elevation=10))

    assert result["LE"] == pytest.approx(SELF_ANGLE, rel=1e-5)
    assert result["LE"] == pytest.approx(0.00081028, rel=1e-4)


def test_an_error_of_exactly_the_threshold_fails_because_of_the_normalisation() -> None:
    # 0° vs 20°: the +1e-10 shrinks the cosine, giving 20.0000000157° > 20: a spatial FP. 19.99° passes.
    at_20 = score(source(range(2)), source(range(2), azimuth=20), average="micro")
    below = score(source(range(2)), source(range(2), azimuth=19.99), average="micro")

    assert (at_20["TP"], at_20["FP_spatial"]) == (0, 1)
    assert (below["TP"], below["FP_spatial"]) == (1, 0)


def test_relative_distance_threshold_is_strict() -> None:
    # Reference 2 m: predicted 4 m is a relative error of 1.0 (passes), 4.02 m of 1.01 (fails).
    passes = score(source(range(2)), source(range(2), distance=4.0), average="micro")
    fails = score(source(range(2)), source(range(2), distance=4.02), average="micro")

    assert (passes["TP"], fails["TP"], fails["FP_spatial"]) == (1, 0, 1)
    # Errors average over every pair, spatial FPs included: DE 2.02 m, RDE 1.01.
    assert (fails["DE"], fails["RDE"]) == pytest.approx((2.02, 1.01))


def test_absolute_distance_threshold_in_metres() -> None:
    result = score(source(range(3)), source(range(3), distance=2.6), dist_threshold=0.5, average="micro")

    assert (result["TP"], result["FP_spatial"]) == (0, 2)


def test_scores_of_a_mixed_case_by_hand() -> None:
    # Frames 0..2 scored (reference up to frame 3). Class 0: exact direction, distance 3 m vs 2 m (RDE 0.5).
    # Class 1: in the reference only (frames 0..2), missed: 3 FN. Class 2: a false alarm in frame 0.
    ref = np.vstack([source(range(4), cls=0), source(range(3), cls=1)])
    pred = np.vstack([source(range(3), cls=0, distance=3.0), source(range(1), cls=2)])

    micro = score(ref, pred, average="micro")
    macro = score(ref, pred)

    # TP 3, FN 3, FP 1: F = 3 / (3 + 2) = 0.6. ER: frame 0 S 1; frames 1, 2 D 1 each -> 3 / N_ref 6 = 0.5.
    # LE = SELF_ANGLE, RDE = 0.5, LR = 3 / 6. Micro SELD = (0.4 + SELF_ANGLE / 180 + 0.5) / 3.
    assert (micro["TP"], micro["FN"], micro["FP"], micro["S"], micro["D"]) == (3, 3, 1, 1, 2)
    assert micro["ER"] == pytest.approx(0.5)
    assert micro["F"] == pytest.approx(0.6)
    assert (micro["DE"], micro["RDE"], micro["LR"]) == pytest.approx((1.0, 0.5, 0.5))
    assert micro["SELD"] == pytest.approx((0.4 + SELF_ANGLE / 180 + 0.5) / 3)
    # Macro: class 0 F 1, SELD (0 + SELF_ANGLE / 180 + 0.5) / 3; the 12 others F 0, no pairs, SELD = 1 - 0 = 1.
    assert macro["F"] == pytest.approx(1 / 13)
    assert macro["LR"] == pytest.approx(1 / 13)
    assert macro["RDE"] == pytest.approx(0.5)  # mean over the classes with pairs only
    assert macro["SELD"] == pytest.approx(((SELF_ANGLE / 180 + 0.5) / 3 + 12) / 13)
    assert macro["classwise"]["LE"][1] is None or math.isnan(macro["classwise"]["LE"][1])


def test_distance_column_is_read_in_centimetres(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_events(tmp_path / "ref" / "split" / "a.csv", source(range(4), distance=2.0), with_distance=True)
    write_events(tmp_path / "pred" / "a.csv", source(range(4), distance=2.5), with_distance=True)
    assert (tmp_path / "pred" / "a.csv").read_text().splitlines()[0] == "0,0,0,0.0,0.0,250.0"

    status = cli_main(
        ["score", "--metric", "dcase2024", "--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred")]
    )

    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert (report["DE"], report["RDE"]) == pytest.approx((0.5, 0.25))  # metres, and 0.5 / 2
    assert report["settings"]["metric"] == "dcase2024"
    assert set(report) >= {"ER", "F", "LE", "LR", "SELD", "classwise"}


@pytest.mark.parametrize("run", parity_runs("dcase2024"), ids=lambda r: f"{r['metric']}-{r['seed']}")
def test_parity_with_the_official_scorer(tmp_path: Path, run: dict) -> None:
    ref_dir, pred_dir = write_case_files(tmp_path, run)

    result = score_dirs(ref_dir, pred_dir, metric="dcase2024", average=run["average"])

    official = run["official"]
    for name in ("ER", "F", "LE", "DE", "RDE", "LR", "SELD"):
        assert result[name] == pytest.approx(official[name], abs=1e-9), name
    if run["average"] == "macro":
        names = ("F", "LE", "DE", "RDE", "LR", "SELD")
        rows = [[result["ER"]] * run["n_classes"]] + [result["classwise"][k] for k in names]
        expected = np.array(official["classwise"], dtype=np.float64)  # null (NaN) where a class has no pairs
        np.testing.assert_allclose(np.array(rows, dtype=np.float64), expected, atol=1e-9)
