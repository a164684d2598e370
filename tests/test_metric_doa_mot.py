"""Tests of the ``doa-mot`` metric: DOAnet's class-agnostic frame-wise scores (parity with the official
``cls_metric.py::doa_metric`` on seeded recordings, and hand-computed cases for each convention), canonical
CLEAR-MOT beside them, the CSV contract and the ``seldflow score --metric doa-mot`` command.

Formulas of the hand computations (from the official ``get_results``; e = 1e-7):
LE = 180/π · Σ matched angle / TP; MOTA = 100 · (1 − (FP + FN + IDS) / (N_ref + 2e)); LR = 100 · TP / (N_ref + e);
LP = 100 · TP / (N_pred + e); LF = 100 · 2·lp·lr / (lp + lr + e) with lp, lr fractions. A matched angle is at least
acos(1 − e) (the clamp), so a perfect LE is acos(1 − 1e-7) in degrees = 0.0256°.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from doa_mot_parity_cases import make_cases, parity_runs, write_cases
from scipy.optimize import linear_sum_assignment

from seldflow.errors import ConfigError, InputError
from seldflow.formats.dcase2021 import write_events
from seldflow.metrics import METRICS, get_metric
from seldflow.metrics.doa_mot import (
    DEFAULT_GATE_DEG,
    ClearMotCounts,
    DoaCounts,
    DoaSlots,
    Tally,
    clear_mot_counts,
    clear_mot_counts_of,
    compute_metrics,
    doanet_counts,
    doanet_counts_of,
    matched_angles,
    read_file,
    recording_frames,
    slots_from_table,
    tracks_from_table,
)
from seldflow.score import score_dirs

E = 1e-7
PERFECT_LE = math.degrees(math.acos(1 - E))  # 0.025623...°


def events(*rows: tuple[float, ...]) -> np.ndarray:
    """Event rows ``frame, class, track, azimuth, elevation`` (distance NaN), in the given (file) order."""
    return np.array([(*row, np.nan) for row in rows], dtype=np.float64).reshape(-1, 6)


def source(frames: range, azimuth: float = 0.0, elevation: float = 0.0, cls: int = 0, track: int = 0) -> np.ndarray:
    """One static source over ``frames``."""
    return events(*[(f, cls, track, azimuth, elevation) for f in frames])


def by_frame(*tables: np.ndarray) -> np.ndarray:
    """Rows of several sources, frame by frame, the first table's row first within a frame."""
    table = np.concatenate(tables)
    return table[np.argsort(table[:, 0], kind="stable")]


def score(ref: np.ndarray, pred: np.ndarray | None, **options: object) -> dict:
    return compute_metrics({"a": ref}, {} if pred is None else {"a": pred}, **options)  # type: ignore[arg-type]


def expected_scores(tp: int, fp: int, fn: int, ids: int, n_ref: int, n_pred: int, angle_deg: float) -> dict:
    """The official formulas, written out."""
    lr, lp = tp / (n_ref + E), tp / (n_pred + E)
    return {
        "LE": angle_deg / tp if tp else math.nan,
        "MOTA": 100 * (1 - (fp + fn + ids) / (n_ref + 2 * E)),
        "IDS": ids,
        "LR": 100 * lr,
        "LP": 100 * lp,
        "LF": 100 * 2 * lp * lr / (lp + lr + E),
    }


