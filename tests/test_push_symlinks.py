"""push_model and symlinks (issue 23 item 7): a link is followed only when it resolves inside
the model directory or into the blobs of a cache (ours, or huggingface_hub's), so cache
snapshots publish; a link elsewhere (the user's case: one to /etc/passwd) or a dangling one is
refused, naming the link and its target, before the registry sees a single request, unless
follow_symlinks=True."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from faultproxy import FaultProxy
from modelfixtures import tree
from oci_testing import LocalRegistry

import oci_client
from oci_client import InvalidArgumentError, NotFoundError


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def link(path: Path, target: str | Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    write(root / "config.json", b'{"model_type": "llama"}')
    write(root / "model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + os.urandom(64))
    return root


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """Stands in for /etc/passwd or a key: a file outside the model directory."""
    return write(tmp_path / "outside" / "id_ed25519", b"-----BEGIN OPENSSH PRIVATE KEY-----\n")


def assert_nothing_published(proxy: FaultProxy, registry: LocalRegistry, ref: str) -> None:
    assert proxy.log == [], [f"{s.method} {s.path}" for s in proxy.log]
    with pytest.raises(NotFoundError):
        oci_client.inspect(f"{registry.host}/{ref}")


def test_link_out_of_the_directory_is_refused_before_any_request(
    model: Path, secret: Path, proxy: FaultProxy, plain_registry: LocalRegistry, cache: Path
) -> None:
    link(model / "tokenizer" / "vocab.txt", secret)
    link(model / "relative.txt", "../outside/id_ed25519")
    with pytest.raises(InvalidArgumentError) as exc:
        oci_client.push_model(model, f"{proxy.host}/links/out:v1", cache_dir=cache)
    message = str(exc.value)
    assert f"tokenizer/vocab.txt (a symlink to {secret})" in message
    assert f"relative.txt (a symlink to {secret})" in message
    assert "follow_symlinks=True" in message
    assert exc.value.code == "INVALID_ARGUMENT" and isinstance(exc.value, ValueError)
    assert_nothing_published(proxy, plain_registry, "links/out:v1")
    assert secret.exists() and (model / "tokenizer" / "vocab.txt").is_symlink()  # nothing touched


def test_follow_symlinks_publishes_the_target_byte_for_byte(
    model: Path, secret: Path, plain_registry: LocalRegistry, cache: Path
) -> None:
    link(model / "tokenizer" / "vocab.txt", secret)
    ref = f"{plain_registry.host}/links/follow:v1"
    pushed = oci_client.push_model(model, ref, cache_dir=cache, follow_symlinks=True)
    assert pushed.files == 3
    files = tree(oci_client.pull_model(ref, cache_dir=cache))
    assert files["tokenizer/vocab.txt"] == secret.read_bytes()
    assert files["config.json"] == (model / "config.json").read_bytes()


def test_follow_symlinks_must_be_a_bool(model: Path, plain_registry: LocalRegistry) -> None:
    with pytest.raises(InvalidArgumentError, match="follow_symlinks"):
        oci_client.push_model(model, f"{plain_registry.host}/links/bad:v1", follow_symlinks="yes")  # type: ignore[arg-type]


def test_links_inside_the_directory_publish(
    model: Path, tmp_path: Path, plain_registry: LocalRegistry, cache: Path
) -> None:
    link(model / "shard-link.safetensors", "model.safetensors")
    link(model / "chain.safetensors", "shard-link.safetensors")
    link(model / "sub" / "up.json", "../sub/../config.json")
    link(model / "abs.json", model / "config.json")
    # The directory itself reached through a link, as /tmp is on macOS.
    via = link(tmp_path / "via", model)
    ref = f"{plain_registry.host}/links/inside:v1"
    pushed = oci_client.push_model(via, ref, cache_dir=cache)
    assert pushed.files == 6
    files = tree(oci_client.pull_model(ref, cache_dir=cache))
    assert files == tree(model)
    assert files["chain.safetensors"] == files["model.safetensors"]
    assert files["sub/up.json"] == files["abs.json"] == files["config.json"]


def test_a_huggingface_hub_snapshot_publishes(
    tmp_path: Path, plain_registry: LocalRegistry, cache: Path
) -> None:
    repo = tmp_path / "hf" / "hub" / "models--org--name"
    write(repo / "blobs" / "a1b2c3", b'{"model_type": "llama"}')
    write(repo / "blobs" / ("e3" * 32), b"weights" * 100)
    snapshot = repo / "snapshots" / "0123456789abcdef"
    link(snapshot / "config.json", "../../blobs/a1b2c3")
    link(snapshot / "model.safetensors", "../../blobs/" + "e3" * 32)
    link(snapshot / "tokenizer" / "tokenizer.json", "../../../blobs/a1b2c3")
    ref = f"{plain_registry.host}/links/hf:v1"
    oci_client.push_model(snapshot, ref, cache_dir=cache)
    assert tree(oci_client.pull_model(ref, cache_dir=cache)) == tree(snapshot)


def test_a_directory_merely_named_blobs_is_no_cache(
    model: Path, tmp_path: Path, proxy: FaultProxy, plain_registry: LocalRegistry, cache: Path
) -> None:
    target = write(tmp_path / "stuff" / "blobs" / "a1b2c3", b"not a cache")
    link(model / "x.bin", target)
    with pytest.raises(InvalidArgumentError, match=re.escape(f"x.bin (a symlink to {target})")):
        oci_client.push_model(model, f"{proxy.host}/links/blobs:v1", cache_dir=cache)
    assert_nothing_published(proxy, plain_registry, "links/blobs:v1")


def test_a_snapshot_of_this_cache_publishes(
    model: Path, tmp_path: Path, plain_registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = f"{plain_registry.host}/links/origin:v1"
    oci_client.push_model(model, first, cache_dir=tmp_path / "push-cache")

    cache = tmp_path / "cache"
    snapshot = oci_client.pull_model(first, cache_dir=cache)
    assert all(p.is_symlink() for p in snapshot.iterdir() if not p.name.startswith("."))
    again = oci_client.push_model(snapshot, f"{plain_registry.host}/links/copy:v1", cache_dir=cache)
    assert tree(oci_client.pull_model(again.reference, cache_dir=tmp_path / "check")) == tree(model)

    # The default cache ($OCI_CLIENT_CACHE here) is this cache when no cache_dir is given.
    monkeypatch.setenv("OCI_CLIENT_CACHE", str(cache))
    oci_client.push_model(snapshot, f"{plain_registry.host}/links/default:v1")


def test_a_snapshot_of_another_cache_is_refused(
    model: Path, tmp_path: Path, plain_registry: LocalRegistry
) -> None:
    first = f"{plain_registry.host}/links/other:v1"
    oci_client.push_model(model, first, cache_dir=tmp_path / "push-cache")
    snapshot = oci_client.pull_model(first, cache_dir=tmp_path / "a")
    blob = (snapshot / "config.json").resolve()
    with pytest.raises(InvalidArgumentError, match=re.escape(f"config.json (a symlink to {blob})")):
        oci_client.push_model(snapshot, f"{plain_registry.host}/links/other2:v1", cache_dir=tmp_path / "b")


def test_a_dangling_link_is_refused(
    model: Path, proxy: FaultProxy, plain_registry: LocalRegistry, cache: Path
) -> None:
    link(model / "gone.safetensors", "model-00009.safetensors")
    for follow in (False, True):
        with pytest.raises(InvalidArgumentError, match=r"gone\.safetensors is a symlink to model-00009"):
            oci_client.push_model(
                model, f"{proxy.host}/links/dangling:v1", cache_dir=cache, follow_symlinks=follow
            )
    assert_nothing_published(proxy, plain_registry, "links/dangling:v1")


def test_cli_push_refuses_a_link_out(
    model: Path, secret: Path, proxy: FaultProxy, plain_registry: LocalRegistry, cache: Path
) -> None:
    link(model / "notes.txt", secret)
    ref = f"{proxy.host}/links/cli:v1"
    run = subprocess.run(
        [sys.executable, "-m", "oci_client", "push", str(model), ref, "--cache-dir", str(cache), "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"notes.txt (a symlink to {secret})" in run.stderr
    assert_nothing_published(proxy, plain_registry, "links/cli:v1")
    push = [sys.executable, "-m", "oci_client", "push", str(model), ref, "--cache-dir", str(cache)]
    followed = subprocess.run(
        [*push, "-q", "--follow-symlinks"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert followed.returncode == 0, followed.stderr
    notes = oci_client.pull_model(f"{plain_registry.host}/links/cli:v1", cache_dir=cache) / "notes.txt"
    assert notes.read_bytes() == secret.read_bytes()
