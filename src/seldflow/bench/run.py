"""The whole benchmark: every section of the report gathered in one job, the timed comparisons one after another."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seldflow.bench.decoders import compare_decoders
from seldflow.bench.dryrun import noop_dry_run
from seldflow.bench.environment import environment
from seldflow.bench.memory import training_memory
from seldflow.bench.outputs import metric_figures, throughput
from seldflow.bench.pfoa import compare_pfoa
from seldflow.bench.pretrain_synthesis import compare_room_cost
from seldflow.bench.records import BenchReport
from seldflow.bench.s5 import compare_ca_sdri, generator_throughput
from seldflow.bench.scorer import compare_scorer
from seldflow.bench.segment_scorer import compare_segment_scorer
from seldflow.bench.stages import collect_stage_timings
from seldflow.formats import STEREO_FORMAT, get_label_format
from seldflow.io import read_audio
from seldflow.s5.generator import open_generator
from seldflow.score import load_label_dir

# What run_benchmark's ``s5`` mapping must hold; ``split`` (the bank split the generator draws from) is optional.
S5_KEYS = ("root", "generator", "mixtures", "seed", "soundscapes", "oracle", "estimates")
S5_DEFAULT_SPLIT = "train"  # the one split both the development set and the embedded dataset have


def _log(message: str) -> None:
    print(f"[bench] {message}", flush=True, file=sys.stderr)


def run_benchmark(
    *,
    benchmark_dirs: Sequence[str | os.PathLike[str]],
    own_benchmark: str | os.PathLike[str] | None,
    audio_dirs: Mapping[str, str | os.PathLike[str]],
    feature_files: Mapping[str, str | os.PathLike[str]],
    test_splits: Sequence[str],
    metrics_json: str | os.PathLike[str],
    pfoa_audio_dir: str | os.PathLike[str],
    references: Sequence[str | os.PathLike[str]],
    predictions: Sequence[str | os.PathLike[str]],
    feature_params: Mapping[str, Any],
    score_params: Mapping[str, Any],
    sample_rate: int,
    pfoa_clips: int,
    repeats: int,
    decoder: Mapping[str, int],
    s5: Mapping[str, Any] | None = None,
    pretrain: Mapping[str, Any] | None = None,
    threads: int | None = None,
    title: str = "seldflow benchmark",
    repo: str | os.PathLike[str] = ".",
    snakefile: str | os.PathLike[str] = "Snakefile",
) -> BenchReport:
    """Gather every section of the report; the timed comparisons run here, one after the other.

    ``s5`` (None: no S5 rows) adds the DCASE2025 Task 4 rows: the throughput of the generator opened on ``root``
    (``split``, default train) with the ``generator`` settings, over ``mixtures`` soundscapes from ``seed``, and
    the CA-SDRi scorer against the plain loop on the ``soundscapes``, ``oracle`` and ``estimates`` folders.
    ``pretrain`` (None: no row) compares a shard of ``clips`` pretraining mixtures (``settings``: the
    ``pretraining`` section) with one of the single-room renderer (:mod:`seldflow.bench.pretrain_synthesis`).
    """
    report = BenchReport(title=title)
    report.environment = environment(repo, threads=threads)
    report.stages = collect_stage_timings(benchmark_dirs, exclude=[own_benchmark] if own_benchmark else [])
    report.throughput = throughput(
        report.stages, audio_dirs=audio_dirs, feature_files=feature_files, test_splits=test_splits
    )
    report.metrics = metric_figures(json.loads(Path(metrics_json).read_text()))
    _log("no-op dry run")
    report.throughput.append(noop_dry_run(".", snakefile=snakefile))

    params = {k: feature_params[k] for k in ("n_fft", "win_length", "hop_length", "n_mels")}
    paths = sorted(Path(pfoa_audio_dir).glob("*.wav"))[:pfoa_clips]
    _log(f"PFOA: {len(paths)} clips of {pfoa_audio_dir}")
    clips = [read_audio(p, sample_rate=sample_rate, channels=2) for p in paths]
    pfoa_comparison, _ = compare_pfoa(clips, repeats=repeats, sample_rate=sample_rate, **params)
    report.comparisons.append(pfoa_comparison)

    _log("scorer")
    preds = {stem: rows for folder in predictions for stem, rows in load_label_dir(folder).items()}
    refs = {stem: rows for folder in references for stem, rows in load_label_dir(folder).items()}
    thresholds = {
        "doa_threshold": float(score_params["doa_threshold_deg"]),
        "reldist_threshold": float(score_params["reldist_threshold"]),
    }
    scorer_comparison, _ = compare_scorer(refs, preds, repeats=repeats, **thresholds)
    report.comparisons.append(scorer_comparison)
    # The DCASE2021-2023 segment metric on the same events (stereo rows as 3-D events at elevation 0).
    stereo = get_label_format(STEREO_FORMAT)
    ref_events = {stem: stereo.to_events(rows) for stem, rows in refs.items()}
    pred_events = {stem: stereo.to_events(rows) for stem, rows in preds.items()}
    for edition in ("dcase2021", "dcase2023"):
        _log(f"scorer {edition}")
        comparison, _ = compare_segment_scorer(ref_events, pred_events, edition=edition, repeats=repeats)
        report.comparisons.append(comparison)

    if s5 is not None:
        _s5_rows(report, s5, repeats)
    if pretrain is not None:
        _log(f"pretraining synthesis: {pretrain['clips']} clips per shard")
        with tempfile.TemporaryDirectory(prefix="seldflow-pretrain-") as scratch:
            comparison, figures = compare_room_cost(
                scratch, pretrain["settings"], clips=int(pretrain["clips"]), repeats=repeats, seed=int(pretrain["seed"])
            )
        report.comparisons.append(comparison)
        report.throughput.extend(figures)

    _log("training memory")
    with tempfile.TemporaryDirectory(prefix="seldflow-memory-") as scratch:
        report.memory = training_memory(scratch)

    _log(f"decoders: {dict(decoder)}")
    report.comparisons.append(compare_decoders(**{"repeats": repeats, **decoder}))  # decoder may set repeats

    report.notes = [
        "Comparisons run in this job, one after the other, on the CPU threads given to it; stage figures come "
        "from the benchmark files of the run that last produced each output (a reused output keeps its old time).",
        "PFOA and scorer timings exclude file reading (clips and label tables are loaded first); both "
        "implementations see the same arrays, and the check column gives their numerical agreement.",
        "Timings on a shared machine vary between runs; read the ratios, measured side by side, rather than "
        "the absolute times.",
    ]
    if s5 is not None:
        report.notes.append(
            "The CA-SDRi timings include reading the WAV files, as scoring a folder does; both read the same files."
        )
    return report


def _s5_rows(report: BenchReport, s5: Mapping[str, Any], repeats: int) -> None:
    """Append the S5 generator's throughput and the CA-SDRi comparison to ``report``."""
    missing = [key for key in S5_KEYS if key not in s5]
    if missing:
        raise ValueError(f"run_benchmark: the s5 settings lack {', '.join(missing)} (need {', '.join(S5_KEYS)})")
    split = s5.get("split", S5_DEFAULT_SPLIT)
    _log(f"S5 generator: {s5['mixtures']} mixtures of {s5['root']} ({split})")
    generator = open_generator(s5["root"], split, s5["generator"])
    report.throughput.append(generator_throughput(generator, int(s5["mixtures"]), int(s5["seed"]), repeats=repeats))
    _log(f"S5 CA-SDRi: {s5['estimates']}")
    comparison, _ = compare_ca_sdri(s5["soundscapes"], s5["oracle"], s5["estimates"], repeats=repeats)
    report.comparisons.append(comparison)
