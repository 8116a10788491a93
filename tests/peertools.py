"""Peer command-line tools the interop tests run: skopeo from Debian, and the oras CLI built
once with ``go install`` at a fixed version into ``~/.cache/oci-client/tools``. Where a tool
cannot be had, CI fails and a developer's run skips."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ORAS_MODULE = "oras.land/oras/cmd/oras@v1.3.6"
TOOLS_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oci-client" / "tools"


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (in CI every peer tool must be there)")
    pytest.skip(why)


def skopeo() -> str:
    found = shutil.which("skopeo")
    if found is None:
        _missing("skopeo is not installed (apt-get install skopeo)")
    assert found is not None
    return found


def oras() -> Path:
    """The oras CLI, built from its module the first time."""
    binary = TOOLS_DIR / "oras"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        _missing("go is needed to build the oras CLI")
    assert go is not None
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(TOOLS_DIR), "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    done = subprocess.run([go, "install", ORAS_MODULE], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not binary.exists():
        _missing(f"building the oras CLI failed: {done.stderr.strip()[-1000:]}")
    return binary
