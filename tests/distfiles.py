"""The artifacts ./build.sh dist wrote into dist/ (test.sh runs it before pytest)."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DIST = REPO / "dist"
VERSION = re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]  # type: ignore[index]
LINUX_ARCHES = ("x86_64", "aarch64")


def _missing(what: str) -> Path:
    message = f"{what} not in {DIST}: run ./build.sh dist first"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def linux_wheel(arch: str) -> Path:
    """The manylinux wheel for ``arch`` (x86_64 or aarch64)."""
    found = sorted(DIST.glob(f"oci_client-{VERSION}-py3-none-manylinux_*_{arch}.whl"))
    return found[-1] if found else _missing(f"the {arch} wheel")


def host_wheel() -> Path:
    """The wheel this machine runs."""
    return linux_wheel(platform.machine())


def sdist() -> Path:
    path = DIST / f"oci_client-{VERSION}.tar.gz"
    return path if path.is_file() else _missing("the sdist")
