"""The native boundary: loading, the ABI (c_void_p + FreeString), threads
in parallel, forked children, and 20,000 calls without memory growth."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultproxy import FaultProxy, Rule
from oci_testing import LocalRegistry, PushedArtifact, push_artifact

from oci_client import LibraryError, NotFoundError, OciError, OciGoClient, _abi, _native


def _run_python(
    code: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def many_layers(plain_registry: LocalRegistry) -> PushedArtifact:
    # 200 layers make each manifest envelope ~50 KB, so a leaked envelope shows.
    files = {f"part-{i:03d}.bin": f"layer {i}".encode() * 8 for i in range(200)}
    return push_artifact(plain_registry, "native/many", "v1", files)


@pytest.fixture(scope="module")
def shards(plain_registry: LocalRegistry) -> PushedArtifact:
    files = {f"shard-{i}.safetensors": os.urandom(512 * 1024 + i) for i in range(8)}
    return push_artifact(plain_registry, "native/shards", "v1", files)


def test_exports_return_void_pointers() -> None:
    lib = _native.load_library()
    for name in _native.EXPORTS:
        assert getattr(lib, name).restype is ctypes.c_void_p
    assert lib.FreeString.argtypes == [ctypes.c_void_p]


def test_raw_abi_envelope_and_free() -> None:
    lib = _native.load_library()
    ptr = lib.PullManifest(json.dumps({"reference": "NOT VALID"}).encode())
    assert isinstance(ptr, int) and ptr != 0
    envelope = json.loads(ctypes.string_at(ptr))
    lib.FreeString(ptr)
    assert envelope == {
        "abi_version": _abi.ABI_VERSION,
        "ok": False,
        # The request's reference: the error names none of its own.
        "error": {
            "code": "INVALID_REFERENCE",
            "message": envelope["error"]["message"],
            "reference": "NOT VALID",
        },
    }
    ptr = lib.PullBlob(b"{not json")
    assert json.loads(ctypes.string_at(ptr))["error"]["code"] == "INVALID_ARGUMENT"
    lib.FreeString(ptr)
    lib.FreeString(None)  # NULL is ignored


def test_missing_library_says_how_to_build(tmp_path: Path) -> None:
    r = _run_python(
        "from oci_client import OciGoClient\nOciGoClient().get_manifest('a/b:c')",
        env={"OCI_CLIENT_LIB": str(tmp_path / "nope.so")},
    )
    assert r.returncode == 1
    assert "LibraryError" in r.stderr and "build.sh" in r.stderr and "nope.so" in r.stderr


def test_lazy_load_and_explicit_path_precedence(tmp_path: Path) -> None:
    real = _native.default_library_path()
    code = f"""
import oci_client, oci_client._native as n
assert n._lib is None, "importing must not load the library"
c = oci_client.OciGoClient(lib_path={str(real)!r})
try:
    c.get_manifest('BAD')
except oci_client.InvalidReferenceError:
    pass
assert str(n._lib_path) == {str(real.resolve())!r}, n._lib_path
try:
    oci_client.OciGoClient(lib_path={str(tmp_path / "other.so")!r}).get_manifest('BAD')
except oci_client.LibraryError as e:
    print('second:', e)
"""
    r = _run_python(code, env={"OCI_CLIENT_LIB": str(tmp_path / "ignored.so")})
    assert r.returncode == 0, r.stderr
    assert "already loaded" in r.stdout


def test_forked_child_gets_a_clear_error(plain_registry: LocalRegistry, shards: PushedArtifact) -> None:
    ref = f"{plain_registry.host}/native/shards:v1"
    code = f"""
import os, multiprocessing
from oci_client import OciGoClient, ForkedProcessError
c = OciGoClient()
c.get_manifest({ref!r})                      # the Go runtime is now running
pid = os.fork()
if pid == 0:
    try:
        c.get_manifest({ref!r})
        os._exit(3)
    except ForkedProcessError as e:
        print('child:', e, flush=True)
        os._exit(0)
    except BaseException:
        os._exit(4)
_, status = os.waitpid(pid, 0)
print('child exit', os.waitstatus_to_exitcode(status), flush=True)

def work(r):
    return OciGoClient().get_manifest(r).digest

