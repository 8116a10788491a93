"""``pull_model(..., verify=True)`` (``oci-client pull --verify``): a byte flipped in a blob
the cache trusts is found before it is served, by tag, by digest, into a ``local_dir`` and
offline; the wrong blob goes to quarantine and is fetched again, or offline is named as not
cached. Without verify the default is unchanged: the trusted blob is served as it is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from faultproxy import FaultProxy
from modelfixtures import KiB, blob_path, flip_a_byte, tree
from oci_testing import LocalRegistry, PushedArtifact, push_artifact

import oci_client
from oci_client import InvalidArgumentError, NotCachedError, OciGoClient
from oci_client.cli import main

pytestmark = pytest.mark.usefixtures("docker_config")

FILES = {
    "config.json": b'{"hidden_size": 8}',
    "model.safetensors": os.urandom(300 * KiB),
}


@pytest.fixture(scope="module")
def model(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(plain_registry, "pullverify/model", "v1", FILES)


def tagged(proxy: FaultProxy, pushed: PushedArtifact) -> str:
    return f"{proxy.host}/{pushed.repository}:v1"


def pinned(proxy: FaultProxy, pushed: PushedArtifact) -> str:
    return f"{proxy.host}/{pushed.repository}@{pushed.digest}"


def cached_and_flipped(proxy: FaultProxy, pushed: PushedArtifact, cache: Path) -> tuple[str, Path]:
    """Pull the model, make its blobs durable, flip a byte of the weights: the digest and blob."""
    client = OciGoClient()
    client.pull_model(tagged(proxy, pushed), cache_dir=cache)
    client.wait_durable()
    layer = max(pushed.layers, key=lambda blob: blob.size)
    blob = blob_path(cache, layer.digest)
    flip_a_byte(blob)
    return layer.digest, blob


def blob_gets(proxy: FaultProxy, mark: int) -> list[str]:
    return [s.path.rsplit("/", 1)[1] for s in proxy.log[mark:] if s.method == "GET" and "/blobs/" in s.path]


def quarantined(cache: Path) -> list[Path]:
    return sorted((cache / "quarantine").glob("*")) if (cache / "quarantine").exists() else []


def test_verify_fetches_a_wrong_blob_again_and_quarantines_it(
    proxy: FaultProxy, model: PushedArtifact, cache: Path
) -> None:
    digest, _ = cached_and_flipped(proxy, model, cache)
    # The default is unchanged: the blob's state vouches for it, and it is served as it is.
    mark = len(proxy.log)
    assert tree(oci_client.pull_model(tagged(proxy, model), cache_dir=cache)) != FILES
    assert blob_gets(proxy, mark) == []

    mark = len(proxy.log)
    path = oci_client.pull_model(tagged(proxy, model), cache_dir=cache, verify=True)
    assert tree(path) == FILES
    assert blob_gets(proxy, mark) == [digest]
    [moved] = quarantined(cache)
    assert moved.name.startswith(digest.replace(":", "-") + ".")
    assert moved.read_bytes() != FILES["model.safetensors"]

    # Checked again: nothing wrong now, nothing fetched.
    mark = len(proxy.log)
    assert tree(oci_client.pull_model(tagged(proxy, model), cache_dir=cache, verify=True)) == FILES
    assert blob_gets(proxy, mark) == []


def test_verify_by_digest_and_into_a_local_dir(
    proxy: FaultProxy, model: PushedArtifact, cache: Path, tmp_path: Path
) -> None:
    digest, blob = cached_and_flipped(proxy, model, cache)
    mark = len(proxy.log)
    local = tmp_path / "local"
    oci_client.pull_model(pinned(proxy, model), cache_dir=cache, local_dir=local, verify=True)
    assert tree(local) == FILES
    assert blob_gets(proxy, mark) == [digest]
    assert len(quarantined(cache)) == 1

    # A local pull gives the cache what it downloads only where a reflink makes that free:
    # the snapshot's pull then fetches the blob unless the cache got it that way.
    shared = blob.exists()
    mark = len(proxy.log)
    assert tree(oci_client.pull_model(pinned(proxy, model), cache_dir=cache, verify=True)) == FILES
    assert blob_gets(proxy, mark) == ([] if shared else [digest])


def test_verify_offline_raises_naming_the_wrong_blob(
    proxy: FaultProxy, model: PushedArtifact, cache: Path
) -> None:
    digest, blob = cached_and_flipped(proxy, model, cache)
    mark = len(proxy.log)
    for ref in (tagged(proxy, model), pinned(proxy, model)):
        with pytest.raises(NotCachedError, match=digest):
            oci_client.pull_model(ref, cache_dir=cache, offline=True, verify=True)
    assert len(proxy.log) == mark, "an offline pull touched the registry"
    assert not blob.exists() and len(quarantined(cache)) == 1


def test_verify_comes_from_the_environment_and_the_command_line(
    proxy: FaultProxy, model: PushedArtifact, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest, blob = cached_and_flipped(proxy, model, cache)
    monkeypatch.setenv("OCI_CLIENT_VERIFY", "1")
    mark = len(proxy.log)
    assert tree(oci_client.pull_model(tagged(proxy, model), cache_dir=cache)) == FILES
    assert blob_gets(proxy, mark) == [digest]
    # verify=False overrides the variable.
    flip_a_byte(blob)
    assert tree(oci_client.pull_model(tagged(proxy, model), cache_dir=cache, verify=False)) != FILES
    monkeypatch.delenv("OCI_CLIENT_VERIFY")

    mark = len(proxy.log)
    assert main(["pull", "-q", "--verify", "--cache-dir", str(cache), tagged(proxy, model)]) == 0
    assert blob_gets(proxy, mark) == [digest]
    assert blob.read_bytes() == FILES["model.safetensors"]
    with pytest.raises(InvalidArgumentError, match="verify must be a bool"):
        oci_client.pull_model(tagged(proxy, model), cache_dir=cache, verify="yes")  # type: ignore[arg-type]
