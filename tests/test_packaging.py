"""Packaging and invocation: what installs, with which pins, and how the workflow is called.

* pyproject declares a torch range, the exact pin lives in constraints.txt, and ``make`` installs with it;
* every ``envs/*.yaml`` lists what its rules' scripts import (followed through seldflow), installs no seldflow
  (rule scripts find the repository's ``src/`` on the search path Snakemake hands them) and the package metadata
  covers what the library imports;
* ``snakemake --rulegraph`` / ``--dag`` work without ``--cores``; the profiles and their README agree on ``cores``.

The env check is static (an import graph from the source, no conda here): it follows every import of the rule
script and, transitively, of each seldflow module it reaches, including imports deferred into functions and
modules run as ``python -m seldflow...`` children; imports inside ``try:`` are optional extras and skipped.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from helpers import REPO, SNAKEMAKE, rules_with_envs, tiny_config, write_config
from packaging.requirements import Requirement

SRC = REPO / "src"
# A string constant spelling a seldflow module: a child process started with `python -m <it>`.
MODULE_NAME = re.compile(r"seldflow(?:\.\w+)+")
# Import name -> the package names (conda-forge or PyPI) that provide it.
PROVIDERS = {
    "h5py": {"h5py"},
    "jsonschema": {"jsonschema"},
    "librosa": {"librosa"},
    "matplotlib": {"matplotlib", "matplotlib-base"},
    "netCDF4": {"netcdf4"},
    "numba": {"numba"},
    "numpy": {"numpy"},
    "pandas": {"pandas"},
    "psutil": {"psutil"},
    "pygments": {"pygments"},
    "pyroomacoustics": {"pyroomacoustics"},
    "scipy": {"scipy"},
    "snakemake": {"snakemake"},
    "soundfile": {"soundfile", "pysoundfile"},
    "threadpoolctl": {"threadpoolctl"},
    "torch": {"torch", "pytorch"},
    "tqdm": {"tqdm"},
    "yaml": {"pyyaml"},
}
# Imports deferred into a function that an env's rules never call (checked by reading those rules' scripts).
NOT_REACHED = {
    "score.yaml": {
        "torch": "seldflow.report.write_complexity_table imports the model zoo; only rule model_table (torch env) "
        "calls it, rules report and summary do not",
    },
}


# --------------------------------------------------------------------------------------------------------------
# The import graph


def module_file(name: str) -> Path | None:
    """The source file of a seldflow module or package, or None when ``name`` is not one (e.g. a function)."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _optional(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside ``try:`` bodies: imports there are optional extras with a fallback."""
    blocks = [block for block in ast.walk(tree) if isinstance(block, ast.Try)]
    return {id(node) for block in blocks for statement in block.body for node in ast.walk(statement)}


def imported_names(path: Path, package: str) -> Iterator[str]:
    """Every module a file imports (anywhere, not only at the top), ``from x import y`` also as ``x.y``, and every
    string constant naming a seldflow module (a child run with ``python -m``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    optional = _optional(tree)
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join([*parts[: len(parts) - node.level + 1], node.module or ""]) if node.level else node.module
            base = base.strip(".")
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.fullmatch(node.value):
            yield node.value


def third_party_imports(start: Path, name: str = "__main__") -> dict[str, str]:
    """Top-level third-party modules ``start`` needs, through every seldflow module it reaches: import -> importer."""
    needed: dict[str, str] = {}
    seen: set[str] = set()
    todo = [(start, name)]
    while todo:
        path, module = todo.pop()
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for imported in imported_names(path, package):
            top = imported.partition(".")[0]
            if top == "seldflow":
                parts = imported.split(".")
                for depth in range(1, len(parts) + 1):
                    prefix = ".".join(parts[:depth])
                    source = module_file(prefix)
                    if source and prefix not in seen:
                        seen.add(prefix)
                        todo.append((source, prefix))
            elif top not in sys.stdlib_module_names and top != "__future__":
                needed.setdefault(top, module)
    return needed


def package_name(requirement: str) -> str:
    """``numpy>=2`` -> ``numpy``; conda's ``python=3.11`` -> ``python`` (names compared lower-case, ``_`` as ``-``)."""
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def env_packages(env: dict) -> tuple[set[str], list[str]]:
    """The package names an env installs (conda and pip) and its raw pip entries."""
    conda = [item for item in env["dependencies"] if isinstance(item, str)]
    pip = [entry for item in env["dependencies"] if isinstance(item, dict) for entry in item.get("pip", [])]
    return {package_name(item) for item in conda + pip}, pip


# --------------------------------------------------------------------------------------------------------------
# Rules and their envs


ENV_RULES = rules_with_envs()


def test_the_rule_parser_sees_every_rule() -> None:
    names = {rule for rule, _, _ in ENV_RULES}
    assert {"download", "benchmark", "train", "split_check", "score", "mixtures", "model_table"} <= names
    assert {env.name for _, env, _ in ENV_RULES} == {p.name for p in (REPO / "envs").glob("*.yaml")}


