"""DOAnet embedded dataset: a procedural source bank, simulated rooms (FOA and tetrahedral-array responses of the
same positions), each split's clips rendered in both formats, then linked into the TAU-NIGENS 2020 layout.
"""


rule doanet_bank:
    output:
        bank=directory(f"{DOANET_EMBEDDED_DIR}/sources"),
    log:
        f"{DOANET_DIR}/logs/doanet_bank.log",
    benchmark:
        f"{DOANET_DIR}/benchmarks/doanet_bank.tsv"
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        bank=DOANET["embedded"]["source_bank"],
        seed=stage_seed("doanet", "bank"),
    script:
        "../workflow/scripts/doanet_bank.py"


rule doanet_room:
    output:
        foa=doanet_room_sofa("{room}", "foa"),
        mic=doanet_room_sofa("{room}", "mic"),
    log:
        f"{DOANET_DIR}/logs/doanet_room/{{room}}.log",
    benchmark:
        f"{DOANET_DIR}/benchmarks/doanet_room/{{room}}.tsv"
    wildcard_constraints:
        room="|".join(DOANET["embedded"]["rooms"]),
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    params:
        spec=lookup(dpath="doanet/embedded/rooms/{room}", within=config),
        grid=DOANET["embedded"]["grid"],
    script:
        "../workflow/scripts/doanet_room.py"


rule doanet_clips:
    input:
        bank=rules.doanet_bank.output.bank,
        rooms=doanet_embedded_rooms,
    output:
        foa=directory(f"{DOANET_EMBEDDED_DIR}/splits/{{dsplit}}/foa"),
        mic=directory(f"{DOANET_EMBEDDED_DIR}/splits/{{dsplit}}/mic"),
        metadata=directory(f"{DOANET_EMBEDDED_DIR}/splits/{{dsplit}}/metadata"),
    log:
        f"{DOANET_DIR}/logs/doanet_clips/{{dsplit}}.log",
    benchmark:
        f"{DOANET_DIR}/benchmarks/doanet_clips/{{dsplit}}.tsv"
    wildcard_constraints:
        dsplit="|".join(DOANET_SPLITS),
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        split=lookup(dpath="doanet/embedded/splits/{dsplit}", within=config),
        rooms=doanet_room_files,
        room_numbers=doanet_room_numbers,
        clip_seconds=DOANET["embedded"]["clip_seconds"],
        mixtures=DOANET["embedded"]["mixtures"],
        seed=stage_seed("doanet", "clips"),
    script:
        "../workflow/scripts/doanet_clips.py"


# The TAU-NIGENS 2020 tree of the embedded dataset: every split's files hard-linked side by side (no copies).
rule doanet_gather:
    input:
        foa=expand(rules.doanet_clips.output.foa, dsplit=DOANET_SPLITS),
        mic=expand(rules.doanet_clips.output.mic, dsplit=DOANET_SPLITS),
        metadata=expand(rules.doanet_clips.output.metadata, dsplit=DOANET_SPLITS),
    output:
        foa=directory(str(audio_folder(DOANET_ROOT, "foa"))),
        mic=directory(str(audio_folder(DOANET_ROOT, "mic"))),
        metadata=directory(str(metadata_folder(DOANET_ROOT))),
    log:
        f"{DOANET_DIR}/logs/doanet_gather.log",
    benchmark:
        f"{DOANET_DIR}/benchmarks/doanet_gather.tsv"
    localrule: True
    conda:
        "../envs/synthesis.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    script:
        "../workflow/scripts/gather_split.py"
