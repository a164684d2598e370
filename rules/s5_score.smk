"""S5 scoring: CA-SDRi and label accuracy of the estimates, with tagger labels and with oracle labels."""


rule s5_score:
    input:
        soundscapes=s5_test_input,
        estimates=expand(rules.s5_infer.output.estimates, labels=S5_LABEL_SOURCES),
    output:
        metrics=report(
            f"{S5_DIR}/metrics.json",
            caption="../workflow/report/s5_metrics.rst",
            category="S5",
        ),
    log:
        f"{S5_DIR}/logs/s5_score.log",
    benchmark:
        f"{S5_DIR}/benchmarks/s5_score.tsv"
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        soundscapes=s5_layout.test_soundscapes(S5_ROOT),
        oracle=s5_layout.test_oracle(S5_ROOT),
        label_sources=S5_LABEL_SOURCES,
    script:
        "../workflow/scripts/s5_score.py"
