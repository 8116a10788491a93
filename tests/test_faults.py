"""Registry misbehaviour, injected by a proxy in front of the real registry:
rate limits, corrupted bytes, stalls and cut connections. Each ends in the
typed error and never in a wrong file at the destination."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy, Rule
from oci_testing import LocalRegistry, PushedArtifact, push_artifact

from oci_client import (
    DigestMismatchError,
    NetworkError,
    OciGoClient,
    OperationTimeoutError,
    RateLimitedError,
    RegistryError,
)

DATA = os.urandom(2 * 1024 * 1024)


@pytest.fixture(scope="module")
def artifact(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(plain_registry, "faults/model", "v1", {"w.bin": DATA})


def _pull(proxy: FaultProxy, artifact: PushedArtifact, dest: Path, **kw: Any) -> None:
    layer = artifact.layers[0]
    OciGoClient(**kw).pull_blob(f"{proxy.host}/faults/model:v1", layer.digest, dest, size=layer.size)


def _nothing_written(dest: Path) -> None:
    assert [p.name for p in dest.parent.iterdir() if ".incomplete" not in p.name] == []


def test_through_the_proxy_unharmed(proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path) -> None:
    _pull(proxy, artifact, tmp_path / "w")
    assert (tmp_path / "w").read_bytes() == DATA
    assert proxy.bytes_forwarded >= len(DATA)


def test_rate_limited(proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path) -> None:
    proxy.add(Rule(path=r"/blobs/", status=429, headers={"Retry-After": "0"}))
    with pytest.raises(RateLimitedError) as exc:
        _pull(proxy, artifact, tmp_path / "w", retries=2)
    assert exc.value.status == 429 and exc.value.code == "TOO_MANY_REQUESTS"
    _nothing_written(tmp_path / "w")


def test_server_error_after_retries(proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path) -> None:
    rule = proxy.add(Rule(path=r"/blobs/", status=500))
    with pytest.raises(RegistryError) as exc:
        _pull(proxy, artifact, tmp_path / "w", retries=2)
    assert exc.value.status == 500
    assert rule.hits > 1, "a 500 is retried before giving up"
    _nothing_written(tmp_path / "w")


def test_transient_error_is_retried(proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path) -> None:
    proxy.add(Rule(path=r"/blobs/", status=503, times=1))
    _pull(proxy, artifact, tmp_path / "w")
    assert (tmp_path / "w").read_bytes() == DATA


@pytest.mark.parametrize("offset", [0, 1024 * 1024, len(DATA) - 1])
def test_flipped_byte_is_caught(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path, offset: int
) -> None:
    proxy.add(Rule(path=r"/blobs/", flip_byte_at=offset))
    dest = tmp_path / "w"
    dest.write_bytes(b"keep me")
    with pytest.raises(DigestMismatchError) as exc:
        _pull(proxy, artifact, dest)
    assert artifact.layers[0].digest in exc.value.message
    assert dest.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["w"]


def test_connection_cut_every_time_without_progress(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    proxy.add(Rule(path=r"/blobs/", truncate_at=0))
    with pytest.raises(NetworkError) as exc:
        _pull(proxy, artifact, tmp_path / "w", retries=2)
    assert exc.value.code == "NETWORK"
    assert not (tmp_path / "w").exists()


def test_stall_hits_the_timeout(proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path) -> None:
    proxy.add(Rule(path=r"/blobs/", stall=5))
    start = time.monotonic()
    with pytest.raises(OperationTimeoutError) as exc:
        _pull(proxy, artifact, tmp_path / "w", timeout=1.0)
    assert exc.value.code == "TIMEOUT"
    assert time.monotonic() - start < 4.5, "the timeout, not the stall, ended the call"
    _nothing_written(tmp_path / "w")
