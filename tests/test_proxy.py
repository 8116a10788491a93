"""Corporate proxies, with a real one: Debian's tinyproxy (tests/tinyproxy.py), which alone
knows where ``registry.test`` is. A TLS registry is reached with ``CONNECT`` (the TLS is ours
end to end), a plain one only when listed insecure; ``proxy=`` replaces ``HTTPS_PROXY``,
``NO_PROXY`` still applies, and the proxy's password shows nowhere."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from credentials import login
from modelfixtures import tree
from oci_testing import LocalRegistry, push_model
from tinyproxy import FAKE_HOST, Tinyproxy

import oci_client
from oci_client import Client, InvalidArgumentError, OciError

FILES = {"config.json": b'{"model_type": "proxied"}', "model.safetensors": b"p" * 300_000}
PROXY_PASSWORD = "Pr0xy-S3cret-pw"


@pytest.fixture
def guarded_proxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    p = Tinyproxy(tmp_path / "guarded", user="corp", password=PROXY_PASSWORD).start()
    yield p
    p.stop()


@pytest.fixture
def tls_model(tls_registry: LocalRegistry, docker_config: Path) -> str:
    """A model on the TLS registry, and a login for it under the name only the proxy resolves;
    the reference by that name."""
    push_model(tls_registry, "proxy/model", "v1", FILES)
    assert tls_registry.username and tls_registry.password
    login(docker_config, f"{FAKE_HOST}:{tls_registry.port}", tls_registry.username, tls_registry.password)
    return f"{FAKE_HOST}:{tls_registry.port}/proxy/model:v1"


def test_a_model_pulls_over_connect_through_https_proxy(
    tinyproxy: Tinyproxy,
    tls_registry: LocalRegistry,
    tls_model: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", tinyproxy.url)
    r = Client(ca_file=tls_registry.ca_file).pull(tls_model, cache_dir=tmp_path / "cache")
    assert tree(r.path) == FILES
    # Everything went through one tunnel kind: CONNECT to the registry, TLS inside it.
    assert tinyproxy.requests and all(
        line == f"CONNECT {FAKE_HOST}:{tls_registry.port} HTTP/1.1" for line in tinyproxy.requests
    ), tinyproxy.requests


def test_the_proxy_option_replaces_the_environment_and_its_password_shows_nowhere(
    guarded_proxy: Tinyproxy,
    tls_registry: LocalRegistry,
    tls_model: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    client = Client(ca_file=tls_registry.ca_file, proxy=guarded_proxy.url)
    assert PROXY_PASSWORD not in repr(client)
    r = client.pull(tls_model, cache_dir=tmp_path / "cache")
    assert tree(r.path) == FILES
    assert any(line.startswith("CONNECT") for line in guarded_proxy.requests)

    # A wrong password: the proxy refuses the tunnel, and the password is in no message or log.
    wrong = "Wr0ng-Pr0xy-pw"
    bad = Client(
        ca_file=tls_registry.ca_file, proxy=guarded_proxy.url.replace(PROXY_PASSWORD, wrong), retries=1
    )
    caplog.set_level(logging.DEBUG, logger="oci_client")
    with pytest.raises(OciError) as exc:
        bad.pull(tls_model, cache_dir=tmp_path / "other")
    shown = [str(exc.value), repr(exc.value), caplog.text, repr(bad)]
    assert not any(wrong in text or PROXY_PASSWORD in text for text in shown), shown


def test_no_proxy_sends_the_registry_direct_even_with_the_option(
    tinyproxy: Tinyproxy,
    tls_registry: LocalRegistry,
    tls_model: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_PROXY", FAKE_HOST)
    with pytest.raises(oci_client.NetworkError):
        # Direct, registry.test does not resolve.
        Client(ca_file=tls_registry.ca_file, proxy=tinyproxy.url, retries=1).get_manifest(tls_model)
    assert tinyproxy.requests == []


def test_a_plain_registry_goes_through_the_proxy_only_when_listed(
    tinyproxy: Tinyproxy, plain_registry: LocalRegistry, docker_config: Path, tmp_path: Path
) -> None:
    push_model(plain_registry, "proxy/plain", "v1", FILES)
    ref = f"{FAKE_HOST}:{plain_registry.port}/proxy/plain:v1"
    with pytest.raises(oci_client.TLSError):
        Client(proxy=tinyproxy.url, retries=1).get_manifest(ref)
    # Refused before anything was sent in clear; the TLS attempt is all the proxy saw.
    assert all(line.startswith("CONNECT") for line in tinyproxy.requests), tinyproxy.requests
    listed = Client(proxy=tinyproxy.url, insecure_registries=[f"{FAKE_HOST}:{plain_registry.port}"])
    r = listed.pull(ref, cache_dir=tmp_path / "cache")
    assert tree(r.path) == FILES
    assert any(
        line.startswith(f"GET http://{FAKE_HOST}:{plain_registry.port}/v2/") for line in tinyproxy.requests
    )


@pytest.mark.parametrize(
    "proxy",
    ["proxy.example:3128", "ftp://proxy.example", f"http://u:{PROXY_PASSWORD}@proxy.example/some/path"],
)
def test_a_proxy_option_that_is_no_proxy_url_is_an_invalid_argument(proxy: str, docker_config: Path) -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        Client(proxy=proxy).get_manifest("registry.example/a/b:v1")
    assert "proxy" in exc.value.message and PROXY_PASSWORD not in str(exc.value)
