"""Configuration validation: JSON Schema (draft 2020-12) plus the cross-key checks a schema cannot express.

The workflow validates at start-up so a typo fails in a second with the offending key named, instead of an hour
later inside a rule.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from seldflow.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


def _with_defaults(validator_class: type) -> type:
    """Extend a validator so that validating also fills in each property's ``default``."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema) -> Iterator[ValidationError]:
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = subschema["default"]
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


_DefaultingValidator = _with_defaults(Draft202012Validator)


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "<root>", "the configuration must be a mapping")
    return data


def _error_key(error: ValidationError) -> str:
    """Dotted key of a schema error; for a missing key, the key that is missing."""
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        parts.append(missing)
    if error.validator == "additionalProperties" and "'" in error.message:
        parts.append(error.message.split("'")[1])
    return ".".join(parts) or "<root>"


def validate_config(
    config: dict[str, Any], *, schema_path: str | os.PathLike[str] = SCHEMA_PATH, source: str = "config"
) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults) and return it; raise :class:`ConfigError` naming the key."""
    schema = load_yaml(schema_path)
    error = best_match(_DefaultingValidator(schema).iter_errors(config))
    if error is not None:
        raise ConfigError(source, _error_key(error), error.message)
    _check_cross_references(config, source)
    _check_experiments(config, schema, source)
    _check_s5_experiments(config, schema, source)
    return config


def _check_s5_experiments(config: dict[str, Any], schema: dict[str, Any], source: str) -> None:
    """Each S5 experiment is the section it extends with its overrides applied: validate that merged section."""
    from seldflow.s5.experiments import separator_section

    s5 = config.get("s5")
    if not s5:
        return
    separator_schema = {"$defs": schema["$defs"], **schema["properties"]["s5"]["properties"]["separator"]}
    for name in s5.get("experiments", {}):
        error = best_match(Draft202012Validator(separator_schema).iter_errors(separator_section(s5, name)))
        if error is not None:
            raise ConfigError(source, f"s5.experiments.{name}.{_error_key(error)}", error.message)


def _check_experiments(config: dict[str, Any], schema: dict[str, Any], source: str) -> None:
    """Each experiment is the `train` section with its overrides applied: validate that merged section."""
    train_schema = schema["properties"]["train"]
    for where, merged in experiment_trains(config).items():
        error = best_match(Draft202012Validator(train_schema).iter_errors(merged))
        if error is not None:  # never for the main one: the schema has just validated it
            raise ConfigError(source, f"{where}.{_error_key(error)}", error.message)
        if merged.get("pretrained") and merged.get("pretrained_audioset"):
            message = "initialise from a PSELDNets checkpoint (pretrained) or from AudioSet, not both"
            raise ConfigError(source, f"{where}.pretrained_audioset", message)
    for name in config.get("run_experiments", []):
        if name != config["experiment"] and name not in config.get("experiments", {}):
            raise ConfigError(source, "run_experiments", f"'{name}' is not defined under experiments")
    _check_chain(config, source)
    _check_mono(config, source)


def experiment_settings(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Experiment name -> merged ``train`` settings: the main ``experiment`` and every named one."""
    experiments = config.get("experiments", {})
    trains = {config["experiment"]: train_settings_of(config, experiments.get(config["experiment"], {}))}
    trains.update({name: train_settings_of(config, overrides) for name, overrides in experiments.items()})
    return trains


def dataset_classes(config: Mapping[str, Any]) -> int:
    """The dataset's class count: ``dataset.n_classes``, else its label format's (as the SELD task resolves it)."""
    from seldflow.formats import get_label_format

    dataset = config["dataset"]
    return int(dataset.get("n_classes") or get_label_format(dataset.get("label_format", "dcase2025")).n_classes)


def _check_chain(config: Mapping[str, Any], source: str) -> None:
    """Pretraining experiments and the fine-tunings that start from them (:mod:`seldflow.pretrain.chain`)."""
    from seldflow.pretrain.chain import check_chain

    check_chain(config, experiment_settings(config), dataset_classes(config), source=source)


