"""pull_model(local_dir=...) of a model already in the cache: its files are copied
from the cache (reflinked where the file system can), never downloaded again, online
and offline, through the library and the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from faultproxy import FaultProxy
from modelfixtures import (
    MODELPACK_ARTIFACT,
    MODELPACK_CONFIG,
    blob_gets,
    compress,
    modelpack_config,
    modelpack_layer,
    named,
    push_layers,
    tar,
    tree,
)
from oci_testing import LocalRegistry, PushedArtifact

import oci_client
from oci_client import NotCachedError

SHARD_1 = os.urandom(300_000)
SHARD_2 = os.urandom(200_000)
CODE = {"src/tokenizer.py": b"print('hi')\n", "src/vocab.json": b'{"a": 1}'}
FILES = {"model-00001.safetensors": SHARD_1, "model-00002.safetensors": SHARD_2, **CODE}


@pytest.fixture
def pushed(plain_registry: LocalRegistry) -> PushedArtifact:
    layers = [
        named(SHARD_1, modelpack_layer("weight", "raw"), "model-00001.safetensors"),
        named(SHARD_2, modelpack_layer("weight", "raw"), "model-00002.safetensors"),
        named(compress(tar(CODE), "tar+gzip"), modelpack_layer("code", "tar+gzip"), "src"),
    ]
    return push_layers(
        plain_registry,
        "models/local-from-cache",
        "v1",
        layers,
        config=modelpack_config("tiny", layers),
        config_media_type=MODELPACK_CONFIG,
        artifact_type=MODELPACK_ARTIFACT,
    )


def ref(proxy: FaultProxy, pushed: PushedArtifact) -> str:
    return f"{proxy.host}/{pushed.repository}:{pushed.tag}"


def assert_real_files(d: Path) -> None:
    """The model's files, as real files (no links into the cache), with their bytes."""
    assert tree(d) == FILES
    for rel in FILES:
        assert not (d / rel).is_symlink(), f"{rel} is a symlink"
        assert (d / rel).is_file()
    leftovers = [p.name for p in d.rglob("*") if ".incomplete" in p.name or ".tmp" in p.name]
    assert leftovers == []


def test_local_dir_of_a_cached_model_sends_no_blob_request(
    proxy: FaultProxy, pushed: PushedArtifact, cache: Path, tmp_path: Path
) -> None:
    oci_client.pull_model(ref(proxy, pushed), cache_dir=cache)
    assert blob_gets(proxy)  # the first pull did download
    proxy.log.clear()
    local = tmp_path / "model"
    r = oci_client.pull(ref(proxy, pushed), cache_dir=cache, local_dir=local)
    assert blob_gets(proxy) == []
    assert (r.blobs_downloaded, r.bytes_downloaded) == (0, 0)
    assert r.path == local
    assert_real_files(local)
    # A copy, not the cache's file: editing it leaves the cache's content alone.
    (local / "model-00001.safetensors").write_bytes(b"edited")
    snapshot = oci_client.pull_model(ref(proxy, pushed), cache_dir=cache, offline=True)
    assert (snapshot / "model-00001.safetensors").read_bytes() == SHARD_1


def test_offline_local_dir_is_served_from_the_cache(
    proxy: FaultProxy, pushed: PushedArtifact, cache: Path, tmp_path: Path
) -> None:
    with pytest.raises(NotCachedError):
        oci_client.pull_model(ref(proxy, pushed), cache_dir=cache, local_dir=tmp_path / "early", offline=True)
    oci_client.pull_model(ref(proxy, pushed), cache_dir=cache)
    proxy.log.clear()
    local = tmp_path / "model"
    path = oci_client.pull_model(ref(proxy, pushed), cache_dir=cache, local_dir=local, offline=True)
    assert path == local
    assert proxy.log == []
    assert_real_files(local)


def test_cli_pull_offline_into_a_directory_after_a_cached_pull(
    proxy: FaultProxy, pushed: PushedArtifact, cache: Path, tmp_path: Path
) -> None:
    oci_client.pull_model(ref(proxy, pushed), cache_dir=cache)
    proxy.log.clear()
    local = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "oci_client", "pull", ref(proxy, pushed), "-o", str(local), "--offline"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OCI_CLIENT_CACHE": str(cache)},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(local)
    assert "from the cache" in r.stderr
    assert proxy.log == []
    assert_real_files(local)
