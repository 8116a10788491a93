"""Shared fixtures: real registries (one per auth mode) and an isolated Docker config."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy
from oci_testing import LocalRegistry, RegistryMode, RegistryUnavailable
from tinyproxy import Tinyproxy

# tests/with_vllm run inside the vLLM environments (.ci/vllm-envs, a stage of test.sh of its
# own); an environment without vLLM cannot import them.
collect_ignore = [] if importlib.util.find_spec("vllm") else ["with_vllm"]


def _start_registry(mode: RegistryMode, **kwargs: Any) -> LocalRegistry:
    """Start a registry; a missing registry binary skips locally but fails in CI, where a
    silent skip would hide that the real-registry tests never ran."""
    try:
        return LocalRegistry(mode, **kwargs).start()
    except RegistryUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"registry unavailable in CI: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def registry_factory() -> Iterator[Callable[..., LocalRegistry]]:
    """Start extra registries with custom options (``factory(mode, **LocalRegistry kwargs)``);
    all are stopped when the test ends."""
    started: list[LocalRegistry] = []

    def factory(mode: RegistryMode, **kwargs: Any) -> LocalRegistry:
        registry = _start_registry(mode, **kwargs)
        started.append(registry)
        return registry

    yield factory
    for registry in reversed(started):
        registry.stop()


@pytest.fixture(scope="session")
def plain_registry() -> Iterator[LocalRegistry]:
    """HTTP registry without auth."""
    registry = _start_registry("plain")
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def tls_registry() -> Iterator[LocalRegistry]:
    """HTTPS registry (private CA in ``.ca_file``) with Basic auth for ``.username``."""
    registry = _start_registry("tls_basic")
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def token_registry() -> Iterator[LocalRegistry]:
    """HTTP registry with token auth; ``.token_server`` records the tokens it issues."""
    registry = _start_registry("token")
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def proxy_upstream_registry() -> Iterator[LocalRegistry]:
    """Token-auth registry behind :func:`proxy_registry` (separate from ``token_registry``
    so token counts there are not disturbed by cache traffic)."""
    registry = _start_registry("token")
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def proxy_registry(proxy_upstream_registry: LocalRegistry) -> Iterator[LocalRegistry]:
    """Anonymous pull-through cache of ``proxy_upstream_registry`` (push there, pull here)."""
    registry = _start_registry("proxy", upstream=proxy_upstream_registry)
    yield registry
    registry.stop()


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``DOCKER_CONFIG`` directory (returned) and a temporary ``HOME``, with the
    other credential sources unset, so no test reads the real user's credentials."""
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    return config_dir


@pytest.fixture
def proxy(plain_registry: LocalRegistry) -> Iterator[FaultProxy]:
    """A FaultProxy in front of ``plain_registry``: it counts, logs and injects faults."""
    with FaultProxy(plain_registry.url) as p:
        yield p


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    """Debian's tinyproxy on 127.0.0.1, the only one here that knows where registry.test is."""
    p = Tinyproxy(tmp_path / "tinyproxy").start()
    yield p
    p.stop()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A cache root of the test's own."""
    return tmp_path / "cache"
