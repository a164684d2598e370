"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers import tiny_config, write_config

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: a second thread per worker (torch's and OpenMP's default, inherited by the
    # workflows the tests start) would only oversubscribe the cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    torch.set_num_threads(1)


@pytest.fixture
def tiny_workdir(tmp_path: Path) -> Path:
    write_config(tmp_path, tiny_config())
    return tmp_path


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """Tiny models are thousands of small ops: one thread avoids OpenMP hand-offs that dominate on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding slow (end-to-end) tests first, each file's own order kept: `make test` hands whole files to its
    workers in this order, so the minutes-long files start early and the many quick ones fill in beside them
    instead of one worker finishing a long file alone at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # a stable sort: only whole files move
