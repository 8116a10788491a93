"""The README's first command on a fresh machine: the manylinux wheel ./build.sh dist made,
installed into a clean virtualenv on a PATH with no go, gcc, cc or docker-registry, runs
the demo, pulls a model with pull_model, and vLLM can find its plugin."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
from distfiles import host_wheel
from oci_testing import LocalRegistry, push_model


@pytest.mark.timeout(900)
def test_the_wheel_alone_runs_the_demo_and_pulls(plain_registry: LocalRegistry, tmp_path: Path) -> None:
    wheel = host_wheel()
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    python = bin_dir / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=600,
    )
    # Nothing but the virtualenv on PATH: no toolchain, no registry of the system's.
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path / "home"),
        "OCI_CLIENT_CACHE": str(tmp_path / "cache"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    for tool in ("go", "gcc", "cc", "docker-registry"):
        assert shutil.which(tool, path=env["PATH"]) is None, tool

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)

    demo = run(str(bin_dir / "oci-client"), "demo")
    assert demo.returncode == 0, demo.stderr
    # The first pull fetches and verifies; the second finds every blob in the cache and says so.
    assert demo.stdout.count("pulled and verified") == 1, demo.stdout
    assert demo.stdout.count("served 10 files from the cache") == 1, demo.stdout

    files = {"model.safetensors": os.urandom(3 << 20), "config.json": b'{"model_type": "llama"}'}
    pushed = push_model(plain_registry, "fresh/model", "v1", files)
    ref = f"{plain_registry.host}/{pushed.repository}:v1"
    out = tmp_path / "pulled"
    pull = "import sys, oci_client; oci_client.pull_model(sys.argv[1], local_dir=sys.argv[2])"
    pulled = run(str(python), "-c", pull, ref, str(out))
    assert pulled.returncode == 0, pulled.stderr
    assert {p.name: hashlib.sha256(p.read_bytes()).digest() for p in out.iterdir() if p.is_file()} == {
        name: hashlib.sha256(data).digest() for name, data in files.items()
    }

    # vLLM loads general plugins by this entry point; the module itself needs torch and vLLM.
    plugin = run(
        str(python),
        "-c",
        "from importlib.metadata import entry_points; import importlib.util as u;"
        "(ep,) = entry_points(group='vllm.general_plugins', name='oci');"
        "print(ep.value, u.find_spec(ep.module) is not None)",
    )
    assert plugin.returncode == 0, plugin.stderr
    assert plugin.stdout.split() == ["oci_client.vllm:register", "True"]

    # The test tooling is not part of the product.
    testing = run(str(python), "-c", "import oci_client.testing")
    assert testing.returncode != 0 and "No module named 'oci_client.testing'" in testing.stderr
