"""The ``oci-client`` command, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from oci_client.testing import LocalRegistry, PushedArtifact, push_artifact


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oci_client", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def artifact(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(plain_registry, "cli/model", "v1", {"a.txt": b"alpha\n"})


def test_manifest(artifact: PushedArtifact) -> None:
    r = run("manifest", f"{artifact.host}/cli/model:v1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == artifact.manifest
    assert json.loads(r.stderr)["digest"] == artifact.digest
    raw = subprocess.run(
        [sys.executable, "-m", "oci_client", "manifest", "--raw", f"{artifact.host}/cli/model:v1"],
        capture_output=True,
        timeout=60,
    )
    assert raw.stdout == artifact.manifest_bytes


def test_blob(artifact: PushedArtifact, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "a.txt"
    r = run("blob", f"{artifact.host}/cli/model:v1", artifact.layers[0].digest, "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"alpha\n"
    assert artifact.layers[0].digest in r.stdout


def test_check_auth(artifact: PushedArtifact) -> None:
    ok = run("check-auth", f"{artifact.host}/cli/model:v1")
    assert ok.returncode == 0 and "ok" in ok.stdout
    missing = run("check-auth", f"{artifact.host}/cli/model:nope")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr


def test_errors_and_usage(artifact: PushedArtifact, tmp_path: Path) -> None:
    bad = run("blob", f"{artifact.host}/cli/model:v1", "sha256:zz", "-o", str(tmp_path / "x"))
    assert bad.returncode == 1 and bad.stderr.startswith("error: INVALID_ARGUMENT:")
    assert run("manifest").returncode == 2
    assert run("--version").stdout.startswith("oci-client ")


def test_demo(tmp_path: Path) -> None:
    r = run("demo", "-o", str(tmp_path / "model"))
    assert r.returncode == 0, r.stderr
    assert "pulled and verified" in r.stdout
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
