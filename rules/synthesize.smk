"""Embedded synthetic dataset: procedural source bank, simulated SOFA rooms, FOA + stereo mixtures."""


rule source_bank:
    output:
        bank=directory(f"{RESULTS}/synthetic/sources"),
    log:
        f"{RESULTS}/logs/source_bank.log",
    benchmark:
        f"{RESULTS}/benchmarks/source_bank.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        bank=SYNTH.get("source_bank"),
        sample_rate=SYNTH.get("sample_rate"),
        seed=stage_seed("source_bank"),
    script:
        "../workflow/scripts/source_bank.py"


rule room:
    output:
        sofa=f"{RESULTS}/synthetic/rooms/{{room}}_foa.sofa",
    log:
        f"{RESULTS}/logs/room/{{room}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/room/{{room}}.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    params:
        spec=lookup(dpath="synthesis/rooms/specs/{room}", within=config),
        grid=SYNTH.get("rooms"),
        sample_rate=SYNTH.get("sample_rate"),
    script:
        "../workflow/scripts/room.py"


rule mixtures:
    input:
        bank=rules.source_bank.output.bank,
        rooms=split_rooms,
    output:
        stereo=directory(f"{DATASET_ROOT}/stereo_dev/{{split}}"),
        foa=directory(f"{DATASET_ROOT}/foa_dev/{{split}}"),
        metadata=directory(f"{DATASET_ROOT}/metadata_dev/{{split}}"),
    log:
        f"{RESULTS}/logs/mixtures/{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/mixtures/{{split}}.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        split=lookup(dpath="synthesis/splits/{split}", within=config),
        mixtures=SYNTH.get("mixtures"),
        room_ids=split_room_ids,
        sample_rate=SYNTH.get("sample_rate"),
        seed=mixture_seed,
    script:
        "../workflow/scripts/mixtures.py"
