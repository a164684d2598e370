"""The pretrain -> fine-tune chain: experiments that pretrain on the synthetic subsets, and those that start from them.

PSELDNets pretrains once on a large-vocabulary synthetic set and fine-tunes the result on each downstream dataset.
In the workflow both are named SELD experiments (overrides of ``train``):

* a **pretraining experiment** sets ``pretraining_subsets``: it trains on the features of those subsets of the
  ``pretraining`` section (exported to a DCASE2021-style tree, see :func:`seldflow.pretrain.datasynth.export_dcase`)
  with the pretraining vocabulary as its classes. Its product is its checkpoint; it is neither inferred nor scored.
* a **fine-tuning experiment** sets ``pretrained_from: <pretraining experiment>``: that experiment's
  ``results/<name>/model/best.pt`` becomes an input of its training, so a target such as
  ``results/<finetune>/metrics.json`` plans synthesis, pretraining, fine-tuning and scoring, and any change upstream
  reruns what follows. When the vocabularies differ the experiment must say ``reinit_head: true``.

Everything here is checked when the workflow is parsed, before any job, with errors naming the key
(:func:`check_chain`); :func:`training_arguments` turns an experiment's settings into the arguments of
:func:`seldflow.train.train`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seldflow.errors import ConfigError

# The label format of the pretraining subsets' metadata (DCASE2021 CSVs, 3-D directions, no distance).
PRETRAIN_LABEL_FORMAT = "dcase2021"
# Audio formats the DataSynthSELD layout holds that the features stage can read (its `sum` is the dry mixture).
PRETRAIN_FEATURE_KINDS = ("foa", "mic")
# The key selecting the mono splits of AdapterBit's mono mode (seldflow.mono) as an experiment's training data.
MONO_KEY = "mono_splits"
# Keys of an experiment's ``train`` settings that the workflow resolves; :func:`seldflow.train.train` never sees them.
CHAIN_KEYS = ("pretraining_subsets", "pretrained_from", MONO_KEY)


def pretraining_subsets(train: Mapping[str, Any]) -> list[str]:
    """The pretraining subsets an experiment trains on (empty for every other experiment)."""
    return list(train.get("pretraining_subsets") or [])


def mono_splits(train: Mapping[str, Any]) -> list[str]:
    """The mono splits an experiment trains on (AdapterBit's mono mode, seldflow.mono; empty for the others)."""
    return list(train.get(MONO_KEY) or [])


def is_pretraining(train: Mapping[str, Any]) -> bool:
    return bool(pretraining_subsets(train))


def checkpoint_path(results: str, experiment: str) -> str:
    """The checkpoint an experiment's training writes (rule train's output), which its fine-tunings read."""
    return f"{results}/{experiment}/model/best.pt"


def vocabulary(section: Mapping[str, Any], splits: list[str] | None = None) -> tuple[str, ...]:
    """The class labels of the pretraining bank in class-index order, as the synthesis numbers them.

    The procedural bank's classes are known without rendering it; a bank on disk is read from its folder names
    (sorted, as :func:`seldflow.pretrain.bank.read_bank` does) for every split in ``splits`` (default: every
    subset's source split), which must all hold the same classes.
    """
    bank = section["bank"]
    if bank.get("path") is None:
        from seldflow.pretrain.bank import PROCEDURAL_CLASSES

        return tuple(sorted(list(PROCEDURAL_CLASSES)[: bank.get("classes")]))
    wanted = splits if splits is not None else sorted({s["source_split"] for s in section["subsets"].values()})
    found: dict[str, tuple[str, ...]] = {}
    for split in wanted:
        folder = Path(bank["path"]) / split
        if not folder.is_dir():
            raise ConfigError("config", "pretraining.bank.path", f"{folder}: bank split folder not found")
        found[split] = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if len(set(found.values())) > 1:
        sizes = ", ".join(f"{split}: {len(labels)}" for split, labels in found.items())
        raise ConfigError("config", "pretraining.bank.path", f"bank splits hold different classes ({sizes})")
    return next(iter(found.values()), ())


def pretraining_task_config(config: Mapping[str, Any], section: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration a pretraining experiment's task is built from: the dataset's keys replaced by the
    pretraining subsets' label format and vocabulary (the method, loss and metric stay the experiment's)."""
    dataset = {**config["dataset"], "label_format": PRETRAIN_LABEL_FORMAT, "n_classes": len(vocabulary(section))}
    return {**config, "dataset": dataset}


def check_chain(
    config: Mapping[str, Any],
    trains: Mapping[str, Mapping[str, Any]],
    dataset_classes: int,
    *,
    source: str = "config",
) -> None:
    """Refuse a chain that cannot run, naming the key: before any job.

    ``trains`` maps experiment name -> merged ``train`` settings; ``dataset_classes`` is the class count of the
    dataset every fine-tuning experiment trains on. A pretraining experiment needs a ``pretraining`` section that
    defines its subsets, FOA or MIC features and the dataset's sample rate (both experiments read features of one
    kind and rate), and is not itself inferred or scored; ``pretrained_from`` must name a pretraining experiment
    with the same model, not beside another initialisation, and a different vocabulary needs ``reinit_head: true``.
    """
    section = config.get("pretraining")
    scored = {config["experiment"], *config.get("run_experiments", [])}
    for name, train in trains.items():
        where = "train" if name == config["experiment"] else f"experiments.{name}"
        subsets = pretraining_subsets(train)
        if subsets:
            _check_pretraining_experiment(config, section, name, where, subsets, scored, train, source)
        parent = train.get("pretrained_from")
        if not parent:
            continue
        key = f"{where}.pretrained_from"
        if parent not in trains or not is_pretraining(trains[parent]):
            known = ", ".join(n for n, t in trains.items() if is_pretraining(t)) or "none"
            raise ConfigError(source, key, f"'{parent}' is not a pretraining experiment (those: {known})")
        for other in ("pretrained", "pretrained_audioset"):
            if train.get(other):
                raise ConfigError(source, f"{where}.{other}", "give pretrained_from or a checkpoint file, not both")
        if train["model"] != trains[parent]["model"]:
            message = f"'{train['model']}' cannot start from '{parent}', a {trains[parent]['model']} model"
            raise ConfigError(source, f"{where}.model", message)
        pretrained_classes, own = len(vocabulary(section)), dataset_classes
        if pretrained_classes != own and not train.get("reinit_head"):
            message = (
                f"'{parent}' was pretrained on {pretrained_classes} classes, this dataset has {own}: set "
                "reinit_head: true to re-initialise the output head"
            )
            raise ConfigError(source, f"{where}.reinit_head", message)


def _check_pretraining_experiment(
    config: Mapping[str, Any],
    section: Mapping[str, Any] | None,
    name: str,
    where: str,
    subsets: list[str],
    scored: set[str],
    train: Mapping[str, Any],
    source: str,
) -> None:
    key = f"{where}.pretraining_subsets"
    if section is None:
        raise ConfigError(source, key, "needs a pretraining section (the subsets to render)")
    unknown = [subset for subset in subsets if subset not in section["subsets"]]
    if unknown:
        raise ConfigError(source, key, f"not subsets of pretraining.subsets: {', '.join(unknown)}")
    kind = config["features"]["kind"]
    if kind not in PRETRAIN_FEATURE_KINDS:
        message = f"the pretraining subsets hold FOA and MIC audio; features.kind '{kind}' reads neither"
        raise ConfigError(source, key, message)
    if section["sample_rate"] != config["dataset"]["sample_rate"]:
        message = (
            f"pretraining.sample_rate {section['sample_rate']} differs from dataset.sample_rate "
            f"{config['dataset']['sample_rate']}: pretraining and fine-tuning features must share one rate"
        )
        raise ConfigError(source, "pretraining.sample_rate", message)
    if train.get("pretrained_from"):
        raise ConfigError(source, f"{where}.pretrained_from", "a pretraining experiment starts from no other")
    if name in scored:
        message = (
            f"'{name}' is a pretraining experiment: its product is its checkpoint, not scores on the dataset "
            "(leave it out of experiment and run_experiments)"
        )
        raise ConfigError(source, "run_experiments" if name != config["experiment"] else "experiment", message)


def training_arguments(train: Mapping[str, Any], results: str) -> dict[str, Any]:
    """The arguments of :func:`seldflow.train.train` of an experiment: ``pretrained_from`` becomes the
    ``pretrained`` checkpoint path, the workflow's own keys are dropped."""
    arguments = {key: value for key, value in train.items() if key not in CHAIN_KEYS}
    if train.get("pretrained_from"):
        arguments["pretrained"] = checkpoint_path(results, train["pretrained_from"])
    return arguments
