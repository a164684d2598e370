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


if S5_ENABLED and S5_EMBEDDED:

    include: "rules/s5_synthesis.smk"


if S5_ENABLED:

    include: "rules/s5_train.smk"
    include: "rules/s5_infer.smk"
    include: "rules/s5_score.smk"
    include: "rules/s5_report.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        metrics=expand(rules.score.output.metrics, experiment=RUN_EXPERIMENTS),
        submissions=[experiment_predictions(name) for name in RUN_EXPERIMENTS],
        plots=expand(rules.report.output, experiment=RUN_EXPERIMENTS),
        summary=rules.summary.output.table,
        models=rules.model_table.output.table,
