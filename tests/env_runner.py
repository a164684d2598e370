"""Run one workflow rule script inside a rule environment's own interpreter, as Snakemake's ``script:`` does.

Started by :mod:`env_snakemake` as ``<env python> -I env_runner.py <job.json>`` (isolated: no ``PYTHONPATH``, no user
site-packages, no runner folder on the path), so the script sees only the environment's packages plus the search
paths the workflow itself adds (the repository's ``src/``, the script's folder). Snakemake's own preamble cannot be
used: it unpickles a ``snakemake`` object, which needs the snakemake package, and extends ``sys.path`` with the
directory of the snakemake that runs the workflow (the test suite's venv), which would hide a package the
environment lacks. Here the object is rebuilt from JSON with the same attribute and index access.

Standard library only: this file runs in environments that have nothing of the test suite.
"""

from __future__ import annotations

import importlib.util
import json
import runpy
import sys
from pathlib import Path
from typing import Any


class Namedlist(list):
    """A list whose names also give attribute and key access, as ``snakemake.io.Namedlist`` offers.

    ``names`` maps a name to ``(start, end)``: ``end`` None names the one item at ``start``, otherwise the sub-list
    ``start:end`` (a named input given as a list), exactly Snakemake's layout.
    """

    def __init__(self, items: list[Any], names: dict[str, list[int | None]] | None = None) -> None:
        super().__init__(items)
        self._names: dict[str, tuple[int, int | None]] = {}
        for name, (start, end) in (names or {}).items():
            self._names[name] = (start, end)
            value = self[start] if end is None else Namedlist(self[start:end])
            setattr(self, name, value)

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        return getattr(self, key) if isinstance(key, str) else super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._names)

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return [(name, getattr(self, name)) for name in self._names]

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self._names else default


class SnakemakeJob:
    """What a rule script reads as the global ``snakemake``: input, output, params, log, wildcards, resources,
    threads, config, rule and scriptdir."""

    def __init__(self, job: dict[str, Any]) -> None:
        for field in ("input", "output", "params", "log", "wildcards", "resources"):
            setattr(self, field, Namedlist(job[field]["items"], job[field]["names"]))
        self.threads: int = job["threads"]
        self.config: dict[str, Any] = job["config"]
        self.rule: str = job["rule"]
        self.scriptdir: str = job["scriptdir"]
        self.bench_iteration = None


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    record = Path(job["record"])
    facts = {
        "executable": sys.executable,
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        # Checked before the workflow's search paths are added: the environment must not carry seldflow itself.
        "seldflow_installed": importlib.util.find_spec("seldflow") is not None,
    }
    # As Snakemake's preamble does (sys.path.extend), with the workflow's additions only.
    sys.path.extend(job["searchpaths"])
    facts["path"] = list(sys.path)
    record.write_text(json.dumps(facts))
    try:
        runpy.run_path(job["script"], init_globals={"snakemake": SnakemakeJob(job)}, run_name="__main__")
    finally:
        seldflow = sys.modules.get("seldflow")
        facts["seldflow_file"] = getattr(seldflow, "__file__", None)
        facts["modules"] = sorted({name.partition(".")[0] for name in sys.modules})
        record.write_text(json.dumps(facts))


if __name__ == "__main__":
    main(sys.argv[1])
