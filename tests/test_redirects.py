"""Where a registry may send us, with real parts: a registry that hands blobs to "object
storage" on a second loopback address (127.0.0.2, tests/faultproxy.py's redirect rule), a
token service on another port named by IP literal, and Debian's tinyproxy, through which a
registry called ``registry.test`` is not on a private address as far as the client can tell.
An on-prem registry's storage and token service on private addresses work; the same answers
from a registry outside are refused; credentials never follow a redirect."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from credentials import login
from faultproxy import FaultProxy, Rule
from modelfixtures import tree
from oci_testing import LocalRegistry, TokenServer, push_model
from tinyproxy import FAKE_HOST, Tinyproxy

from oci_client import Client, OciError, TLSError

FILES = {"config.json": b'{"model_type": "redirected"}', "model.safetensors": b"r" * 200_000}


@pytest.fixture
def storage(plain_registry: LocalRegistry) -> Iterator[FaultProxy]:
    """Object storage on 127.0.0.2: it serves the blobs of ``plain_registry`` at signed URLs."""
    push_model(plain_registry, "redirect/model", "v1", FILES)
    with FaultProxy(plain_registry.url, bind="127.0.0.2") as p:
        yield p


def test_a_blob_redirect_to_storage_on_another_private_address_is_followed_without_credentials(
    token_registry: LocalRegistry, storage: FaultProxy, docker_config: Path, tmp_path: Path
) -> None:
    push_model(token_registry, "redirect/model", "v1", FILES)
    with FaultProxy(token_registry.url) as front:
        front.storage = storage
        front.add(Rule(path=r"^/v2/.*/blobs/", method="GET", redirect=True))
        assert token_registry.username and token_registry.password
        login(docker_config, front.host, token_registry.username, token_registry.password)
        r = Client().pull(f"{front.host}/redirect/model:v1", cache_dir=tmp_path / "cache")
    assert tree(r.path) == FILES
    fetched = [s for s in storage.log if s.path.startswith("/storage/")]
    assert len(fetched) >= 2 and all(s.status == 200 for s in fetched)
    # The registry got the token; the storage, on another host, never did.
    assert any(s.authorization for s in front.log)
    assert not any(s.authorization for s in fetched)


def test_the_same_redirect_from_a_registry_outside_is_refused(
    plain_registry: LocalRegistry,
    storage: FaultProxy,
    tinyproxy: Tinyproxy,
    docker_config: Path,
    tmp_path: Path,
) -> None:
    with FaultProxy(plain_registry.url) as front:
        front.storage = storage
        front.add(Rule(path=r"^/v2/.*/blobs/", method="GET", redirect=True))
        # Through the proxy, as registry.test: the client cannot tell it is on a private address.
        outside = f"{FAKE_HOST}:{front.host.rsplit(':', 1)[1]}"
        client = Client(proxy=tinyproxy.url, insecure_registries=[outside], retries=1)
        with pytest.raises(TLSError) as exc:
            client.pull(f"{outside}/redirect/model:v1", cache_dir=tmp_path / "cache")
    assert "private address" in exc.value.message and "127.0.0.2" in exc.value.message
    assert not [s for s in storage.log if s.path.startswith("/storage/")]
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("model.safetensors"))


@pytest.fixture
def ip_realm_registry(registry_factory: Callable[..., LocalRegistry]) -> Iterator[LocalRegistry]:
    """A token-auth registry whose token service is on another port of 127.0.0.1, named by
    that IP literal (go-containerregistry alone refuses such a realm)."""
    with TokenServer({"alice": "s3cret-a"}, realm_host="127.0.0.1") as server:
        registry = registry_factory("token", token_server=server)
        push_model(registry.target("alice", "s3cret-a"), "realm/model", "v1", FILES)
        yield registry


def test_a_token_realm_on_another_private_port_works_for_a_private_registry(
    ip_realm_registry: LocalRegistry, docker_config: Path, tmp_path: Path
) -> None:
    assert ip_realm_registry.token_server is not None
    assert ip_realm_registry.token_server.realm.startswith("http://127.0.0.1:")
    login(docker_config, ip_realm_registry.host, "alice", "s3cret-a")
    r = Client().pull(f"{ip_realm_registry.host}/realm/model:v1", cache_dir=tmp_path / "cache")
    assert tree(r.path) == FILES


def test_a_private_token_realm_of_a_registry_outside_is_refused(
    ip_realm_registry: LocalRegistry, tinyproxy: Tinyproxy, docker_config: Path, tmp_path: Path
) -> None:
    outside = f"{FAKE_HOST}:{ip_realm_registry.port}"
    login(docker_config, outside, "alice", "s3cret-a")
    client = Client(proxy=tinyproxy.url, insecure_registries=[outside], retries=1)
    with pytest.raises(OciError) as exc:
        client.pull(f"{outside}/realm/model:v1", cache_dir=tmp_path / "cache")
    assert "private" in str(exc.value) and "s3cret-a" not in str(exc.value)
