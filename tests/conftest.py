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
