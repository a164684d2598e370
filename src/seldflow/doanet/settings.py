"""The ``doanet`` configuration section read once: each experiment's settings, its network and its loss.

An experiment is the ``doanet.train`` section with the experiment's keys replacing those of ``train``; ``loss`` is
merged one level deeper (an experiment's loss keys replace those of ``train.loss``, keys given nowhere take the
reference values of :class:`~seldflow.doanet.loss.DOAnetLossConfig`). What the network needs beyond
``model_args`` follows from the data and the loss, so the configuration never states it twice: the input
channels from the feature kind (:mod:`seldflow.feature_kinds`), the mel bins from ``doanet.features``, ``n_max``
from ``doanet.hnet`` and the activity head from ``loss.activity``.

:func:`check_doanet_config` runs when the workflow starts: every experiment's loss is validated and its network
built on PyTorch's ``meta`` device, and the feature hop must make whole label frames after the network's time
pooling, so a misspelt argument or an impossible combination fails the dry run with the key named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from seldflow.errors import ConfigError
from seldflow.feature_kinds import feature_channels
from seldflow.tau_nigens2020 import LABEL_HOP_SECONDS, SAMPLE_RATE

SOURCE = "config"
SECTION = "doanet"
# Feature kinds DOAnet trains on (the two formats of TAU-NIGENS 2020).
FORMATS: tuple[str, ...] = ("foa", "mic")
# The DOAnet splits of TAU-NIGENS 2020 (seldflow.tau_nigens2020.SPLITS) and the overlap-augmented training scenes.
AUGMENTED_SPLIT = "augmented"


def experiment_names(doanet: Mapping[str, Any]) -> list[str]:
    """Every named experiment, in configuration order."""
    return list(doanet["experiments"])


def experiment_settings(doanet: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The training settings of experiment ``name``: ``doanet.train`` with the experiment's keys replacing its own
    (the loss merged key by key)."""
    try:
        overrides = doanet["experiments"][name]
    except KeyError:
        known = ", ".join(doanet["experiments"])
        raise ConfigError(
            SOURCE, f"{SECTION}.run_experiments", f"unknown experiment {name!r} (known: {known})"
        ) from None
    overrides = dict(overrides or {})
    loss = {**(doanet["train"].get("loss") or {}), **(overrides.pop("loss", None) or {})}
    return {**doanet["train"], **overrides, "loss": loss}


def loss_config(settings: Mapping[str, Any], where: str = f"{SECTION}.train"):
    """The :class:`~seldflow.doanet.loss.DOAnetLossConfig` of one experiment's ``loss`` mapping."""
    from seldflow.doanet.loss import DOAnetLossConfig

    loss = dict(settings.get("loss") or {})
    known = {item.name for item in fields(DOAnetLossConfig)}
    unknown = sorted(set(loss) - known)
    if unknown:
        raise ConfigError(
            SOURCE, f"{where}.loss.{unknown[0]}", f"unknown loss setting (known: {', '.join(sorted(known))})"
        )
    try:
        return DOAnetLossConfig(**loss)
    except (TypeError, ValueError) as exc:
        raise ConfigError(SOURCE, f"{where}.loss", str(exc)) from None


