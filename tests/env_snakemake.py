"""The test suite's ``snakemake``, with every Python rule script run by another interpreter through env_runner.py.

    python env_snakemake.py <snakemake arguments>       # SELDFLOW_ENV_PYTHON, SELDFLOW_ENV_JOBS in the environment

The workflow itself (parsing, the DAG, input functions, params, checks of the outputs, benchmark files) runs as
usual; only the step that starts the rule's script changes. Snakemake would start it with its own interpreter (or a
conda env's) behind a preamble that unpickles the job and appends this venv's site-packages to ``sys.path``. Here the
job Snakemake built (input, output, params, log, wildcards, resources, threads, config) is written as JSON and
:mod:`env_runner` runs the script with ``$SELDFLOW_ENV_PYTHON -I``, handing over only the search paths the
workflow added (``src/``, which ``rules/common.smk`` inserts, and the workflow's folders), never this interpreter's
own. Start it without ``PYTHONPATH``: the workflow must put ``src/`` on the path itself.

It leans on three Snakemake internals (``PythonScript.execute_script`` and its attributes, ``Namedlist._get_names``,
``snakemake.common.get_snakemake_searchpaths``); a Snakemake release that changes them fails these runs loudly.

``SELDFLOW_ENV_JOBS`` is a folder: each job leaves ``<n>-<rule>.json`` (the job) and ``<n>-<rule>.run.json``
(the interpreter and search path the script ran with, see env_runner.py).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from snakemake import script
from snakemake.cli import main
from snakemake.common import get_snakemake_searchpaths

RUNNER = Path(__file__).with_name("env_runner.py")
SRC = os.path.realpath(Path(__file__).parents[1] / "src")
# An editable install puts src/ on this interpreter's path as well; withdrawn here, so that only the workflow's own
# insertion (rules/common.smk) can hand it to the scripts, as with a plain install.
sys.path[:] = [path for path in sys.path if os.path.realpath(path) != SRC]
# This interpreter's own search path, before the workflow adds to it: never handed to the environment.
OWN_PATHS = {os.path.realpath(path) for path in sys.path if path} | {os.path.realpath(Path(__file__).parent)}
_counter = itertools.count()
_lock = threading.Lock()


def namedlist(value: Any) -> dict[str, Any]:
    """A snakemake Namedlist as its items and its ``name -> (start, end)`` layout."""
    return {"items": list(value), "names": {name: list(span) for name, span in value._get_names()}}


def json_value(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"a job value of type {type(value).__name__} has no JSON form: {value!r}")


def execute_script(self: script.PythonScript, fname: str, edit: bool = False) -> None:
    """Replaces ``PythonScript.execute_script``: run the rule's own script file in the environment's interpreter."""
    searchpaths = get_snakemake_searchpaths()  # what Snakemake's preamble appends (see PythonScript)
    if self.is_local:
        searchpaths.append(self.path.get_basedir().get_path_or_uri(secret_free=True))
    added = [path for path in dict.fromkeys(searchpaths) if os.path.realpath(path) not in OWN_PATHS]
    params = namedlist(self.params)
    jobs = Path(os.environ["SELDFLOW_ENV_JOBS"])
    with _lock:
        stem = jobs / f"{next(_counter)}-{self.rulename}"
    job = {
        "rule": self.rulename,
        "script": os.path.realpath(self.path.get_path_or_uri(secret_free=True)),
        "scriptdir": self.path.get_basedir().get_path_or_uri(secret_free=True),
        "searchpaths": added,
        "input": namedlist(self.input),
        "output": namedlist(self.output),
        "params": params,
        "log": namedlist(self.log),
        "wildcards": namedlist(self.wildcards),
        "resources": namedlist(self.resources),
        "threads": self.threads,
        "config": self.config,
        "record": f"{stem}.run.json",
    }
    Path(f"{stem}.json").write_text(json.dumps(job, default=json_value, indent=1))
    python = os.environ["SELDFLOW_ENV_PYTHON"]
    # Through Snakemake's own shell, as the original does (its benchmark record follows the child), with the
    # environment's bin first on PATH as a conda env's activation puts it (a script may start the env's own tools).
    self._execute_cmd(
        'PATH={bindir:q}:"$PATH" {python:q} -I {runner:q} {job:q}',
        bindir=str(Path(python).parent),
        python=python,
        runner=str(RUNNER),
        job=f"{stem}.json",
        is_python_script=True,
    )


script.PythonScript.execute_script = execute_script  # type: ignore[method-assign]

if __name__ == "__main__":
    # From PYTHONPATH, src/ would count as this interpreter's own path and be withheld from the scripts; the
    # workflow puts it on the search path itself (rules/common.smk).
    assert "PYTHONPATH" not in os.environ, "start env_snakemake.py without PYTHONPATH"
    main(sys.argv[1:])
