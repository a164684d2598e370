"""Pretraining synthesis row of the report: what one new room per mixture costs against the single-room renderer.

Both renderers make one shard of the same size (clips, clip length, sample rate, at most three events at a time)
from small inputs built here: the DCASE synthesizer (:func:`seldflow.synthesize.render_split`, FOA + stereo from a
ready SOFA room) and the pretraining synthesizer (:func:`seldflow.pretrain.synthesis.synthesize_shard`, a shoebox
simulated per mixture, FOA + MIC + dry sum). Each shard runs in a fresh process, which reports its rendering
seconds and its peak resident memory, the figure a shard job of the workflow needs; the single-room renderer's
room simulation is done beforehand, as the workflow does it once per room. The issue's bound: the pretraining clip
costs at most 3 times the single-room clip.

The child loads this file by path (:data:`CHILD_CODE`) rather than as ``seldflow.bench.pretrain_synthesis``:
importing the ``seldflow.bench`` package imports torch, a few hundred MB that a synthesis job never holds and that
would hide its own peak. So nothing at the top of this module imports from ``seldflow.bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seldflow.process_memory import peak_rss_mb

if TYPE_CHECKING:
    from seldflow.bench.records import Comparison, Figure

# Runs main() of this file in a new interpreter without importing the seldflow.bench package (see above).
CHILD_CODE = (
    "import importlib.util, sys; "
    "spec = importlib.util.spec_from_file_location('pretrain_shard_cost', sys.argv[1]); "
    "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
    "sys.exit(module.main(sys.argv[2:]))"
)
RENDERERS = ("pretrain", "single_room")
LABELS = {
    "pretrain": "one shoebox per mixture (FOA + MIC + sum)",
    "single_room": "single-room renderer (FOA + stereo)",
}
# A shard of a few clips takes seconds; past this the child is stuck.
CHILD_TIMEOUT_S = 900.0
# The single-room renderer's room: a coarse grid is enough (its cost is paid once per room, not per clip).
ROOM = {"dims": [6.0, 5.0, 3.0], "rt60": 0.4, "array": [3.1, 2.4, 1.4]}
ROOM_GRID = {"azimuth_step_deg": 30.0, "elevations_deg": [0.0], "distances_m": [1.5], "ir_seconds": 0.3}
BANK_SECONDS = (1.0, 3.0)
# The DCASE synthesizer's event density, 1-6 events per 5-s clip, scaled to the clip length: a 60-s pretraining
# mixture of three tracks holds some 50 events, and the single-room clip it is compared with should too.
SINGLE_ROOM_EVENTS_PER_5S = (1, 6)


def prepare_inputs(folder: str | os.PathLike[str], *, sample_rate: int, classes: int, seed: int) -> dict[str, str]:
    """Both renderers' inputs under ``folder``: the 13-class DCASE source bank and a simulated SOFA room, and a
    pretraining bank of the first ``classes`` procedural classes; one to two clips per (sub)class."""
    from seldflow.pretrain.bank import make_pretrain_bank
    from seldflow.synthesize import make_source_bank, simulate_room

    root = Path(folder)
    paths = {"source_bank": root / "sources", "room": root / "room.sofa", "pretrain_bank": root / "pretrain_bank"}
    make_source_bank(
        paths["source_bank"],
        clips_per_class={"train": 2},
        min_seconds=BANK_SECONDS[0],
        max_seconds=BANK_SECONDS[1],
        seed=seed,
        sample_rate=sample_rate,
    )
    simulate_room(paths["room"], **ROOM, **ROOM_GRID, sample_rate=sample_rate, name="bench")
    make_pretrain_bank(
        paths["pretrain_bank"],
        clips_per_subclass={"train": 1},
        min_seconds=BANK_SECONDS[0],
        max_seconds=BANK_SECONDS[1],
        seed=seed,
        sample_rate=sample_rate,
        classes=classes,
    )
    return {name: str(path) for name, path in paths.items()}


def render_shard(renderer: str, inputs: Mapping[str, str], out_dir: str, job: Mapping[str, Any]) -> float:
    """Render one shard with ``renderer`` into ``out_dir``; the seconds it took (imports and setup excluded)."""
    if renderer == "pretrain":
        from seldflow.pretrain.synthesis import SynthesisSettings, synthesize_shard

        settings = SynthesisSettings.from_config(job["settings"])
        start = time.perf_counter()
        synthesize_shard(
            bank_dir=Path(inputs["pretrain_bank"]) / "train",
            out_dir=out_dir,
            fold=0,
            max_polyphony=job["max_polyphony"],
            first_clip=0,
            n_clips=job["clips"],
            seed=job["seed"],
            events_per_class=job["settings"]["events_per_class"],
            settings=settings,
        )
        return time.perf_counter() - start
    if renderer == "single_room":
        from seldflow.synthesize import render_split

        scale = job["settings"]["clip_seconds"] / 5.0
        events = [max(1, round(count * scale)) for count in SINGLE_ROOM_EVENTS_PER_5S]
        start = time.perf_counter()
        render_split(
            rooms=[inputs["room"]],
            room_ids=[1],
            bank_dir=inputs["source_bank"],
            source_split="train",
            stereo_dir=f"{out_dir}/stereo",
            foa_dir=f"{out_dir}/foa",
            metadata_dir=f"{out_dir}/metadata",
            n_clips=job["clips"],
            fold=1,
            seed=job["seed"],
            clip_seconds=job["settings"]["clip_seconds"],
            sample_rate=job["settings"]["sample_rate"],
            max_polyphony=job["max_polyphony"],
            events_per_clip=events,
            label_format="dcase2021",
        )
        return time.perf_counter() - start
    raise ValueError(f"unknown renderer {renderer!r} (one of {', '.join(RENDERERS)})")


def shard_in_child(
    renderer: str,
    inputs: Mapping[str, str],
    out_dir: str,
    job: Mapping[str, Any],
    *,
    timeout_s: float = CHILD_TIMEOUT_S,
) -> dict[str, float]:
    """``{"seconds", "peak_rss_mb"}`` of one shard rendered by a fresh process."""
    from seldflow.bench.memory import child_environment

    payload = json.dumps({"renderer": renderer, "inputs": dict(inputs), "out_dir": out_dir, "job": dict(job)})
    command = [sys.executable, "-c", CHILD_CODE, str(Path(__file__).resolve()), payload]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=child_environment(), timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"shard child ({renderer}) did not finish within {timeout_s:.0f} s") from exc
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"shard child ({renderer}) failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare_room_cost(
    folder: str | os.PathLike[str],
    settings: Mapping[str, Any],
    *,
    clips: int,
    repeats: int = 3,
    max_polyphony: int = 3,
    classes: int = 13,
    seed: int = 0,
) -> tuple[Comparison, list[Figure]]:
    """Seconds per clip of the two renderers (median over ``repeats`` shards each, taking turns) as a comparison,
    and each one's clips/s and peak RSS per shard as figures. ``settings`` is the ``pretraining`` config section
    (sample rate, clip length, rooms, mixtures, events per class); both renderers use its rate and clip length."""
    from seldflow.bench.records import Comparison, Figure

    if clips < 1 or repeats < 1:
        raise ValueError(f"clips and repeats must be at least 1, got {clips}, {repeats}")
    root = Path(folder)
    inputs = prepare_inputs(root / "inputs", sample_rate=int(settings["sample_rate"]), classes=classes, seed=seed)
    job = {"clips": clips, "seed": seed, "max_polyphony": max_polyphony, "settings": dict(settings)}
    runs: dict[str, list[dict[str, float]]] = {renderer: [] for renderer in RENDERERS}
    for repeat in range(repeats):
        for renderer in RENDERERS:
            runs[renderer].append(shard_in_child(renderer, inputs, str(root / f"{renderer}-{repeat}"), job))
    per_clip = {r: statistics.median(run["seconds"] for run in runs[r]) / clips for r in RENDERERS}
    peak = {r: max(run["peak_rss_mb"] for run in runs[r]) for r in RENDERERS}
    work = (
        f"{clips} clips of {settings['clip_seconds']} s at {settings['sample_rate']} Hz, "
        f"at most {max_polyphony} events at a time, one shard per process"
    )
    comparison = Comparison(
        name="pretraining synthesis: a room per mixture",
        work=work,
        a_label=LABELS["pretrain"],
        a_seconds=per_clip["pretrain"],
        b_label=LABELS["single_room"],
        b_seconds=per_clip["single_room"],
        meaning="seconds per clip; ratio = the per-room simulation's cost factor (bound: 3)",
    )
    figures = []
    for renderer in RENDERERS:
        figures.append(Figure(f"{LABELS[renderer]}, clips/s", 1.0 / per_clip[renderer], "clips/s", work))
        figures.append(Figure(f"{LABELS[renderer]}, peak RSS per shard", peak[renderer], "MB RSS (peak)", work))
    return comparison, figures


def main(argv: Sequence[str] | None = None) -> int:
    """Child entry point: render the shard the JSON argument describes, print its seconds and peak RSS as JSON."""
    parser = argparse.ArgumentParser(prog="pretrain_shard_cost", description=__doc__.splitlines()[0])
    parser.add_argument("payload", help="JSON: renderer, inputs, out_dir, job")
    args = json.loads(parser.parse_args(argv).payload)
    seconds = render_shard(args["renderer"], args["inputs"], args["out_dir"], args["job"])
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
