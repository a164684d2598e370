"""Parameter counts of the model zoo per SELD method and feature kind: what ``seldflow params`` prints.

A module of its own, not part of :mod:`seldflow.models`: it needs the feature kinds (librosa) and the tasks, which
the scoring and report environments that import the registry do not have.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from seldflow.feature_kinds import FEATURE_KINDS
from seldflow.models import MODELS, REFERENCE_MODELS, build_model, parameters_on_meta, passt
from seldflow.models.adapters import ADAPTABLE_MODELS, AdapterSettings, freeze_for_adapterbit, trainable_summary
from seldflow.tasks import build_task
from seldflow.tasks.seld_methods import METHODS

# Label format whose class count sizes the output layer, per audio format of a feature kind: the DCASE2025 stereo
# set for stereo features, STARSS23's 13 classes (DCASE2024 format) for FOA and MIC features.
PARAMETER_LABEL_FORMATS: dict[str, str] = {"stereo": "dcase2025", "foa": "dcase2024", "mic": "dcase2024"}


# Models whose reference count comes from another implementation than the one seldflow's count reproduces: that
# count and how both were made, printed in the model's reference entry.
REFERENCE_CHECKS: dict[str, dict[str, Any]] = {
    "passt": {"reference_parameters": passt.REFERENCE_PARAMETERS, "counted": passt.REFERENCE_COUNTING},
}


@functools.cache
def _head_parameters(name: str, channels: int, output: str, n_classes: int) -> int:
    """Parameters with a given output layer; cached because feature kinds with equal channel counts share them."""
    return parameters_on_meta(name, channels, output=output, n_classes=n_classes)


def method_parameter_counts(name: str) -> dict[str, dict[str, int]]:
    """Parameters of model ``name`` per SELD method and feature kind: ``{method: {feature_kind: count}}``.

    Every architecture builds its last layer from the method's output layout, and its first from the feature
    kind's channel count, so both change the count.
    """
    counts: dict[str, dict[str, int]] = {}
    for method in METHODS:
        counts[method] = {}
        for kind, spec in FEATURE_KINDS.items():
            label_format = PARAMETER_LABEL_FORMATS[spec.audio_format]
            head = build_task({"name": "seld", "method": method, "label_format": label_format}).model_args()
            counts[method][kind] = _head_parameters(name, spec.output_channels, head["output"], head["n_classes"])
    return counts


# The AdapterBit configuration ``seldflow params`` counts: PSELDNets' FOA input (7 logmelIV channels) and its
# multi-ACCDOA head, with the reference adapter settings.
ADAPTERBIT_FEATURE_KIND = "foa"
ADAPTERBIT_METHOD = "maccdoa"


def adapterbit_parameter_counts(name: str, feature_kind: str = ADAPTERBIT_FEATURE_KIND) -> dict[str, Any]:
    """Total and trainable parameters of model ``name`` adapted for AdapterBit (adapters built, the rest frozen
    but biases and head), with the trainable ones split into adapters, biases and head; built on the meta device."""
    kind = FEATURE_KINDS[feature_kind]
    label_format = PARAMETER_LABEL_FORMATS[kind.audio_format]
    head = build_task({"name": "seld", "method": ADAPTERBIT_METHOD, "label_format": label_format}).model_args()
    settings = AdapterSettings()
    with torch.device("meta"):
        net = build_model(name, kind.output_channels, **head, **settings.model_args())
    freeze_for_adapterbit(net)
    described = {"feature_kind": feature_kind, "method": ADAPTERBIT_METHOD, "n_classes": head["n_classes"]}
    return {**described, **settings.spec(), **trainable_summary(net)}


def parameter_table() -> dict[str, dict[str, Any]]:
    """What ``seldflow params`` prints: per ``train.model`` name its reference count and its per-method counts.

    ``{model: {"reference": {"name", "channels", "parameters"}, "methods": {method: {feature_kind: count}}}}``;
    the reference entry is the configuration whose count the reference implementation reports
    (:data:`REFERENCE_MODELS`, default arguments), so it stays comparable with published figures; for the models
    of :data:`REFERENCE_CHECKS` it also holds the reference implementation's own count and how both were made.
    Models that take AdapterBit add ``"adapterbit"``: :func:`adapterbit_parameter_counts`.
    """
    references = {name: (reference_name, channels) for reference_name, (name, channels) in REFERENCE_MODELS.items()}
    table: dict[str, dict[str, Any]] = {}
    for name in MODELS:
        entry: dict[str, Any] = {}
        if name in references:
            reference_name, channels = references[name]
            parameters = parameters_on_meta(name, channels)
            entry["reference"] = {"name": reference_name, "channels": channels, "parameters": parameters}
            entry["reference"].update(REFERENCE_CHECKS.get(name, {}))
        entry["methods"] = method_parameter_counts(name)
        if name in ADAPTABLE_MODELS:
            entry["adapterbit"] = adapterbit_parameter_counts(name)
        table[name] = entry
    return table


# How the S5 counts are made, printed with them so that a reader can compare them with other figures.
S5_COUNTING = (
    "trainable parameters (requires_grad), built with default (reference) arguments on the meta device; buffers "
    "(STFT window, BatchNorm running statistics) excluded; the ResUNet decoder's spare BatchNorms and their FiLM "
    "layers, which the reference builds but never uses, included"
)


def s5_parameter_table() -> dict[str, Any]:
    """What ``seldflow params --task s5`` prints: the Task 4 separators against the reference estimates, and the
    taggers' backbone, head and per-step trainable counts."""
    from seldflow.models.separators import (
        REFERENCE_PARAMETER_ESTIMATES,
        REFERENCE_SEPARATORS,
        separator_parameters_on_meta,
    )
    from seldflow.models.taggers import TAGGERS, parameter_counts

    separators = {}
    for reference, (name, args) in REFERENCE_SEPARATORS.items():
        count = separator_parameters_on_meta(name, **args)
        estimate = REFERENCE_PARAMETER_ESTIMATES[reference]
        separators[name] = {
            "reference": reference,
            "parameters": count,
            "reference_estimate": estimate,
            "relative_difference": round((count - estimate) / estimate, 6),
        }
    return {
        "counted": S5_COUNTING,
        "separators": separators,
        "taggers": {name: parameter_counts(name) for name in TAGGERS},
    }


