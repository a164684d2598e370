"""S5 inference: tag every test soundscape, separate the selected classes, write <soundscape>_<Label>.wav."""


rule s5_infer:
    input:
        soundscapes=s5_test_input,
        separator=rules.s5_separator.output.checkpoint,
        tagger=s5_infer_tagger,
    output:
        estimates=directory(f"{S5_DIR}/estimates/{{labels}}"),
    log:
        f"{S5_DIR}/logs/s5_infer_{{labels}}.log",
    benchmark:
        f"{S5_DIR}/benchmarks/s5_infer_{{labels}}.tsv"
    wildcard_constraints:
        labels="tagger|oracle",
    conda:
        "../envs/torch.yaml"
    threads: all_cores()
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        soundscapes=s5_layout.test_soundscapes(S5_ROOT),
        oracle=s5_oracle_param,
        threshold=S5["tagger"]["threshold"],
    script:
        "../workflow/scripts/s5_infer.py"
