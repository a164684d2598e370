"""A process's own peak resident memory, for the benchmark's fresh-process rows (outside seldflow.bench, whose
package imports torch: a measuring child that holds no torch must not pay for it)."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: Linux's ``VmHWM``, which starts afresh with the new program.

    Not ``getrusage``: Linux carries ``ru_maxrss`` over ``fork`` and ``exec``, so a child reports its parent's peak
    whenever that is larger (every row of a benchmark process holding 800 MB read 809 MB). Elsewhere ``ru_maxrss``
    is the fallback (kilobytes on Linux, bytes on macOS).
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024
