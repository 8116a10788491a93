"""The README's first command on a clean virtualenv: the wheel alone (no [testing] extra,
no Debian registry on PATH, no Go toolchain needed at run time) runs the demo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _wheel(tmp_path: Path) -> Path:
    """The wheel test.sh built, else one built now."""
    built = sorted((REPO / "build" / "wheel").glob("oci_client-*.whl"))
    if built:
        return built[-1]
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        timeout=900,
    )
    return next(out.glob("oci_client-*.whl"))


@pytest.mark.timeout(900)
def test_demo_from_a_clean_virtualenv_without_docker_registry(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(_wheel(tmp_path))],
        check=True,
        timeout=600,
    )
    bin_dir = env_dir / "bin"
    # Nothing but the virtualenv on PATH: no docker-registry, no go, no skopeo.
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path / "home"),
        "OCI_CLIENT_CACHE": str(tmp_path / "cache"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    assert shutil.which("docker-registry", path=env["PATH"]) is None
    run = subprocess.run(
        [str(bin_dir / "oci-client"), "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("pulled and verified") == 2, run.stdout
    imported = subprocess.run(
        [str(python), "-c", "import oci_client.testing"], env=env, capture_output=True, text=True, timeout=60
    )
    # The demo did not need the [testing] extra (requests, cryptography): it is not installed.
    assert imported.returncode != 0 and "No module named" in imported.stderr
