"""One owner each: the download marker's path and the shard arithmetic are spelled in one library function.

The rules, the Snakefile, the rule scripts and the rest of the library must ask ``seldflow.download.marker_path``
and ``seldflow.shards`` rather than write ``resources/<x>/.complete`` or ``ceil(n / shard_clips)`` again: two
spellings drift apart, and a marker path that differs between producer and consumer breaks the DAG silently.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import REPO

from seldflow.download import MARKER_NAME, marker_path
from seldflow.shards import shard_count, shard_names, shard_range

OWNERS = {REPO / "src" / "seldflow" / "download.py", REPO / "src" / "seldflow" / "shards.py"}
# Division or multiplication by the shard size, or a ceiling near "shard": recomputing what seldflow.shards owns.
SHARD_ARITHMETIC = re.compile(
    r"(?:shard_clips|SHARD_CLIPS)\s*(?:\*|//?)|(?:\*|//?)\s*(?:shard_clips|SHARD_CLIPS)\b|ceil\([^)\n]*shard", re.I
)
# Docstrings and comments may explain the layout; only code is held to the owners.
PROSE = re.compile(r'"""(?:.|\n)*?"""|#[^\n]*')


def workflow_code() -> dict[Path, str]:
    """The code (docstrings and comments removed) of the Snakefile, every rule file and script, and the library."""
    files = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    files += sorted((REPO / "workflow" / "scripts").glob("*.py"))
    files += sorted((REPO / "src" / "seldflow").rglob("*.py"))
    return {path: PROSE.sub("", path.read_text()) for path in files if path not in OWNERS}


def test_marker_path_is_the_download_rules_layout() -> None:
    assert marker_path("tau_srir") == "resources/tau_srir/.complete"
    assert marker_path("{dataset}") == "resources/{dataset}/.complete"


def test_no_rule_script_or_module_spells_the_marker_path() -> None:
    spelled = [str(path.relative_to(REPO)) for path, code in workflow_code().items() if MARKER_NAME in code]
    assert spelled == [], f"ask seldflow.download.marker_path instead of spelling {MARKER_NAME!r} in {spelled}"


def test_rules_take_the_marker_from_marker_path() -> None:
    """The producer (rule download) and the consumers (common.smk's input functions) all call the one function."""
    assert 'marker=marker_path("{dataset}")' in (REPO / "rules" / "download.smk").read_text()
    assert "marker_path(" in (REPO / "rules" / "common.smk").read_text()


def test_no_rule_script_or_module_recomputes_shards() -> None:
    found = {
        str(path.relative_to(REPO)): match.group(0)
        for path, code in workflow_code().items()
        for match in SHARD_ARITHMETIC.finditer(code)
    }
    assert found == {}, f"use seldflow.shards (shard_count, shard_range, shard_names) instead: {found}"


@pytest.mark.parametrize(
    "code",
    ["first = int(wildcards.shard) * SHARD_CLIPS", "math.ceil(n_clips / shard_clips)", "n // shard_clips"],
)
def test_the_shard_check_catches_recomputation(code: str) -> None:
    assert SHARD_ARITHMETIC.search(code)


def test_shard_functions_agree() -> None:
    """What the rules rely on: names, ranges and counts describe the same slicing, the last shard shorter."""
    assert shard_names(10, 4) == ["0000", "0001", "0002"] == [f"{i:04d}" for i in range(shard_count(10, 4))]
    assert [list(shard_range(i, 4, 10)) for i in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


# Splitting ``<soundscape>_<Label>`` at the last underscore: what seldflow.s5.files.split_source_name owns.
SOURCE_NAME_SPLIT = re.compile(r"""\.rpartition\(\s*(?:["']_["']|\w*SEPARATOR\b)|\.rsplit\(\s*["']_["']""")
SOURCE_NAME_OWNER = REPO / "src" / "seldflow" / "s5" / "files.py"


def test_only_seldflow_s5_files_splits_source_file_names() -> None:
    found = {
        str(path.relative_to(REPO)): match.group(0)
        for path, code in workflow_code().items()
        if path != SOURCE_NAME_OWNER
        for match in SOURCE_NAME_SPLIT.finditer(code)
    }
    assert found == {}, f"use seldflow.s5.files.split_source_name instead: {found}"


@pytest.mark.parametrize(
    "code", ['path.stem.rpartition("_")', "stem.rpartition(NAME_SEPARATOR)", "name.rsplit('_', 1)"]
)
def test_the_source_name_check_catches_a_second_parser(code: str) -> None:
    assert SOURCE_NAME_SPLIT.search(code)
