"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tiny_config, write_config


@pytest.fixture
def tiny_workdir(tmp_path: Path) -> Path:
    write_config(tmp_path, tiny_config())
    return tmp_path
