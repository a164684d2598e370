"""What the report's numbers were measured on: package versions, git commit, CPU, threads and GPU."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

# Packages whose versions the report lists (missing ones are reported as such).
PACKAGES: tuple[str, ...] = (
    "seldflow",
    "torch",
    "numpy",
    "scipy",
    "librosa",
    "h5py",
    "soundfile",
    "snakemake",
    "pyroomacoustics",
)


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution, or ``not installed``."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(repo: str | os.PathLike[str] = ".") -> str:
    """``HEAD`` of the repository, with ``+ uncommitted changes`` when tracked files differ; ``unknown`` otherwise."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit} + uncommitted changes" if dirty else commit


def cpu_model() -> str:
    """CPU model name from ``/proc/cpuinfo`` (Linux) or ``platform``; ``unknown`` when neither says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(repo: str | os.PathLike[str] = ".", *, threads: int | None = None) -> dict[str, str]:
    """Package versions, git commit, platform, CPU model and core counts, torch threads and GPU (if any)."""
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    info = {
        "date (UTC)": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "git commit": git_commit(repo),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "CPU": cpu_model(),
        "CPU cores (usable / total)": f"{usable} / {os.cpu_count()}",
        "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a",
        "threads (job / torch)": f"{threads if threads is not None else 'n/a'} / {torch.get_num_threads()}",
        "GPU": ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        if torch.cuda.is_available()
        else "none",
    }
    info.update({f"{name} version": version for name, version in package_versions().items()})
    return info
