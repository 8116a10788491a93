"""``cache_verify`` and ``oci-client cache verify``: a byte flipped in a blob the
cache trusts is found, moved aside and fetched again; offline it is reported and
not fetched; a clean cache checks out; references restrict the check."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from faultproxy import FaultProxy
from modelfixtures import KiB, blob_path, flip_a_byte, state_of, tree
from oci_testing import LocalRegistry, PushedArtifact, push_artifact

import oci_client
from oci_client import NotCachedError, NotFoundError, OciGoClient
from oci_client.cli import main

pytestmark = pytest.mark.usefixtures("docker_config")

FILES = {
    "config.json": b'{"hidden_size": 8}',
    "model.safetensors": os.urandom(300 * KiB),
}
OTHER = {"config.json": b"{}", "weights.bin": os.urandom(50 * KiB)}


@pytest.fixture(scope="module")
def model(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(plain_registry, "verify/model", "v1", FILES)


@pytest.fixture(scope="module")
def other(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(plain_registry, "verify/other", "v1", OTHER)


def via(proxy: FaultProxy, pushed: PushedArtifact) -> str:
    return f"{proxy.host}/{pushed.repository}:v1"


def weights_blob(cache: Path, pushed: PushedArtifact) -> tuple[str, Path]:
    layer = max(pushed.layers, key=lambda blob: blob.size)
    return layer.digest, blob_path(cache, layer.digest)


def blob_gets(proxy: FaultProxy, mark: int) -> list[str]:
    return [s.path.rsplit("/", 1)[1] for s in proxy.log[mark:] if s.method == "GET" and "/blobs/" in s.path]


def test_a_flipped_byte_is_found_moved_aside_and_fetched_again(
    proxy: FaultProxy, model: PushedArtifact, cache: Path
) -> None:
    client = OciGoClient()
    path = client.pull_model(via(proxy, model), cache_dir=cache)
    client.wait_durable()
    digest, blob = weights_blob(cache, model)
    flip_a_byte(blob)
    # The bug this is for: the state vouches for the blob, so a pull serves the wrong byte.
    assert state_of(cache, digest) == {"durable": True}
    assert tree(client.pull_model(via(proxy, model), cache_dir=cache)) != FILES

    mark = len(proxy.log)
    r = oci_client.cache_verify(cache_dir=cache)
    assert r.ok, r
    assert [b.digest for b in r.corrupt] == [digest]
    bad = r.corrupt[0]
    assert bad.fixed and "moved aside" in bad.action and "fetched again" in bad.action
    assert bad.moved_to is not None and bad.moved_to.parent == cache / "quarantine"
    # Nothing lost: the wrong bytes are kept for whoever looks into the disk.
    assert bad.moved_to.read_bytes() != FILES["model.safetensors"]
    assert len(bad.moved_to.read_bytes()) == len(FILES["model.safetensors"])
    assert r.missing == ()
    assert r.repaired == (f"{proxy.host}/{model.repository}@{model.digest}",)
    assert blob_gets(proxy, mark) == [digest]
    assert blob.read_bytes() == FILES["model.safetensors"]

    mark = len(proxy.log)
    assert client.pull_model(via(proxy, model), cache_dir=cache) == path
    assert tree(path) == FILES
    assert blob_gets(proxy, mark) == []


def test_offline_reports_and_fetches_nothing(
    proxy: FaultProxy, model: PushedArtifact, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = OciGoClient()
    client.pull_model(via(proxy, model), cache_dir=cache)
    client.wait_durable()
    digest, blob = weights_blob(cache, model)
    flip_a_byte(blob)

    mark = len(proxy.log)
    assert main(["cache", "verify", "--offline", "--cache-dir", str(cache)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("checked ") and "1 corrupt, 0 missing, 0 models pulled again" in lines[0], out
    assert len(lines) == 2 and lines[1].startswith(f"corrupt {digest}") and "still wrong" in lines[1], out
    assert "not fetched (offline)" in lines[1], out
    assert len(proxy.log) == mark, "an offline verify touched the registry"
    # Moved aside: never served again, and offline it is named as not cached.
    assert not blob.exists()
    with pytest.raises(NotCachedError, match=digest):
        client.pull_model(via(proxy, model), cache_dir=cache, offline=True)

    # Checked again offline it is still wrong (missing now); online, it is repaired.
    assert main(["cache", "verify", "--offline", "--cache-dir", str(cache)]) == 1
    assert "0 corrupt, 1 missing" in capsys.readouterr().out
    assert main(["cache", "verify", "--cache-dir", str(cache)]) == 0
    assert "1 missing, 1 model pulled again" in capsys.readouterr().out
    assert blob.read_bytes() == FILES["model.safetensors"]


def test_no_repair_changes_nothing(proxy: FaultProxy, model: PushedArtifact, cache: Path) -> None:
    client = OciGoClient()
    client.pull_model(via(proxy, model), cache_dir=cache)
    client.wait_durable()
    digest, blob = weights_blob(cache, model)
    flip_a_byte(blob)
    flipped = blob.read_bytes()
    r = client.cache_verify(cache_dir=cache, repair=False)
    assert not r.ok and [b.digest for b in r.problems] == [digest]
    assert r.corrupt[0].moved_to is None and r.repaired == ()
    assert blob.read_bytes() == flipped and not (cache / "quarantine").exists()


def test_a_clean_cache_checks_out(
    proxy: FaultProxy, model: PushedArtifact, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = OciGoClient()
    client.pull_model(via(proxy, model), cache_dir=cache)
    mark = len(proxy.log)
    r = client.cache_verify(cache_dir=cache)
    assert r.ok and r.corrupt == () and r.missing == () and r.repaired == ()
    assert r.checked == len(blobs_of(model))
    assert all(b.status == "ok" and b.fixed for b in r.blobs)
    # Re-hashed, so known good: recorded durable.
    for b in r.blobs:
        assert state_of(cache, b.digest) == {"durable": True}
    assert main(["cache", "verify", "--cache-dir", str(cache)]) == 0
    assert capsys.readouterr().out.startswith(f"checked {r.checked} blobs, ")
    assert len(proxy.log) == mark


def blobs_of(pushed: PushedArtifact) -> dict[str, int]:
    """The sizes of a model's blobs (its files and config) by digest."""
    assert pushed.config is not None
    return {b.digest: b.size for b in [*pushed.layers, pushed.config]}


