"""The ``seldflow`` command: scoring, and a thin launcher for the workflow."""

from __future__ import annotations

import argparse
import sys

from seldflow import __version__, score


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seldflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"seldflow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    score_parser = commands.add_parser(
        "score",
        help="score DCASE2025 prediction CSVs against references with the official metric",
        description="Print one JSON object with F, DOAE, RDE and class-wise F (fractions, not percent).",
    )
    score.add_arguments(score_parser)
    score_parser.set_defaults(handler=score.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
