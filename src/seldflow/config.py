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
    return config


def _check_experiments(config: dict[str, Any], schema: dict[str, Any], source: str) -> None:
    """Each experiment is the `train` section with its overrides applied: validate that merged section."""
    train_schema = schema["properties"]["train"]
    for name, overrides in config.get("experiments", {}).items():
        merged = {**config["train"], **overrides}
        error = best_match(Draft202012Validator(train_schema).iter_errors(merged))
        if error is not None:
            key = _error_key(error)
            raise ConfigError(source, f"experiments.{name}.{key}", error.message)
    for name in config.get("run_experiments", []):
        if name != config["experiment"] and name not in config.get("experiments", {}):
            raise ConfigError(source, "run_experiments", f"'{name}' is not defined under experiments")


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