def _check_mono(config: Mapping[str, Any], source: str) -> None:
    """Experiments that train on the mono splits of AdapterBit's mono mode (:mod:`seldflow.mono`)."""
    from seldflow.pretrain.chain import mono_splits

    trains = experiment_settings(config)
    if any(mono_splits(train) for train in trains.values()):
        from seldflow.mono import check_mono  # imports PyTorch, only when an experiment sets mono_splits

        check_mono(config, trains, n_classes=dataset_classes(config), source=source)


INHERITED = " (inherited from train.model_args: give the experiment a model_args of its own)"


def train_settings_of(config: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """One experiment's ``train`` settings: its overrides applied to ``train``.

    ``model_args`` belong to a model: an experiment that names another model than ``train.model`` and gives no
    ``model_args`` of its own starts from that model's defaults rather than inheriting arguments it may not take
    (e.g. SELDnet's ``t_pool`` set in ``train`` for FOA features, beside CNN14 recipes in ``experiments``).
    """
    train = {**config["train"], **overrides}
    if train.get("model") != config["train"].get("model") and "model_args" not in overrides:
        train["model_args"] = {}
    return train


def experiment_trains(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``train`` settings of every experiment, keyed by where they are set: ``train`` for the main one,
    ``experiments.<name>`` for each named one (see :func:`train_settings_of`)."""
    trains = {"train": dict(config["train"])}
    for name, overrides in config.get("experiments", {}).items():
        trains[f"experiments.{name}"] = train_settings_of(config, overrides)
    return trains


def check_model_args(config: Mapping[str, Any], *, source: str = "config") -> None:
    """Build every experiment's network from its ``model_args`` on PyTorch's meta device, before any job runs.

    A misspelt or invalid argument then fails the dry run with a :class:`ConfigError` naming the experiment and
    the argument (``experiments.HTSAT.model_args.embed_dimm``), instead of the training job hours later. The
    build is training's (:func:`seldflow.train.train`): the feature kind's channels and mel bins, the task's
    output layout and class count, then ``model_args``; the meta device gives shapes without memory, so even the
    largest network costs milliseconds. Experiments without ``model_args`` are skipped: they build each model's
    defaults, which the test suite covers, and skipping keeps workflow start-up free of model construction.
    An experiment with ``pretrained_audioset`` must name a model with an AudioSet layout
    (:func:`seldflow.models.audioset.check_audioset_model`).
    Imports PyTorch, so it is separate from :func:`validate_config`.
    """
    for key, train in experiment_trains(config).items():
        if train.get("model_args"):
            _check_model(config, train, key, source)
        if train.get("pretrained_audioset"):
            from seldflow.models.audioset import check_audioset_model  # imports PyTorch

            check_audioset_model(train["model"], source=source, key=f"{key}.pretrained_audioset")


def check_train_options(config: Mapping[str, Any], *, source: str = "config") -> None:
    """Check every experiment's ``augment`` and ``adapter`` against its model, method and feature kind.

    An adapter on a model without Swin blocks, or a rotation of features that are not FOA, then fails the dry run
    with one :class:`ConfigError` naming the experiment's key, instead of the training job. Imports PyTorch, only
    when an experiment sets either.
    """
    features = config["features"]
    for key, train in experiment_trains(config).items():
        if train.get("adapter") is None and not train.get("augment"):
            continue
        from seldflow.augment import check_augment  # imports PyTorch
        from seldflow.models.adapters import check_adapter
        from seldflow.tasks import build_task, task_spec

        try:
            check_adapter(train["model"], train.get("adapter"))
            if train.get("augment"):
                method = build_task(task_spec(config, train)).label_augmentation()
                check_augment(train["augment"], feature_kind=features["kind"], method=method, n_bins=features["n_mels"])
        except ConfigError as exc:
            raise ConfigError(source, f"{key}.{exc.key}", exc.message) from None


def _check_model(config: Mapping[str, Any], train: Mapping[str, Any], key: str, source: str) -> None:
    from seldflow.feature_kinds import feature_channels  # imports PyTorch
    from seldflow.tasks import build_task, task_spec

    channels = feature_channels(config["features"]["kind"])
    resolved = {"n_mels": config["features"]["n_mels"], **build_task(task_spec(config, train)).model_args()}
    model_args = dict(train["model_args"])
    try:
        _build_on_meta(train["model"], channels, {**resolved, **model_args})
    except ConfigError as exc:
        culprit = _culprit(train["model"], channels, resolved, model_args)
        # An experiment without model_args of its own shares the very object of the main train section.
        inherited = key != "train" and train["model_args"] is config["train"].get("model_args")
        where = f"{key}.model_args" + (f".{culprit}" if culprit else "")
        message = exc.message + (INHERITED if inherited else "")
        raise ConfigError(source, where, message) from None


def _culprit(model: str, channels: int, resolved: Mapping[str, Any], model_args: Mapping[str, Any]) -> str | None:
    """The first argument without which the model builds: the one the error message should point at."""
    for name in model_args:
        rest = {arg: value for arg, value in model_args.items() if arg != name}
        try:
            _build_on_meta(model, channels, {**resolved, **rest})
        except ConfigError:
            continue
        return name
    return None


def _build_on_meta(model: str, channels: int, model_args: Mapping[str, Any]) -> None:
    import torch

    from seldflow.models import build_model

    with torch.device("meta"):
        build_model(model, channels, **model_args)


def _check_cross_references(config: Mapping[str, Any], source: str) -> None:
    dataset = config["dataset"]
    starss = config.get("starss", {})
    made = set(starss.get("stereo_splits", {})) | set(starss.get("window_splits", []))
    if dataset["source"] == "synthetic":
        _check_synthesis(config, made, source)
    overlap = set(dataset["train_splits"]) & set(dataset["test_splits"])
    if overlap:
        raise ConfigError(source, "dataset.test_splits", f"splits {sorted(overlap)} are also training splits")
    labelled = set(dataset["eval_splits"]) & (set(dataset["train_splits"]) | set(dataset["test_splits"]))
    if labelled:
        raise ConfigError(source, "dataset.eval_splits", f"splits {sorted(labelled)} are also train or test splits")
    if starss.get("window_splits") and config["features"]["kind"] not in ("foa", "mic"):
        raise ConfigError(source, "starss.window_splits", "STARSS23 windows feed the foa or mic feature kinds only")
    features = config["features"]
    if features["win_length"] > features["n_fft"]:
        raise ConfigError(source, "features.win_length", "must not exceed features.n_fft")


def _check_synthesis(config: Mapping[str, Any], made: set[str], source: str) -> None:
    dataset, synthesis = config["dataset"], config["synthesis"]
    for key in ("train_splits", "test_splits"):
        for split in dataset[key]:
            if split not in synthesis["splits"] and split not in made:
                raise ConfigError(source, f"dataset.{key}", f"split '{split}' is not defined under synthesis.splits")
    rooms = synthesis["rooms"]
    kinds = ("specs", "measured", "sofa")
    for first, second in ((0, 1), (0, 2), (1, 2)):
        shared = set(rooms[kinds[first]]) & set(rooms[kinds[second]])
        if shared:
            raise ConfigError(source, f"synthesis.rooms.{kinds[second]}", f"rooms {sorted(shared)} defined twice")
    known = set(rooms["specs"]) | set(rooms["measured"]) | set(rooms["sofa"])
    bank = synthesis["source_bank"]
    for name, split in synthesis["splits"].items():
        for room in split["rooms"]:
            if room not in known:
                raise ConfigError(
                    source,
                    f"synthesis.splits.{name}.rooms",
                    f"room '{room}' is not in synthesis.rooms.specs, .measured or .sofa",
                )
        if bank["path"] is None and split["source_split"] not in bank["clips_per_class"]:
            raise ConfigError(
                source,
                f"synthesis.splits.{name}.source_split",
                f"'{split['source_split']}' is not a key of synthesis.source_bank.clips_per_class",
            )
    if bank["min_seconds"] > bank["max_seconds"]:
        raise ConfigError(source, "synthesis.source_bank.min_seconds", "is larger than max_seconds")
    for key in ("events_per_clip", "angular_speed_deg_s", "snr_db"):
        low, high = synthesis["mixtures"][key]
        if low > high:
            raise ConfigError(source, f"synthesis.mixtures.{key}", f"range [{low}, {high}] is reversed")


def derive_seed(seed: int, *names: str) -> int:
    """A stable 32-bit seed for one named use of the master seed (independent of Python's hash salt)."""
    return zlib.crc32("/".join([str(seed), *names]).encode()) & 0x7FFFFFFF
