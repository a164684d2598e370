"""One scorer run in a process of its own: its time, its peak resident memory and its scores.

Run as ``python -m seldflow.bench.scorer_child IMPLEMENTATION METRIC FOLDER... [--warm-up FOLDER...]``; prints
``{"seconds": ..., "peak_rss_mb": ..., "peak_after_warm_up": ..., "scores": {...}}`` as the last line of stdout.
:func:`seldflow.bench.scorers.compare_scorer` starts it for each side of a scorer row. Both implementations are
imported whichever runs, and with ``--warm-up`` both first score those (small) folders, after which the process's
peak starts afresh (:func:`seldflow.process_memory.reset_peak`): the two sides then start from the same imports,
first-call code pages and caches, and their peaks differ by what the scoring of the measured folders holds. The
time covers that scoring call alone (file reading included), not the interpreter's start, imports or warm-up.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Sequence

from seldflow.process_memory import peak_rss_mb, reset_peak


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, score once, print the result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m seldflow.bench.scorer_child", description=__doc__.splitlines()[0])
    parser.add_argument("implementation", help="plain (the official scorer restated) or seldflow")
    parser.add_argument("metric", help="a scorer of seldflow.bench.scorers.SCORERS")
    parser.add_argument(
        "folders",
        nargs="+",
        help="its input folders (references and predictions; for CA-SDRi mixtures, oracle targets and estimates)",
    )
    parser.add_argument("--warm-up", nargs="+", default=[], help="folders both implementations score first")
    args = parser.parse_args(argv)

    from seldflow.bench.scorers import IMPLEMENTATIONS, SCORERS, run_scorer

    checked = SCORERS[args.metric].checked
    if args.warm_up:
        for implementation in IMPLEMENTATIONS:
            run_scorer(implementation, args.metric, *args.warm_up)
    gc.collect()
    warmed = bool(args.warm_up) and reset_peak()
    start = time.perf_counter()
    scores = run_scorer(args.implementation, args.metric, *args.folders)
    seconds = time.perf_counter() - start
    result = {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "peak_after_warm_up": warmed,
        "scores": {name: float(scores[name]) for name in checked},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
