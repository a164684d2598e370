"""seldflow: raw data -> synthetic mixtures -> features -> model -> DCASE CSVs -> scores -> report."""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"


if SYNTHETIC:

    include: "rules/synthesize.smk"


if STARSS:

    include: "rules/starss.smk"


if L3DAS22:

    include: "rules/l3das22.smk"


include: "rules/features.smk"
include: "rules/train.smk"
include: "rules/infer.smk"
include: "rules/score.smk"
include: "rules/report.smk"
include: "rules/benchmark.smk"
include: "rules/download.smk"


if PRETRAIN_ENABLED:

    include: "rules/pretrain_synthesis.smk"


if MONO_SPLITS:

    include: "rules/mono.smk"


if S5_ENABLED and S5_EMBEDDED:

    include: "rules/s5_synthesis.smk"


if S5_ENABLED:

    include: "rules/s5_cleaning.smk"
    include: "rules/s5_train.smk"
    include: "rules/s5_infer.smk"
    include: "rules/s5_score.smk"
    include: "rules/s5_report.smk"


if DOANET_ENABLED and DOANET_EMBEDDED:

    include: "rules/doanet_synthesis.smk"


if DOANET_ENABLED:

    include: "rules/doanet_check.smk"
    include: "rules/doanet_augment.smk"
    include: "rules/doanet_features.smk"
    include: "rules/doanet_hnet.smk"
    include: "rules/doanet_train.smk"
    include: "rules/doanet_infer.smk"
    include: "rules/doanet_score.smk"
    include: "rules/doanet_report.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        metrics=expand(rules.score.output.metrics, experiment=RUN_EXPERIMENTS),
        submissions=[experiment_predictions(name) for name in RUN_EXPERIMENTS],
        plots=expand(rules.report.output, experiment=RUN_EXPERIMENTS),
        summary=rules.summary.output.table,
        models=rules.model_table.output.table,


if PRETRAIN_ENABLED:

    # Every pretraining subset in the DataSynthSELD layout: `snakemake --cores N pretrain_data`.
    rule pretrain_data:
        input:
            subsets=expand(rules.pretrain_subset.output.subset, subset=PRETRAIN_SUBSETS),


if S5_ENABLED:

    # The S5 (DCASE2025 Task 4) baseline's target: `snakemake --cores N s5_all` (make demo-s5), the main
    # experiment scored and reported.
    rule s5_all:
        input:
            metrics=expand(rules.s5_score.output.metrics, s5run=S5_MAIN_RUNS),
            report=rules.s5_report.output,

    # s5.run_experiments (by default the second-place system's full guided separator):
    # `snakemake --cores N s5_experiments` (make demo-s5-guided); the ablation table is results/s5/summary.csv.
    rule s5_experiments:
        input:
            metrics=expand(rules.s5_score.output.metrics, s5run=S5_LISTED_RUNS),


if DOANET_ENABLED:

    # The DOAnet branch's target: `snakemake --cores N doanet_all` (make demo-doanet).
    rule doanet_all:
        input:
            metrics=expand(
                rules.doanet_score.output.metrics, doanet_experiment=DOANET_RUN
            ),
            reports=expand(rules.doanet_report.output, doanet_experiment=DOANET_RUN),
            summary=rules.doanet_summary.output.table,
