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


def reset_peak() -> bool:
    """Start this process's ``VmHWM`` afresh from its resident memory now; False where the system cannot.

    Writing 5 to ``/proc/self/clear_refs`` (Linux) does it. A measuring child calls it after warming up every side
    it compares, so the peak it reports counts what the measured work holds above a baseline both sides share,
    not which library code each side happened to map first: how many pages of a shared library a first call maps
    depends on the page cache (the kernel maps cached pages around each fault), which made the same job's peak
    vary by tens of MB between an idle machine and one that had just run a workflow.
    """
    clear_refs = Path("/proc/self/clear_refs")
    try:
        clear_refs.write_text("5")
    except OSError:
        return False
    return True
