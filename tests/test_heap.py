"""seldflow.heap: freed memory stays in the process, so later tensors of the same size fault in no new pages.

Each case runs in a fresh interpreter: mallopt settings last for the process, and the page-fault counts must not
include pytest's own allocations.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Allocate, touch and free a 64 MB tensor, again and again; report the minor page faults of the last rounds (glibc
# first grows its heap for a few rounds: torch aligns each block, which a freed block of the same size cannot fit).
_CHILD = """
import json, resource, sys
import torch
from seldflow.heap import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for round in range(20):
    if round == 15:
        before = faults()
    block = torch.ones(16 * 2**20)  # 64 MB, every page written
    del block
print(json.dumps({"kept": kept, "faults": faults() - before}))
"""
PAGES = 64 * 2**20 // 4096


def last_rounds(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_serves_the_next_tensor_without_new_pages() -> None:
    plain, kept = last_rounds("plain"), last_rounds("keep")
    assert plain["faults"] > 5 * PAGES // 2  # glibc mapped each of the five blocks anew
    assert kept["kept"] is True and kept["faults"] < PAGES // 10