def network_args(settings: Mapping[str, Any], doanet: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of the experiment's network: its ``model_args`` and what the data and loss imply."""
    derived = {
        "in_channels": feature_channels(settings["features"]),
        "n_mels": doanet["features"]["n_mels"],
        "n_max": doanet["hnet"]["n_max"],
        "activity": bool((settings.get("loss") or {}).get("activity", True)),
    }
    given = dict(settings.get("model_args") or {})
    clash = sorted(set(given) & set(derived))
    if clash:
        raise ConfigError(
            SOURCE, f"{SECTION}.train.model_args.{clash[0]}", "follows from the features, hnet and loss settings"
        )
    return {**given, **derived}


def label_hop_samples() -> int:
    """Samples per 100-ms label frame at the dataset's rate."""
    return round(LABEL_HOP_SECONDS * SAMPLE_RATE)


def check_doanet_config(doanet: Mapping[str, Any]) -> None:
    """Validate every experiment (loss, network on ``meta``) and the feature hop against the label frames."""
    import torch

    from seldflow.doanet.model import build_doanet
    from seldflow.doanet.outputs import activity_rule

    for name in doanet["run_experiments"]:
        experiment_settings(doanet, name)
    for name in experiment_names(doanet):
        where = f"{SECTION}.experiments.{name}"
        settings = experiment_settings(doanet, name)
        loss = loss_config(settings, where)
        try:
            activity_rule(loss, settings.get("activity_rule"))
        except ValueError as exc:
            raise ConfigError(SOURCE, f"{where}.activity_rule", str(exc)) from None
        args = network_args(settings, doanet)
        with torch.device("meta"):
            try:
                model = build_doanet(settings["model"], **args)
            except ConfigError as exc:
                raise ConfigError(SOURCE, f"{where}.{exc.key}", exc.message) from None
        pooled = math.prod(model.time_pools) * doanet["features"]["hop_length"]
        if pooled != label_hop_samples():
            raise ConfigError(
                SOURCE,
                f"{SECTION}.features.hop_length",
                f"hop {doanet['features']['hop_length']} × time pools {list(model.time_pools)} = {pooled} samples, "
                f"not one {LABEL_HOP_SECONDS * 1000:g}-ms label frame ({label_hop_samples()} samples)",
            )
    features = doanet["features"]
    if features["win_length"] > features["n_fft"]:
        raise ConfigError(SOURCE, f"{SECTION}.features.win_length", "must not exceed n_fft")
    hnet = doanet["hnet"]
    for key in ("counts", "test_counts"):
        if len(hnet[key]) != hnet["n_max"] + 1:
            raise ConfigError(SOURCE, f"{SECTION}.hnet.{key}", f"needs n_max + 1 = {hnet['n_max'] + 1} entries")
    if doanet["dataset"]["source"] == "embedded":
        check_embedded(doanet)


def check_embedded(doanet: Mapping[str, Any]) -> None:
    """The embedded dataset's splits name known rooms, none shared between splits, and known bank splits."""
    embedded = doanet["embedded"]
    where = f"{SECTION}.embedded"
    owner: dict[str, str] = {}
    for split, spec in embedded["splits"].items():
        for room in spec["rooms"]:
            if room not in embedded["rooms"]:
                raise ConfigError(SOURCE, f"{where}.splits.{split}.rooms", f"room {room!r} is not in {where}.rooms")
            if owner.setdefault(room, split) != split:
                raise ConfigError(
                    SOURCE, f"{where}.splits.{split}.rooms", f"room {room!r} is also a {owner[room]} room"
                )
        if spec["source_split"] not in embedded["source_bank"]["clips_per_class"]:
            raise ConfigError(
                SOURCE, f"{where}.splits.{split}.source_split", "not a key of source_bank.clips_per_class"
            )
    bank = embedded["source_bank"]
    if bank["min_seconds"] > bank["max_seconds"]:
        raise ConfigError(SOURCE, f"{where}.source_bank.min_seconds", "is larger than max_seconds")
    if embedded["mixtures"]["max_sources"] > doanet["hnet"]["n_max"]:
        raise ConfigError(SOURCE, f"{where}.mixtures.max_sources", "exceeds doanet.hnet.n_max, the network's slots")


def describe(settings: Mapping[str, Any]) -> str:
    """A short label of an experiment for tables: features, loss and augmentation, e.g. ``foa dmot+activity``."""
    loss = loss_config(settings)
    parts = ["mse"] if loss.mode == "mse" else ["dmotp" if loss.dmota_weight == 0 else "dmot"]
    if loss.activity:
        parts.append("activity")
    if settings.get("activity_rule") == "inactive_direction":
        parts.append("gated")
    text = f"{settings['features']} {'+'.join(parts)}"
    return text + (" augmented" if settings.get("augment") else "")
