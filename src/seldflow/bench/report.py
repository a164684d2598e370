"""Writing the benchmark report: ``benchmark.md`` for people, ``benchmark.csv`` (long format) for tools."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence

from seldflow.bench.records import BenchReport, Figure
from seldflow.bench.stages import stage_totals
from seldflow.io import atomic_file


def _fmt(value: float, digits: int = 3) -> str:
    if not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.{digits - 1}f}"
    return f"{value:.{digits}g}"


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _figure_section(
    title: str, figures: Sequence[Figure], header: Sequence[str] = ("figure", "value", "unit", "how")
) -> list[str]:
    """A titled table of figures, or nothing when there are none."""
    if not figures:
        return []
    rows = ((f.name, _fmt(f.value), f.unit, f.meaning) for f in figures)
    return [f"## {title}", "", *_table(header, rows), ""]


def render_markdown(report: BenchReport) -> str:
    """The report as a Markdown document: comparisons first (the headline), then figures, stages, environment."""
    lines = [f"# {report.title}", ""]
    if report.comparisons:
        lines += ["## Comparisons (measured in this run)", ""]
        lines += [
            "Each ratio is *time of A / time of B* for the same work; the meaning column says how to read it. Peak "
            "memory is each side's resident maximum in a fresh process (n/a: not measured), counted from where its "
            "cell says; load is the machine's 1-minute load average when the comparison started.",
            "",
        ]
        lines += _table(
            (
                "comparison",
                "work",
                "A",
                "time A",
                "B",
                "time B",
                "ratio A/B",
                "meaning",
                "check",
                "peak MB A / B",
                "threads",
                "load",
            ),
            (
                (
                    c.name,
                    c.work,
                    c.a_label,
                    _seconds(c.a_seconds),
                    c.b_label,
                    _seconds(c.b_seconds),
                    f"**{_fmt(c.ratio)}×**",
                    c.meaning,
                    c.check,
                    f"{_fmt(c.a_peak_mb)} / {_fmt(c.b_peak_mb)}" + (f" ({c.peak_from})" if c.peak_from else ""),
                    c.threads or "n/a",
                    _fmt(c.load_average),
                )
                for c in report.comparisons
            ),
        )
        lines.append("")
    lines += _figure_section("Throughput (from the workflow's benchmark files and outputs)", report.throughput)
    lines += _figure_section(
        "Memory (feature jobs over WAV folders; a training epoch of batches read from feature shards)", report.memory
    )
    lines += _figure_section("Model metrics (metrics.json)", report.metrics, ("metric", "value", "unit", "meaning"))
    if report.stages:
        lines += ["## Stages (Snakemake `benchmark:` files)", ""]
        lines += [
            "Wall and CPU seconds and peak resident memory of the run that last produced each output "
            "(CPU/wall above 1 means several cores were busy).",
            "",
        ]
        lines += _table(
            ("stage", "jobs", "wall s", "CPU s", "CPU/wall", "peak RSS MB"),
            (
                (
                    t.stage,
                    t.job,
                    _fmt(t.wall_s),
                    _fmt(t.cpu_s),
                    _fmt(t.cpu_s / t.wall_s if t.wall_s else math.nan),
                    _fmt(t.max_rss_mb),
                )
                for t in stage_totals(report.stages)
            ),
        )
        lines += ["", "<details><summary>per job</summary>", ""]
        lines += _table(
            ("job", "wall s", "CPU s", "peak RSS MB"),
            ((t.job, _fmt(t.wall_s), _fmt(t.cpu_s), _fmt(t.max_rss_mb)) for t in report.stages),
        )
        lines += ["", "</details>", ""]
    if report.environment:
        lines += ["## Environment", ""]
        lines += _table(("item", "value"), report.environment.items())
        lines.append("")
    if report.notes:
        lines += ["## Notes", ""]
        lines += [f"- {note}" for note in report.notes]
        lines.append("")
    return "\n".join(lines)


CSV_HEADER = ("section", "item", "metric", "value", "unit", "note")


def csv_rows(report: BenchReport) -> list[tuple[str, str, str, str, str, str]]:
    """The report as long-format rows ``section, item, metric, value, unit, note`` (numbers unrounded)."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    for c in report.comparisons:
        rows.append(("comparison", c.name, "a_seconds", repr(c.a_seconds), "s", c.a_label))
        rows.append(("comparison", c.name, "b_seconds", repr(c.b_seconds), "s", c.b_label))
        rows.append(("comparison", c.name, "ratio_a_over_b", repr(c.ratio), "", f"{c.meaning}; {c.check}".strip("; ")))
        for metric, value, note in (
            ("a_peak_rss", c.a_peak_mb, "; ".join(filter(None, (c.a_label, c.peak_from)))),
            ("b_peak_rss", c.b_peak_mb, "; ".join(filter(None, (c.b_label, c.peak_from)))),
        ):
            if math.isfinite(value):
                rows.append(("comparison", c.name, metric, repr(value), "MB", note))
        if math.isfinite(c.load_average):
            rows.append(("comparison", c.name, "load_average_1min", repr(c.load_average), "", c.threads))
    for f in report.throughput:
        rows.append(("throughput", f.name, "value", repr(f.value), f.unit, f.meaning))
    for f in report.metrics:
        rows.append(("metrics", f.name, "value", repr(f.value), f.unit, f.meaning))
    for f in report.memory:
        rows.append(("memory", f.name, "value", repr(f.value), f.unit, f.meaning))
    for t in report.stages:
        rows.append(("stage", t.job, "wall", repr(t.wall_s), "s", t.stage))
        rows.append(("stage", t.job, "cpu_time", repr(t.cpu_s), "s", t.stage))
        rows.append(("stage", t.job, "max_rss", repr(t.max_rss_mb), "MB", t.stage))
    for key, value in report.environment.items():
        rows.append(("environment", key, "value", value, "", ""))
    return rows


def render_csv(report: BenchReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(report))
    return buffer.getvalue()


def write_report(report: BenchReport, markdown_path: str | os.PathLike[str], csv_path: str | os.PathLike[str]) -> None:
    """Write ``benchmark.md`` and ``benchmark.csv`` atomically."""
    for path, text in ((markdown_path, render_markdown(report)), (csv_path, render_csv(report))):
        with atomic_file(path) as tmp:
            tmp.write_text(text)
