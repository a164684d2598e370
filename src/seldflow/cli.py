"""The ``seldflow`` command: scoring, and a thin launcher for the workflow."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seldflow import __version__, score
from seldflow.errors import exit_on_error
from seldflow.labels import write_labels, write_labels_to


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seldflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"seldflow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    score_parser = commands.add_parser(
        "score",
        help="score prediction CSVs against references with an official DCASE metric (--metric, default dcase2025)",
        description=(
            "Print one JSON object (fractions, not percent). dcase2025: F, DOAE, DistE, RDE and class-wise values; "
            "dcase2021-dcase2023: ER, F, LE, LR, SELD and classwise; dcase2024 adds DE and RDE."
        ),
    )
    score.add_arguments(score_parser)
    score_parser.set_defaults(handler=score.run)
    predict_parser = commands.add_parser(
        "predict",
        help="write the DCASE2025 CSV of one stereo recording (any length) with a trained checkpoint",
        description="Slide training-length windows over a 24 kHz stereo WAV and decode the model's multi-ACCDOA.",
    )
    predict_parser.add_argument("wav", type=Path, help="stereo WAV file, 24 kHz")
    predict_parser.add_argument("--checkpoint", required=True, type=Path, help="best.pt written by the train rule")
    predict_parser.add_argument("--out", type=Path, help="CSV to write (default: print to stdout)")
    predict_parser.add_argument("--activity-threshold", type=float, default=0.5)
    predict_parser.add_argument("--unify-deg", type=float, default=15.0)
    predict_parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    predict_parser.set_defaults(handler=_predict)
    params_parser = commands.add_parser(
        "params",
        help="print the parameter count of every model of the zoo in its reference configuration (JSON)",
    )
    params_parser.set_defaults(handler=_params)
    return parser


def _params(args: argparse.Namespace) -> int:
    from seldflow.models import reference_parameter_counts  # torch import deferred, as for predict

    print(json.dumps(reference_parameter_counts(), indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from seldflow.infer import predict_file  # torch import deferred: `seldflow score` stays fast

    with exit_on_error():
        rows = predict_file(
            args.wav,
            args.checkpoint,
            activity_threshold=args.activity_threshold,
            unify_deg=args.unify_deg,
            device=args.device,
        )
        if args.out is None:
            write_labels_to(sys.stdout, rows)
        else:
            write_labels(args.out, rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