def assert_scores(report: dict, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(report[key]), key
        else:
            assert report[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


# --------------------------------------------------------------------------------------------------------------
# Parity with the official doa_metric class
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run", parity_runs(), ids=lambda r: f"seed{r['seed']}-pred{int(r['with_predictions'])}")
def test_parity_with_the_official_metric(tmp_path: Path, run: dict) -> None:
    cases = make_cases(run["seed"], run["n_files"], with_predictions=run["with_predictions"])
    assert sum(len(ref) for ref, _ in cases.values()) == run["n_ref_rows"], "case generator changed"
    assert sum(len(pred) for _, pred in cases.values() if pred is not None) == run["n_pred_rows"], "generator changed"
    ref_dir, pred_dir = write_cases(tmp_path, cases)
    report = score_dirs(ref_dir, pred_dir, metric="doa-mot")
    for key, official in run["official"].items():
        if official is None:
            assert math.isnan(report[key]), key
        else:
            assert report[key] == pytest.approx(official, rel=1e-12, abs=1e-12), key
    counters = run["official_counters"]
    assert report["counts"]["TP"] == counters["tp"]
    assert report["counts"]["FP"] == counters["fp"] and report["counts"]["FN"] == counters["fn"]
    assert report["counts"]["n_ref"] == pytest.approx(counters["total_gt"] - E, abs=1e-6)
    assert report["counts"]["n_pred"] == pytest.approx(counters["total_pred"] - E, abs=1e-6)


def test_parity_fixture_names_the_official_commit() -> None:
    fixture = json.loads((Path(__file__).parent / "data" / "doa_mot_parity_official.json").read_text())
    assert fixture["official"]["repository"] == "sharathadavanne/doa-net"
    assert fixture["official"]["commit"].startswith("c9815e2")
    assert len(fixture["runs"]) >= 10


# --------------------------------------------------------------------------------------------------------------
# DOAnet scores, hand-computed
# --------------------------------------------------------------------------------------------------------------


def test_perfect_prediction_scores_the_clamp_floor_and_counts_onsets_as_ids() -> None:
    # A in frames 0-9, B in 3-7, C in 12-14: onsets at 3 and 12 count, the one at frame 0 never does.
    ref = by_frame(source(range(10), 30, 10), source(range(3, 8), -120, -20, cls=4), source(range(12, 15), 90, 45))
    n = len(ref)
    report = score(ref, ref)
    assert_scores(report, expected_scores(n, 0, 0, 2, n, n, n * PERFECT_LE))
    assert report["LE"] == pytest.approx(0.0256234518, abs=1e-9)


def test_one_extra_prediction_is_one_false_positive_and_a_birth() -> None:
    ref = source(range(5), 0, 0)
    pred = by_frame(ref, events((2, 0, 1, 90, 0)))  # a second direction in frame 2 only
    report = score(ref, pred)
    assert_scores(report, expected_scores(5, 1, 0, 1, 5, 6, 5 * PERFECT_LE))
    assert report["counts"] == {"TP": 5, "FP": 1, "FN": 0, "n_ref": 5, "n_pred": 6}


def test_a_missed_frame_is_a_false_negative_and_its_return_a_birth() -> None:
    ref = source(range(6), 10, 0)
    pred = source([0, 1, 3, 4, 5], 10, 0)  # type: ignore[arg-type]
    assert_scores(score(ref, pred), expected_scores(5, 0, 1, 1, 6, 5, 5 * PERFECT_LE))


def test_no_predictions_leave_le_undefined() -> None:
    ref = by_frame(source(range(4), 0, 0), source(range(2, 4), 90, 0))
    n = len(ref)
    for pred in (None, events()):
        report = score(ref, pred)
        assert_scores(report, expected_scores(0, 0, n, 0, n, 0, 0.0))
        assert report["MOTA"] == pytest.approx(100 * 2 * E / (n + 2 * E))
        assert report["settings"]["recordings_without_predictions"] == 1


def test_no_references_and_no_predictions() -> None:
    report = score(events(), events())
    assert math.isnan(report["LE"]) and report["MOTA"] == 100.0
    assert report["IDS"] == 0 and report["LR"] == report["LP"] == report["LF"] == 0.0


def test_predictions_without_references_drive_mota_far_below_zero() -> None:
    report = score(events(), source(range(2), 0, 0))
    assert report["MOTA"] == pytest.approx(100 * (1 - 2 / (2 * E)))  # FP = 2 over ΣGT + e = 2e


def test_no_distance_gate_a_prediction_170_degrees_off_is_a_true_positive() -> None:
    report = score(source(range(1), 0, 0), source(range(1), 170, 0))
    assert report["counts"]["TP"] == 1 and report["counts"]["FP"] == report["counts"]["FN"] == 0
    assert report["LE"] == pytest.approx(170.0, abs=1e-7)  # the +1e-10 renormalisation shifts it by 1.6e-8°


def test_the_opposite_direction_is_clamped_below_180_degrees() -> None:
    report = score(source(range(1), 0, 0), source(range(1), 180, 0))
    assert report["LE"] == pytest.approx(math.degrees(math.acos(-1 + E)), abs=1e-9)


def test_swapped_slots_are_no_doanet_identity_switch() -> None:
    a, b = source(range(10), 0, 0, cls=1), source(range(10), 90, 0, cls=2)
    ref = by_frame(a, b)
    # The predicted rows swap order from frame 5: slots swap sources, no slot turns on.
    pred = np.concatenate([by_frame(a[:5], b[:5]), by_frame(b[5:], a[5:])])
    report = score(ref, pred)
    assert report["IDS"] == 0 and report["LE"] == pytest.approx(PERFECT_LE, abs=1e-12)


def test_frame_zero_of_every_recording_never_counts_as_a_birth() -> None:
    ref = source(range(3), 0, 0)
    report = compute_metrics({"a": ref, "b": ref}, {"a": ref, "b": ref})
    assert report["IDS"] == 0
    one_recording = np.concatenate([ref, source(range(5, 8), 0, 0)])
    assert score(one_recording, one_recording)["IDS"] == 1


def test_predictions_past_the_reference_are_false_positives() -> None:
    report = score(source(range(3), 0, 0), source(range(5), 0, 0))
    assert report["counts"] == {"TP": 3, "FP": 2, "FN": 0, "n_ref": 3, "n_pred": 5}


def test_matched_angles_agree_with_linear_sum_assignment() -> None:
    rng = np.random.default_rng(0)
    for n_slots in (2, 3):
        frames = 400
        ref = DoaSlots(rng.normal(size=(frames, n_slots, 3)), rng.random((frames, n_slots)) < 0.6)
        ref = DoaSlots(ref.xyz / np.linalg.norm(ref.xyz, axis=-1, keepdims=True), ref.active)
        pred = DoaSlots(rng.normal(size=(frames, n_slots, 3)) * 3, rng.random((frames, n_slots)) < 0.6)
        totals = matched_angles(ref, pred)
        for t in range(frames):
            p = pred.xyz[t] / np.sqrt((pred.xyz[t] ** 2).sum(-1, keepdims=True) + 1e-10)
            angles = np.arccos(np.clip(p @ ref.xyz[t].T, -1 + E, 1 - E))[pred.active[t]][:, ref.active[t]]
            expected = angles[linear_sum_assignment(angles)].sum() if angles.size else 0.0
            assert totals[t] == pytest.approx(expected, abs=1e-12), t


def test_doanet_counts_of_a_network_output_with_activity_in_the_second_slot() -> None:
    # Raw (unnormalised) network output, only slot 1 active: matched against the single reference in slot 0.
    ref = DoaSlots(np.array([[[1.0, 0, 0], [0, 0, 0]]] * 2), np.array([[True, False]] * 2))
    pred = DoaSlots(np.array([[[0, 0, 0], [5.0, 0, 0]]] * 2), np.array([[False, True]] * 2))
    counts = doanet_counts(ref, pred)
    assert (counts.tp, counts.fp, counts.fn, counts.ids) == (2, 0, 0, 0)
    assert counts.angle_sum == pytest.approx(2 * math.acos(1 - E), abs=1e-15)


# --------------------------------------------------------------------------------------------------------------
# CLEAR-MOT, hand-computed
# --------------------------------------------------------------------------------------------------------------


def clear(ref: np.ndarray, pred: np.ndarray, gate: float = 20.0) -> dict:
    return score(ref, pred, doa_threshold=gate)["clear_mot"]


def test_clear_mot_of_a_perfect_prediction() -> None:
    ref = by_frame(source(range(10), 30, 10, cls=1), source(range(3, 8), -120, -20, cls=2))
    result = clear(ref, ref)
    assert result["MOTA"] == 100.0 and result["IDS"] == 0 and result["matches"] == len(ref)
    assert result["MOTP"] == pytest.approx(0.0, abs=1e-5)


def test_clear_mot_motp_is_the_mean_matched_angle_and_the_gate_excludes_far_pairs() -> None:
    ref = source(range(4), 0, 0)
    pred = np.concatenate([source(range(2), 10, 0), source(range(2, 4), 25, 0)])
    result = clear(ref, pred)
    assert result["matches"] == 2 and result["MOTP"] == pytest.approx(10.0)
    assert (result["FN"], result["FP"]) == (2, 2) and result["MOTA"] == pytest.approx(100 * (1 - 4 / 4))
    wide = clear(ref, pred, gate=30.0)
    assert wide["matches"] == 4 and wide["MOTP"] == pytest.approx(17.5) and wide["gate_deg"] == 30.0


def test_clear_mot_counts_identity_switches_when_predicted_tracks_swap() -> None:
    a, b = source(range(10), 0, 0, cls=1), source(range(10), 90, 0, cls=2)
    ref = by_frame(a, b)
    pred_a, pred_b = a.copy(), b.copy()
    pred_a[:, 1:3], pred_b[:, 1:3] = (0, 0), (0, 1)  # predicted track 0 follows A, track 1 follows B ...
    pred_a[5:, 2], pred_b[5:, 2] = 1, 0  # ... until frame 5, where the two tracks swap sources
    result = clear(ref, by_frame(pred_a, pred_b))
    assert result["IDS"] == 2 and result["matches"] == 20
    assert result["MOTA"] == pytest.approx(100 * (1 - 2 / 20))


def test_clear_mot_remembers_the_last_match_across_a_gap() -> None:
    ref = source(range(10), 0, 0)
    back = np.concatenate([source(range(4), 1, 0, track=0), source(range(6, 10), 1, 0, track=0)])
    other = np.concatenate([source(range(4), 1, 0, track=0), source(range(6, 10), 1, 0, track=1)])
    assert clear(ref, back)["IDS"] == 0
    assert clear(ref, other)["IDS"] == 1


def test_a_reference_track_index_reused_after_a_pause_is_a_new_object() -> None:
    ref = np.concatenate([source(range(3), 0, 0, cls=1), source(range(6, 9), 0, 0, cls=1)])  # same (class, track)
    pred = np.concatenate([source(range(3), 0, 0, track=0), source(range(6, 9), 0, 0, track=1)])
    assert clear(ref, pred)["IDS"] == 0


def test_tracks_from_table_tell_repeated_pairs_in_one_frame_apart() -> None:
    table = events((0, 0, 0, 0, 0), (0, 0, 0, 90, 0), (1, 0, 0, 0, 0), (1, 0, 0, 90, 0))
    tracks = tracks_from_table(table, split_at_gaps=False)
    assert tracks.ident[0] != tracks.ident[1] and list(tracks.ident[:2]) == list(tracks.ident[2:])
    result = clear_mot_counts(tracks, tracks)
    assert (result.matches, result.switches, result.fp, result.fn) == (4, 0, 0, 0)


def test_clear_mot_is_undefined_without_references() -> None:
    result = clear(events(), source(range(2), 0, 0))
    assert math.isnan(result["MOTA"]) and math.isnan(result["MOTP"]) and result["FP"] == 2


# --------------------------------------------------------------------------------------------------------------
# CSV contract and bad input
# --------------------------------------------------------------------------------------------------------------


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_rows_fill_slots_in_file_order_even_when_a_frame_is_split_across_the_file(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "0,3,0,10,0\n1,3,0,10,0\n0,5,0,-90,20\n")
    table = read_file(path)
    assert table[:, 0].tolist() == [0, 1, 0] and table[:, 3].tolist() == [10, 10, -90]


def test_a_third_row_in_a_frame_names_the_file_and_row(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "0,1,0,10,0\n1,1,0,10,0\n0,2,0,20,0\n\n0,3,0,30,0\n")
    with pytest.raises(InputError, match=r"a\.csv: row 5: field 'frame': a third direction in frame 0"):
        read_file(path)


@pytest.mark.parametrize(
    ("line", "field"),
    [("0,1,0,abc,10", "azimuth"), ("0,1,0,10", None), ("0.5,1,0,10,0", "frame"), ("-1,1,0,10,0", "frame")],
)
def test_unreadable_fields_name_the_file_row_and_field(tmp_path: Path, line: str, field: str | None) -> None:
    path = write_text(tmp_path / "a.csv", f"1,1,0,0,0\n{line}\n")
    where = r"a\.csv: row 2" + (f": field '{field}'" if field else "")
    with pytest.raises(InputError, match=where):
        read_file(path, reference=False)


def test_reference_angles_must_lie_on_the_sphere_predictions_may_wrap(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "0,1,0,10,95\n")
    with pytest.raises(InputError, match=r"row 1: field 'elevation'"):
        read_file(path)
    assert read_file(path, reference=False)[0, 4] == 95


def test_a_header_line_is_refused(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "frame,class,track,azimuth,elevation\n0,1,0,10,0\n")
    with pytest.raises(InputError, match=r"row 1: field 'frame': not a number"):
        read_file(path)


def test_the_metric_is_registered_class_agnostic_with_missing_predictions_empty() -> None:
    metric = get_metric("doa-mot")
    assert METRICS["doa-mot"] is metric and metric.missing == "empty" and metric.options == {"doa_threshold"}
    class_blind = metric.score({"a": source(range(2), cls=5)}, {"a": source(range(2), cls=1)}, n_classes=13)
    assert class_blind["counts"]["TP"] == 2  # the class column and count are ignored
    with pytest.raises(ConfigError, match="average"):
        metric.score({"a": source(range(2))}, {}, average="macro")
    with pytest.raises(ConfigError, match="doa_threshold"):
        metric.score({"a": source(range(2))}, {}, doa_threshold=0.0)


def test_a_prediction_without_reference_is_an_error(tmp_path: Path) -> None:
    write_events(tmp_path / "ref" / "a.csv", source(range(2)))
    write_events(tmp_path / "pred" / "b.csv", source(range(2)))
    with pytest.raises(InputError, match="no reference"):
        score_dirs(tmp_path / "ref", tmp_path / "pred", metric="doa-mot")
    write_events(tmp_path / "pred" / "a.csv", source(range(2)))  # beside a prediction that has its reference
    with pytest.raises(InputError, match=r"no reference in .* for prediction\(s\) b$"):
        score_dirs(tmp_path / "ref", tmp_path / "pred", metric="doa-mot")


# --------------------------------------------------------------------------------------------------------------
# The command, end to end
# --------------------------------------------------------------------------------------------------------------


def run_score(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "seldflow", "score", "--metric", "doa-mot", *args]
    return subprocess.run(command, capture_output=True, text=True)


def test_command_prints_one_json_object_with_null_for_undefined_values(tmp_path: Path) -> None:
    ref = by_frame(source(range(10), 30, 10, cls=1), source(range(3, 8), -120, -20, cls=2))
    write_events(tmp_path / "ref" / "rec1.csv", ref)
    write_events(tmp_path / "ref" / "rec2.csv", source(range(4), 0, 0))
    write_events(tmp_path / "ref" / "rec3.csv", source(range(2), 0, 0))
    write_events(tmp_path / "pred" / "rec1.csv", ref)
    write_events(tmp_path / "pred" / "rec2.csv", events())  # empty file; rec3 has none: both no predictions
    result = run_score("--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred"), "--doa-threshold", "15")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    n_ref, n_pred = len(ref) + 6, len(ref)
    expected = expected_scores(n_pred, 0, 6, 1, n_ref, n_pred, n_pred * PERFECT_LE)
    assert_scores(report, expected)
    assert report["clear_mot"]["gate_deg"] == 15.0 and report["clear_mot"]["FN"] == 6
    assert report["settings"]["metric"] == "doa-mot" and report["settings"]["recordings_without_predictions"] == 2

    write_events(tmp_path / "pred" / "rec1.csv", events())
    report = json.loads(run_score("--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred")).stdout)
    assert report["LE"] is None and report["clear_mot"]["MOTP"] is None


