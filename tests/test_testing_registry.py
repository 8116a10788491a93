"""The real-registry test infrastructure itself, checked with plain ``requests``."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from oci_testing import (
    ANNOTATION_MODEL_FILEPATH,
    ANNOTATION_TITLE,
    DOCKER_MANIFEST_MEDIA_TYPE,
    MODEL_ARTIFACT_TYPE,
    MODEL_CONFIG_MEDIA_TYPE,
    MODEL_WEIGHT_MEDIA_TYPE,
    OCI_INDEX_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE,
    LocalRegistry,
    RegistryClient,
    RegistryHTTPError,
    RegistryStartupError,
    RegistryUnavailable,
    TokenServer,
    libtrust_key_id,
    push_artifact,
    push_blob,
    push_docker_v2_image,
    push_index,
    push_model,
)


@pytest.fixture
def http() -> requests.Session:
    session = requests.Session()
    # Environment proxies or ~/.netrc must not change what the registry sees.
    session.trust_env = False
    return session


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _get_token(
    http: requests.Session,
    registry: LocalRegistry,
    scope: str,
    auth: tuple[str, str] | None = None,
) -> requests.Response:
    server = registry.token_server
    assert server is not None
    return http.get(server.realm, params={"service": server.service, "scope": scope}, auth=auth)


def _credentials(registry: LocalRegistry) -> tuple[str, str]:
    assert registry.username is not None and registry.password is not None
    return registry.username, registry.password


# -- plain ------------------------------------------------------------------------------


def test_plain_push_then_pull_manifest_and_blob(
    plain_registry: LocalRegistry, http: requests.Session
) -> None:
    pushed = push_artifact(plain_registry, "infra/plain", "v1", {"a.txt": b"alpha", "b.txt": b"b"})
    base = f"{plain_registry.url}/v2/infra/plain"

    response = http.get(f"{base}/manifests/v1", headers={"Accept": OCI_MANIFEST_MEDIA_TYPE})
    assert response.status_code == 200
    assert response.content == pushed.manifest_bytes
    assert response.headers["Docker-Content-Digest"] == pushed.digest == _sha256(response.content)
    manifest = response.json()
    assert manifest["mediaType"] == OCI_MANIFEST_MEDIA_TYPE
    assert [layer["annotations"][ANNOTATION_TITLE] for layer in manifest["layers"]] == [
        "a.txt",
        "b.txt",
    ]

    blob = http.get(f"{base}/blobs/{pushed.layers[0].digest}")
    assert blob.status_code == 200
    assert blob.content == b"alpha"
    assert _sha256(blob.content) == pushed.layers[0].digest
    assert pushed.reference == f"{plain_registry.host}/infra/plain:v1"


def test_plain_oci_manifest_needs_oci_accept_header(
    plain_registry: LocalRegistry, http: requests.Session
) -> None:
    push_artifact(plain_registry, "infra/accept", "v1", {"f": b"x"})
    response = http.get(f"{plain_registry.url}/v2/infra/accept/manifests/v1")
    # distribution 2.8 hides OCI manifests from clients that do not ask for them.
    assert response.status_code == 404


def test_push_blob_streams_large_file(
    plain_registry: LocalRegistry, http: requests.Session, tmp_path: Path
) -> None:
    path = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    digest = push_blob(plain_registry, "infra/big", path)
    assert digest == _sha256(data)
    # A second push finds the blob and uploads nothing.
    assert push_blob(plain_registry, "infra/big", path) == digest
    blob = http.get(f"{plain_registry.url}/v2/infra/big/blobs/{digest}")
    assert blob.status_code == 200 and blob.content == data


def test_push_model_docker_image_and_index(plain_registry: LocalRegistry) -> None:
    model = push_model(
        plain_registry, "infra/model", "v1", {"model.safetensors": b"\0" * 64, "config.json": b"{}"}
    )
    assert model.manifest["artifactType"] == MODEL_ARTIFACT_TYPE
    assert model.manifest["config"]["mediaType"] == MODEL_CONFIG_MEDIA_TYPE
    for layer, name in zip(model.manifest["layers"], ["model.safetensors", "config.json"], strict=True):
        assert layer["mediaType"] == MODEL_WEIGHT_MEDIA_TYPE
        assert layer["annotations"][ANNOTATION_MODEL_FILEPATH] == name
        assert layer["annotations"][ANNOTATION_TITLE] == name

    image = push_docker_v2_image(plain_registry, "infra/model", "docker")
    index = push_index(
        plain_registry,
        "infra/model",
        "multi",
        [model, image],
        platforms=[None, {"architecture": "amd64", "os": "linux"}],
    )
    with RegistryClient(plain_registry) as client:
        config = json.loads(client.get_blob("infra/model", model.manifest["config"]["digest"]))
        assert config["modelfs"]["diffIds"] == [layer.digest for layer in model.layers]
        docker = client.get_manifest("infra/model", "docker", accept=[DOCKER_MANIFEST_MEDIA_TYPE])
        assert docker.headers["Content-Type"] == DOCKER_MANIFEST_MEDIA_TYPE
        assert docker.content == image.manifest_bytes
        fetched = client.get_manifest("infra/model", "multi", accept=[OCI_INDEX_MEDIA_TYPE])
        assert fetched.headers["Docker-Content-Digest"] == index.digest
        assert [m["digest"] for m in fetched.json()["manifests"]] == [model.digest, image.digest]


# -- TLS + Basic ------------------------------------------------------------------------


def test_tls_basic_push_then_pull(tls_registry: LocalRegistry, http: requests.Session) -> None:
    assert tls_registry.url.startswith("https://127.0.0.1:")
    assert tls_registry.ca_file is not None
    pushed = push_artifact(tls_registry, "infra/tls", "v1", {"w.bin": b"weights"})
    base = f"{tls_registry.url}/v2/infra/tls"
    verify = str(tls_registry.ca_file)
    auth = _credentials(tls_registry)

    response = http.get(
        f"{base}/manifests/v1",
        headers={"Accept": OCI_MANIFEST_MEDIA_TYPE},
        auth=auth,
        verify=verify,
    )
    assert response.status_code == 200
    assert response.content == pushed.manifest_bytes
    blob = http.get(f"{base}/blobs/{pushed.layers[0].digest}", auth=auth, verify=verify)
    assert blob.status_code == 200 and _sha256(blob.content) == pushed.layers[0].digest


def test_tls_basic_rejects_bad_credentials_and_unknown_ca(
    tls_registry: LocalRegistry, http: requests.Session
) -> None:
    url = f"{tls_registry.url}/v2/"
    verify = str(tls_registry.ca_file)
    anonymous = http.get(url, verify=verify)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    user, _ = _credentials(tls_registry)
    assert http.get(url, verify=verify, auth=(user, "wrong-password")).status_code == 401
    assert http.get(url, verify=verify, auth=_credentials(tls_registry)).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        http.get(url, verify=True)


def test_push_with_wrong_password_fails_without_leaking_it(
    tls_registry: LocalRegistry, token_registry: LocalRegistry
) -> None:
    for registry in (tls_registry, token_registry):
        user, _ = _credentials(registry)
        target = registry.target(user, "not-the-password-123")
        with pytest.raises(RegistryHTTPError) as excinfo:
            push_artifact(target, "infra/denied", "v1", {"f": b"x"})
        assert excinfo.value.status == 401
        assert "not-the-password-123" not in str(excinfo.value)


# -- token ------------------------------------------------------------------------------


def test_token_server_issues_tokens_the_registry_accepts(
    token_registry: LocalRegistry, http: requests.Session
) -> None:
    server = token_registry.token_server
    assert server is not None
    pushed = push_artifact(token_registry, "infra/token", "v1", {"f.bin": b"payload"})

    before = server.tokens_issued
    scope = "repository:infra/token:pull"
    response = _get_token(http, token_registry, scope, auth=_credentials(token_registry))
    assert response.status_code == 200
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] > 0 and body["issued_at"].endswith("Z")
    assert server.tokens_issued == before + 1
    last = server.requests[-1]
    assert (last.user, last.scopes, last.status) == (token_registry.username, (scope,), 200)
    assert _credentials(token_registry)[1] not in repr(server.requests)

    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "ES256"
    assert header["kid"] == server.key_id
    signer = x509.load_pem_x509_certificate(server.root_cert_pem).public_key()
    assert isinstance(signer, ec.EllipticCurvePublicKey)
    claims = jwt.decode(body["token"], signer, algorithms=["ES256"], audience=server.service)
    assert claims["aud"] == server.service  # a string: distribution 2.8 rejects a list
    assert claims["access"] == [{"type": "repository", "name": "infra/token", "actions": ["pull"]}]

    bearer = {"Authorization": f"Bearer {body['token']}", "Accept": OCI_MANIFEST_MEDIA_TYPE}
    base = f"{token_registry.url}/v2/infra/token"
    manifest = http.get(f"{base}/manifests/v1", headers=bearer)
    assert manifest.status_code == 200 and manifest.content == pushed.manifest_bytes
    blob = http.get(f"{base}/blobs/{pushed.layers[0].digest}", headers=bearer)
    assert blob.status_code == 200 and blob.content == b"payload"


def test_token_server_rejects_wrong_password_and_grants_anonymous_nothing(
    token_registry: LocalRegistry, http: requests.Session
) -> None:
    user, _ = _credentials(token_registry)
    scope = "repository:infra/token:pull"
    assert _get_token(http, token_registry, scope, auth=(user, "wrong")).status_code == 401
    server = token_registry.token_server
    assert server is not None
    assert server.requests[-1].status == 401 and server.requests[-1].user == user

    anonymous = _get_token(http, token_registry, scope)
    assert anonymous.status_code == 200
    token = anonymous.json()["token"]
    assert jwt.decode(token, options={"verify_signature": False})["access"] == []
    challenge = http.get(
        f"{token_registry.url}/v2/infra/token/tags/list",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert challenge.status_code == 401


def test_token_server_oauth_password_and_refresh_grants(
    token_registry: LocalRegistry, http: requests.Session
) -> None:
    server = token_registry.token_server
    assert server is not None
    user, password = _credentials(token_registry)
    form = {"grant_type": "password", "username": user, "password": password}
    common = {"service": server.service, "scope": "repository:infra/oauth:pull,push"}
    first = http.post(server.realm, data={**form, **common})
    assert first.status_code == 200
    refresh_token = first.json()["refresh_token"]

    refreshed = http.post(
        server.realm, data={"grant_type": "refresh_token", "refresh_token": refresh_token, **common}
    )
    assert refreshed.status_code == 200
    claims = jwt.decode(refreshed.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user
    assert claims["access"][0]["actions"] == ["pull", "push"]

    bad = http.post(server.realm, data={"grant_type": "refresh_token", "refresh_token": "nope"})
    assert bad.status_code == 401
    assert http.post(server.realm, data={**form, "password": "wrong"}).status_code == 401


def test_token_grants_policy_and_multiple_scopes(http: requests.Session) -> None:
    grants = {(None, "public/model"): ["pull"], ("alice", "*"): ["pull", "push"]}
    with TokenServer({"alice": "secret-a"}, grants=grants) as server:
        url = f"{server.realm}?scope=repository:public/model:pull,push&scope=repository:private/x:pull"
        anonymous = http.get(url).json()["token"]
        assert jwt.decode(anonymous, options={"verify_signature": False})["access"] == [
            {"type": "repository", "name": "public/model", "actions": ["pull"]}
        ]
        alice = http.get(url, auth=("alice", "secret-a")).json()["token"]
        assert len(jwt.decode(alice, options={"verify_signature": False})["access"]) == 2
        assert server.requests[0].scopes == (
            "repository:public/model:pull,push",
            "repository:private/x:pull",
        )


def test_token_key_id_is_libtrust_id_of_root_cert_key() -> None:
    server = TokenServer()
    public_key = x509.load_pem_x509_certificate(server.root_cert_pem).public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    key_id = libtrust_key_id(public_key)
    assert key_id == server.key_id
    groups = key_id.split(":")
    assert len(groups) == 12 and all(len(g) == 4 for g in groups)
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert base64.b32decode(key_id.replace(":", "")) == hashlib.sha256(der).digest()[:30]


def test_token_effective_ttl_expires_tokens(
    registry_factory: Callable[..., LocalRegistry], http: requests.Session
) -> None:
    registry = registry_factory("token", token_effective_ttl=2)
    response = _get_token(http, registry, "repository:infra/ttl:pull", _credentials(registry))
    headers = {"Authorization": f"Bearer {response.json()['token']}"}
    url = f"{registry.url}/v2/infra/ttl/tags/list"
    assert http.get(url, headers=headers).status_code == 404  # accepted; repo is empty
    time.sleep(3)
    rejected = http.get(url, headers=headers)
    assert rejected.status_code == 401
    assert 'error="invalid_token"' in rejected.headers["WWW-Authenticate"]


# -- pull-through cache -----------------------------------------------------------------


def test_proxy_serves_what_was_pushed_upstream(
    proxy_registry: LocalRegistry, proxy_upstream_registry: LocalRegistry, http: requests.Session
) -> None:
    pushed = push_artifact(proxy_upstream_registry, "infra/cached", "v1", {"m.bin": b"model"})
    base = f"{proxy_registry.url}/v2/infra/cached"
    manifest = http.get(f"{base}/manifests/v1", headers={"Accept": OCI_MANIFEST_MEDIA_TYPE})
    assert manifest.status_code == 200
    assert manifest.headers["Docker-Content-Digest"] == pushed.digest
    blob = http.get(f"{base}/blobs/{pushed.layers[0].digest}")
    assert blob.status_code == 200 and _sha256(blob.content) == pushed.layers[0].digest
    # Caches are read-only.
    assert http.post(f"{base}/blobs/uploads/").status_code == 405


# -- lifecycle --------------------------------------------------------------------------


def test_missing_binary_raises_registry_unavailable(tmp_path: Path) -> None:
    with pytest.raises(RegistryUnavailable, match="not found"):
        LocalRegistry("plain", binary=tmp_path / "no-such-registry").start()


def test_failed_start_cleans_up_and_hides_passwords(tmp_path: Path) -> None:
    registry = LocalRegistry("token", binary="/bin/false", users={"u": "hunter2-secret"})
    with pytest.raises(RegistryStartupError, match="exited with status 1") as excinfo:
        registry.start()
    assert "hunter2-secret" not in str(excinfo.value)
    assert not registry.running
    assert registry.workdir is not None and not registry.workdir.exists()
    assert registry.token_server is not None
    with pytest.raises(RuntimeError, match="not running"):
        _ = registry.token_server.port
    with pytest.raises(RuntimeError, match="not running"):
        _ = registry.pid


def test_pid_is_the_registry_process(plain_registry: LocalRegistry) -> None:
    exe = Path(f"/proc/{plain_registry.pid}/exe").resolve()
    assert exe.name in ("docker-registry", "registry")


def test_docker_config_fixture_isolates_credentials(docker_config: Path) -> None:
    assert os.environ["DOCKER_CONFIG"] == str(docker_config)
    assert list(docker_config.iterdir()) == []
    assert Path.home() != docker_config and "REGISTRY_AUTH_FILE" not in os.environ
    assert "XDG_RUNTIME_DIR" not in os.environ
