"""Pushes that continue and files that are not sent twice, against real registries: an
upload cut in one push continues in the next (the session remembered in the cache, the
registry asked what it kept), a cold push uploads a large file while hashing it, and a
blob another repository holds (pushed there or pulled from there, by any path) is mounted.
Debian's distribution 2.8 and the built-in distribution 3, through a FaultProxy that cuts
uploads and counts what crosses."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from faultproxy import FaultProxy, Rule
from modelfixtures import tree
from oci_testing import LocalRegistry

import oci_client
from oci_client import InvalidArgumentError

BIG = 48 << 20  # over the size a push hashes before it starts


def big_model(root: Path) -> dict[str, bytes]:
    files = {"model.safetensors": os.urandom(BIG), "config.json": b'{"model_type": "llama"}'}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        # Written long ago, as a model directory is: its digest, once taken, is trusted.
        old = time.time() - 3600
        os.utime(root / rel, (old, old))
    return files


def cut_then_continue(registry_url: str, host: str, tmp_path: Path, cache: Path) -> tuple[int, int]:
    """Push through a proxy that drops the big upload at half, with no retry: the push
    fails. Push again: return the bytes the second push sent and where it continued."""
    root = tmp_path / "m"
    files = big_model(root)
    with FaultProxy(registry_url) as proxy:
        proxy.add(Rule(path="/blobs/uploads/", method="PATCH", drop_request_at=BIG // 2, times=1))
        with pytest.raises(oci_client.OciError):
            oci_client.Client(retries=1).push_model(root, f"{proxy.host}/resume/m:v1", cache_dir=cache)
        assert proxy.rules[0].hits == 1
        assert list((cache / "uploads").glob("*.json")), "the cut upload's session was not remembered"
        proxy.request_bytes = 0
        pushed = oci_client.push_model(root, f"{proxy.host}/resume/m:v1", cache_dir=cache)
        sent = proxy.request_bytes
    blob = next(b for b in pushed.blobs if b.path == "model.safetensors")
    assert blob.how == "uploaded"
    assert not list((cache / "uploads").glob("*.json")), "a committed upload's session was kept"
    assert tree(oci_client.pull_model(f"{host}/resume/m:v1", cache_dir=cache)) == files
    return sent, blob.continued_at


def test_cut_upload_continues_in_the_next_push_on_distribution_3(tmp_path: Path, cache: Path) -> None:
    from oci_client.server import Registry

    with Registry(tmp_path / "registry") as registry:
        sent, continued_at = cut_then_continue(registry.url, registry.host, tmp_path, cache)
    # The registry kept most of the first half; only the rest crossed again.
    assert continued_at > BIG // 4
    assert sent < BIG - continued_at + (1 << 20)


def test_cut_upload_on_distribution_2_8_starts_over_cleanly(
    tmp_path: Path, plain_registry: LocalRegistry, cache: Path
) -> None:
    # 2.8 refuses to continue a session whose PATCH broke (its state token no longer matches
    # what it stored): the next push asks, is refused, and sends the blob whole, correctly.
    sent, continued_at = cut_then_continue(plain_registry.url, plain_registry.host, tmp_path, cache)
    assert continued_at == 0 and sent >= BIG


def test_cold_push_uploads_a_large_file_while_hashing_it(
    tmp_path: Path, plain_registry: LocalRegistry, cache: Path
) -> None:
    root = tmp_path / "m"
    files = big_model(root)
    with FaultProxy(plain_registry.url) as proxy:
        pushed = oci_client.push_model(root, f"{proxy.host}/cold/m:v1", cache_dir=cache)
        weights = next(b for b in pushed.blobs if b.path == "model.safetensors")
        order = [(s.method, s.path) for s in proxy.log]
    first_patch = next(i for i, (m, _) in enumerate(order) if m == "PATCH")
    head = next(i for i, (m, p) in enumerate(order) if m == "HEAD" and weights.digest in p)
    assert first_patch < head, "the upload waited for the hash"
    assert weights.bytes_sent == BIG  # read and sent once
    assert tree(oci_client.pull_model(f"{plain_registry.host}/cold/m:v1", cache_dir=cache)) == files


def test_a_copy_and_a_pulled_model_mount_from_where_the_bytes_are(
    tmp_path: Path, plain_registry: LocalRegistry, cache: Path
) -> None:
    root = tmp_path / "m"
    files = big_model(root)
    with FaultProxy(plain_registry.url) as proxy:
        host = proxy.host  # one registry address throughout: mounts stay within a registry

        def push(src: Path, repo: str, cache_dir: Path) -> tuple[list[oci_client.PushedBlob], int]:
            proxy.request_bytes = 0
            pushed = oci_client.push_model(src, f"{host}/{repo}:v1", cache_dir=cache_dir)
            return [b for b in pushed.blobs if b.path], proxy.request_bytes

        push(root, "where/a", cache)
        # A copy (new paths, new inodes) to another repository: mounted from where it was pushed.
        layers, sent = push(shutil.copytree(root, tmp_path / "copy"), "where/b", cache)
        assert {(b.how, b.mounted_from) for b in layers} == {("mounted", "where/a")}
        assert sent < 64 << 10  # the config and the manifest
        # Another machine's cache pulled the model from where/b, and publishes its snapshot,
        # and a real copy of it, to other repositories: the pull told it where the blobs are.
        other = tmp_path / "other-cache"
        snapshot = oci_client.pull_model(f"{host}/where/b:v1", cache_dir=other)
        layers, sent = push(snapshot, "where/c0", other)
        assert {(b.how, b.mounted_from) for b in layers} == {("mounted", "where/b")}
        assert sent < 64 << 10
        layers, sent = push(shutil.copytree(snapshot, tmp_path / "flat"), "where/c1", other)
        assert {(b.how, b.mounted_from) for b in layers} == {("mounted", "where/c0")}  # the latest
        assert sent < 64 << 10
    assert tree(oci_client.pull_model(f"{plain_registry.host}/where/c1:v1", cache_dir=cache)) == files


def test_mount_from_another_registry_is_refused_before_anything_is_sent(
    tmp_path: Path, plain_registry: LocalRegistry, cache: Path
) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "config.json").write_text("{}")
    host = plain_registry.host
    other = host.split(":")[0]  # the same machine without the port: another registry
    with FaultProxy(plain_registry.url) as proxy:
        with pytest.raises(InvalidArgumentError, match="a registry mounts only blobs it holds"):
            oci_client.push_model(
                root, f"{proxy.host}/mnt/b:v1", cache_dir=cache, mount_from=[f"{other}/mnt/a"]
            )
        assert not proxy.log
    # A path alone, or the target's own registry, is a repository of the target.
    oci_client.push_model(root, f"{host}/mnt/b:v1", cache_dir=cache, mount_from=["mnt/a", f"{host}/mnt/a"])
