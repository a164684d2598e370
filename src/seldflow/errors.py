"""Error types that carry the file, row and field a user has to fix.

Every stage reports bad input through these, so a message always says *where* the problem is, the CLI can turn
them into a non-zero exit with one readable line, and Snakemake shows the same line in the rule's log.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from os import PathLike
from typing import TextIO


class SeldflowError(Exception):
    """Base class for errors caused by input or configuration, as opposed to bugs."""


class InputError(SeldflowError):
    """A data file (audio, label CSV, HDF5, SOFA, checkpoint) is missing, malformed or out of range."""

    def __init__(
        self,
        path: str | PathLike[str],
        message: str,
        *,
        field: str | None = None,
        row: int | None = None,
    ) -> None:
        self.path = str(path)
        self.field = field
        self.row = row
        self.message = message
        where = self.path
        if row is not None:
            where += f": row {row}"
        if field is not None:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


class ConfigError(SeldflowError):
    """The workflow configuration violates its schema; ``key`` is the dotted path of the offending entry."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        super().__init__(f"{source}: config key '{key}': {message}")


@contextlib.contextmanager
def exit_on_error(stream: TextIO | None = None) -> Iterator[None]:
    """Turn a :class:`SeldflowError` into one ``error: ...`` line and exit status 1.

    Used by the CLI and the workflow scripts: a user-facing problem deserves a readable message, not a traceback;
    any other exception is a bug and keeps its traceback.
    """
    try:
        yield
    except SeldflowError as exc:
        print(f"error: {exc}", file=stream or sys.stderr, flush=True)
        raise SystemExit(1) from exc
