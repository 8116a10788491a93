"""Full sha256 check of a tool's output files (run outside the timed region)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

__all__ = ["sha256_file", "verify_outputs"]

_BUFFER = 8 * 1024 * 1024


def sha256_file(path: Path) -> tuple[str, int]:
    """``("sha256:…", size)`` of the whole file."""
    h = hashlib.sha256()
    size = 0
    buf = bytearray(_BUFFER)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            h.update(view[:n])
            size += n
    return f"sha256:{h.hexdigest()}", size


def verify_outputs(expected: Mapping[Path, tuple[str, int]]) -> list[str]:
    """Hash every expected file fully; return the problems found (empty: all correct)."""
    problems = []
    for path, (digest, size) in expected.items():
        if not path.is_file():
            problems.append(f"{path.name}: missing")
            continue
        got, got_size = sha256_file(path)
        if got_size != size:
            problems.append(f"{path.name}: {got_size} bytes, expected {size}")
        elif got != digest:
            problems.append(f"{path.name}: digest {got[:19]}…, expected {digest[:19]}…")
    return problems
