"""seldflow.process_memory: a child's peak is its own, not its parent's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from seldflow.bench.memory import child_environment
from seldflow.process_memory import peak_rss_mb


def test_a_child_does_not_report_its_parents_peak() -> None:
    held = np.ones(400 * 2**20 // 8)  # 400 MB resident in this process when the child starts
    assert peak_rss_mb() > 400
    code = "from seldflow.process_memory import peak_rss_mb; print(peak_rss_mb())"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=child_environment()
    )
    assert 0 < float(result.stdout) < 200  # a bare interpreter and numpy-free import: tens of MB
    del held


def test_reset_peak_starts_the_peak_afresh_from_what_is_resident_now() -> None:
    code = (
        "import numpy as np\n"
        "from seldflow.process_memory import peak_rss_mb, reset_peak\n"
        "held = np.ones(300 * 2**20 // 8)\n"
        "del held\n"
        "before = peak_rss_mb()\n"
        "print(before, reset_peak(), peak_rss_mb())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=child_environment()
    )
    before, reset, after = result.stdout.split()
    assert float(before) > 300 and reset == "True"
    assert float(after) < float(before) - 250  # the freed 300 MB no longer count
