"""S5 training: the tagger's two fine-tuning steps (head, then the last blocks), the sound event detector and the
label-queried separator of every experiment (baseline or SED-guided)."""


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


rule s5_sed:
    input:
        data=s5_bank_inputs,
        valid=s5_validation_input,
        added=s5_added_inputs("train", "valid"),
        weights=s5_sed_weights,
    output:
        checkpoint=S5_DETECTORS["sed"],
        metrics=report(
            f"{S5_DIR}/sed/metrics.csv",
            caption="../workflow/report/s5_train_metrics.rst",
            category="S5",
        ),
    log:
        f"{S5_DIR}/logs/s5_sed.log",
    benchmark:
        f"{S5_DIR}/benchmarks/s5_sed.tsv"
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
        network={
            "kind": "sed",
            "model": S5["sed"]["model"],
            "model_args": S5["sed"]["model_args"],
            "param_groups": S5["sed"]["param_groups"],
        },
        settings=sed_training_settings(S5["sed"]),
        seed=stage_seed("s5", "sed"),
        state_dir=f"{RESULTS}/s5/state/{S5_EXPERIMENT}/sed",
        added=s5_added("train", "valid"),
    script:
        "../workflow/scripts/s5_train.py"


# One job per experiment (s5.separator for the main one, s5.experiments for the named ones); all draw the same
# mixtures (one seed), so the ablations differ only in what they configure.
rule s5_separator:
    input:
        data=s5_bank_inputs,
        valid=s5_validation_input,
        added=s5_added_inputs("train", "valid"),
        audiosep_checkpoint=s5_separator_pretrained("audiosep_checkpoint"),
        sed_checkpoint=s5_separator_pretrained("sed_checkpoint"),
        sed_finetuned=s5_separator_sed_finetuned,
    output:
        checkpoint=f"{RESULTS}/s5/{{s5exp}}/separator/best.pt",
        metrics=report(
            f"{RESULTS}/s5/{{s5exp}}/separator/metrics.csv",
            caption="../workflow/report/s5_train_metrics.rst",
            category="S5",
        ),
    log:
        f"{RESULTS}/s5/{{s5exp}}/logs/s5_separator.log",
    benchmark:
        f"{RESULTS}/s5/{{s5exp}}/benchmarks/s5_separator.tsv"
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
        network=s5_separator_network,
        settings=s5_separator_settings,
        seed=stage_seed("s5", "separator"),
        state_dir=f"{RESULTS}/s5/state/{{s5exp}}/separator",
        added=s5_added("train", "valid"),
    script:
        "../workflow/scripts/s5_train.py"
