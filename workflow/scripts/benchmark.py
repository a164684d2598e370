"""Snakemake adapter for rule benchmark: results/benchmark/benchmark.{md,csv} from the finished workflow."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import torch

from seldflow.bench.report import render_markdown, write_report
from seldflow.bench.run import run_benchmark
from seldflow.errors import exit_on_error

torch.set_num_threads(snakemake.threads)
params = snakemake.params
features = list(snakemake.input.features)
audio = list(snakemake.input.audio)
with exit_on_error():
    report = run_benchmark(
        benchmark_dirs=params.benchmark_dirs,
        own_benchmark=params.own_benchmark,
        audio_dirs=dict(zip(params.splits, audio, strict=True)),
        feature_files=dict(zip(params.splits, features, strict=True)),
        test_splits=params.test_splits,
        metrics_json=snakemake.input.metrics[0],
        feature_audio_dir=snakemake.input.stereo,
        feature_params=params.features,
        scorers=params.scorers,
        sample_rate=params.sample_rate,
        feature_clips=params.feature_clips,
        feature_jobs=params.feature_jobs,
        training_job=params.training_job,
        spin_count=params.spin_count,
        repeats=params.repeats,
        decoder=params.decoder,
        s5=params.s5,
        pretrain=params.pretrain,
        threads=snakemake.threads,
        snakefile=params.snakefile,
        title=f"seldflow benchmark: experiment {params.experiment}",
    )
    write_report(report, snakemake.output.markdown, snakemake.output.table)
    print(render_markdown(report), file=sys.stderr)
