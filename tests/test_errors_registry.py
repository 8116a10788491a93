"""The exception tree against real registries: Python's own ``except`` clauses and
``RegistryError`` catch what users expect, and the context attributes say what failed
without a credential or a signature in them."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest
from credentials import auth_field, write_config
from faultproxy import FaultProxy, Rule
from oci_testing import LocalRegistry, PushedArtifact, push_artifact

import oci_client
from oci_client import (
    AuthenticationError,
    NetworkError,
    NotCachedError,
    NotFoundError,
    OciGoClient,
    OperationTimeoutError,
    RateLimitedError,
    RegistryError,
)

DATA = b"error-context weights " * 4096


@pytest.fixture(scope="module")
def artifact(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(plain_registry, "errors/model", "v1", {"w.bin": DATA})


def test_offline_miss_is_a_file_not_found_error(plain_registry: LocalRegistry, cache: Path) -> None:
    ref = f"{plain_registry.host}/errors/never-pulled:v1"
    try:
        oci_client.pull_model(ref, cache_dir=cache, offline=True)
    except FileNotFoundError as exc:
        assert isinstance(exc, NotCachedError) and isinstance(exc, NotFoundError)
        assert exc.errno == errno.ENOENT and exc.status is None and exc.url is None
        assert exc.reference == ref and "errors/never-pulled" in str(exc)
    else:
        pytest.fail("an offline miss raised nothing")
    # A pinned digest that is missing names the digest too.
    digest = "sha256:" + "a" * 64
    with pytest.raises(FileNotFoundError) as info:
        oci_client.pull_model(
            f"{plain_registry.host}/errors/never-pulled@{digest}", cache_dir=cache, offline=True
        )
    assert isinstance(info.value, NotCachedError) and info.value.digest == digest


def test_not_found_is_a_registry_error(plain_registry: LocalRegistry, artifact: PushedArtifact) -> None:
    ref = f"{plain_registry.host}/errors/model:no-such-tag"
    with pytest.raises(RegistryError) as info:
        OciGoClient().get_manifest(ref)
    exc = info.value
    assert type(exc) is NotFoundError and exc.status == 404
    assert exc.reference == ref
    assert exc.url is not None and exc.url.endswith("/v2/errors/model/manifests/no-such-tag")


def test_rate_limit_is_a_registry_error(proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path) -> None:
    proxy.add(Rule(path=r"/blobs/", status=429, headers={"Retry-After": "0"}))
    layer = artifact.layers[0]
    with pytest.raises(RegistryError) as info:
        OciGoClient(retries=2).pull_blob(f"{proxy.host}/errors/model:v1", layer.digest, tmp_path / "w")
    exc = info.value
    assert type(exc) is RateLimitedError and exc.status == 429
    assert exc.digest == layer.digest and exc.reference == f"{proxy.host}/errors/model:v1"
    assert exc.url is not None and exc.url.endswith(f"/blobs/{layer.digest}")


def test_signed_redirect_url_is_masked(proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path) -> None:
    # The blob GET is redirected to a signed storage URL, which then fails: the error says
    # which request failed, without the signature.
    proxy.add(Rule(path=r"^/v2/.*/blobs/", method="GET", redirect=True))
    proxy.add(Rule(path=r"^/storage/", status=500))
    layer = artifact.layers[0]
    with pytest.raises(RegistryError) as info:
        OciGoClient(retries=1).pull_blob(f"{proxy.host}/errors/model:v1", layer.digest, tmp_path / "w")
    exc = info.value
    assert exc.status == 500 and exc.url is not None and "/storage/" in exc.url
    assert "X-Amz-Signature=[REDACTED]" in exc.url
    for text in (exc.url, str(exc), repr(exc)):
        assert "sig1" not in text


def test_auth_failure_is_a_registry_error_without_secrets(
    tls_registry: LocalRegistry, docker_config: Path
) -> None:
    artifact = push_artifact(tls_registry, "errors/private", "v1", {"w.bin": DATA})
    wrong = "Wr0ng-Err0r-Pa55word"
    assert tls_registry.username
    write_config(
        docker_config / "config.json",
        {"auths": {tls_registry.host: {"auth": auth_field(tls_registry.username, wrong)}}},
    )
    ref = f"{artifact.host}/errors/private:v1"
    with pytest.raises(RegistryError) as info:
        OciGoClient(ca_file=tls_registry.ca_file).get_manifest(ref)
    exc = info.value
    assert isinstance(exc, AuthenticationError) and exc.status == 401 and exc.reference == ref
    assert exc.url is not None and exc.url.startswith(f"https://{tls_registry.host}/")
    assert "@" not in exc.url
    for text in (exc.url, str(exc), repr(exc)):
        assert wrong not in text and auth_field(tls_registry.username, wrong) not in text


def test_call_timeout_is_a_timeout_error(proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path) -> None:
    # On the main thread the call runs on a worker and is polled: the poll must not take the
    # call's own TimeoutError for its own wait running out (it once polled forever).
    proxy.add(Rule(path=r"/blobs/", stall=5))
    layer = artifact.layers[0]
    with pytest.raises(TimeoutError) as info:
        OciGoClient(timeout=1.0).pull_blob(f"{proxy.host}/errors/model:v1", layer.digest, tmp_path / "w")
    assert isinstance(info.value, OperationTimeoutError) and info.value.errno == errno.ETIMEDOUT


def test_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    ref = f"127.0.0.1:{port}/errors/model:v1"
    with pytest.raises(ConnectionError) as info:
        OciGoClient(retries=1).get_manifest(ref)
    assert isinstance(info.value, NetworkError) and not isinstance(info.value, RegistryError)
    assert info.value.reference == ref
