"""Seeded random SELD cases for the parity tests of the DCASE2021–2024 metrics.

``make_cases`` builds reference and prediction event tables (``seldflow.formats.dcase2021`` columns) from a seed:
several files, overlapping and moving sources (up to three of one class at once), absent classes, predictions that
miss frames, add false alarms, confuse classes, duplicate tracks, drift by a few frames (segments where reference
and prediction share no frame), err by about the 20-degree threshold, and run past the reference's last frame.
The parity fixture ``tests/data/seld_parity_official.json`` holds what the official scorers computed on exactly
these cases; its ``generator`` entry says how it was produced.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seldflow.formats.dcase2021 import write_events

PARITY_FIXTURE = Path(__file__).parent / "data" / "seld_parity_official.json"
EDITION_FRAMES = {"dcase2021": (500, 600), "dcase2022": (40, 200), "dcase2023": (40, 200), "dcase2024": (40, 200)}


def make_cases(
    edition: str, seed: int, n_files: int = 6, n_classes: int = 13
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (reference, prediction)}``; references have integer angles and distances, predictions floats."""
    rng = np.random.default_rng(seed)
    low, high = EDITION_FRAMES[edition]
    cases = {}
    for index in range(n_files):
        n_frames = int(rng.integers(low, high))
        if index == 0:
            n_frames = (n_frames // 10) * 10 + 1  # largest reference frame index a multiple of 10
        present = rng.choice(n_classes, size=int(rng.integers(2, min(7, n_classes))), replace=False)
        reference = _reference(rng, n_frames, present)
        cases[f"fold4_room{index}_mix{seed:03d}"] = (reference, _prediction(rng, reference, n_frames, n_classes))
    return cases


def _reference(rng: np.random.Generator, n_frames: int, classes: np.ndarray) -> np.ndarray:
    rows = []
    for event in range(int(rng.integers(4, 12))):
        cls = int(rng.choice(classes))
        start = int(rng.integers(0, n_frames - 5))
        end = min(n_frames, start + int(rng.integers(5, 60)))
        azimuth, elevation = rng.uniform(-180, 180), rng.uniform(-45, 45)
        speed = rng.choice([0.0, rng.uniform(-6, 6)])  # degrees per frame: static or moving
        distance = rng.uniform(50, 400)
        for frame in range(start, end):
            az = (azimuth + speed * (frame - start) + 180) % 360 - 180
            rows.append([frame, cls, event % 3, round(az), round(elevation), round(distance)])
    rows.append([n_frames - 1, int(classes[0]), 0, 10, 0, 150])  # the file's last annotated frame
    table = np.array(rows, dtype=np.float64)
    table[:, 5] /= 100.0  # cm to m
    return _frame_sorted(rng, table)


def _prediction(rng: np.random.Generator, reference: np.ndarray, n_frames: int, n_classes: int) -> np.ndarray:
    rows = []
    noise = {event: rng.choice([2.0, 8.0, 19.0, 21.0, 40.0]) for event in range(12)}
    drift = int(rng.choice([0, 0, 0, 3]))
    for row in reference:
        if rng.random() < 0.15:  # missed frame
            continue
        frame, cls, track, az, el, dist = row
        error = noise[int(track) * 4 % 12] * rng.uniform(0.7, 1.3)
        direction = rng.uniform(0, 2 * np.pi)
        az_p = az + error * np.cos(direction)
        el_p = np.clip(el + error * np.sin(direction), -89.0, 89.0)
        if rng.random() < 0.05:
            cls = rng.integers(0, n_classes)  # class confusion
        rows.append([frame + drift, cls, 0, az_p, el_p, dist * rng.uniform(0.5, 1.6)])
        if rng.random() < 0.04:  # duplicated track
            rows.append([frame + drift, cls, 1, az_p + rng.normal(0, 30), el_p, dist])
    for _ in range(int(rng.integers(0, 40))):  # false alarms, some past the reference's end
        frame = int(rng.integers(0, n_frames + 60))
        rows.append([frame, rng.integers(0, n_classes), 0, rng.uniform(-180, 180), rng.uniform(-60, 60), 2.0])
    if not rows:
        return np.zeros((0, 6))
    table = np.array(rows, dtype=np.float64)
    table[:, 3] = (table[:, 3] + 180) % 360 - 180
    return _frame_sorted(rng, table)


def _frame_sorted(rng: np.random.Generator, table: np.ndarray) -> np.ndarray:
    """Rows sorted by frame, in random order within a frame (row order decides track identity)."""
    order = np.lexsort((rng.random(len(table)), table[:, 0]))
    return table[order]


def cartesian(events: np.ndarray) -> np.ndarray:
    """Unit vectors (x, y, z) of the events' (azimuth, elevation), as the official drivers read predictions."""
    az, el = np.deg2rad(events[:, 3]), np.deg2rad(events[:, 4])
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=1)


def parity_runs(*metrics: str) -> list[dict]:
    """The fixture's runs of the given metrics."""
    runs = json.loads(PARITY_FIXTURE.read_text())["runs"]
    return [run for run in runs if run["metric"] in metrics]


def write_case_files(tmp_path: Path, run: dict) -> tuple[Path, Path]:
    """Regenerate a fixture run's cases and write them as seldflow writes label files (references in a split)."""
    cases = make_cases(run["metric"], run["seed"], n_classes=run["n_classes"])
    distance = run["metric"] in ("dcase2023", "dcase2024")
    assert sum(len(ref) for ref, _ in cases.values()) == run["n_ref_rows"], "case generator changed"
    assert sum(len(pred) for _, pred in cases.values()) == run["n_pred_rows"], "case generator changed"
    for name, (ref, pred) in cases.items():
        write_events(tmp_path / "ref" / "split" / f"{name}.csv", ref, with_distance=distance)
        write_events(tmp_path / "pred" / f"{name}.csv", pred, with_distance=distance)
    return tmp_path / "ref", tmp_path / "pred"
