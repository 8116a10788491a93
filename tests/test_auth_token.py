"""Bearer token auth (the Docker Hub flow) against distribution with a real
token server: anonymous public pulls, logins, identity tokens, denied
repositories, and tokens that expire between calls."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import _start_registry
from credentials import auth_field, login, write_config
from oci_testing import LocalRegistry, PushedArtifact, push_artifact

from oci_client import AuthenticationError, OciGoClient

USERS = {"admin": secrets.token_urlsafe(12), "reader": secrets.token_urlsafe(12)}
DATA = b"token-protected weights" * 512


def policy(user: str | None, resource: str) -> tuple[str, ...]:
    if user == "admin":
        return ("pull", "push", "delete")
    if resource.startswith("public/"):
        return ("pull",)
    if user == "reader" and resource.startswith("models/"):
        return ("pull",)
    return ()


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    reg = _start_registry("token", users=USERS, token_grants=policy)
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def pushed(registry: LocalRegistry) -> dict[str, PushedArtifact]:
    admin = registry.target("admin", USERS["admin"])
    return {
        repo: push_artifact(admin, repo, "v1", {"w.bin": DATA})
        for repo in ("public/m", "models/m", "secret/m")
    }


def _login(docker_config: Path, registry: LocalRegistry, user: str, password: str) -> None:
    login(docker_config, registry.host, user, password)


def test_anonymous_public_pull(
    docker_config: Path, registry: LocalRegistry, pushed: dict[str, PushedArtifact], tmp_path: Path
) -> None:
    client = OciGoClient()
    ref = f"{registry.host}/public/m:v1"
    assert client.check_authentication(ref).anonymous
    client.pull_blob(ref, pushed["public/m"].layers[0].digest, tmp_path / "w")
    assert (tmp_path / "w").read_bytes() == DATA
    with pytest.raises(AuthenticationError) as exc:
        client.get_manifest(f"{registry.host}/models/m:v1")
    assert exc.value.status == 401


def test_login_pulls_and_reuses_its_token(
    docker_config: Path, registry: LocalRegistry, pushed: dict[str, PushedArtifact], tmp_path: Path
) -> None:
    _login(docker_config, registry, "reader", USERS["reader"])
    client = OciGoClient()
    ref = f"{registry.host}/models/m:v1"
    assert client.pull_manifest(ref) == pushed["models/m"].manifest
    issued = registry.token_server.tokens_issued if registry.token_server else -1
    for i in range(3):
        client.pull_blob(ref, pushed["models/m"].layers[0].digest, tmp_path / f"w{i}")
    assert registry.token_server and registry.token_server.tokens_issued == issued


def test_denied_repository(
    docker_config: Path, registry: LocalRegistry, pushed: dict[str, PushedArtifact]
) -> None:
    _login(docker_config, registry, "reader", USERS["reader"])
    client = OciGoClient()
    ref = f"{registry.host}/secret/m:v1"
    with pytest.raises(AuthenticationError) as exc:
        client.get_manifest(ref)
    assert exc.value.status == 401
    reason = client.test_authentication(ref)
    assert reason is not None and "secret/m" in reason and USERS["reader"] not in reason


def test_wrong_password_at_token_server(
    docker_config: Path, registry: LocalRegistry, pushed: dict[str, PushedArtifact]
) -> None:
    wrong = "not-the-" + secrets.token_urlsafe(8)
    _login(docker_config, registry, "reader", wrong)
    with pytest.raises(AuthenticationError) as exc:
        OciGoClient().get_manifest(f"{registry.host}/models/m:v1")
    assert exc.value.status == 401
    for text in (str(exc.value), repr(exc.value)):
        assert wrong not in text and auth_field("reader", wrong) not in text


def test_identity_token(
    docker_config: Path, registry: LocalRegistry, pushed: dict[str, PushedArtifact]
) -> None:
    assert registry.token_server
    resp = requests.post(
        registry.token_server.realm,
        timeout=10,
        data={
            "grant_type": "password",
            "username": "reader",
            "password": USERS["reader"],
            "service": registry.token_server.service,
            "client_id": "test",
            "access_type": "offline",
        },
    )
    resp.raise_for_status()
    refresh = resp.json()["refresh_token"]
    write_config(docker_config / "config.json", {"auths": {registry.host: {"identitytoken": refresh}}})
    registry.token_server.reset_records()
    info = OciGoClient().check_authentication(f"{registry.host}/models/m:v1")
    assert not info.anonymous
    assert any(r.grant_type == "refresh_token" and r.status == 200 for r in registry.token_server.requests)


def test_expired_token_is_renewed_mid_session(docker_config: Path, tmp_path: Path) -> None:
    reg = _start_registry("token", token_effective_ttl=2)
    try:
        assert reg.username and reg.password and reg.token_server
        pushed = push_artifact(reg, "models/short", "v1", {"w": DATA})
        _login(docker_config, reg, reg.username, reg.password)
        client = OciGoClient()
        ref = f"{reg.host}/models/short:v1"
        client.pull_blob(ref, pushed.layers[0].digest, tmp_path / "a")
        before = reg.token_server.tokens_issued
        time.sleep(3)  # the cached token is now rejected by the registry
        client.pull_blob(ref, pushed.layers[0].digest, tmp_path / "b")
        assert (tmp_path / "b").read_bytes() == DATA
        assert reg.token_server.tokens_issued > before
    finally:
        reg.stop()
