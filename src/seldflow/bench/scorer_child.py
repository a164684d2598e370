"""One scorer run in a process of its own: its time, its peak resident memory and its scores.

Run as ``python -m seldflow.bench.scorer_child IMPLEMENTATION METRIC FOLDER...``; prints
``{"seconds": ..., "peak_rss_mb": ..., "scores": {...}}`` as the last line of stdout.
:func:`seldflow.bench.scorers.compare_scorer` starts it for each side of a scorer row, so both start from
the same imports (both implementations are imported whichever runs) and their peaks are comparable. The time
covers the scoring call alone (file reading included), not the interpreter's start or the imports.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Sequence

from seldflow.process_memory import peak_rss_mb


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
    args = parser.parse_args(argv)

    from seldflow.bench.scorers import SCORERS, run_scorer

    checked = SCORERS[args.metric].checked
    gc.collect()
    start = time.perf_counter()
    scores = run_scorer(args.implementation, args.metric, *args.folders)
    seconds = time.perf_counter() - start
    result = {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "scores": {name: float(scores[name]) for name in checked},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
