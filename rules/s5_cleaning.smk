"""S5 cleaning of added source banks (EARS, Semantic Hearing / FSD50K-style folders): the baseline's add_data.sh
steps, once per bank listed under s5.added_banks, into class folders the generator joins to the splits it names.
"""


rule s5_cleaning:
    input:
        source=s5_added_source,
    output:
        bank=directory(f"{S5_ADDED_DIR}/{{added}}"),
        statuses=f"{S5_ADDED_DIR}/{{added}}.csv",
    log:
        f"{RESULTS}/s5/logs/s5_cleaning/{{added}}.log",
    benchmark:
        f"{RESULTS}/s5/benchmarks/s5_cleaning/{{added}}.tsv"
    wildcard_constraints:
        added=S5_ADDED_NAMES,
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        bank=s5_added_bank,
        generator=S5["generator"],
        cleaning=S5["cleaning"],
    script:
        "../workflow/scripts/s5_cleaning.py"
