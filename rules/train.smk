"""Training: one experiment's model on the training splits' features, best checkpoint chosen on held-out clips.

A pretraining experiment (`pretraining_subsets`) trains on the pretraining subsets' features instead; a fine-tuning
one (`pretrained_from`) has that experiment's checkpoint as an input (seldflow.pretrain.chain).
"""


rule train:
    input:
        features=experiment_train_features,
        pretrained=experiment_pretrained,
    output:
        checkpoint=checkpoint_path(RESULTS, "{experiment}"),
        metrics=report(
            f"{EXPERIMENT_DIR}/model/metrics.csv",
            caption="../workflow/report/train_metrics.rst",
            category="Training",
        ),
    log:
        f"{EXPERIMENT_DIR}/logs/train.log",
    benchmark:
        f"{EXPERIMENT_DIR}/benchmarks/train.tsv"
    conda:
        "../envs/torch.yaml"
    threads: all_cores()
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=1,
    params:
        train=experiment_train,
        task=experiment_task_spec,
        seed=stage_seed("train"),
        # Resumable state lives outside the declared outputs, which Snakemake deletes before a rerun.
        state_dir=experiment_state_dir,
    script:
        "../workflow/scripts/train.py"
