"""S5 training: the tagger's two fine-tuning steps (head, then the last blocks) and the label-queried separator."""


rule s5_tagger:
    input:
        data=s5_bank_inputs,
        valid=s5_validation_input,
        added=s5_added_inputs("train", "valid"),
        init=s5_tagger_init,
        weights=s5_tagger_weights,
    output:
        checkpoint=f"{S5_DIR}/tagger/{{step}}/best.pt",
        metrics=report(
            f"{S5_DIR}/tagger/{{step}}/metrics.csv",
            caption="../workflow/report/s5_train_metrics.rst",
            category="S5",
        ),
    log:
        f"{S5_DIR}/logs/s5_tagger_{{step}}.log",
    benchmark:
        f"{S5_DIR}/benchmarks/s5_tagger_{{step}}.tsv"
    wildcard_constraints:
        step="head|blocks",
    conda:
        "../envs/torch.yaml"
    threads: all_cores()
    resources:
        mem_mb=4000,
        runtime=600,
        gpu=1,
    params:
        root=S5_ROOT,
        validation=s5_layout.validation_metadata(S5_ROOT),
        generator=S5["generator"],
        network=s5_tagger_network,
        settings=s5_tagger_settings,
        seed=s5_stage_seed,
        state_dir=f"{RESULTS}/s5/state/{S5_EXPERIMENT}/tagger_{{step}}",
        added=s5_added("train", "valid"),
    script:
        "../workflow/scripts/s5_train.py"


rule s5_separator:
    input:
        data=s5_bank_inputs,
        valid=s5_validation_input,
        added=s5_added_inputs("train", "valid"),
    output:
        checkpoint=f"{S5_DIR}/separator/best.pt",
        metrics=report(
            f"{S5_DIR}/separator/metrics.csv",
            caption="../workflow/report/s5_train_metrics.rst",
            category="S5",
        ),
    log:
        f"{S5_DIR}/logs/s5_separator.log",
    benchmark:
        f"{S5_DIR}/benchmarks/s5_separator.tsv"
    conda:
        "../envs/torch.yaml"
    threads: all_cores()
    resources:
        mem_mb=6000,
        runtime=4320,
        gpu=1,
    params:
        root=S5_ROOT,
        validation=s5_layout.validation_metadata(S5_ROOT),
        generator=S5["generator"],
        network={
            "kind": "separator",
            "model": S5["separator"]["model"],
            "model_args": S5["separator"]["model_args"],
        },
        settings=s5_separator_settings,
        seed=stage_seed("s5", "separator"),
        state_dir=f"{RESULTS}/s5/state/{S5_EXPERIMENT}/separator",
        added=s5_added("train", "valid"),
    script:
        "../workflow/scripts/s5_train.py"
