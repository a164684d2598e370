"""The whole benchmark: every section of the report gathered in one job, the timed comparisons one after another."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seldflow.bench.concurrency import TrainingJob, concurrency_rows
from seldflow.bench.decoders import compare_decoders
from seldflow.bench.dryrun import noop_dry_run
from seldflow.bench.environment import environment
from seldflow.bench.feature_jobs import feature_job_memory, job_figures, peak_from, peaks_at
from seldflow.bench.features import NAIVE_FEATURES, compare_features, feature_settings, four_channel
from seldflow.bench.input_pipeline import input_pipeline_rows
from seldflow.bench.memory import training_memory
from seldflow.bench.outputs import metric_figures, throughput
from seldflow.bench.pretrain_synthesis import compare_room_cost
from seldflow.bench.records import BenchReport
from seldflow.bench.s5 import compare_ca_sdri, generator_throughput
from seldflow.bench.scorers import scorer_rows
from seldflow.bench.stages import collect_stage_timings
from seldflow.io import read_audio
from seldflow.s5.generator import open_generator

# What run_benchmark's ``s5`` mapping must hold; ``split`` (the bank split the generator draws from) is optional.
S5_KEYS = ("root", "generator", "mixtures", "seed", "soundscapes", "oracle", "estimates")
S5_DEFAULT_SPLIT = "train"  # the one split both the development set and the embedded dataset have
# Synthetic clips the input-pipeline rows read an epoch of (two shards of 128 at the demo's feature shape).
INPUT_PIPELINE_CLIPS = 256


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
    feature_audio_dir: str | os.PathLike[str],
    feature_params: Mapping[str, Any],
    scorers: Mapping[str, Any],
    sample_rate: int,
    feature_clips: int,
    repeats: int,
    decoder: Mapping[str, int],
    s5: Mapping[str, Any] | None = None,
    pretrain: Mapping[str, Any] | None = None,
    threads: int | None = None,
    feature_jobs: Sequence[int] = (),
    training_job: Mapping[str, Any] | None = None,
    spin_count: int | None = None,
    title: str = "seldflow benchmark",
    repo: str | os.PathLike[str] = ".",
    snakefile: str | os.PathLike[str] = "Snakefile",
) -> BenchReport:
    """Gather every section of the report; the timed comparisons run here, one after the other.

    ``scorers`` sizes the scorer rows (:func:`seldflow.bench.scorers.scorer_rows`: ``files``, ``frames``,
    ``seed``, ``repeats``, ``warm_up``, the CA-SDRi ``soundscapes`` and ``soundscape_samples``). ``s5`` (None: no
    S5 rows) adds the DCASE2025 Task 4 rows: the throughput of the generator opened on ``root`` (``split``, default
    train) with the ``generator`` settings, over ``mixtures`` soundscapes from ``seed``, and the CA-SDRi scorer
    against the plain loop on the ``soundscapes``, ``oracle`` and ``estimates`` folders.
    ``feature_jobs`` (clip counts; empty: none) adds each kind's feature job against the plain per-file script,
    both extracting WAV folders of those sizes in fresh processes: their peak memory, the largest size's also in
    the feature rows. ``training_job`` (:class:`seldflow.bench.concurrency.TrainingJob` fields; None or 0
    steps: no rows) times two training jobs on ``threads`` threads each, one after the other and side by side, with
    OpenMP spinning ``spin_count`` rounds (required with it) and with its default. ``pretrain`` (None: no row)
    compares a shard of ``clips`` pretraining mixtures (``settings``: the ``pretraining`` section) with one of the
    single-room renderer (:mod:`seldflow.bench.pretrain_synthesis`).
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

    _feature_rows(report, feature_audio_dir, feature_params, sample_rate, feature_clips, repeats, feature_jobs)

    report.comparisons.extend(scorer_rows(**scorers, log=_log))

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

    if training_job is not None and training_job["steps"] > 0:
        job = TrainingJob(**training_job)
        _log(f"training side by side: {job}")
        if spin_count is None:
            raise ValueError("run_benchmark: training_job needs the workflow's spin_count")
        rows = concurrency_rows(job, threads or 1, spin_count)
        report.comparisons.extend(rows)
        _log("input pipeline: clip store alone")
        with tempfile.TemporaryDirectory(prefix="seldflow-store-") as scratch:
            comparison, figures = input_pipeline_rows(
                scratch,
                clips=INPUT_PIPELINE_CLIPS,
                batch=job.batch,
                shape=(job.channels, job.frames, job.mels),
                step_seconds=rows[0].a_seconds / (2 * job.steps),  # the workflow's row: two lone jobs
                threads=threads or 1,
            )
        report.comparisons.append(comparison)
        report.throughput.extend(figures)

    _log("training memory")
    with tempfile.TemporaryDirectory(prefix="seldflow-memory-") as scratch:
        report.memory.extend(training_memory(scratch))  # after the feature jobs' figures

    _log(f"decoders: {dict(decoder)}")
    report.comparisons.append(compare_decoders(**{"repeats": repeats, **decoder}))  # decoder may set repeats

    report.notes = [
        "Comparisons run in this job, one after the other, on the CPU threads given to it; stage figures come "
        "from the benchmark files of the run that last produced each output (a reused output keeps its old time).",
        "Feature timings exclude file reading (clips are loaded first); both implementations see the same arrays "
        "on one thread each (torch and the BLAS pools NumPy calls), so the ratio is clips/s per core, and the "
        "check column gives their numerical agreement. FOA and MIC run on four channels made from the stereo "
        "test clips (L, R, (L+R)/2, (L-R)/2) with their functions' 1024-point window and 240-sample hop.",
        "Where the feature time went (one core, FOA, 5-s clip): torch.stft of all four channels at once took 12.8 ms "
        "(the same frames in blocks of 32 through torch.fft.rfft: 2.5 ms, a block's spectra staying in the core's "
        "cache); the per-bin power, intensity and phase transform on strided real/imaginary views ran at a tenth of "
        "a compiled loop's speed (numba kernels now; a float division checked for a zero divisor kept the loop from "
        "vectorising: 0.6 of the intensity's 0.8 ms); the dense mel matrix is 97% zeros (16 groups of filters now "
        "multiply 2,504 of its 32,832 entries, each over the band of bins it covers); PFOA's two silent channels "
        "were transformed like the others; each block's per-bin rows are projected as they are made, so a clip's "
        "rows (7.2 MB for FOA) are never held whole. What is left is mostly the FFTs themselves (seldflow.spectral).",
        "Feature jobs: each side extracts the same WAV folder in a fresh process on one thread, as the feature rule "
        "runs (the plain script reads each file with soundfile and saves one .npy per clip; seldflow's job writes "
        "the HDF5 shard), at two folder sizes. Both import both implementations and run both over one clip before "
        "the measured job, then restart the peak (/proc/self/clear_refs): imports and first-call library pages, "
        "whose count depends on the page cache, weigh the same on both sides. The job's peak had grown with "
        "the shard: hashing it for the shard's digest read 256 clips at a time (a MB at a time now), and h5py's "
        "chunk cache held written chunks (off: each write is one whole clip). A second torch thread made the job "
        "three times slower (its OpenMP thread spinning between small blocks), so the rule runs one thread a shard.",
        "Training side by side: two training jobs (the demo's network and batch, all cores each, as the train rule "
        "runs) one after the other, then both at once after their imports; ratio = total time one after the other / "
        "side by side. GNU OpenMP's idle threads spin some 300,000 rounds before sleeping, taking the cores the other "
        "job is waiting for; the workflow sets GOMP_SPINCOUNT (runtime.openmp_spin_count) for every job. Each job "
        "keeps the memory it frees, as the train rule's does (seldflow.heap): glibc would otherwise map and fault in "
        "the first conv block's 130 MB tensors anew in every step (about 30 ms each, a third of the step).",
        "Input pipeline: the clip store alone reads one shuffled epoch of the demo's batches from two synthetic "
        "shards (page cache), streamed and in memory; the step is a lone job's of the side-by-side row. A streamed "
        "batch was read with h5py's point selection (158 samples/s); it is now read run by run (clip by clip for a "
        "shuffled batch), and the next batch is read in a thread while the model steps.",
        "Scorer rows include file reading, as scoring a folder does: each side reads all the CSVs of the same "
        "synthetic folders in every run, in a fresh process of its own (time after imports; peak resident memory "
        "counted after both implementations scored a small warm-up set, bench.scorers.warm_up). The plain side "
        "is the official scorer restated as written: each line split and converted in Python, each file, frame "
        "and class visited in turn, one Hungarian assignment per frame and class; for CA-SDRi the Task 4 "
        "evaluation's steps: each soundscape's files found by a scan of the whole folder listing for its name as a "
        "prefix, every file loaded by librosa, silent slots padded to three, torch float32 SNRs per soundscape "
        "(its DataLoader's worker processes left out: one process a side). Its numbers equal seldflow's (check "
        "column) and the official ones on the parity fixtures. The in-process 'CA-SDRi scorer' row times seldflow "
        "against a lean per-file numpy loop instead (one sorted listing, soundfile, no torch).",
        "Where the scorers' time went (profiled on 10,000 DCASE2025 clips): reading, not scoring. seldflow parsed "
        "and checked each field in Python (about nine tenths of its time, 50 of 55 s on the shared 2-core "
        "machine), where the plain official reader only splits and converts; scoring itself was vectorised "
        "already, apart from one Hungarian call per same-class group with two or more tracks. Now a folder is read "
        "in batches of 1,024 files by pandas' C parser and the per-line checks run over whole columns "
        "(seldflow.csv_bulk), groups of up to 3 x 3 tracks are paired in bulk by scoring every assignment, "
        "DCASE2025 tables are checked in one pass, and DOA-MOT's CLEAR-MOT frames, which must be matched in turn "
        "(a track keeps its last match), are walked by a compiled loop (numba). CA-SDRi's time went to opening "
        "files (profiled on 2,000 soundscapes, 9,705 WAV files): first with "
        "libsndfile, then twice each (a header pass, then a data pass) and through a Path object per file. Now each "
        "file is opened once and read whole into a buffer the scorer keeps (header checked and samples taken from "
        "the same read), names stay strings, and the soundscapes' means and class tallies are computed in bulk "
        "(the same numbers, bit for bit); files written alike have headers that differ only in bytes the parser never "
        "reads (a PEAK chunk), so the verdict of the last file of a size is reused when the bytes the parser read "
        "are the same. What is left is mostly the system calls and copying each file (the open, read and close of "
        "the 9,800 files alone take about 85 ms of some 165 ms in all on the 2-core machine); reading in a second "
        "thread or into one larger buffer was slower (the GIL; cache misses).",
        "Peak memory includes the imports, first-call code and caches both sides share after the warm-up. The "
        "official DOA-MOT and CA-SDRi loops read one recording or soundscape at a time, so their peak is about that "
        "baseline (DOA-MOT: 3 MB more, its file list and one recording). seldflow score held a DOA-MOT folder's "
        "label tables (115 MB more for 20,000 files); it now scores 50 recordings at a time (the counts add up "
        "over recordings; a compiled loop matches a chunk's CLEAR-MOT frames as fast as the frames of many), and "
        "lists the folders as arrays of encoded names, a few dozen bytes a file, rather than name-to-folder maps "
        "(1.5 MB for 10,000 files), so its peak is flat in the number of files: the baseline and one chunk's "
        "tables and working arrays, with the heap they leave behind (about 3 MB above the baseline, 1 MB below the "
        "official loop, by hand). CA-SDRi reads one soundscape at a time and scores a few dozen together.",
        "Timings on a shared machine vary between runs; read the ratios, measured side by side, rather than "
        "the absolute times.",
    ]
    if s5 is not None:
        report.notes.append(
            "The CA-SDRi timings include reading the WAV files, as scoring a folder does; both read the same files."
        )
    return report