def test_command_reports_bad_input_on_one_line(tmp_path: Path) -> None:
    write_events(tmp_path / "ref" / "rec1.csv", source(range(2)))
    write_text(tmp_path / "pred" / "rec1.csv", "0,0,0,1,0\n0,0,1,2,0\n0,0,2,3,0\n")
    result = run_score("--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred"))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'pred' / 'rec1.csv'}: row 3: field 'frame': a third direction in frame 0: DOAnet "
        "scores at most 2 per frame"
    ]


# --------------------------------------------------------------------------------------------------------------
# All recordings at once: the same counts as the per-recording functions, recording by recording
# --------------------------------------------------------------------------------------------------------------


def random_recording(rng: np.random.Generator, lanes: int, coarse: bool) -> tuple[np.ndarray, np.ndarray]:
    """A reference of ``lanes`` lanes of moving sources and a prediction missing, perturbing and adding rows; with
    ``coarse``, angles on a 10-degree grid and few track ids (ties and repeated pairs)."""
    n_frames = int(rng.integers(1, 40))
    rows = []
    for lane in range(lanes):
        frame = int(rng.integers(0, 5))
        while frame < n_frames:
            length = int(rng.integers(1, 15))
            azimuth, elevation, speed = rng.uniform(-180, 180), rng.uniform(-60, 60), rng.uniform(-9, 9)
            cls = int(rng.integers(0, 3))
            rows += [
                [t, cls, lane, azimuth + speed * (t - frame), elevation]
                for t in range(frame, min(n_frames, frame + length))
            ]
            frame += length + int(rng.integers(0, 6))
    reference = events(*[tuple(row) for row in sorted(rows, key=lambda row: row[0])])
    reference[:, 3] = (reference[:, 3] + 180) % 360 - 180
    kept = reference[rng.random(len(reference)) > 0.15].copy()
    kept[:, 3] += rng.normal(0, 15, len(kept))
    extra = events(*[(int(rng.integers(0, n_frames + 3)), 0, 0, rng.uniform(-180, 180), 0.0) for _ in range(4)])
    prediction = np.concatenate([kept, extra])
    prediction = prediction[np.argsort(prediction[:, 0], kind="stable")]
    frames = prediction[:, 0].astype(int)
    prediction = prediction[[sum(frames[:k] == f) < lanes for k, f in enumerate(frames)]]
    if coarse:
        for table in (reference, prediction):
            table[:, 3:5] = np.round(table[:, 3:5] / 10) * 10
            table[:, 1:3] = rng.integers(0, 2, (len(table), 2))
    return reference, prediction


