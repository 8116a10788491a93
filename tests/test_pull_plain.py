"""Manifests and blobs from a plain-HTTP distribution registry: the happy
paths, every input error, and that a failed pull never leaves a file."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from oci_testing import LocalRegistry, PushedArtifact, push_artifact, push_docker_v2_image, push_index

from oci_client import (
    DigestMismatchError,
    InvalidArgumentError,
    InvalidReferenceError,
    NetworkError,
    NotFoundError,
    OciGoClient,
)

WEIGHTS = os.urandom(3 * 1024 * 1024 + 17)


@pytest.fixture(scope="module")
def artifact(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(
        plain_registry, "models/plain", "v1", {"model.safetensors": WEIGHTS, "config.json": b'{"a": 1}'}
    )


@pytest.fixture(scope="module")
def client() -> OciGoClient:
    return OciGoClient()


def test_manifest_by_tag_is_exactly_what_was_pushed(client: OciGoClient, artifact: PushedArtifact) -> None:
    m = client.get_manifest(f"{artifact.host}/models/plain:v1")
    assert m.raw == artifact.manifest_bytes
    assert m.digest == artifact.digest == "sha256:" + hashlib.sha256(m.raw).hexdigest()
    assert m.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert m.size == len(artifact.manifest_bytes)
    assert client.pull_manifest(f"{artifact.host}/models/plain:v1") == artifact.manifest


def test_manifest_by_digest(client: OciGoClient, artifact: PushedArtifact) -> None:
    m = client.get_manifest(f"{artifact.host}/models/plain@{artifact.digest}")
    assert m.raw == artifact.manifest_bytes
    assert m.digest == artifact.digest


def test_docker_v2_manifest_and_index(client: OciGoClient, plain_registry: LocalRegistry) -> None:
    image = push_docker_v2_image(plain_registry, "images/docker", "v2", {"hello.txt": b"hi\n"})
    m = client.get_manifest(f"{plain_registry.host}/images/docker:v2")
    assert m.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert m.raw == image.manifest_bytes

    index = push_index(plain_registry, "images/docker", "multi", [image])
    mi = client.get_manifest(f"{plain_registry.host}/images/docker:multi")
    assert mi.media_type == "application/vnd.oci.image.index.v1+json"
    assert mi.digest == index.digest
    assert [d["digest"] for d in mi.json()["manifests"]] == [image.digest]


def test_blob_is_verified_and_written(client: OciGoClient, artifact: PushedArtifact, tmp_path: Path) -> None:
    layer = artifact.layers[0]
    dest = tmp_path / "deep" / "er" / "model.safetensors"
    info = client.pull_blob(f"{artifact.host}/models/plain:v1", layer.digest, dest, size=layer.size)
    assert dest.read_bytes() == WEIGHTS
    assert info.path == dest and info.size == len(WEIGHTS) and info.digest == layer.digest
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.safetensors"]


def test_blob_by_digest_reference_and_without_size(
    client: OciGoClient, artifact: PushedArtifact, tmp_path: Path
) -> None:
    layer = artifact.layers[1]
    dest = tmp_path / "config.json"
    client.pull_blob(f"{artifact.host}/models/plain@{artifact.digest}", layer.digest, str(dest))
    assert json.loads(dest.read_bytes()) == {"a": 1}


def test_existing_destination_is_replaced_atomically(
    client: OciGoClient, artifact: PushedArtifact, tmp_path: Path
) -> None:
    dest = tmp_path / "f"
    dest.write_bytes(b"old")
    client.pull_blob(f"{artifact.host}/models/plain:v1", artifact.layers[1].digest, dest)
    assert dest.read_bytes() == b'{"a": 1}'


def _assert_untouched(dest: Path, before: bytes | None) -> None:
    if before is None:
        assert not dest.exists()
    else:
        assert dest.read_bytes() == before
    leftovers = [p.name for p in dest.parent.iterdir() if p.name != dest.name]
    assert leftovers == [], f"temporary files left behind: {leftovers}"


@pytest.mark.parametrize("before", [None, b"previous content"])
def test_wrong_size_loses_nothing(
    client: OciGoClient, artifact: PushedArtifact, tmp_path: Path, before: bytes | None
) -> None:
    dest = tmp_path / "out.bin"
    if before is not None:
        dest.write_bytes(before)
    layer = artifact.layers[0]
    with pytest.raises(DigestMismatchError) as exc:
        client.pull_blob(f"{artifact.host}/models/plain:v1", layer.digest, dest, size=layer.size - 1)
    assert exc.value.code == "DIGEST_MISMATCH"
    _assert_untouched(dest, before)


def test_blob_not_found(client: OciGoClient, artifact: PushedArtifact, tmp_path: Path) -> None:
    dest = tmp_path / "missing"
    with pytest.raises(NotFoundError) as exc:
        client.pull_blob(f"{artifact.host}/models/plain:v1", "sha256:" + "0" * 64, dest)
    assert exc.value.status == 404
    assert exc.value.registry_code == "BLOB_UNKNOWN"
    _assert_untouched(dest, None)


@pytest.mark.parametrize(
    ("ref", "registry_code"),
    [("models/plain:nope", "MANIFEST_UNKNOWN"), ("models/never-pushed:v1", "MANIFEST_UNKNOWN")],
)
def test_manifest_not_found(
    client: OciGoClient, artifact: PushedArtifact, ref: str, registry_code: str
) -> None:
    with pytest.raises(NotFoundError) as exc:
        client.get_manifest(f"{artifact.host}/{ref}")
    assert exc.value.status == 404
    assert exc.value.registry_code == registry_code


@pytest.mark.parametrize(
    "ref", ["", "UPPER/case", "host:port:x/y", "a/b:tag with space", " leading", "x@sha256:zz"]
)
def test_invalid_reference(client: OciGoClient, ref: str) -> None:
    with pytest.raises(InvalidReferenceError) as exc:
        client.get_manifest(ref)
    assert isinstance(exc.value, ValueError)
    assert exc.value.code == "INVALID_REFERENCE"


@pytest.mark.parametrize(
    "digest",
    ["", "sha256", "md5:" + "0" * 32, "sha256:" + "0" * 63, "sha256:" + "A" * 64, "sha512:" + "0" * 64],
)
def test_invalid_digest(client: OciGoClient, artifact: PushedArtifact, tmp_path: Path, digest: str) -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        client.pull_blob(f"{artifact.host}/models/plain:v1", digest, tmp_path / "x")
    assert exc.value.code == "INVALID_ARGUMENT"
    assert list(tmp_path.iterdir()) == []


def test_destination_is_a_directory(client: OciGoClient, artifact: PushedArtifact, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        client.pull_blob(f"{artifact.host}/models/plain:v1", artifact.layers[1].digest, tmp_path)


def test_unreachable_registry_is_a_network_error(client: OciGoClient) -> None:
    import socket

    with socket.socket() as s:  # a port that is free, so nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetworkError) as exc:
        client.get_manifest(f"127.0.0.1:{port}/x/y:z")
    assert exc.value.code == "NETWORK"


def test_unwritable_destination_is_a_local_file_error(
    client: OciGoClient, artifact: PushedArtifact, tmp_path: Path
) -> None:
    from oci_client import LocalFileError

    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"not a directory")
    with pytest.raises(LocalFileError) as exc:
        client.pull_blob(f"{artifact.host}/models/plain:v1", artifact.layers[1].digest, blocker / "sub" / "x")
    assert exc.value.code == "IO"
    assert blocker.read_bytes() == b"not a directory"
