"""Benchmark stage: what the workflow cost, how fast its hot paths are, and how they compare with plain versions.

Everything ``make bench`` reports is gathered here (``workflow/scripts/benchmark.py`` only passes paths and
settings), one module per part of the report:

* :mod:`~seldflow.bench.stages` reads every rule's Snakemake ``benchmark:`` TSV (wall time ``s``, ``cpu_time``,
  ``max_rss``) under ``results/benchmarks/`` and ``results/<experiment>/benchmarks/``;
* :mod:`~seldflow.bench.outputs` turns them into clips/s for synthesis and features and into the real-time factor
  of inference, with clip counts taken from the outputs (WAVs per split, clips per HDF5 file), and reads the
  metrics; :mod:`~seldflow.bench.dryrun` times a no-op ``snakemake -n``;
* :mod:`~seldflow.bench.features` holds deliberately plain reference implementations (librosa per channel) of
  the PFOA, FOA and MIC features; they check :mod:`seldflow.feature_kinds` numerically and give the per-core
  speed-ups :func:`compare_features` measures, timed by :mod:`~seldflow.bench.timing`;
* :mod:`~seldflow.bench.scorers` gives one row per registered metric: seldflow's scorer against the official
  scorer restated as it is written, per line, file, frame and class (:mod:`~seldflow.bench.scorer` DCASE2025,
  :mod:`~seldflow.bench.segment_scorer` DCASE2021-2023, :mod:`~seldflow.bench.frame_scorer` DCASE2024,
  :mod:`~seldflow.bench.tracking_scorer` DOAnet, reading with :mod:`~seldflow.bench.plain_csv`; the Task 4
  evaluation for CA-SDRi, :mod:`~seldflow.bench.separation_scorer`), on thousands of synthetic clips
  (:mod:`~seldflow.bench.label_sets`,
  :func:`~seldflow.bench.s5.write_soundscape_set`), each side in a process of its own
  (:mod:`~seldflow.bench.scorer_child`) for its time, peak memory and scores;
* :mod:`~seldflow.bench.s5` gives the S5 (DCASE2025 Task 4) rows: the mixtures per second of
  :class:`seldflow.s5.generator.S5Generator`, and :func:`compare_ca_sdri`, which times
  :func:`seldflow.metrics.ca_sdri.score_ca_sdri` against :func:`naive_ca_sdri`, a lean per-file, per-class numpy
  loop written from the documented official semantics (both read the WAV files);
* :mod:`~seldflow.bench.decoders` times one forward + backward pass of the zoo's BiMamba and Conformer decoders at
  their reference configuration (the decoders alone, without the CNN14 encoder);
* :mod:`~seldflow.bench.memory` measures a training epoch's peak RSS over growing datasets, each in a fresh
  process (:mod:`~seldflow.bench.memory_child`);
* :mod:`~seldflow.bench.environment` records what it all ran on, :mod:`~seldflow.bench.report` writes
  ``benchmark.md`` and ``benchmark.csv``, and :mod:`~seldflow.bench.run` gathers the whole report.

Timings are medians of a few repetitions after a warm-up; they describe the machine they ran on and belong in this
report, never in unit-test assertions.
"""

from seldflow.bench.decoders import compare_decoders, reference_decoders
from seldflow.bench.dryrun import noop_dry_run
from seldflow.bench.environment import PACKAGES, cpu_model, environment, git_commit, package_versions
from seldflow.bench.features import (
    NAIVE_FEATURES,
    compare_features,
    naive_foa_logmel_iv,
    naive_mic_logmel_gcc,
    naive_pfoa,
)
from seldflow.bench.memory import training_memory, write_synthetic_shards
from seldflow.bench.outputs import count_wavs, h5_clip_info, metric_figures, throughput
from seldflow.bench.records import BenchReport, Comparison, Figure, StageTiming
from seldflow.bench.report import CSV_HEADER, csv_rows, render_csv, render_markdown, write_report
from seldflow.bench.run import run_benchmark
from seldflow.bench.s5 import compare_ca_sdri, generator_throughput, naive_ca_sdri
from seldflow.bench.scorer import SCORER_CHECKED, metric_difference, naive_metrics, plain_dcase2025
from seldflow.bench.scorers import SCORERS, compare_scorer, library_scores, scorer_rows
from seldflow.bench.stages import collect_stage_timings, read_benchmark_tsv, stage_totals, sum_jobs
from seldflow.bench.timing import median_times

__all__ = [
    "CSV_HEADER",
    "NAIVE_FEATURES",
    "PACKAGES",
    "SCORERS",
    "SCORER_CHECKED",
    "BenchReport",
    "Comparison",
    "Figure",
    "StageTiming",
    "collect_stage_timings",
    "compare_ca_sdri",
    "compare_decoders",
    "compare_features",
    "compare_scorer",
    "count_wavs",
    "cpu_model",
    "csv_rows",
    "environment",
    "generator_throughput",
    "git_commit",
    "h5_clip_info",
    "library_scores",
    "median_times",
    "metric_difference",
    "metric_figures",
    "naive_ca_sdri",
    "naive_foa_logmel_iv",
    "naive_metrics",
    "naive_mic_logmel_gcc",
    "naive_pfoa",
    "noop_dry_run",
    "package_versions",
    "plain_dcase2025",
    "read_benchmark_tsv",
    "reference_decoders",
    "render_csv",
    "render_markdown",
    "run_benchmark",
    "scorer_rows",
    "stage_totals",
    "sum_jobs",
    "throughput",
    "training_memory",
    "write_report",
    "write_synthetic_shards",
]