# The error also pickles back from a fork-started pool worker.
with multiprocessing.get_context('fork').Pool(1) as pool:
    try:
        pool.apply(work, ({ref!r},))
        print('pool: no error')
    except ForkedProcessError as e:
        print('pool:', type(e).__name__, e.code)
print('parent', c.get_manifest({ref!r}).digest)
"""
    r = _run_python(code, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "child exit 0" in r.stdout and "does not survive fork" in r.stdout
    assert "pool: ForkedProcessError FORKED" in r.stdout
    assert f"parent {shards.digest}" in r.stdout


def test_first_use_in_a_child_works(plain_registry: LocalRegistry, shards: PushedArtifact) -> None:
    ref = f"{plain_registry.host}/native/shards:v1"
    code = f"""
import os
from oci_client import OciGoClient
pid = os.fork()                              # before the library was ever loaded
if pid == 0:
    os._exit(0 if OciGoClient().get_manifest({ref!r}).digest == {shards.digest!r} else 5)
_, status = os.waitpid(pid, 0)
print('child exit', os.waitstatus_to_exitcode(status))
"""
    r = _run_python(code)
    assert r.returncode == 0, r.stderr
    assert "child exit 0" in r.stdout


def test_eight_threads_pull_at_once(
    plain_registry: LocalRegistry, shards: PushedArtifact, tmp_path: Path
) -> None:
    client = OciGoClient()
    ref = f"{plain_registry.host}/native/shards:v1"
    errors: list[BaseException] = []

    def pull(i: int) -> None:
        try:
            layer = shards.layers[i]
            client.pull_blob(ref, layer.digest, tmp_path / f"{i}" / "shard", size=layer.size)
            assert client.get_manifest(ref).digest == shards.digest
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pull, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    for i, layer in enumerate(shards.layers):
        assert (tmp_path / f"{i}" / "shard").stat().st_size == layer.size


@pytest.fixture
def slow_proxy(plain_registry: LocalRegistry) -> Iterator[FaultProxy]:
    with FaultProxy(plain_registry.url) as p:
        p.add(Rule(path=r"/manifests/", stall=1.5))
        yield p


def test_calls_release_the_gil(slow_proxy: FaultProxy, shards: PushedArtifact) -> None:
    client = OciGoClient()
    ref = f"{slow_proxy.host}/native/shards:v1"
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(client.get_manifest(ref).digest)) for _ in range(8)
    ]
    start = time.monotonic()
    for t in threads:
        t.start()
    ticks = 0
    while any(t.is_alive() for t in threads):
        ticks += 1  # Python keeps running while Go waits
        time.sleep(0.01)
    elapsed = time.monotonic() - start
    assert results == [shards.digest] * 8
    # Eight 1.5 s stalls served one after another would take 12 s.
    assert elapsed < 6, f"calls did not overlap: {elapsed:.1f}s"
    assert ticks > 20


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc (Linux)")
def test_twenty_thousand_calls_without_memory_growth(
    plain_registry: LocalRegistry, many_layers: PushedArtifact
) -> None:
    client = OciGoClient()
    ref = f"{plain_registry.host}/native/many:v1"
    missing = "sha256:" + "1" * 64

    def batch(n: int) -> None:
        for i in range(n):
            if i % 20 == 0:
                assert client.get_manifest(ref).size == len(many_layers.manifest_bytes)
            elif i % 20 == 1:
                with pytest.raises(NotFoundError):
                    client.pull_blob(ref, missing, "/nonexistent-dir-never-created/x")
            else:
                with pytest.raises(OciError):
                    client.get_manifest("INVALID//ref")

    batch(1_000)  # warm up: caches, connection pools, Go heap
    before = _rss_mib()
    batch(20_000)
    growth = _rss_mib() - before
    # 1,000 leaked manifest envelopes alone would be ~55 MiB.
    assert growth < 25, f"RSS grew {growth:.1f} MiB over 20,000 calls"
    assert not Path("/nonexistent-dir-never-created").exists()


def test_unknown_export_is_refused() -> None:
    with pytest.raises(ValueError):
        _native.call("Nope", {})
    assert issubclass(LibraryError, OciError)
