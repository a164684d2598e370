"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import tiny_config, write_config


@pytest.fixture
def tiny_workdir(tmp_path: Path) -> Path:
    write_config(tmp_path, tiny_config())
    return tmp_path


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """Tiny models are thousands of small ops: one thread avoids OpenMP hand-offs that dominate on a busy CPU."""
    import torch  # here, not at the top: most test modules never need torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
