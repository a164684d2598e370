"""The ``seldflow`` command: score prediction folders, predict one recording, count the zoo's parameters.

Subcommands: ``score`` (one JSON object of DCASE metrics), ``predict`` (the prediction CSV of one recording) and
``params`` (parameter counts per model, SELD method and feature kind, as JSON). The workflow itself runs with
``snakemake``. ``python -m seldflow`` is the same command.

Exit status, the same for every subcommand:

  0    success
  1    bad input data or configuration (a label file, recording, checkpoint or option value the data rejects),
       reported as one "error: ..." line on stderr that names the file (and row and field) or the key
  2    a command line the argument parser rejects (unknown option, missing argument), with the usage line
  141  standard output was closed early by its reader (e.g. piped into head): the output stops without a
       traceback, with the status a shell reports for a program ended by SIGPIPE (128 + 13)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from seldflow import __version__, score
from seldflow.errors import InputError, SeldflowError
from seldflow.labels import write_labels, write_labels_to

EXIT_OK = 0
EXIT_DATA_ERROR = 1
EXIT_USAGE = 2  # argparse's own status for a rejected command line
EXIT_BROKEN_PIPE = 128 + 13  # 13 = SIGPIPE

Handler = Callable[[argparse.Namespace], int]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help where the default value says something.

    Options whose default is ``None`` or ``False`` (the help says what happens without them), required ones and
    ones whose help already names their default get no suffix.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False) or action.required or "default" in text.lower():
            return text
        return super()._get_help_string(action)


class CommandHelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """The top-level help: the module docstring as written (its exit-status table), defaults as for subcommands."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seldflow", description=__doc__, formatter_class=CommandHelpFormatter)
    parser.add_argument("--version", action="version", version=f"seldflow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_score(commands)
    _add_predict(commands)
    _add_params(commands)
    return parser


def _add_score(commands: argparse._SubParsersAction) -> None:
    score_parser = commands.add_parser(
        "score",
        help="score prediction CSVs (or, for ca-sdri, separated WAVs) against references with an official "
        "metric (--metric, default dcase2025)",
        description=(
            "Print one JSON object (fractions, not percent, except doa-mot). dcase2025: F, DOAE, DistE, RDE and "
            "class-wise values; dcase2021-dcase2023: ER, F, LE, LR, SELD and classwise; dcase2024 adds DE and RDE; "
            "ca-sdri (DCASE2025 Task 4, needs --mixtures): CA-SDRi in dB, label_accuracy and classwise; "
            "doa-mot (DOAnet, class-agnostic DCASE2020 CSVs): the official LE (degrees), MOTA, LR, LP, LF (percent, "
            "as the official code) and IDS, with canonical CLEAR-MOT under clear_mot; undefined values are null."
        ),
        formatter_class=HelpFormatter,
    )
    score.add_arguments(score_parser)
    score_parser.set_defaults(handler=score.run)


def _add_predict(commands: argparse._SubParsersAction) -> None:
    predict_parser = commands.add_parser(
        "predict",
        help="write the prediction CSV of one recording (any length) with a trained or released checkpoint",
        description=(
            "Slide training-length windows over a recording in the checkpoint's audio format (24 kHz stereo for the "
            "DCASE2025 models) and decode the model's outputs. --checkpoint takes a best.pt of the train rule or a "
            "released stereo PSELD-Mamba checkpoint (best_model.pth), which is converted in memory."
        ),
        formatter_class=HelpFormatter,
    )
    predict_parser.add_argument("wav", type=Path, help="recording (WAV), e.g. stereo at 24 kHz")
    predict_parser.add_argument(
        "--checkpoint", required=True, type=Path, help="best.pt of the train rule, or a released best_model.pth"
    )
    predict_parser.add_argument("--out", type=Path, help="CSV file to write (not a folder; without it: stdout)")
    predict_parser.add_argument(
        "--activity-threshold", type=float, default=0.5, help="multi-ACCDOA track activity (vector length) threshold"
    )
    predict_parser.add_argument(
        "--unify-deg", type=float, default=15.0, help="merge same-class tracks closer than this angle (degrees)"
    )
    predict_parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    predict_parser.set_defaults(handler=_predict)


def _add_params(commands: argparse._SubParsersAction) -> None:
    params_parser = commands.add_parser(
        "params",
        help="print the parameter count of every model per SELD method and feature kind (JSON)",
        description=(
            'Print {model: {"reference": {"name", "channels", "parameters"}, "methods": {method: '
            "{feature_kind: parameters}}}} with the train.model names as keys. The reference entry is the "
            "configuration the reference implementation reports (2-channel log-mel for seldnet, 7-channel PFOA "
            "otherwise); the method counts use the feature kind's channels (pfoa and foa 7, logmel 2, mic 10) and "
            '13 classes. htsat adds "adapterbit": total and trainable parameters with AdapterBit\'s adapters (FOA, '
            "multi-ACCDOA), the trainable ones split into adapters, biases and head. With --task s5: the "
            "DCASE2025 Task 4 separators (ResUNet, ResUNetK) against the reference estimates and the taggers' "
            "backbone, head and per-step trainable counts, with how they were counted. With --task doanet: the "
            "Hungarian network (Hnet) and DOAnet on FOA and MIC features against the reference counts, per part, "
            "with how they were counted."
        ),
        formatter_class=HelpFormatter,
    )
    params_parser.add_argument("--task", choices=("seld", "s5", "doanet"), default="seld", help="which models to count")
    params_parser.set_defaults(handler=_params)


def _params(args: argparse.Namespace) -> int:
    # torch import deferred: `seldflow score` stays fast
    from seldflow.models.parameters import doanet_parameter_table, parameter_table, s5_parameter_table

    tables = {"seld": parameter_table, "s5": s5_parameter_table, "doanet": doanet_parameter_table}
    print(json.dumps(tables[args.task](), indent=2))
    return EXIT_OK


def _predict(args: argparse.Namespace) -> int:
    from seldflow.infer import predict_file  # torch import deferred: `seldflow score` stays fast

    if args.out is not None and args.out.is_dir():  # checked first: a long recording must not run for nothing
        raise InputError(args.out, "is a folder; --out takes the path of the CSV file to write", field="--out")
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
    return EXIT_OK


def _silence_stdout() -> None:
    """Point standard output at the null device, so the interpreter's final flush cannot fail a second time.

    Without this, Python prints "Exception ignored ... BrokenPipeError" at exit while flushing what is still
    buffered for the reader that went away. Only a real file descriptor is redirected (not a test's capture).
    """
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)


def run_handler(handler: Handler, args: argparse.Namespace) -> int:
    """Run a subcommand and map what ends it onto the exit statuses of the module docstring."""
    try:
        status = handler(args)
        sys.stdout.flush()  # a reader that went away shows here, not in the interpreter's flush at exit
        return status
    except SeldflowError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_DATA_ERROR
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``seldflow`` console script and of ``python -m seldflow``; returns the exit status."""
    args = build_parser().parse_args(argv)
    return run_handler(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
