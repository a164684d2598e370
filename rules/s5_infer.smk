"""S5 inference: choose each test soundscape's classes (baseline tagger, fine-tuned SED or oracle labels), separate
them with a run's separator, write <soundscape>_<Label>.wav."""


rule s5_infer:
    input:
        soundscapes=s5_test_input,
        separator=s5_run_separator,
        detector=s5_infer_detector,
    output:
        estimates=directory(f"{RESULTS}/s5/{{s5run}}/estimates/{{labels}}"),
    log:
        f"{RESULTS}/s5/{{s5run}}/logs/s5_infer_{{labels}}.log",
    benchmark:
        f"{RESULTS}/s5/{{s5run}}/benchmarks/s5_infer_{{labels}}.tsv"
    wildcard_constraints:
        labels="|".join(S5_LABEL_SOURCES),
    conda:
        "../envs/torch.yaml"
    threads: all_cores()
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        soundscapes=s5_layout.test_soundscapes(S5_ROOT),
        oracle=s5_oracle_param,
        threshold=s5_detector_threshold,
        inference_iterations=s5_run_iterations,
    script:
        "../workflow/scripts/s5_infer.py"
