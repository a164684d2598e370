"""S5 embedded dataset: procedural source banks and simulated FOA rooms, the validation and test soundscape plans,
and the test soundscapes rendered in shards and gathered into the DCASE2025 Task 4 layout.
"""


rule s5_bank:
    output:
        banks=[directory(s5_layout.bank_dir(S5_ROOT, bank)) for bank in s5_layout.BANKS],
    log:
        f"{RESULTS}/s5/logs/s5_bank.log",
    benchmark:
        f"{RESULTS}/s5/benchmarks/s5_bank.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        root=s5_root,
        embedded=S5["embedded"],
        sample_rate=S5["generator"]["sample_rate"],
        seed=stage_seed("s5", "bank"),
    script:
        "../workflow/scripts/s5_bank.py"


rule s5_plan:
    input:
        banks=rules.s5_bank.output.banks,
        added=s5_added_inputs("valid", "test"),
    output:
        valid=s5_layout.validation_metadata(S5_ROOT),
        valid_descriptions=directory(s5_layout.validation_descriptions(S5_ROOT)),
        test=f"{S5_PLAN_DIR}/test.json",
        test_descriptions=directory(f"{S5_PLAN_DIR}/test"),
    log:
        f"{RESULTS}/s5/logs/s5_plan.log",
    benchmark:
        f"{RESULTS}/s5/benchmarks/s5_plan.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        root=s5_root,
        generator=S5["generator"],
        counts={
            "valid": S5["embedded"]["valid_soundscapes"],
            "test": S5["embedded"]["test_soundscapes"],
        },
        seed=stage_seed("s5", "plan"),
        added=s5_added("valid", "test"),
    script:
        "../workflow/scripts/s5_plan.py"


rule s5_synthesis:
    input:
        banks=rules.s5_bank.output.banks,
        plan=rules.s5_plan.output.test,
        added=s5_added_inputs("test"),
    output:
        shard=directory(f"{S5_SHARDS_DIR}/test/{{shard}}"),
    log:
        f"{RESULTS}/s5/logs/s5_synthesis/{{shard}}.log",
    benchmark:
        f"{RESULTS}/s5/benchmarks/s5_synthesis/{{shard}}.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        root=s5_root,
        generator=S5["generator"],
        shard=shard_index,
        shard_soundscapes=S5["dataset"]["shard_soundscapes"],
        added=s5_added("test"),
    script:
        "../workflow/scripts/s5_synthesis.py"


rule s5_gather:
    input:
        shards=expand(rules.s5_synthesis.output.shard, shard=S5_TEST_SHARDS),
    output:
        test=directory(s5_layout.test_dir(S5_ROOT)),
    log:
        f"{RESULTS}/s5/logs/s5_gather.log",
    benchmark:
        f"{RESULTS}/s5/benchmarks/s5_gather.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../workflow/scripts/s5_gather.py"