@pytest.mark.parametrize("env_file", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_lists_what_its_rules_import(env_file: Path) -> None:
    env = yaml.safe_load(env_file.read_text())
    packages, pip = env_packages(env)
    assert not [entry for entry in pip if entry.startswith("-e") or "/" in entry or entry.startswith(".")], (
        f"{env_file.name} installs a path; Snakemake resolves it against its copy under .snakemake/conda/"
    )
    allowed = NOT_REACHED.get(env_file.name, {})
    missing = {}
    for rule, env, script in ENV_RULES:
        if env != env_file.resolve() or script is None:
            continue
        for module, importer in third_party_imports(script).items():
            assert module in PROVIDERS, f"{module} (imported by {importer}) is not in PROVIDERS: add its packages"
            if module not in allowed and not PROVIDERS[module] & packages:
                missing[module] = f"rule {rule}, via {importer}"
    assert missing == {}, f"{env_file.name} lacks {missing}"


def test_a_deferred_import_is_followed() -> None:
    """The benchmark's memory child runs as ``python -m``; its psutil and the training code count for the rule."""
    needed = third_party_imports(REPO / "workflow" / "scripts" / "benchmark.py")
    assert needed["psutil"] == "seldflow.bench.memory_child"
    assert "torch" in third_party_imports(REPO / "workflow" / "scripts" / "summary.py")  # hence NOT_REACHED


def test_package_metadata_covers_every_library_import() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {package_name(requirement) for requirement in project["dependencies"]}
    missing = {}
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for imported in imported_names(path, module if path.name == "__init__.py" else module.rpartition(".")[0]):
            top = imported.partition(".")[0]
            if top in sys.stdlib_module_names or top in ("seldflow", "__future__"):
                continue
            assert top in PROVIDERS, f"{top} (imported by {module}) is not in PROVIDERS"
            if not PROVIDERS[top] & declared:
                missing[top] = module
    assert missing == {}, f"pyproject.toml's dependencies lack {missing}"


# --------------------------------------------------------------------------------------------------------------
# Pins and the install


def torch_requirement(lines: list[str]) -> Requirement:
    return next(Requirement(line) for line in lines if package_name(line) == "torch")


def constraint_lines() -> list[str]:
    text = (REPO / "constraints.txt").read_text()
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def test_metadata_declares_a_torch_range_and_constraints_pin_it() -> None:
    metadata = torch_requirement(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    assert metadata.specifier and not any(spec.operator in ("==", "===") for spec in metadata.specifier)
    pin = torch_requirement(constraint_lines())
    [exact] = list(pin.specifier)
    assert exact.operator == "==" and metadata.specifier.contains(exact.version)
    for env_file in sorted((REPO / "envs").glob("*.yaml")):
        _, pip = env_packages(yaml.safe_load(env_file.read_text()))
        torch = [Requirement(entry) for entry in pip if package_name(entry) == "torch"]
        assert all(req.specifier == pin.specifier for req in torch), f"{env_file.name} pins another torch"


def make_dry_run(tmp_path: Path, *flags: str) -> str:
    """What ``make`` would run to bring a venv (already installed, stamp newer than every file) up to date."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    (venv / "bin" / "python").touch()
    (venv / ".installed").touch()
    stamp = str(venv / ".installed")
    result = subprocess.run(
        ["make", "-n", *flags, f"VENV={venv}", stamp], cwd=REPO, capture_output=True, text=True, check=True
    )
    return result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_installs_with_the_constraints_and_reinstalls_when_they_change(tmp_path: Path) -> None:
    assert "pip install" not in make_dry_run(tmp_path)  # up to date
    commands = make_dry_run(tmp_path, "-W", "constraints.txt")  # as if constraints.txt had just changed
    assert re.search(r'pip install .*-c constraints\.txt -e "\.\[dev\]"', commands), commands


# --------------------------------------------------------------------------------------------------------------
# Invocation


@pytest.mark.parametrize("what", ["--rulegraph", "--dag"])
def test_graphs_need_no_cores(tmp_path: Path, what: str) -> None:
    """``make dag`` and a plain ``snakemake --dag``: no rule may need ``workflow.cores``, which raises without
    ``--cores``."""
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path)]
    command += ["--configfile", str(REPO / "config" / "config.yaml"), what, "mermaid-js"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "flowchart" in result.stdout and "train" in result.stdout


def test_rule_scripts_find_the_repository_library_on_their_search_path(tmp_path: Path) -> None:
    """A rule's conda env has no seldflow installed: its script relies on the search path Snakemake hands it."""
    write_config(tmp_path, tiny_config())
    shutil.copy(REPO / "config" / "schema.yaml", tmp_path / "config" / "schema.yaml")  # common.smk validates
    (tmp_path / "probe.py").write_text(
        "import json, sys\nfrom pathlib import Path\nPath(snakemake.output[0]).write_text(json.dumps(sys.path))\n"
    )
    (tmp_path / "Snakefile").write_text(
        'configfile: "config/config.yaml"\n'
        f'include: "{REPO}/rules/common.smk"\n'
        'rule probe:\n    output: "path.json"\n    script: "probe.py"\n'
    )
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    command = [SNAKEMAKE, "--snakefile", str(tmp_path / "Snakefile"), "--directory", str(tmp_path), "--cores", "1"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=environment)
    assert result.returncode == 0, result.stderr
    assert str(SRC) in yaml.safe_load((tmp_path / "path.json").read_text())


def test_profiles_and_their_readme_agree_on_cores() -> None:
    profiles = {
        name: yaml.safe_load((REPO / "profiles" / name / "config.yaml").read_text()) or {}
        for name in ("default", "slurm")
    }
    actual = {str(profile["cores"]) for profile in profiles.values() if "cores" in profile}
    comments = "\n".join(
        line
        for name in profiles
        for line in (REPO / "profiles" / name / "config.yaml").read_text().splitlines()
        if line.lstrip().startswith("#")
    )
    readme = (REPO / "profiles" / "README.md").read_text()
    claimed = set(re.findall(r"`cores: (\S+?)`", readme + comments))
    assert claimed <= actual, f"README or comments mention cores {claimed - actual}; the profiles set {actual}"
    # The workflow profile is also loaded under --profile profiles/slurm and would override that profile's cores.
    assert "cores" not in profiles["default"]
    assert "no `cores`" in readme
