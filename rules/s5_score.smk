"""S5 scoring: CA-SDRi and label accuracy of a run's estimates with each label source (baseline tagger, fine-tuned
SED, oracle labels), and the summary experiments' runs ranked in one table."""


rule s5_score:
    input:
        soundscapes=s5_test_input,
        estimates=expand(
            rules.s5_infer.output.estimates,
            labels=S5_LABEL_SOURCES,
            allow_missing=True,
        ),
    output:
        metrics=report(
            f"{RESULTS}/s5/{{s5run}}/metrics.json",
            caption="../workflow/report/s5_metrics.rst",
            category="S5",
        ),
    log:
        f"{RESULTS}/s5/{{s5run}}/logs/s5_score.log",
    benchmark:
        f"{RESULTS}/s5/{{s5run}}/benchmarks/s5_score.tsv"
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


rule s5_summary:
    input:
        metrics=expand(rules.s5_score.output.metrics, s5run=S5_SUMMARY_RUNS),
    output:
        table=report(
            f"{RESULTS}/s5/summary.csv",
            caption="../workflow/report/s5_summary.rst",
            category="S5",
        ),
    log:
        f"{RESULTS}/s5/logs/s5_summary.log",
    benchmark:
        f"{RESULTS}/s5/benchmarks/s5_summary.tsv"
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        runs=s5_summary_runs(),
    script:
        "../workflow/scripts/s5_summary.py"
