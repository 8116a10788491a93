"""The ``oci-client`` command, run as a user would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from faultproxy import FaultProxy, Rule
from oci_testing import LocalRegistry, PushedArtifact, push_artifact


def run(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command; ``cache`` is its model cache (never the user's own)."""
    env = {**os.environ, "OCI_CLIENT_CACHE": str(cache)} if cache is not None else None
    return subprocess.run(
        [sys.executable, "-m", "oci_client", *args], capture_output=True, text=True, timeout=120, env=env
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
    from oci_client.demo import demo_model_files

    r = run("demo", "-o", str(tmp_path / "model"), cache=tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    assert "started the built-in registry at http://127.0.0.1:" in r.stdout
    assert "as modelpack" in r.stdout and "as docker" in r.stdout
    assert r.stdout.count("pulled and verified 10 files") == 2
    assert "again from the cache" in r.stdout and "0 bytes sent" in r.stdout
    files = demo_model_files()
    # pull_model's record of what it placed lives in .oci-client/, beside the model's files.
    kept = tmp_path / "model"
    assert sorted(p.name for p in kept.iterdir() if p.name != ".oci-client") == sorted(files)
    assert all((kept / name).read_bytes() == data for name, data in files.items())


def test_demo_keep_leaves_the_registry_running(tmp_path: Path) -> None:
    import re
    import signal
    import time

    r = run("demo", "--keep", cache=tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    pid = int(re.search(r"kill (\d+)", r.stdout).group(1))  # type: ignore[union-attr]
    ref = re.search(r"oci-client pull (\S+)", r.stdout).group(1)  # type: ignore[union-attr]
    try:
        pulled = run("pull", "-q", ref, "--cache-dir", str(tmp_path / "other-cache"))
        assert pulled.returncode == 0, pulled.stderr
    finally:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            break  # exited; only its reaping is left to pid 1
        time.sleep(0.05)
    else:
        assert not Path(f"/proc/{pid}").exists(), "the kept registry did not stop"


def test_pull_writes_every_layer_by_name(plain_registry: LocalRegistry, tmp_path: Path) -> None:
    from oci_testing import push_model

    files = {"config.json": b"{}", "weights/model-00001.safetensors": b"w1" * 5000, "tokenizer.json": b"t"}
    push_model(plain_registry, "cli/pulled", "v1", files)
    r = run(
        "pull", f"{plain_registry.host}/cli/pulled:v1", "-o", str(tmp_path / "m"), cache=tmp_path / "cache"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(tmp_path / "m")], "stdout is the model directory, alone"
    for name, data in files.items():
        assert (tmp_path / "m" / name).read_bytes() == data
    assert "%|" not in r.stderr, "no progress bar when stderr is not a terminal"


def test_pull_refuses_layer_names_that_escape(plain_registry: LocalRegistry, tmp_path: Path) -> None:
    from oci_testing import push_model

    push_model(plain_registry, "cli/evil", "v1", {"../../escape.txt": b"gotcha"})
    r = run("pull", f"{plain_registry.host}/cli/evil:v1", "-o", str(tmp_path / "m"), cache=tmp_path / "cache")
    assert r.returncode == 1 and r.stderr.startswith("error: INVALID_MODEL:"), r.stderr
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path.parent / "escape.txt").exists()


def on_tty(*args: str, cache: Path | None = None) -> str:
    """Run the command with stderr on a pseudo-terminal; what it drew there."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    primary, secondary = pty.openpty()
    # A new pty is 0 columns wide, where tqdm draws nothing; make it a terminal's size.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    cache_args = ["--cache-dir", str(cache)] if cache else []
    proc = subprocess.run(
        [sys.executable, "-m", "oci_client", *args, *cache_args],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=secondary,
        timeout=60,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    assert proc.returncode == 0
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_and_quiet(artifact: PushedArtifact, tmp_path: Path) -> None:
    args = ["blob", f"{artifact.host}/cli/model:v1", artifact.layers[0].digest, "-o", str(tmp_path / "a")]
    assert "100%|" in on_tty(*args)
    assert "%|" not in on_tty(*args, "--quiet")


def test_model_bars_are_for_the_files_that_download(
    plain_registry: LocalRegistry, proxy: FaultProxy, tmp_path: Path
) -> None:
    from oci_testing import push_model

    files = {"cached.safetensors": os.urandom(1 << 20), "fetched.safetensors": os.urandom(1 << 20)}
    push_model(plain_registry, "cli/bars", "v1", files)
    proxy.add(Rule(path=r"/blobs/", method="GET", throttle=1 << 20))  # a second a file: bars drawn
    ref, cache = f"{proxy.host}/cli/bars:v1", tmp_path / "cache"
    on_tty("pull", ref, "--include", "cached.*", cache=cache)
    drawn = on_tty("pull", ref, cache=cache)
    assert "fetched.safetensors" in drawn, drawn
    assert drawn.rsplit("total:", 1)[1].lstrip().startswith("100%|"), "the total does not end at 100 %"
    # Found in place, a file's bar is full at once and says so: it moved no bytes.
    assert re.search(r"cached\.safetensors: 100%.*found in place", drawn), drawn
