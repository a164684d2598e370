"""Small archives and trees for the download and archive tests: random payloads, zips from a dict, tree snapshots."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` reproducible random bytes (incompressible, so a zip's sizes are the data's)."""
    return random.Random(seed).randbytes(size)


def make_zip(path: Path, members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip holding ``members`` (name -> bytes) in order."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` as relative path -> content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    """Temporary siblings an interrupted atomic unpack would leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))