def test_references_restrict_the_check_to_their_blobs(
    proxy: FaultProxy, model: PushedArtifact, other: PushedArtifact, cache: Path
) -> None:
    client = OciGoClient()
    client.pull_model(via(proxy, model), cache_dir=cache)
    client.pull_model(via(proxy, other), cache_dir=cache)
    _, blob = weights_blob(cache, model)
    flip_a_byte(blob)  # in the model not asked about: not looked at

    r = client.cache_verify([via(proxy, other)], cache_dir=cache)
    wanted = blobs_of(other)  # its config is "{}", as its config.json: one blob
    assert r.ok and r.checked == len(wanted)
    assert {b.digest for b in r.blobs} == set(wanted)
    assert r.bytes_hashed == sum(wanted.values())

    pinned = f"{proxy.host}/{model.repository}@{model.digest}"
    by_digest = client.cache_verify([pinned], cache_dir=cache, offline=True)
    assert not by_digest.ok and len(by_digest.corrupt) == 1
    assert by_digest.bytes_hashed == sum(blobs_of(model).values())

    with pytest.raises(NotFoundError, match="not in the cache"):
        client.cache_verify([f"{proxy.host}/verify/never:v1"], cache_dir=cache)


def test_progress_goes_to_the_callback_and_ends_at_the_bytes_hashed(
    proxy: FaultProxy, model: PushedArtifact, cache: Path
) -> None:
    OciGoClient().pull_model(via(proxy, model), cache_dir=cache)
    calls: list[tuple[int, int]] = []
    r = oci_client.cache_verify(cache_dir=cache, progress=lambda done, total: calls.append((done, total)))
    assert r.ok and r.bytes_hashed == sum(blobs_of(model).values())
    assert calls and calls[-1] == (r.bytes_hashed, r.bytes_hashed)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(calls))