# How the DOAnet and Hnet counts are made.
DOANET_COUNTING = (
    "trainable parameters (requires_grad), built with default (reference) arguments and 64 mel bins on the meta "
    "device; convolution and linear biases and BatchNorm affine weights included, BatchNorm running statistics "
    "(buffers) excluded; 'parameters' with the activity head (dMOT + activity training), "
    "'without_activity_head' for the MSE and dMOT-only networks; Hnet for n_max = 2 DOAs"
)


def doanet_parameter_table() -> dict[str, Any]:
    """What ``seldflow params --task doanet`` prints: Hnet against its exact reference count (100,098) and DOAnet
    on FOA (7 channels) and MIC (10 channels) against the reference estimates, each with a per-part breakdown."""
    from seldflow.doanet.hnet import REFERENCE_HNET_PARAMETERS, hnet_parameter_breakdown
    from seldflow.doanet.model import (
        REFERENCE_DOANETS,
        REFERENCE_PARAMETER_ESTIMATES,
        doanet_parameter_breakdown,
        doanet_parameters_on_meta,
    )

    hnet_parts = hnet_parameter_breakdown()
    hnet = {"n_max": 2, "parameters": sum(hnet_parts.values()), "reference": REFERENCE_HNET_PARAMETERS}
    doanets = {}
    for reference, name in REFERENCE_DOANETS.items():
        args = {"in_channels": FEATURE_KINDS[reference].output_channels}
        parts = doanet_parameter_breakdown(name, **args)
        count = sum(parts.values())
        estimate = REFERENCE_PARAMETER_ESTIMATES[reference]
        doanets[reference] = {
            "model": name,
            "in_channels": args["in_channels"],
            "parameters": count,
            "without_activity_head": doanet_parameters_on_meta(name, **args, activity=False),
            "reference_estimate": estimate,
            "relative_difference": round((count - estimate) / estimate, 6),
            "parts": parts,
        }
    return {"counted": DOANET_COUNTING, "hnet": {**hnet, "parts": hnet_parts}, "doanet": doanets}


__all__ = [
    "DOANET_COUNTING",
    "PARAMETER_LABEL_FORMATS",
    "REFERENCE_CHECKS",
    "S5_COUNTING",
    "adapterbit_parameter_counts",
    "doanet_parameter_table",
    "method_parameter_counts",
    "parameter_table",
    "s5_parameter_table",
]
