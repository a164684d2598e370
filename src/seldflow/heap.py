"""Training keeps the memory it frees: each step reuses the pages of the step before instead of faulting in new ones.

glibc's malloc serves every allocation above its mmap threshold (32 MB at most) with a fresh mapping and unmaps it
when it is freed. A training step on the CPU allocates and frees the same large tensors every time (the demo's
first conv block: activations, batch-norm output and their gradients of 32 x 64 x 251 x 64 floats, 130 MB each),
so each of them is page-faulted in and zeroed by the kernel again, step after step: about 30 ms per such tensor on
the 2-core machine, where the arithmetic on it takes 5-8 ms. Measured there (ten steps of the stereo demo's
SELDnet, two threads): 0.38-0.47 s a step as glibc does it, 0.25-0.27 s with the memory kept.

:func:`keep_freed_memory` turns glibc's per-allocation mappings off (``M_MMAP_MAX`` 0, so large blocks come from
the heap too) and stops it from trimming the heap (``M_TRIM_THRESHOLD``), so freed blocks stay in the process and
the next step's tensors take them. The process then holds what its steps needed until it ends, and somewhat more:
torch aligns each block, so a freed block cannot take a new one of its size until it has merged with a neighbour,
and the heap grows for a few steps before it is reused, then stays flat (ten steps of the demo's network: a peak of
1.5 GB rather than 1.0 GB; the demo's train job in ``make bench``: 2.4 GB rather than 1.9 GB). Numbers are unchanged:
where a tensor lives never enters the arithmetic (torch aligns every CPU tensor to 64 bytes either way). Elsewhere
than glibc (no ``mallopt``) it does nothing. Why not a library: jemalloc or tcmalloc do the same through
``LD_PRELOAD``, which every job's environment would have to carry; two ``mallopt`` calls need nothing installed.
"""

from __future__ import annotations

import ctypes
import functools
import sys

# glibc's <malloc.h> parameter numbers.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# The largest trim threshold mallopt takes (an int): the heap is then never trimmed in practice.
NEVER_TRIM = 2**31 - 1


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc keep freed memory in the process (see the module docstring); True where it took effect. Once
    per process: later calls return the first answer."""
    if not sys.platform.startswith("linux"):  # glibc's; elsewhere the C library has no mallopt, or not these
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # None under musl
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