def _feature_rows(
    report: BenchReport,
    audio_dir: str | os.PathLike[str],
    feature_params: Mapping[str, Any],
    sample_rate: int,
    clips: int,
    repeats: int,
    job_sizes: Sequence[int],
) -> None:
    """Append the per-core feature comparisons (and, with ``job_sizes``, the feature jobs' memory) to ``report``."""
    params = {k: feature_params[k] for k in ("n_fft", "win_length", "hop_length", "n_mels")}
    paths = sorted(Path(audio_dir).glob("*.wav"))[:clips]
    _log(f"features: {len(paths)} clips of {audio_dir}, one thread per side")
    stereo = [read_audio(p, sample_rate=sample_rate, channels=2) for p in paths]
    four = [four_channel(c) for c in stereo]
    clips_by_kind = {"pfoa": stereo, "foa": four, "mic": four}
    # PFOA with the workflow's STFT settings; FOA and MIC with their functions' (PSELDNets') window and hop.
    settings = {
        kind: feature_settings(
            kind, sample_rate=sample_rate, **(params if kind == "pfoa" else {"n_mels": params["n_mels"]})
        )
        for kind in NAIVE_FEATURES
    }
    comparisons = {
        kind: compare_features(kind, clips_by_kind[kind], repeats=repeats, **settings[kind])[0]
        for kind in NAIVE_FEATURES
    }
    if job_sizes:
        _log(f"feature jobs: folders of {', '.join(map(str, job_sizes))} clips, each side in a fresh process")
        with tempfile.TemporaryDirectory(prefix="seldflow-feature-jobs-") as scratch:
            runs = feature_job_memory(scratch, clips_by_kind, settings, sizes=job_sizes)
        report.memory.extend(job_figures(runs))
        for kind, comparison in comparisons.items():
            plain, ours = peaks_at(runs, kind, max(job_sizes))
            peaks = {"a_peak_mb": plain, "b_peak_mb": ours, "peak_from": peak_from(runs)}
            comparisons[kind] = dataclasses.replace(comparison, **peaks)
    report.comparisons.extend(comparisons.values())


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
