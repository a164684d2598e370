"""The pretrain -> fine-tune chain: config checks naming the key, the checkpoint transfer with its head rule, the
planned DAG from synthesis to scores, and (slow) a tiny run whose pretraining change reruns both trainings."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import REPO, default_config, planned_jobs, run_snakemake, tiny_config, write_config
from test_pretrain_workflow import pretrain_config

from seldflow.checkpoints import save_checkpoint
from seldflow.config import check_model_args, check_train_options, dataset_classes, experiment_settings, validate_config
from seldflow.errors import ConfigError, InputError
from seldflow.models import build_model
from seldflow.models.transfer import load_pretrained
from seldflow.pretrain.bank import PROCEDURAL_CLASSES
from seldflow.pretrain.chain import training_arguments, vocabulary

# A small SELDnet: wide enough to have a head distinct from its trunk, seconds to build.
SELDNET = {"n_mels": 16, "conv_channels": 4, "f_pool": (2, 2, 2), "rnn_size": 8, "fc_size": 8, "mhsa_heads": 2}


def _fine(**train: Any):
    """A mutation adding the fine-tuning experiment `fine` with ``train``."""
    return lambda config: config["experiments"].update(fine=train)


def chain_config(**experiments: dict[str, Any]) -> dict[str, Any]:
    """The default config on FOA features with a pretraining experiment `pre` and the given experiments."""
    config = default_config()
    config["features"]["kind"] = "foa"
    config["dataset"].update(label_format="dcase2021", n_classes=13)
    config["experiments"] = {"pre": {"pretraining_subsets": ["train40_ov1_1", "train20_ov2_1"]}, **experiments}
    config["run_experiments"] = [name for name in experiments if name != "pre"]
    return config


def test_a_valid_chain_passes_and_the_vocabulary_is_the_procedural_bank() -> None:
    validate_config(chain_config(fine={"pretrained_from": "pre", "reinit_head": True}))
    assert vocabulary(default_config()["pretraining"]) == tuple(sorted(PROCEDURAL_CLASSES))
    assert len(PROCEDURAL_CLASSES) == 43


@pytest.mark.parametrize(
    ("mutate", "key", "words"),
    [
        (_fine(pretrained_from="pre"), "experiments.fine.reinit_head", ["43", "13"]),
        (_fine(pretrained_from="nothing"), "experiments.fine.pretrained_from", ["pre"]),
        (_fine(pretrained_from="HTSAT"), "experiments.fine.pretrained_from", []),
        (_fine(pretrained_from="pre", reinit_head=True, model="htsat"), "experiments.fine.model", ["seldnet"]),
        (_fine(pretrained_from="pre", pretrained="x.ckpt"), "experiments.fine.pretrained", []),
        (lambda c: c["run_experiments"].append("pre"), "run_experiments", ["checkpoint"]),
        (
            lambda c: c["experiments"]["pre"].update(pretraining_subsets=["train9_ov1_1"]),
            "experiments.pre.pretraining_subsets",
            ["train9_ov1_1"],
        ),
        (lambda c: c["features"].update(kind="pfoa"), "experiments.pre.pretraining_subsets", ["pfoa"]),
        (lambda c: c.pop("pretraining"), "experiments.pre.pretraining_subsets", ["pretraining section"]),
        (lambda c: c["pretraining"].update(sample_rate=16000), "pretraining.sample_rate", ["24000"]),
    ],
)  # fmt: skip
def test_a_broken_chain_is_refused_naming_the_key(mutate, key: str, words: list[str]) -> None:
    config = chain_config()
    mutate(config)
    with pytest.raises(ConfigError) as excinfo:
        validate_config(config)
    assert excinfo.value.key == key
    for word in words:
        assert word in str(excinfo.value)


def test_training_arguments_resolve_the_parent_checkpoint() -> None:
    arguments = training_arguments({"model": "htsat", "pretrained_from": "pre", "pretraining_subsets": []}, "results")
    assert arguments == {"model": "htsat", "pretrained": "results/pre/model/best.pt"}
    assert "pretrained" not in training_arguments({"model": "htsat", "pretraining_subsets": ["a"]}, "results")


def _seldflow_checkpoint(path: Path, n_classes: int, **args: Any) -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    net = build_model("seldnet", 7, **{**SELDNET, **args}, n_classes=n_classes, output="maccdoa_xyz")
    task = {"name": "seld", "label_format": "dcase2021", "n_classes": n_classes, "method": "maccdoa"}
    save_checkpoint(path, {"model_state": net.state_dict(), "model_name": "seldnet", "task": task})
    return net.state_dict()


def _fresh(n_classes: int, **args: Any) -> torch.nn.Module:
    torch.manual_seed(11)
    return build_model("seldnet", 7, **{**SELDNET, **args}, n_classes=n_classes, output="maccdoa_xyz")


def test_another_vocabulary_needs_reinit_head_and_then_only_the_head_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    source = _seldflow_checkpoint(path, n_classes=43)
    model = _fresh(13)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(ConfigError) as excinfo:
        load_pretrained(model, path, model_name="seldnet", n_classes=13)
    assert excinfo.value.key == "reinit_head" and "43" in str(excinfo.value) and "13" in str(excinfo.value)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())  # nothing copied

    report = load_pretrained(model, path, model_name="seldnet", n_classes=13, reinit_head=True)
    own = model.state_dict()
    assert report.initialised and all(key.startswith("head.") for key in report.initialised)
    assert sorted(report.loaded + report.initialised) == sorted(own)
    for key in report.loaded:
        assert torch.equal(own[key], source[key])
    for key in report.initialised:
        assert torch.equal(own[key], before[key])
    assert "initialised: head." in report.summary()


def test_the_same_vocabulary_loads_every_tensor(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    source = _seldflow_checkpoint(path, n_classes=13)
    model = _fresh(13)
    report = load_pretrained(model, path, model_name="seldnet", n_classes=13)
    assert not report.initialised and not report.missing
    assert all(torch.equal(value, source[key]) for key, value in model.state_dict().items())


def test_other_widths_or_another_model_are_refused_even_with_reinit_head(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    _seldflow_checkpoint(path, n_classes=43, rnn_size=16)
    with pytest.raises(InputError, match="shape mismatch"):
        load_pretrained(_fresh(13), path, model_name="seldnet", n_classes=13, reinit_head=True)
    with pytest.raises(InputError, match="cannot initialise a htsat model"):
        load_pretrained(_fresh(13), path, model_name="htsat", n_classes=13, reinit_head=True)


def tiny_chain_config(reinit_head: bool = True, subsets: int = 2) -> dict[str, Any]:
    """The tiny FOA workflow with tiny pretraining subsets (the first ``subsets`` of two), a pretraining experiment
    on them and its fine-tuning."""
    sizes = dict(list({"train3_ov1_1": (3, 1), "train2_ov2_1": (2, 2)}.items())[:subsets])
    config = pretrain_config(**sizes)
    tiny = tiny_config()
    config["pretraining"]["sample_rate"] = tiny["dataset"]["sample_rate"]
    config["dataset"].update(label_format="dcase2021", n_classes=13)
    config["features"]["kind"] = "foa"
    narrow = {key: value for key, value in SELDNET.items() if key != "n_mels"}  # the features' 64 bands
    config["train"].update(method="maccdoa", model_args=copy.deepcopy(narrow))
    fine = {"pretrained_from": "pre", **({"reinit_head": True} if reinit_head else {})}
    config["experiments"] = {"pre": {"pretraining_subsets": list(sizes)}, "fine": fine}
    config["run_experiments"] = ["fine"]
    return config


def test_the_fine_tuning_target_plans_synthesis_pretraining_fine_tuning_and_scoring(tmp_path: Path) -> None:
    write_config(tmp_path, tiny_chain_config())
    jobs = planned_jobs(run_snakemake(tmp_path, "-n", "results/fine/metrics.json"))
    for rule in ("pretrain_bank", "pretrain_synthesis", "pretrain_subset", "source_bank", "mixtures", "infer"):
        assert jobs.get(rule, 0) >= 1, rule
    assert jobs["pretrain_export"] == 2
    assert jobs["train"] == 2  # pre, then fine
    assert jobs["split_check"] == 4  # the two subsets and the dataset's two splits
    assert jobs["score"] == 1  # fine only: a pretraining experiment is never scored


def test_a_vocabulary_mismatch_without_reinit_head_fails_before_any_job(tmp_path: Path) -> None:
    write_config(tmp_path, tiny_chain_config(reinit_head=False))
    result = run_snakemake(tmp_path, "-n", "results/fine/metrics.json", check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "experiments.fine.reinit_head" in text and "3 classes" in text and "13" in text
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_tiny_chain_runs_and_a_pretraining_change_reruns_both(tmp_path: Path) -> None:
    config = tiny_chain_config(subsets=1)  # one subset: fewer jobs (the plan with two is tested above)
    config["dataset"]["shard_clips"] = 20  # one synthesis and one feature job per split
    write_config(tmp_path, config)
    run_snakemake(tmp_path, "results/fine/metrics.json")
    log = (tmp_path / "results" / "fine" / "logs" / "train.log").read_text()
    assert "seldflow checkpoint results/pre/model/best.pt -> SELDnet" in log
    assert "initialised: head.weight, head.bias" in log
    assert planned_jobs(run_snakemake(tmp_path, "-n", "results/fine/metrics.json")) == {}
    config["experiments"]["pre"]["lr"] = 5.0e-4
    write_config(tmp_path, config)
    assert planned_jobs(run_snakemake(tmp_path, "-n", "results/fine/metrics.json")) == {
        "train": 2,
        "infer": 1,
        "score": 1,
    }


def layered(*names: str) -> dict[str, Any]:
    """config/config.yaml with the named config files merged over it key by key, as --configfile does."""
    from snakemake.utils import update_config

    from seldflow.config import load_yaml

    config = load_yaml(REPO / "config" / "config.yaml")
    for name in names:
        update_config(config, load_yaml(REPO / "config" / name))
    return config


@pytest.mark.parametrize(
    ("dataset", "classes", "sample_rate", "hop"),
    [("dcase2021.yaml", 12, 24000, 240), ("starss23_foa.yaml", 13, 24000, 240), ("l3das22.yaml", 14, 32000, 320)],
)
def test_the_pseldnets_recipe_over_each_downstream_dataset(dataset: str, classes: int, sample_rate: int, hop: int):
    config = validate_config(layered(dataset, "pseldnets.yaml"))
    check_model_args(config)
    check_train_options(config)
    trains = experiment_settings(config)
    pretrain, finetune = trains["pseldnets_pretrain"], trains["pseldnets_finetune"]
    assert (pretrain["lr"], pretrain["batch_size"], pretrain["epochs"], pretrain["lr_step_epochs"]) == (
        1e-4,
        32,
        25,
        10,
    )
    assert pretrain["augment"]["augmix"] and len(pretrain["augment"]["types"]) == 6
    assert finetune["pretrained_from"] == "pseldnets_pretrain" and finetune["lr"] == 1e-4
    assert trains["pseldnets_adapterbit"]["adapter"] and trains["pseldnets_adapterbit"]["lr"] == 3e-4
    assert dataset_classes(config) == classes
    assert config["pretraining"]["sample_rate"] == config["dataset"]["sample_rate"] == sample_rate
    assert config["features"]["hop_length"] == hop and sample_rate // hop == 100  # 10 frames per label
    # 60-s pretraining mixtures and the release's six subsets.
    assert config["pretraining"]["clip_seconds"] == 60.0 and len(pretrain["pretraining_subsets"]) == 6
