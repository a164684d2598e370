"""DOAnet training: one experiment's CRNN on the training folds (plus the augmented scenes when asked), selected
on the validation fold's LE; resumable after every epoch (state and TensorBoard logs in model/state).
"""


rule doanet_train:
    input:
        check=f"{DOANET_DIR}/check.json",
        train=doanet_train_features,
        validation=doanet_validation_features,
        hnet=doanet_hnet_input,
    output:
        checkpoint=f"{DOANET_DIR}/{{doanet_experiment}}/model/best.pt",
        metrics=f"{DOANET_DIR}/{{doanet_experiment}}/model/metrics.csv",
    log:
        f"{DOANET_DIR}/{{doanet_experiment}}/logs/doanet_train.log",
    benchmark:
        f"{DOANET_DIR}/{{doanet_experiment}}/benchmarks/doanet_train.tsv"
    conda:
        "../envs/torch.yaml"
    threads: all_cores()
    resources:
        mem_mb=8000,
        runtime=24 * 60,
        gpu=1,
    params:
        experiment=doanet_settings,
        model_args=doanet_model_args,
        features=DOANET["features"],
        infer=DOANET["infer"],
        seed=lambda wildcards: stage_seed(
            "doanet", "train", wildcards.doanet_experiment
        ),
        state_dir=f"{DOANET_DIR}/{{doanet_experiment}}/model/state",
    script:
        "../workflow/scripts/doanet_train.py"
