"""S5 report: per-class SDRi bars, the tagger's confusion and spectrograms of mixture, estimate and oracle."""


rule s5_report:
    input:
        metrics=f"{S5_DIR}/metrics.json",
        estimates=f"{S5_DIR}/estimates/tagger",
        soundscapes=s5_test_input,
    output:
        sdri=report(
            f"{S5_DIR}/report/sdri_per_class.png",
            caption="../workflow/report/s5_report.rst",
            category="S5",
        ),
        confusion=report(
            f"{S5_DIR}/report/tagger_confusion.png",
            caption="../workflow/report/s5_report.rst",
            category="S5",
        ),
        spectrograms=report(
            f"{S5_DIR}/report/spectrograms.png",
            caption="../workflow/report/s5_report.rst",
            category="S5",
        ),
        summary=f"{S5_DIR}/report/summary.md",
    log:
        f"{S5_DIR}/logs/s5_report.log",
    benchmark:
        f"{S5_DIR}/benchmarks/s5_report.tsv"
    conda:
        "../envs/score.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        soundscapes=s5_layout.test_soundscapes(S5_ROOT),
        oracle=s5_layout.test_oracle(S5_ROOT),
        shown=S5["report"]["soundscapes"],
    script:
        "../workflow/scripts/s5_report.py"
