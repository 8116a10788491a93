"""HTTPS with a private CA and htpasswd Basic auth: every place a Docker or
Podman user keeps credentials, changes to os.environ after the library
started, and no secret in any message."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from credentials import auth_field, prepend_path, write_config, write_helper
from oci_testing import LocalRegistry, PushedArtifact, RegistryTarget, push_artifact

from oci_client import AuthenticationError, OciError, OciGoClient, TLSError

BLOB = b"tls weights " * 1000


@pytest.fixture(scope="module")
def artifact(tls_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(tls_registry, "private/model", "v1", {"w.bin": BLOB})


@pytest.fixture
def ref(artifact: PushedArtifact) -> str:
    return f"{artifact.host}/private/model:v1"


@pytest.fixture
def client(tls_registry: LocalRegistry) -> OciGoClient:
    return OciGoClient(ca_file=tls_registry.ca_file)


def _login(docker_config: Path, registry: LocalRegistry, password: str | None = None) -> None:
    assert registry.username and registry.password
    write_config(
        docker_config / "config.json",
        {"auths": {registry.host: {"auth": auth_field(registry.username, password or registry.password)}}},
    )


def _assert_no_secret(exc: BaseException, *secrets: str) -> None:
    texts = [str(exc), repr(exc), pickle.loads(pickle.dumps(exc)).__repr__()]
    for secret in secrets:
        for text in texts:
            assert secret not in text


def test_docker_login_auth_field(
    client: OciGoClient,
    docker_config: Path,
    tls_registry: LocalRegistry,
    ref: str,
    artifact: PushedArtifact,
    tmp_path: Path,
) -> None:
    _login(docker_config, tls_registry)
    assert client.test_authentication(ref) is None
    info = client.check_authentication(ref)
    assert not info.anonymous and info.source == str(docker_config / "config.json")
    assert info.digest == artifact.digest
    client.pull_blob(ref, artifact.layers[0].digest, tmp_path / "w.bin")
    assert (tmp_path / "w.bin").read_bytes() == BLOB


def test_username_password_fields_and_scheme_key(
    client: OciGoClient, docker_config: Path, tls_registry: LocalRegistry, ref: str
) -> None:
    write_config(
        docker_config / "config.json",
        {
            "auths": {
                f"https://{tls_registry.host}": {
                    "username": tls_registry.username,
                    "password": tls_registry.password,
                }
            }
        },
    )
    assert client.test_authentication(ref) is None


def test_no_credentials_is_unauthorized(client: OciGoClient, docker_config: Path, ref: str) -> None:
    with pytest.raises(AuthenticationError) as exc:
        client.get_manifest(ref)
    assert exc.value.status == 401 and exc.value.code == "UNAUTHORIZED"
    reason = client.test_authentication(ref)
    assert reason is not None and "UNAUTHORIZED" in reason and "no credentials found" in reason


def test_wrong_password_never_shows(
    client: OciGoClient,
    docker_config: Path,
    tls_registry: LocalRegistry,
    ref: str,
    tmp_path: Path,
    artifact: PushedArtifact,
) -> None:
    wrong = "Wr0ng-S3cret-Pa55word"
    assert tls_registry.username
    _login(docker_config, tls_registry, wrong)
    source = docker_config / "config.json"
    login = f'authenticating to {tls_registry.host} as "{tls_registry.username}" (from {source})'
    for call in (
        lambda: client.get_manifest(ref),
        lambda: client.pull_blob(ref, artifact.layers[0].digest, tmp_path / "x"),
        lambda: client.check_authentication(ref),
    ):
        with pytest.raises(AuthenticationError) as exc:
            call()
        assert exc.value.status == 401
        _assert_no_secret(exc.value, wrong, auth_field(tls_registry.username, wrong))
        # It names the login and where it came from, and reads the registry's answer out
        # in words, not as Go's map syntax.
        message = str(exc.value)
        assert login in message
        assert "map[" not in message
    with pytest.raises(AuthenticationError) as exc:
        client.get_manifest(ref)
    assert str(exc.value).endswith(
        ": UNAUTHORIZED: authentication required (repository private/model, action pull)"
    ), str(exc.value)
    reason = client.test_authentication(ref)
    assert reason is not None and wrong not in reason
    assert not (tmp_path / "x").exists()
    # The command line prints the same message: no secret there either.
    cli = subprocess.run(
        [sys.executable, "-m", "oci_client", "manifest", ref, "--ca-file", str(tls_registry.ca_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 1 and "UNAUTHORIZED" in cli.stderr
    assert wrong not in cli.stderr + cli.stdout
    assert "map[" not in cli.stderr and f'as "{tls_registry.username}" (from ' in cli.stderr


def test_untrusted_certificate_is_a_tls_error(
    docker_config: Path, tls_registry: LocalRegistry, ref: str
) -> None:
    _login(docker_config, tls_registry)
    with pytest.raises(TLSError) as exc:
        OciGoClient().get_manifest(ref)
    assert exc.value.code == "TLS"
    assert "certificate" in exc.value.message


def test_ssl_cert_file_set_after_import(
    docker_config: Path, tls_registry: LocalRegistry, ref: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _login(docker_config, tls_registry)
    client = OciGoClient()
    with pytest.raises(TLSError):
        client.get_manifest(ref)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.ca_file))
    assert client.get_manifest(ref).media_type.startswith("application/vnd.oci")


def test_docker_config_changed_after_import(
    client: OciGoClient,
    docker_config: Path,
    tls_registry: LocalRegistry,
    ref: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(AuthenticationError):
        client.get_manifest(ref)
    other = tmp_path / "other-config"
    _login(other, tls_registry)
    monkeypatch.setenv("DOCKER_CONFIG", str(other))
    assert client.test_authentication(ref) is None


def test_home_docker_config(
    client: OciGoClient,
    docker_config: Path,
    tls_registry: LocalRegistry,
    ref: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DOCKER_CONFIG")
    import os

    _login(Path(os.environ["HOME"]) / ".docker", tls_registry)
    assert client.test_authentication(ref) is None


@pytest.mark.parametrize("where", ["REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"])
def test_containers_auth_json(
    client: OciGoClient,
    docker_config: Path,
    tls_registry: LocalRegistry,
    ref: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    if where == "REGISTRY_AUTH_FILE":
        path = tmp_path / "podman-auth.json"
        monkeypatch.setenv("REGISTRY_AUTH_FILE", str(path))
    else:
        path = tmp_path / "run" / "containers" / "auth.json"
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert tls_registry.username and tls_registry.password
    # A namespace-scoped key, as podman allows: the most specific entry wins.
    write_config(
        path,
        {
            "auths": {
                tls_registry.host: {"auth": auth_field(tls_registry.username, "wrong")},
                f"{tls_registry.host}/private": {
                    "auth": auth_field(tls_registry.username, tls_registry.password)
                },
            }
        },
    )
    info = client.check_authentication(ref)
    assert info.source == str(path)


def test_cred_helper_found_on_path_set_after_import(
    client: OciGoClient,
    docker_config: Path,
    tls_registry: LocalRegistry,
    ref: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert tls_registry.username and tls_registry.password
    bin_dir = tmp_path / "bin"
    write_helper(bin_dir, "octest", user=tls_registry.username, secret=tls_registry.password)
    write_config(docker_config / "config.json", {"credHelpers": {tls_registry.host: "octest"}})
    with pytest.raises(AuthenticationError) as exc:  # not on PATH yet
        client.get_manifest(ref)
    assert exc.value.code == "CREDENTIALS" and "docker-credential-octest" in exc.value.message
    monkeypatch.setenv("PATH", prepend_path(bin_dir))
    info = client.check_authentication(ref)
    assert info.source == "docker-credential-octest"
    assert (bin_dir / "octest.log").read_text().split() == [tls_registry.host]


def test_creds_store(
    client: OciGoClient,
    docker_config: Path,
    tls_registry: LocalRegistry,
    ref: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert tls_registry.username and tls_registry.password
    bin_dir = tmp_path / "bin"
    write_helper(bin_dir, "store", user=tls_registry.username, secret=tls_registry.password)
    write_config(docker_config / "config.json", {"credsStore": "store", "auths": {tls_registry.host: {}}})
    monkeypatch.setenv("PATH", prepend_path(bin_dir))
    assert client.test_authentication(ref) is None


def test_failing_helper_is_typed_and_secret_free(
    client: OciGoClient,
    docker_config: Path,
    tls_registry: LocalRegistry,
    ref: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "s3cr3t-9f8A7b6C5d4E3f2G1h0"
    bin_dir = tmp_path / "bin"
    write_helper(bin_dir, "broken", user="u", secret=secret, fail="keyring locked")
    write_config(docker_config / "config.json", {"credHelpers": {tls_registry.host: "broken"}})
    monkeypatch.setenv("PATH", prepend_path(bin_dir))
    with pytest.raises(AuthenticationError) as exc:
        client.get_manifest(ref)
    assert exc.value.code == "CREDENTIALS"
    assert "keyring locked" in exc.value.message
    # A broken helper may echo the secret it failed to hand over; the
    # diagnostic is kept, anything shaped like a credential is not.
    _assert_no_secret(exc.value, secret)


def test_malformed_config_is_an_authentication_error(
    client: OciGoClient, docker_config: Path, ref: str
) -> None:
    (docker_config / "config.json").write_text("{not json")
    with pytest.raises(AuthenticationError) as exc:
        client.get_manifest(ref)
    assert exc.value.code == "CREDENTIALS" and "config.json" in exc.value.message


def test_push_helper_and_client_agree(tls_registry: LocalRegistry) -> None:
    # Sanity: the fixture registry really demands credentials for reads.
    import requests

    r = requests.get(f"{tls_registry.url}/v2/", verify=str(tls_registry.ca_file), timeout=10)
    assert r.status_code == 401
    assert isinstance(RegistryTarget, type) and issubclass(AuthenticationError, OciError)
