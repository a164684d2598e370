"""``python -m seldflow``: the ``seldflow`` command where the console script is not on PATH (e.g. a bare checkout)."""

import sys

from seldflow.cli import main

sys.exit(main())
