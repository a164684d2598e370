"""Report figures: training curves, per-class F and azimuth-over-time tracks for a few test clips, and a page that
points at the run's TensorBoard logs."""

from seldflow.tensorboard_log import tensorboard_dir


rule report:
    input:
        train_metrics=rules.train.output.metrics,
        metrics=rules.score.output.metrics,
        predictions=f"{EXPERIMENT_DIR}/predictions/{TEST_SPLITS[0]}",
        references=reference_inputs(TEST_SPLITS[:1]),
    output:
        curves=report(
            f"{EXPERIMENT_DIR}/report/training_curves.png",
            caption="../workflow/report/training_curves.rst",
            category="Training",
        ),
        classwise=report(
            f"{EXPERIMENT_DIR}/report/classwise_f.png",
            caption="../workflow/report/classwise_f.rst",
            category="Scores",
        ),
        tracks=report(
            f"{EXPERIMENT_DIR}/report/azimuth_tracks.png",
            caption="../workflow/report/azimuth_tracks.rst",
            category="Predictions",
        ),
        tensorboard=report(
            f"{EXPERIMENT_DIR}/report/tensorboard.html", category="Training"
        ),
    log:
        f"{EXPERIMENT_DIR}/logs/report.log",
    benchmark:
        f"{EXPERIMENT_DIR}/benchmarks/report.tsv"
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        clips=config["report"]["clips"],
        # A function: the folder is an input too when it is a rule output, a download otherwise.
        references=lambda wildcards: metadata_dir(TEST_SPLITS[0]),
        doa_threshold=config["score"]["doa_threshold_deg"],
        task=experiment_task_spec,
        # Live state of the train rule, not one of its outputs: named here, never read.
        tensorboard=lambda wildcards: str(
            tensorboard_dir(experiment_state_dir(wildcards))
        ),
    script:
        "../workflow/scripts/report.py"


rule model_table:
    output:
        table=report(
            f"{RESULTS}/models/complexity.csv",
            caption="../workflow/report/complexity.rst",
            category="Models",
        ),
    log:
        f"{RESULTS}/logs/model_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/model_table.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow/scripts/model_table.py"
