"""The embedded registry (``oci_client.server``, the ``oci-registry`` program): real
processes on 127.0.0.1, pushed to with oci_testing and read back with the library."""

from __future__ import annotations

import argparse
import os
import pickle
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from oci_testing import PushedArtifact, push_artifact, push_model

import oci_client
from oci_client import OciGoClient
from oci_client.server import Registry, RegistryServerError, find_registry_binary, serve_main

FILES = {
    "config.json": b'{"model_type": "tiny"}',
    "model.safetensors": os.urandom(256 * 1024 + 3),
}


@pytest.fixture(autouse=True)
def _registry_binary() -> None:
    """A missing oci-registry skips locally but fails in CI, like conftest's registries."""
    try:
        find_registry_binary()
    except RegistryServerError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"oci-registry unavailable in CI: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry(tmp_path / "registry") as r:
        yield r


def _answers(url: str) -> bool:
    try:
        with requests.Session() as s:
            s.trust_env = False
            return s.get(f"{url}/v2/", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _check_model(path: Path) -> None:
    for name, data in FILES.items():
        assert (path / name).read_bytes() == data


def _wait_for_blobs(root: Path, pushed: PushedArtifact, timeout: float = 10) -> None:
    """A pull-through cache stores a blob after its client has read it all: wait for that."""
    paths = [
        root / "docker/registry/v2/blobs/sha256" / d[7:9] / d[7:] / "data"
        for d in (b.digest for b in pushed.layers)
    ]
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, "the cache never stored the layers"
        time.sleep(0.02)


def _exited(pid: int) -> bool:
    """True once pid has exited (a zombie nobody reaped counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _read_line(stream: object, timeout: float) -> str:
    """One line from a subprocess pipe, within timeout."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            assert left > 0, f"no line within {timeout} s (got {buf!r})"
            if sel.select(left):
                chunk = os.read(fd, 4096)
                assert chunk, f"end of output before a line (got {buf!r})"
                buf += chunk
    return buf.split(b"\n", 1)[0].decode()


def test_push_then_read_back_with_the_library(registry: Registry, tmp_path: Path) -> None:
    assert registry.address.startswith("127.0.0.1:") and not registry.address.endswith(":0")
    assert registry.host == registry.address and registry.url == f"http://{registry.address}"
    assert registry.root == tmp_path / "registry" and registry.running
    assert (registry.root / ".http-secret").stat().st_mode & 0o777 == 0o600

    artifact = push_artifact(registry, "files/plain", "v1", {"notes.txt": b"hello"})
    m = OciGoClient().get_manifest(f"{registry.host}/files/plain:v1")
    assert m.raw == artifact.manifest_bytes and m.digest == artifact.digest

    pushed = push_model(registry, "models/tiny", "v1", FILES)
    path = oci_client.pull_model(pushed.reference, cache_dir=tmp_path / "cache")
    _check_model(path)


def test_data_persists_across_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with Registry(root) as first:
        pushed = push_model(first, "models/kept", "v1", FILES)
        first_url = first.url
    assert not _answers(first_url)
    assert first.returncode == 0

    with Registry(root) as second:
        m = OciGoClient().get_manifest(f"{second.host}/models/kept:v1")
        assert m.digest == pushed.digest
        _check_model(oci_client.pull_model(f"{second.host}/models/kept:v1", cache_dir=tmp_path / "cache"))


def test_proxy_fills_from_upstream_then_serves_without_it(tmp_path: Path) -> None:
    upstream = Registry(tmp_path / "upstream").start()
    try:
        pushed = push_model(upstream, "models/cached", "v1", FILES)
        with Registry(tmp_path / "cache-registry", proxy=upstream.url) as proxy:
            assert proxy.proxy == upstream.url
            ref = f"{proxy.host}/models/cached:v1"
            _check_model(oci_client.pull_model(ref, cache_dir=tmp_path / "c1"))
            _wait_for_blobs(proxy.root, pushed)

            upstream.stop()
            assert not _answers(upstream.url)
            assert OciGoClient().get_manifest(ref).digest == pushed.digest
            # A fresh client cache: everything must come from the proxy's own storage.
            _check_model(oci_client.pull_model(ref, cache_dir=tmp_path / "c2"))
    finally:
        upstream.stop()


def test_non_loopback_address_is_refused_without_allow_remote(tmp_path: Path) -> None:
    for addr in ("0.0.0.0:0", ":0"):
        with pytest.raises(RegistryServerError, match="allow-remote") as info:
            Registry(tmp_path / "registry", addr=addr).start()
        assert "not a loopback address" in info.value.message
    assert not (tmp_path / "registry").exists()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        addr = f"127.0.0.1:{busy.getsockname()[1]}"
        began = time.monotonic()
        with pytest.raises(RegistryServerError) as info:
            Registry(tmp_path / "registry", addr=addr).start()
    assert time.monotonic() - began < 10
    first = info.value.message.splitlines()[0]
    assert first.startswith("the registry did not start") and "address already in use" in first
    assert addr in first
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is RegistryServerError and again.message == info.value.message


def test_serve_main_reports_a_startup_failure_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        args = argparse.Namespace(
            root=str(tmp_path / "r"),
            addr=f"127.0.0.1:{busy.getsockname()[1]}",
            proxy=None,
            allow_remote=False,
            log_level=None,
        )
        assert serve_main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "address already in use" in err


def test_serve_command_prints_its_address_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    root = tmp_path / "served"
    proc = subprocess.Popen(
        [sys.executable, "-m", "oci_client.server", "--root", str(root), "--addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Its own process group, so that the SIGINT below reaches the Python process and
        # the registry together, as Ctrl-C in a terminal does.
        start_new_session=True,
    )
    try:
        line = _read_line(proc.stdout, timeout=30)
        prefix, _, rest = line.partition(" at ")
        assert prefix == f"serving {root}", line
        url, _, tail = rest.partition(" ")
        assert tail == "(Ctrl-C stops)" and url.startswith("http://127.0.0.1:")
        assert _answers(url)

        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert not _answers(url)
        assert proc.stderr is not None and proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from oci_client.server import Registry
    registry = Registry(sys.argv[1]).start()
    print(registry.pid, registry.url, flush=True)
    time.sleep(120)
    """
)


def test_registry_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path / "registry")],
        stdout=subprocess.PIPE,
    )
    try:
        pid_text, url = _read_line(parent.stdout, timeout=30).split()
        pid = int(pid_text)
        assert _answers(url)
        parent.kill()
        parent.wait()

        deadline = time.monotonic() + 10
        while not _exited(pid):
            assert time.monotonic() < deadline, "the registry outlived its parent by 10 s"
            time.sleep(0.05)
        assert not _answers(url)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


_DETACHER = textwrap.dedent(
    """
    import sys
    from oci_client.server import Registry
    registry = Registry(sys.argv[1], detach=True).start()
    print(registry.pid, registry.url, registry.log_path, flush=True)
    """
)


def test_a_detached_registry_outlives_its_parent(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _DETACHER, str(tmp_path / "registry")],
        capture_output=True,
        timeout=30,
        check=True,
    )
    pid_text, url, log_path = out.stdout.decode().split()
    pid = int(pid_text)
    try:
        assert _answers(url)
        assert Path(log_path).is_file()
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not _exited(pid):
            assert time.monotonic() < deadline, "the detached registry ignored SIGTERM for 10 s"
            time.sleep(0.05)
        Path(log_path).unlink(missing_ok=True)
    assert not _answers(url)


def test_repr_and_state_without_credentials(tmp_path: Path) -> None:
    r = Registry(tmp_path, proxy="http://127.0.0.1:9", proxy_username="u", proxy_password="hunter2")
    assert "hunter2" not in repr(r) and "stopped" in repr(r)
    with pytest.raises(RegistryServerError, match="not been started"):
        _ = r.url
    assert r.stop() is None
    with pytest.raises(ValueError):
        Registry(tmp_path, proxy_password="hunter2")


def test_binary_comes_from_the_environment_else_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import oci_client.server as server

    packaged, chosen = tmp_path / "packaged", tmp_path / "chosen"
    for path in (packaged, chosen):
        path.write_bytes(b"")
        path.chmod(0o755)
    monkeypatch.setattr(server, "_PACKAGED_BINARY", packaged)
    monkeypatch.delenv(server.REGISTRY_BINARY_ENV, raising=False)
    assert find_registry_binary() == packaged
    # An explicit setting wins over the packaged program.
    monkeypatch.setenv(server.REGISTRY_BINARY_ENV, str(chosen))
    assert find_registry_binary() == chosen
    # Neither: the message says how to get one.
    monkeypatch.setattr(server, "_PACKAGED_BINARY", tmp_path / "missing")
    monkeypatch.delenv(server.REGISTRY_BINARY_ENV)
    with pytest.raises(RegistryServerError, match=r"\./build\.sh or pip install"):
        find_registry_binary()


def test_binary_set_in_the_environment_but_missing_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import oci_client.server as server

    packaged = tmp_path / "packaged"
    packaged.write_bytes(b"")
    packaged.chmod(0o755)
    monkeypatch.setattr(server, "_PACKAGED_BINARY", packaged)
    monkeypatch.setenv(server.REGISTRY_BINARY_ENV, str(tmp_path / "no-such-registry"))
    # Not silently the packaged one: the variable is named, with what it holds.
    with pytest.raises(RegistryServerError, match=r"\$OCI_CLIENT_REGISTRY_BINARY .*no-such-registry"):
        find_registry_binary()
    with pytest.raises(RegistryServerError, match="OCI_CLIENT_REGISTRY_BINARY"):
        Registry(tmp_path / "root").start()
