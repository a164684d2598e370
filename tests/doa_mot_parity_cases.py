"""Seeded random recordings for the parity tests of the ``doa-mot`` metric (DOAnet's ``cls_metric.py``).

``make_cases`` builds DCASE2020-style reference and prediction tables (``seldflow.formats.events`` columns) from a
seed: several recordings with one or two simultaneous sources (static or moving, integer angles), events of both
sources in either row order, some files written source by source (a frame's rows far apart, as the overlap
augmentation concatenates them), and predictions that miss frames, add false alarms up to two per frame, err by
0° (the arccos clamp), a few degrees, tens of degrees or point the opposite way (the clamp at −1), swap row order,
blink (new track births) and run past the reference's last frame; some recordings have no prediction file, an
empty one, or an empty reference. ``tests/data/doa_mot_parity_official.json`` holds what the official
``doa_metric`` class computed on exactly these files; its ``generator`` entry says how.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seldflow.formats.dcase2021 import write_events

PARITY_FIXTURE = Path(__file__).parent / "data" / "doa_mot_parity_official.json"
# Per recording: ("written", table), ("missing", None) or ("empty", empty table) for the prediction.
MISSING, EMPTY, WRITTEN = "missing", "empty", "written"


def make_cases(
    seed: int, n_files: int = 5, *, with_predictions: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """``{name: (reference, prediction or None for no file)}``; a prediction may be an empty table (empty file).

    Without ``with_predictions`` every prediction file is empty (the same references).
    """
    rng = np.random.default_rng(seed)
    cases: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for index in range(n_files):
        n_frames = int(rng.integers(20, 120))
        reference = _reference(rng, n_frames) if rng.random() > 0.08 else np.zeros((0, 6))
        kind = rng.choice([WRITTEN] * 8 + [MISSING, EMPTY])
        prediction = None if kind == MISSING else np.zeros((0, 6))
        if kind == WRITTEN:
            prediction = _prediction(rng, reference, n_frames)
        if not with_predictions:
            prediction = np.zeros((0, 6))
        cases[f"fold1_room{index % 3 + 1}_mix{seed:02d}{index}_ov{1 + index % 2}"] = (reference, prediction)
    return cases


def _reference(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """Two lanes of events (at most one active event per lane and frame), rows by frame or lane by lane."""
    lanes = []
    for _ in range(2):
        rows, frame = [], int(rng.integers(0, 6))
        while frame < n_frames - 1:
            length = int(rng.integers(3, 30))
            cls, azimuth, elevation = int(rng.integers(0, 14)), rng.uniform(-180, 180), rng.uniform(-40, 40)
            speed = rng.choice([0.0, rng.uniform(-8, 8)])
            for t in range(frame, min(n_frames, frame + length)):
                az = (azimuth + speed * (t - frame) + 180) % 360 - 180
                rows.append([t, cls, 0, round(az), round(elevation), np.nan])
            frame += length + int(rng.integers(0, 12))
        lanes.append(np.array(rows, dtype=np.float64).reshape(-1, 6))
    table = np.concatenate(lanes)
    if rng.random() < 0.3:
        return table  # lane by lane: the overlap augmentation's concatenated metadata
    order = np.lexsort((rng.random(len(table)) if rng.random() < 0.5 else np.arange(len(table)), table[:, 0]))
    return table[order]


def _prediction(rng: np.random.Generator, reference: np.ndarray, n_frames: int) -> np.ndarray:
    errors = np.array([0.0, 0.0, 2.0, 5.0, 15.0, 40.0, 100.0])
    miss_rate, false_rate = rng.choice([0.0, 0.1, 0.3]), rng.choice([0.0, 0.05, 0.2])
    rows = []
    frames = reference[:, 0].astype(np.int64)
    for t in range(n_frames + int(rng.integers(0, 8))):  # may run past the reference
        frame_rows = []
        for row in reference[frames == t]:
            if rng.random() < miss_rate:
                continue
            frame_rows.append(_perturbed(rng, row, float(rng.choice(errors))))
        while len(frame_rows) < 2 and rng.random() < false_rate:
            frame_rows.append([t, 0, 0, rng.uniform(-180, 180), rng.uniform(-60, 60), np.nan])
        if len(frame_rows) == 2 and rng.random() < 0.3:
            frame_rows.reverse()
        rows.extend(frame_rows)
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


def _perturbed(rng: np.random.Generator, row: np.ndarray, error: float) -> list[float]:
    frame, _, _, azimuth, elevation, _ = row
    if rng.random() < 0.03:  # the opposite direction: a cosine of -1
        return [frame, 0, 0, (azimuth + 360) % 360 - 180, -elevation, np.nan]
    direction = rng.uniform(0, 2 * np.pi)
    el = float(np.clip(elevation + error * np.sin(direction), -89.0, 89.0))
    return [frame, 0, 0, azimuth + error * np.cos(direction), el, np.nan]


def write_cases(root: Path, cases: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> tuple[Path, Path]:
    """Write references to ``root/ref`` and predictions to ``root/pred`` (none for a missing prediction)."""
    (root / "ref").mkdir(parents=True, exist_ok=True)
    (root / "pred").mkdir(parents=True, exist_ok=True)
    for name, (reference, prediction) in cases.items():
        write_events(root / "ref" / f"{name}.csv", reference)
        if prediction is not None:
            write_events(root / "pred" / f"{name}.csv", prediction)
    return root / "ref", root / "pred"


def parity_runs() -> list[dict]:
    """The fixture's runs."""
    return json.loads(PARITY_FIXTURE.read_text())["runs"]