@pytest.mark.parametrize("seed", range(4))
def test_all_recordings_at_once_count_as_recording_by_recording(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(40):
        lanes = 3 if seed == 3 else 2  # seed 3: crowded frames (CLEAR-MOT only; DOAnet has two slots)
        recordings = [random_recording(rng, lanes, coarse=trial % 2 == 0) for _ in range(int(rng.integers(1, 5)))]
        if trial % 5 == 0:
            recordings.append((recordings[0][0], recordings[0][1][:0]))  # a recording without predictions
        refs, preds = [r for r, _ in recordings], [p for _, p in recordings]
        gate = float(rng.choice([5.0, 20.0, 90.0]))
        clear = ClearMotCounts()
        for ref, pred in recordings:
            clear += clear_mot_counts(
                tracks_from_table(ref, split_at_gaps=True), tracks_from_table(pred, split_at_gaps=False), gate
            )
        at_once = clear_mot_counts_of(refs, preds, gate)
        assert (at_once.matches, at_once.fn, at_once.fp, at_once.switches, at_once.n_ref) == (
            clear.matches,
            clear.fn,
            clear.fp,
            clear.switches,
            clear.n_ref,
        )
        assert at_once.distance_sum == pytest.approx(clear.distance_sum, rel=1e-12, abs=1e-9)
        if lanes == 2:
            doanet = DoaCounts()
            for ref, pred in recordings:
                n = recording_frames(ref, pred)
                doanet += doanet_counts(slots_from_table(ref, n), slots_from_table(pred, n))
            together = doanet_counts_of(refs, preds)
            assert (together.tp, together.fp, together.fn, together.ids, together.n_ref, together.n_pred) == (
                doanet.tp,
                doanet.fp,
                doanet.fn,
                doanet.ids,
                doanet.n_ref,
                doanet.n_pred,
            )
            assert together.angle_sum == pytest.approx(doanet.angle_sum, rel=1e-12)


@pytest.mark.parametrize(
    ("reference", "prediction"),
    [
        # one reference, two predictions equally near: the first takes it, so the second is a switch in frame 1
        (events((0, 0, 0, 10, 0), (1, 0, 0, 10, 0)), events((0, 0, 0, 10, 0), (0, 0, 1, 10, 0), (1, 0, 1, 10, 0))),
        # two references equally near one prediction: the first takes it, so its new partner in frame 1 switches
        (events((0, 0, 0, 10, 0), (0, 0, 1, 10, 0), (1, 0, 0, 10, 0)), events((0, 0, 0, 10, 0), (1, 0, 1, 10, 0))),
    ],
)
def test_a_tie_between_free_tracks_goes_to_the_first_as_the_solver_does(
    reference: np.ndarray, prediction: np.ndarray
) -> None:
    expected = clear_mot_counts(
        tracks_from_table(reference, split_at_gaps=True), tracks_from_table(prediction, split_at_gaps=False)
    )
    at_once = clear_mot_counts_of([reference], [prediction], DEFAULT_GATE_DEG)
    assert expected.switches == 1 and (at_once.matches, at_once.switches) == (expected.matches, expected.switches)


@pytest.mark.parametrize("chunk", [1, 2, 3, 11])
def test_chunks_of_recordings_count_as_recording_by_recording(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recordings scored a chunk at a time: each recording's tracks keep their own identities (a track of one
    recording never continues one of another), whatever the chunking."""
    rng = np.random.default_rng(11)
    recordings = [random_recording(rng, 2, coarse=index % 2 == 0) for index in range(11)]
    clear = ClearMotCounts()
    for ref, pred in recordings:
        clear += clear_mot_counts(
            tracks_from_table(ref, split_at_gaps=True), tracks_from_table(pred, split_at_gaps=False), 25.0
        )
    monkeypatch.setattr(Tally, "chunk", chunk)
    tally = Tally(doa_threshold=25.0)
    tally.add([ref for ref, _ in recordings], [pred for _, pred in recordings])
    report = tally.report()["clear_mot"]
    assert (report["matches"], report["FN"], report["FP"], report["IDS"], report["n_ref"]) == (
        clear.matches,
        clear.fn,
        clear.fp,
        clear.switches,
        clear.n_ref,
    )
    assert report["MOTP"] == pytest.approx(clear.distance_sum / clear.matches, rel=1e-12)


# --------------------------------------------------------------------------------------------------------------
# Folders scored a chunk of recordings at a time (flat memory): the same report as all tables at once
# --------------------------------------------------------------------------------------------------------------


def _recordings_on_disk(root: Path, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Eleven recordings in two reference splits (``dev-test`` predicted, ``dev-train`` not): one without a
    prediction file, one with an empty one."""
    written = {}
    for index in range(11):
        reference, prediction = random_recording(rng, 2, coarse=index % 2 == 0)
        name = f"rec{10 - index:02d}"  # written in reverse name order: scoring order is by name
        write_events(root / "ref" / "dev-test" / f"{name}.csv", reference)
        if index == 3:
            prediction = None
        elif index == 5:
            prediction = prediction[:0]
        if prediction is not None:
            write_events(root / "pred" / f"{name}.csv", prediction)
        written[name] = (reference, prediction)
    write_events(root / "ref" / "dev-train" / "other.csv", source(range(3)))  # a split without predictions
    return written


def test_folders_scored_by_chunks_equal_all_tables_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = _recordings_on_disk(tmp_path, np.random.default_rng(8))
    monkeypatch.setattr(Tally, "chunk", 3)  # eleven recordings: chunks of 3, 3, 3 and 2
    report = score_dirs(tmp_path / "ref", tmp_path / "pred", metric="doa-mot", doa_threshold=30.0)
    metric = get_metric("doa-mot")
    refs = {stem: table for stem, (table, split) in metric.read_dir(tmp_path / "ref").items() if split.endswith("test")}
    preds = {stem: table for stem, (table, _) in metric.read_dir(tmp_path / "pred", reference=False).items()}
    expected = compute_metrics(refs, preds, doa_threshold=30.0)
    assert report["settings"].pop("splits") == [str(tmp_path / "ref" / "dev-test")]
    assert report.pop("settings") == {"metric": "doa-mot", **expected.pop("settings")}
    assert report["counts"]["n_ref"] == sum(len(ref) for ref, _ in written.values())
    assert json.dumps(report, sort_keys=True) == json.dumps(expected, sort_keys=True)  # to the last bit, NaN too


def test_a_tally_fed_in_pieces_reports_as_one_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    recordings = [random_recording(rng, 2, coarse=False) for _ in range(9)]
    refs, preds = [r for r, _ in recordings], [p for _, p in recordings]
    preds[2] = None
    monkeypatch.setattr(Tally, "chunk", 4)
    whole = Tally(doa_threshold=15.0)
    whole.add(refs, preds)
    pieces = Tally(doa_threshold=15.0)
    for start, stop in ((0, 1), (1, 6), (6, 6), (6, 9)):
        pieces.add(refs[start:stop], preds[start:stop])
    assert json.dumps(pieces.report(), sort_keys=True) == json.dumps(whole.report(), sort_keys=True)
    assert whole.report()["settings"] == {"recordings": 9, "recordings_without_predictions": 1}
    with pytest.raises(ValueError, match="2 references but 1 predictions"):
        Tally().add(refs[:2], preds[:1])


def test_folders_scored_by_chunks_report_a_repeated_clip_name(tmp_path: Path) -> None:
    write_events(tmp_path / "ref" / "a" / "rec.csv", source(range(2)))
    write_events(tmp_path / "ref" / "b" / "rec.csv", source(range(2)))
    write_events(tmp_path / "pred" / "rec.csv", source(range(2)))
    with pytest.raises(InputError, match="duplicate clip name 'rec'") as error:
        score_dirs(tmp_path / "ref", tmp_path / "pred", metric="doa-mot")
    assert error.value.path == str(tmp_path / "ref" / "b" / "rec.csv")
