"""Hnet: its training data generated and the network trained on them; the frozen hnet.pt feeds the dMOT losses.

Every key of `doanet.hnet` is a param, so changing one retrains Hnet and, through hnet.pt, every dMOT experiment.
Not planned when `doanet.hnet.weights` names a trained checkpoint.
"""


rule doanet_hnet:
    input:
        check=doanet_hnet_waits,
    output:
        checkpoint=f"{DOANET_DIR}/hnet/hnet.pt",
        metrics=f"{DOANET_DIR}/hnet/metrics.csv",
    log:
        f"{DOANET_DIR}/logs/doanet_hnet.log",
    benchmark:
        f"{DOANET_DIR}/benchmarks/doanet_hnet.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        hnet={key: value for key, value in DOANET["hnet"].items() if key != "weights"},
        seed=stage_seed("doanet", "hnet"),
    script:
        "../workflow/scripts/doanet_hnet.py"
