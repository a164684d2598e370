"""Named S5 experiments: separator configurations trained side by side, and the runs scored from them.

The main experiment (``s5.experiment``) trains ``s5.separator``. Each entry of ``s5.experiments`` holds overrides
of the section it ``extends`` (another experiment's name; by default the main separator): a mapping merges key by
key into the mapping it overrides, any other value replaces, and ``null`` switches a guided option off
(``model_args: {time_film: null}`` is the "w/o Time-FiLM" ablation). So an ablation states only what it changes,
and experiments that leave the budget (``epochs``, ``epoch_length``, ``batch_size``) alone all train with the same.

The Stage-2 SED of a guided separator: a ``model_args.sed`` mapping without ``model`` is the configured detector
``s5.sed`` (its ``model`` and ``model_args``), the one the ``s5_sed`` rule fine-tunes, so that its checkpoint can
initialise it (``pretrained.sed_finetuned``). Stated once, the detector cannot drift between the two places.

Runs (the rows of the summary table): an experiment is scored as one run of the same name, or, with
``inference_iterations: [n, ...]`` (iterative separators only; inherited along ``extends`` like the settings), as
one run per count, ``<name>-inf<n>``, all from the one trained separator. Every run is scored in every label
column (:data:`LABEL_SOURCES`).

Nothing here imports PyTorch: the workflow resolves experiments while it plans.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seldflow.errors import ConfigError

CONFIG_SOURCE = "s5"
# Keys of an experiment entry that are not separator settings.
EXPERIMENT_ONLY_KEYS = ("extends", "inference_iterations")
# Keys of a separator section that describe the network and its optimiser groups; the others are TrainSettings.
NETWORK_KEYS = ("model", "model_args", "param_groups", "pretrained")
# Run name of one inference-iteration count of an experiment: <experiment><RUN_SUFFIX><count>.
RUN_SUFFIX = "-inf"
# Where the queries come from, one scored column each: the baseline tagger, the fine-tuned SED (both Stage-1
# detectors trained by the workflow) and the reference labels (the separator's ceiling).
DETECTOR_SOURCES = ("tagger", "sed")
LABEL_SOURCES = (*DETECTOR_SOURCES, "oracle")


@dataclass(frozen=True)
class S5Run:
    """One scored run: results under ``results/s5/<name>/``, separator of ``experiment``, optional pass count."""

    name: str
    experiment: str
    inference_iterations: int | None = None


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied: mappings merge recursively, anything else (``null`` too) replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def experiment_names(s5: Mapping[str, Any]) -> list[str]:
    """The main experiment, then the named ones in config order."""
    names = [s5["experiment"], *s5.get("experiments", {})]
    if s5["experiment"] in s5.get("experiments", {}):
        raise ConfigError(CONFIG_SOURCE, f"experiments.{s5['experiment']}", "is the main experiment's name")
    return names


def separator_sections(s5: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every experiment's resolved separator section (overrides applied, Stage-2 SED filled in), main first."""
    return {name: separator_section(s5, name) for name in experiment_names(s5)}


def separator_section(s5: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One experiment's resolved separator section (module docstring)."""
    return fill_stage2_sed(_resolve(s5, name, ()), s5.get("sed"))


def _resolve(s5: Mapping[str, Any], name: str, chain: tuple[str, ...]) -> dict[str, Any]:
    main = s5["experiment"]
    if name == main:
        return copy.deepcopy(dict(s5["separator"]))
    experiments = s5.get("experiments", {})
    if name not in experiments:
        where = f"experiments.{chain[-1]}.extends" if chain else "experiments"
        raise ConfigError(CONFIG_SOURCE, where, f"unknown experiment {name!r}")
    if name in chain:
        cycle = " -> ".join([*chain[chain.index(name) :], name])
        raise ConfigError(CONFIG_SOURCE, f"experiments.{name}.extends", f"experiments extend in a cycle: {cycle}")
    entry = experiments[name] or {}
    base = _resolve(s5, entry.get("extends", main), (*chain, name))
    return merge(base, {key: value for key, value in entry.items() if key not in EXPERIMENT_ONLY_KEYS})


def fill_stage2_sed(section: Mapping[str, Any], sed: Mapping[str, Any] | None) -> dict[str, Any]:
    """``section`` with a Stage-2 SED stated without ``model`` completed from ``s5.sed``."""
    out = copy.deepcopy(dict(section))
    stage2 = (out.get("model_args") or {}).get("sed")
    if isinstance(stage2, Mapping) and "model" not in stage2 and sed is not None:
        out["model_args"]["sed"] = {"model": sed["model"], "model_args": copy.deepcopy(sed["model_args"]), **stage2}
    return out


def split_section(section: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(network keys, training settings) of a resolved separator section."""
    network = {key: value for key, value in section.items() if key in NETWORK_KEYS}
    settings = {key: value for key, value in section.items() if key not in NETWORK_KEYS}
    return network, settings


def experiment_runs(s5: Mapping[str, Any], name: str) -> list[S5Run]:
    """The runs of one experiment: itself, or one per inference-iteration count (its own list, else the nearest
    one up its ``extends`` chain: an experiment extending an iterative one keeps its grid)."""
    counts = _inference_iterations(s5, name)
    if not counts:
        return [S5Run(name, name)]
    return [S5Run(f"{name}{RUN_SUFFIX}{count}", name, int(count)) for count in counts]


def _inference_iterations(s5: Mapping[str, Any], name: str) -> list[int]:
    experiments = s5.get("experiments", {})
    seen: set[str] = set()
    while name in experiments and name not in seen:  # a cycle is reported by separator_section
        seen.add(name)
        entry = experiments[name] or {}
        if "inference_iterations" in entry:
            return list(entry["inference_iterations"] or [])
        name = entry.get("extends", s5["experiment"])
    return []


def all_runs(s5: Mapping[str, Any]) -> dict[str, S5Run]:
    """Every run of every experiment by name; two with one name are a config error."""
    runs: dict[str, S5Run] = {}
    for name in experiment_names(s5):
        for run in experiment_runs(s5, name):
            if run.name in runs:
                raise ConfigError(CONFIG_SOURCE, f"experiments.{name}", f"run name {run.name!r} is taken twice")
            runs[run.name] = run
    return runs


def runs_of(s5: Mapping[str, Any], names: Sequence[str], key: str) -> list[S5Run]:
    """The runs of the experiments listed under ``key`` (``run_experiments``, ``summary_experiments``)."""
    known = experiment_names(s5)
    runs = []
    for name in names:
        if name not in known:
            raise ConfigError(CONFIG_SOURCE, key, f"{name!r} is neither s5.experiment nor under s5.experiments")
        runs += experiment_runs(s5, name)
    return runs


def main_runs(s5: Mapping[str, Any]) -> list[S5Run]:
    """What ``s5_all`` builds (the baseline system's demo): the runs of the main experiment."""
    return experiment_runs(s5, s5["experiment"])


def listed_runs(s5: Mapping[str, Any]) -> list[S5Run]:
    """What ``s5_experiments`` builds (the second-place system's demo by default): the runs of
    ``run_experiments``, without the main experiment's, which ``s5_all`` owns."""
    names = [name for name in dict.fromkeys(s5.get("run_experiments", [])) if name != s5["experiment"]]
    return runs_of(s5, names, "run_experiments")


def summary_runs(s5: Mapping[str, Any]) -> list[S5Run]:
    """The rows of ``results/s5/summary.csv``: the runs of ``summary_experiments``."""
    return runs_of(s5, s5.get("summary_experiments", []), "summary_experiments")
