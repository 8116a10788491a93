"""Proxies from os.environ (set after the library started), plain HTTP only
for loopback or listed registries, and the pull-through cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from forwardproxy import FAKE_HOST, ForwardProxy
from oci_testing import LocalRegistry, PushedArtifact, push_artifact

from oci_client import OciGoClient, TLSError


@pytest.fixture(scope="module")
def artifact(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(plain_registry, "net/model", "v1", {"w": b"via proxy" * 100})


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForwardProxy]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    with ForwardProxy() as p:
        yield p


def _fake_ref(registry: LocalRegistry) -> str:
    return f"{FAKE_HOST}:{registry.port}/net/model:v1"


def test_plain_http_refused_for_a_non_loopback_host(
    proxy: ForwardProxy,
    plain_registry: LocalRegistry,
    artifact: PushedArtifact,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with pytest.raises(TLSError) as exc:
        OciGoClient().get_manifest(_fake_ref(plain_registry))
    assert "insecure_registries" in exc.value.message
    # Only the TLS attempt reached the network; the cleartext one was refused.
    assert all(line.startswith("CONNECT") for line in proxy.seen)


def test_proxy_from_environ_set_after_start_and_insecure_listing(
    proxy: ForwardProxy,
    plain_registry: LocalRegistry,
    artifact: PushedArtifact,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = OciGoClient(insecure_registries=[f"{FAKE_HOST}:{plain_registry.port}"])
    client.get_manifest(f"{plain_registry.host}/net/model:v1")  # the library is running now
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("https_proxy", proxy.url)
    m = client.get_manifest(_fake_ref(plain_registry))
    assert m.digest == artifact.digest
    client.pull_blob(_fake_ref(plain_registry), artifact.layers[0].digest, tmp_path / "w")
    assert (tmp_path / "w").read_bytes() == b"via proxy" * 100
    assert any(f"/net/model/blobs/{artifact.layers[0].digest}" in line for line in proxy.seen)

    # NO_PROXY, also read per call, sends it direct, where registry.test does not resolve.
    proxy.seen.clear()
    monkeypatch.setenv("no_proxy", FAKE_HOST)
    with pytest.raises(Exception):  # noqa: B017 - the exact resolver failure varies
        client.get_manifest(_fake_ref(plain_registry))
    assert proxy.seen == []


def test_pull_through_cache(
    proxy_registry: LocalRegistry, proxy_upstream_registry: LocalRegistry, docker_config: Path, tmp_path: Path
) -> None:
    pushed = push_artifact(proxy_upstream_registry, "library/cached", "v1", {"w": b"cached bytes" * 1000})
    client = OciGoClient()
    ref = f"{proxy_registry.host}/library/cached:v1"
    assert client.get_manifest(ref).digest == pushed.digest
    client.pull_blob(ref, pushed.layers[0].digest, tmp_path / "w", size=pushed.layers[0].size)
    assert (tmp_path / "w").read_bytes() == b"cached bytes" * 1000
