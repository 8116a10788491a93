"""The model cache: hits counted at a FaultProxy, digest references and
offline pulls without the network, several processes pulling one model at
once, a lease holder killed mid-download, interrupted pulls resumed,
blobs re-verified after a crash, durability states, and ls/rm/prune."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy, Rule
from modelfixtures import (
    DMR_CONFIG_V02,
    DMR_SAFETENSORS,
    DMR_VLLM_CONFIG_TAR,
    KiB,
    Layer,
    MiB,
    blob_gets,
    blob_path,
    blob_requests,
    dmr_config,
    manifest_gets,
    push_index_of,
    push_layers,
    state_of,
    tar,
    this_boot,
    tree,
)
from oci_testing import LocalRegistry, PushedArtifact, push_artifact, push_manifest

import oci_client
from oci_client import (
    NotCachedError,
    NotFoundError,
    OciGoClient,
    OperationTimeoutError,
)

pytestmark = pytest.mark.usefixtures("docker_config")

FILES = {
    "config.json": b'{"hidden_size": 8}',
    "model-00001-of-00002.safetensors": os.urandom(300 * KiB),
    "model-00002-of-00002.safetensors": os.urandom(200 * KiB + 7),
}
BIG = os.urandom(10 * MiB)  # the partial file grows in verified 4 MiB pieces


@pytest.fixture(scope="module")
def model(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(plain_registry, "cache/model", "v1", FILES)


VLLM = {"config.json": b'{"model_type": "llama"}', "generation_config.json": b"{}" + b" " * 100_000}


@pytest.fixture(scope="module")
def with_archive(plain_registry: LocalRegistry) -> PushedArtifact:
    """Two raw shards and a vLLM config archive (unpacked into blobs of its own)."""
    layers = [
        Layer(FILES["model-00001-of-00002.safetensors"], DMR_SAFETENSORS),
        Layer(FILES["model-00002-of-00002.safetensors"], DMR_SAFETENSORS),
        Layer(tar(VLLM), DMR_VLLM_CONFIG_TAR),
    ]
    return push_layers(
        plain_registry,
        "cache/with-archive",
        "v1",
        layers,
        config=dmr_config("safetensors", layers),
        config_media_type=DMR_CONFIG_V02,
    )


WITH_ARCHIVE = {
    "model-00001-of-00002.safetensors": FILES["model-00001-of-00002.safetensors"],
    "model-00002-of-00002.safetensors": FILES["model-00002-of-00002.safetensors"],
    **VLLM,
}


@pytest.fixture(scope="module")
def big(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(plain_registry, "cache/big", "v1", {"config.json": b"{}", "model.safetensors": BIG})


def via(proxy: FaultProxy, pushed: PushedArtifact, tag: str = "v1") -> str:
    return f"{proxy.host}/{pushed.repository}:{tag}"


def pinned(proxy: FaultProxy, pushed: PushedArtifact) -> str:
    return f"{proxy.host}/{pushed.repository}@{pushed.digest}"


def wait_until(what: str, cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def size_of(p: Path) -> int:
    try:
        return p.stat().st_size
    except FileNotFoundError:
        return -1


def ranged_start(s: Any) -> int:
    """N of a ``Range: bytes=N-...`` header."""
    assert s.range is not None and s.range.startswith("bytes="), s
    return int(s.range.removeprefix("bytes=").split("-", 1)[0])


# -- cache hits ------------------------------------------------------------------------------


def test_repeat_pull_by_tag_is_one_manifest_get_and_no_blob(
    proxy: FaultProxy, model: PushedArtifact, cache: Path
) -> None:
    first = oci_client.pull_model(via(proxy, model), cache_dir=cache)
    assert tree(first) == FILES
    assert len(blob_gets(proxy)) == len(FILES) + 1  # and the config
    mark = len(proxy.log)
    again = oci_client.pull_model(via(proxy, model), cache_dir=cache)
    assert again == first
    assert tree(again) == FILES
    later = proxy.log[mark:]
    assert [s for s in later if "/blobs/" in s.path] == []
    assert len([s for s in later if s.method == "GET" and "/manifests/" in s.path]) == 1


def test_digest_reference_makes_no_request(proxy: FaultProxy, model: PushedArtifact, cache: Path) -> None:
    path = oci_client.pull_model(via(proxy, model), cache_dir=cache)
    mark = len(proxy.log)
    assert oci_client.pull_model(pinned(proxy, model), cache_dir=cache) == path
    assert proxy.log[mark:] == []


def test_digest_reference_with_the_registry_stopped(
    registry_factory: Callable[..., LocalRegistry], cache: Path
) -> None:
    registry = registry_factory("plain")
    pushed = push_artifact(registry, "cache/stopped", "v1", FILES)
    path = oci_client.pull_model(pushed.reference, cache_dir=cache)
    registry.stop()
    again = oci_client.Client(retries=1, timeout=20).pull_model(pushed.digest_reference, cache_dir=cache)
    assert again == path
    assert tree(again) == FILES


def test_an_index_is_one_manifest_get_by_tag_and_none_by_digest(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path
) -> None:
    child = push_artifact(plain_registry, "cache/index", None, FILES)
    index = push_index_of(plain_registry, "cache/index", "v1", [(child, {})])
    path = oci_client.pull_model(via(proxy, index), cache_dir=cache)
    assert path.name == child.digest.replace(":", "-")
    mark = len(proxy.log)
    assert oci_client.pull_model(via(proxy, index), cache_dir=cache) == path
    assert [(s.method, s.path) for s in proxy.log[mark:]] == [("GET", "/v2/cache/index/manifests/v1")]
    mark = len(proxy.log)
    assert oci_client.pull_model(pinned(proxy, index), cache_dir=cache) == path
    assert oci_client.pull_model(pinned(proxy, child), cache_dir=cache) == path
    assert proxy.log[mark:] == []
    # The tag names the index; the listing shows it on the manifest chosen from it.
    (repo,) = oci_client.cache_list(cache_dir=cache).models
    assert [(s.digest, s.tags, s.path) for s in repo.snapshots] == [(child.digest, ("v1",), path)]
    removed = oci_client.cache_remove(via(proxy, index), cache_dir=cache)
    assert removed.tags == ("v1",) and removed.snapshots == (child.digest,)
    assert not path.exists()


def test_first_pull_by_digest_then_the_same_digest_again(
    proxy: FaultProxy, model: PushedArtifact, cache: Path
) -> None:
    path = oci_client.pull_model(pinned(proxy, model), cache_dir=cache)
    assert tree(path) == FILES
    mark = len(proxy.log)
    assert oci_client.pull_model(pinned(proxy, model), cache_dir=cache) == path
    assert proxy.log[mark:] == []


# -- offline ---------------------------------------------------------------------------------


def test_offline_with_the_registry_stopped(
    registry_factory: Callable[..., LocalRegistry], cache: Path
) -> None:
    registry = registry_factory("plain")
    pushed = push_artifact(registry, "cache/offline", "v1", FILES)
    path = oci_client.pull_model(pushed.reference, cache_dir=cache)
    registry.stop()
    assert oci_client.pull_model(pushed.reference, cache_dir=cache, offline=True) == path
    info = oci_client.inspect(pushed.reference, cache_dir=cache, offline=True)
    assert info.digest == pushed.digest
    assert sorted(f.path for f in info.files) == sorted(FILES)
    assert info.config == {}


@pytest.mark.parametrize("var", ["OCI_CLIENT_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_from_the_environment_makes_no_request(
    proxy: FaultProxy, model: PushedArtifact, cache: Path, monkeypatch: pytest.MonkeyPatch, var: str
) -> None:
    path = oci_client.pull_model(via(proxy, model), cache_dir=cache)
    mark = len(proxy.log)
    monkeypatch.setenv(var, "1")
    assert oci_client.pull_model(via(proxy, model), cache_dir=cache) == path
    assert proxy.log[mark:] == []
    with pytest.raises(NotCachedError) as exc:
        oci_client.pull_model(f"{proxy.host}/cache/never-pulled:v1", cache_dir=cache)
    assert isinstance(exc.value, NotFoundError)
    assert "cache/never-pulled" in str(exc.value)
    assert proxy.log[mark:] == []
    # An explicit offline=False goes to the registry after all.
    oci_client.pull_model(via(proxy, model), cache_dir=cache, offline=False)
    assert len(manifest_gets(proxy)) == 2


def test_offline_missing_model_names_the_reference(proxy: FaultProxy, cache: Path) -> None:
    ref = f"{proxy.host}/cache/absent:v7"
    with pytest.raises(NotCachedError, match="cache/absent"):
        oci_client.pull_model(ref, cache_dir=cache, offline=True)
    with pytest.raises(NotCachedError, match="cache/absent"):
        oci_client.pull_model(f"{proxy.host}/cache/absent@sha256:{'a' * 64}", cache_dir=cache, offline=True)
    with pytest.raises(NotCachedError, match="cache/absent"):
        oci_client.inspect(ref, cache_dir=cache, offline=True)
    assert proxy.log == []


def test_offline_with_only_some_files_cached(proxy: FaultProxy, model: PushedArtifact, cache: Path) -> None:
    oci_client.pull_model(via(proxy, model), cache_dir=cache, allow_patterns="*.json")
    mark = len(proxy.log)
    with pytest.raises(NotCachedError, match="cache/model"):
        oci_client.pull_model(via(proxy, model), cache_dir=cache, offline=True)
    # What was pulled is still served offline.
    path = oci_client.pull_model(via(proxy, model), cache_dir=cache, offline=True, allow_patterns="*.json")
    assert tree(path) == {"config.json": FILES["config.json"]}
    assert proxy.log[mark:] == []


# -- several processes -----------------------------------------------------------------------

TOGETHER = """
import os, sys, time
import oci_client
ref, ready, barrier = sys.argv[1:4]
oci_client.cache_list()  # load the library and open the cache before the start
open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(barrier):
    if time.monotonic() > deadline:
        sys.exit("the barrier never came")
    time.sleep(0.002)
print(oci_client.pull_model(ref), flush=True)
"""


def test_six_processes_at_once_fetch_each_blob_once(
    proxy: FaultProxy, with_archive: PushedArtifact, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("OCI_CLIENT_CACHE", str(cache))
    throttle = 256 * KiB
    proxy.add(Rule(path=r"/blobs/", method="GET", throttle=throttle))
    n = 6
    ref = via(proxy, with_archive)
    barrier = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TOGETHER, ref, str(tmp_path / f"ready-{i}"), str(barrier)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    try:
        ready = [tmp_path / f"ready-{i}" for i in range(n)]
        wait_until("every process to be ready", lambda: all(r.exists() for r in ready), 60)
        barrier.touch()
        results = [p.communicate(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0] * n, [err for _, err in results]
    paths = {out.strip() for out, _ in results}
    assert len(paths) == 1, paths
    (path,) = paths
    assert Path(path).parent.parent.parent.parent.parent == cache
    assert tree(Path(path)) == WITH_ARCHIVE
    # They overlapped: every process had the manifest while the largest blob was still
    # on its way to the one that fetched it, so the others waited for it.
    manifests = manifest_gets(proxy)
    assert len(manifests) == n
    largest = max(with_archive.layers, key=lambda b: b.size)
    (largest_get,) = blob_gets(proxy, largest.digest)
    assert max(m.at for m in manifests) < largest_get.at + largest.size / throttle
    assert with_archive.config is not None
    digests = [b.digest for b in with_archive.layers] + [with_archive.config.digest]
    for d in digests:
        gets = blob_gets(proxy, d)
        assert [(g.status, g.range) for g in gets] == [(200, None)], (d, gets)


HEARING = """
import json, os, sys, time
import oci_client
from oci_client import events
ref, cache, ready, barrier = sys.argv[1:5]
names = {f.digest: f.path for f in oci_client.inspect(ref, cache_dir=cache).files}  # loads the library
open(ready, "w").close()
while not os.path.exists(barrier):
    time.sleep(0.002)
heard = {}
def on_event(e):
    if isinstance(e, (events.FileVerified, events.FileFound)) and e.digest in names:
        heard.setdefault(names[e.digest], (time.time(), isinstance(e, events.FileFound), e.path))
oci_client.Client().pull(ref, cache_dir=cache, concurrency=1, on_event=on_event)
print(json.dumps(heard), flush=True)
"""


def test_every_process_hears_of_each_shard_when_verified_whoever_fetched_it(
    plain_registry: LocalRegistry, proxy: FaultProxy, tmp_path: Path
) -> None:
    # vLLM's tensor-parallel ranks each load every shard: the ranks that wait while another
    # downloads must get shard 1 while shard 4 is on the wire, not after the whole pull.
    shards = {f"model-0000{i}-of-00004.safetensors": os.urandom(2 * MiB) for i in range(1, 5)}
    pushed = push_artifact(plain_registry, "cache/ranks", "v1", {"config.json": b"{}", **shards})
    proxy.add(Rule(path=r"/blobs/", method="GET", throttle=2 * MiB))  # a shard a second
    cache, barrier = tmp_path / "cache", tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HEARING, via(proxy, pushed), str(cache), str(r), str(barrier)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    try:
        wait_until("both processes to be ready", lambda: all(r.exists() for r in ready), 60)
        barrier.touch()
        results = [p.communicate(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    heard = [json.loads(out) for out, _ in results]
    first, last = sorted(shards)[0], sorted(shards)[-1]
    last_verified = min(h[last][0] for h in heard)
    for h in heard:
        assert set(shards) <= set(h), f"shards never heard of: {set(shards) - set(h)}"
        assert h[first][0] < last_verified - 0.5, "shard 1 was heard of only once the last was verified"
        for name, (_, _, path) in h.items():
            if name in shards:
                assert Path(path).read_bytes() == shards[name]
    for name in shards:  # each fetched by one process, found in place by the other
        assert sorted(h[name][1] for h in heard) == [False, True], name
    for layer in pushed.layers:
        assert len(blob_gets(proxy, layer.digest)) == 1, layer


KILLABLE = """
import sys
import oci_client
print(oci_client.pull_model(sys.argv[1], cache_dir=sys.argv[2]), flush=True)
"""


def test_a_killed_lease_holder_is_taken_over_at_once_and_its_data_reused(
    proxy: FaultProxy, big: PushedArtifact, cache: Path
) -> None:
    layer = big.layers[1]
    hexdigest = layer.digest.split(":", 1)[1]
    lock = cache / "locks" / f"sha256-{hexdigest}.lock"
    partial = Path(f"{blob_path(cache, layer.digest)}.incomplete")
    proxy.add(Rule(path=layer.digest, method="GET", throttle=1 * MiB))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, via(proxy, big), str(cache)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until("the lease and the partial download", lambda: lock.exists() and size_of(partial) >= 0)
        created = lock.stat().st_mtime_ns
        wait_until("the partial download to grow", lambda: size_of(partial) > 0)
        # The holder's heartbeat: the lease is touched every lease/5 (6 s).
        wait_until("a heartbeat on the lease", lambda: lock.stat().st_mtime_ns != created, timeout=9)
        owner = json.loads(lock.read_text())
        assert owner["pid"] == proc.pid
        assert set(owner) >= {"host", "boot", "pid", "token"}
        # A lease is a file, not a lock: nothing in /proc/locks belongs to the puller.
        locks = [line.split() for line in Path("/proc/locks").read_text().splitlines()]
        assert [fields for fields in locks if str(proc.pid) in fields] == []
    finally:
        proc.kill()
        proc.wait(timeout=10)
    kept = size_of(partial)
    assert 0 < kept < layer.size
    assert lock.exists(), "SIGKILL left no lease behind: the test proves nothing"

    proxy.rules.clear()
    mark = len(proxy.log)
    started = time.monotonic()
    path = oci_client.Client(timeout=25).pull_model(via(proxy, big), cache_dir=cache)
    took = time.monotonic() - started
    assert took < 10, f"{took:.1f}s: the dead holder's lease was not broken at once"
    assert (path / "model.safetensors").read_bytes() == BIG
    gets = [s for s in proxy.log[mark:] if s.method == "GET" and layer.digest in s.path]
    assert gets, "the blob was not fetched at all"
    assert 0 < ranged_start(gets[0]) <= kept, gets[0]
    assert not lock.exists()
    assert not partial.exists()


def test_a_live_holders_lease_is_honoured(proxy: FaultProxy, model: PushedArtifact, cache: Path) -> None:
    # Another process of this machine (here: this one) holds the lease of one blob.
    layer = model.layers[0]
    locks = cache / "locks"
    locks.mkdir(parents=True)
    lock = locks / f"sha256-{layer.digest.split(':', 1)[1]}.lock"
    host, boot = this_boot().split("/", 1)
    lock.write_text(json.dumps({"host": host, "boot": boot, "pid": os.getpid(), "token": "someone-else"}))
    # A pull that may not wait that long gives up with a timeout, leaving the lease alone.
    with pytest.raises(OperationTimeoutError):
        oci_client.Client(timeout=0.5).pull_model(via(proxy, model), cache_dir=cache)
    assert json.loads(lock.read_text())["token"] == "someone-else"
    assert not blob_gets(proxy, layer.digest)
    released = threading.Timer(1.5, lock.unlink)
    released.start()
    try:
        started = time.monotonic()
        path = oci_client.Client(timeout=20).pull_model(via(proxy, model), cache_dir=cache)
        took = time.monotonic() - started
    finally:
        released.cancel()
    assert took >= 1.4, f"the lease of a live holder was broken after {took:.1f}s"
    assert took < 10
    assert tree(path) == FILES
    (get,) = blob_gets(proxy, layer.digest)
    assert get.at >= started + 1.4, "the blob was fetched while another process held its lease"


def test_a_timeout_keeps_the_partial_and_the_next_pull_resumes_it(
    proxy: FaultProxy, big: PushedArtifact, cache: Path
) -> None:
    layer = big.layers[1]
    partial = Path(f"{blob_path(cache, layer.digest)}.incomplete")
    proxy.add(Rule(path=layer.digest, method="GET", throttle=3 * MiB))
    with pytest.raises(OperationTimeoutError):
        oci_client.Client(timeout=2.5).pull_model(via(proxy, big), cache_dir=cache)
    kept = size_of(partial)
    assert 0 < kept < layer.size
    assert not list((cache / "locks").glob("*.lock")), "a lease outlived the call"

    proxy.rules.clear()
    mark = len(proxy.log)
    path = oci_client.pull_model(via(proxy, big), cache_dir=cache)
    assert (path / "model.safetensors").read_bytes() == BIG
    gets = [s for s in proxy.log[mark:] if s.method == "GET" and layer.digest in s.path]
    assert 0 < ranged_start(gets[0]) <= kept
    assert not partial.exists()


CTRL_C = """
import sys
import oci_client
try:
    oci_client.pull_model(sys.argv[1], cache_dir=sys.argv[2])
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_ctrl_c_keeps_the_partial_and_the_next_pull_resumes_it(
    proxy: FaultProxy, big: PushedArtifact, cache: Path
) -> None:
    layer = big.layers[1]
    partial = Path(f"{blob_path(cache, layer.digest)}.incomplete")
    proxy.add(Rule(path=layer.digest, method="GET", throttle=2 * MiB))
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C, via(proxy, big), str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until("the partial download", lambda: size_of(partial) > 0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and "interrupted" in out, (out, err)
    kept = size_of(partial)
    assert 0 < kept < layer.size
    assert not list((cache / "locks").glob("*.lock")), "Ctrl-C left a lease behind"

    proxy.rules.clear()
    mark = len(proxy.log)
    path = oci_client.pull_model(via(proxy, big), cache_dir=cache)
    assert (path / "model.safetensors").read_bytes() == BIG
    gets = [s for s in proxy.log[mark:] if s.method == "GET" and layer.digest in s.path]
    assert 0 < ranged_start(gets[0]) <= kept


# -- crash safety and durability ---------------------------------------------------------------

OTHER_BOOT = {"boot": "otherhost/otherboot", "durable": False}


@pytest.mark.parametrize("state", ["missing", "other-boot", "unreadable"])
@pytest.mark.parametrize("content", ["right", "wrong"])
def test_a_blob_not_known_durable_is_rehashed_before_it_is_served(
    proxy: FaultProxy, model: PushedArtifact, cache: Path, state: str, content: str
) -> None:
    client = OciGoClient()
    path = client.pull_model(via(proxy, model), cache_dir=cache)
    client.wait_durable()
    layer = model.layers[1]
    blob = blob_path(cache, layer.digest)
    state_file = Path(f"{blob}.state")
    assert state_of(cache, layer.digest) == {"durable": True}
    if state == "missing":
        state_file.unlink()
    elif state == "other-boot":
        state_file.write_text(json.dumps(OTHER_BOOT))
    else:
        state_file.write_text("{not json")
    if content == "wrong":
        data = bytearray(blob.read_bytes())
        data[1000] ^= 0xFF  # as a crash before the writeback might leave it
        blob.write_bytes(bytes(data))

    mark = len(proxy.log)
    again = client.pull_model(via(proxy, model), cache_dir=cache)
    assert again == path
    assert tree(again) == FILES
    gets = [s for s in proxy.log[mark:] if s.method == "GET" and "/blobs/" in s.path]
    if content == "wrong":
        assert [g.path.rsplit("/", 1)[1] for g in gets] == [layer.digest]
    else:
        assert gets == []
        assert state_of(cache, layer.digest) == {"durable": True}
    client.wait_durable()
    assert state_of(cache, layer.digest) == {"durable": True}


def test_a_file_unpacked_from_an_archive_is_rehashed_and_unpacked_again(
    proxy: FaultProxy, with_archive: PushedArtifact, cache: Path
) -> None:
    client = OciGoClient()
    client.pull_model(via(proxy, with_archive), cache_dir=cache)
    client.wait_durable()
    inner = "sha256:" + hashlib.sha256(VLLM["generation_config.json"]).hexdigest()
    blob = blob_path(cache, inner)
    Path(f"{blob}.state").write_text(json.dumps(OTHER_BOOT))
    blob.write_bytes(b"X" * blob.stat().st_size)
    mark = len(proxy.log)
    path = client.pull_model(via(proxy, with_archive), cache_dir=cache)
    assert tree(path) == WITH_ARCHIVE
    gets = [s.path.rsplit("/", 1)[1] for s in proxy.log[mark:] if s.method == "GET" and "/blobs/" in s.path]
    assert gets == [with_archive.layers[2].digest]


def test_a_deleted_blob_is_not_cached_offline_and_fetched_again_online(
    proxy: FaultProxy, model: PushedArtifact, cache: Path
) -> None:
    client = OciGoClient()
    path = client.pull_model(via(proxy, model), cache_dir=cache)
    client.wait_durable()
    layer = model.layers[1]
    blob_path(cache, layer.digest).unlink()
    with pytest.raises(NotCachedError, match=layer.digest):
        client.pull_model(via(proxy, model), cache_dir=cache, offline=True)
    mark = len(proxy.log)
    assert client.pull_model(via(proxy, model), cache_dir=cache) == path
    assert tree(path) == FILES
    assert [s.path.rsplit("/", 1)[1] for s in proxy.log[mark:] if "/blobs/" in s.path] == [layer.digest]


def test_a_blob_written_during_this_boot_is_trusted(
    proxy: FaultProxy, model: PushedArtifact, cache: Path
) -> None:
    # What a pull leaves when its process ends before the background fsync: the state
    # names this boot, and the page cache still holds exactly the verified bytes, so it
    # is served without re-hashing (here proven by a flipped byte that goes unnoticed).
    client = OciGoClient()
    client.pull_model(via(proxy, model), cache_dir=cache)
    client.wait_durable()
    layer = model.layers[1]
    blob = blob_path(cache, layer.digest)
    Path(f"{blob}.state").write_text(json.dumps({"boot": this_boot(), "durable": False}))
    data = bytearray(blob.read_bytes())
    data[0] ^= 0xFF
    blob.write_bytes(bytes(data))
    mark = len(proxy.log)
    client.pull_model(via(proxy, model), cache_dir=cache)
    assert [s for s in proxy.log[mark:] if "/blobs/" in s.path] == []
    client.wait_durable()
    assert state_of(cache, layer.digest) == {"durable": True}


def states(cache: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in (cache / "blobs" / "sha256").glob("*.state")}


def test_background_durability_states(proxy: FaultProxy, model: PushedArtifact, cache: Path) -> None:
    client = OciGoClient()
    client.pull_model(via(proxy, model), cache_dir=cache)
    after = states(cache)
    assert len(after) == len(FILES) + 1
    # The call returned before any fsync: every blob is trusted for this boot only.
    assert all(s == {"boot": this_boot(), "durable": False} for s in after.values()), after
    client.wait_durable()
    assert all(s == {"durable": True} for s in states(cache).values()), states(cache)


def test_sync_durability_is_durable_when_the_call_returns(
    proxy: FaultProxy, model: PushedArtifact, cache: Path
) -> None:
    oci_client.pull_model(via(proxy, model), cache_dir=cache, durability="sync")
    after = states(cache)
    assert len(after) == len(FILES) + 1
    assert all(s == {"durable": True} for s in after.values()), after
    with pytest.raises(oci_client.InvalidArgumentError):
        oci_client.pull_model(via(proxy, model), cache_dir=cache, durability="eventually")  # type: ignore[arg-type]


# -- ls, rm, prune ----------------------------------------------------------------------------

SHARED = os.urandom(50 * KiB)


def blob_sizes(cache: Path) -> int:
    return sum(p.stat().st_size for p in (cache / "blobs" / "sha256").iterdir() if "." not in p.name)


def test_cache_list_remove_by_tag_and_by_digest(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path
) -> None:
    only_a = os.urandom(10 * KiB)
    a = push_artifact(plain_registry, "ls/a", "v1", {"shared.bin": SHARED, "a.bin": only_a})
    push_manifest(plain_registry, "ls/a", "latest", a.manifest_bytes, a.media_type)
    b = push_artifact(plain_registry, "ls/b", "v1", {"shared.bin": SHARED, "b.bin": b"b" * 100})
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    path_a = oci_client.pull_model(via(proxy, a), cache_dir=cache)
    assert oci_client.pull_model(via(proxy, a, "latest"), cache_dir=cache) == path_a
    path_b = oci_client.pull_model(via(proxy, b), cache_dir=cache)

    info = oci_client.cache_list(cache_dir=cache)
    assert info.root == cache
    assert [(m.registry, m.repository) for m in info.models] == [(proxy.host, "ls/a"), (proxy.host, "ls/b")]
    (snap_a,) = info.models[0].snapshots
    assert snap_a.digest == a.digest and snap_a.tags == ("latest", "v1")
    assert snap_a.path == path_a and snap_a.format == "artifact" and snap_a.files == 2
    assert snap_a.size == len(SHARED) + len(only_a) == info.models[0].size
    assert snap_a.last_used is not None and snap_a.last_used >= start
    assert info.models[1].snapshots[0].path == path_b
    assert info.size == blob_sizes(cache)  # shared content counted once

    # A tag another tag still shares: only the tag goes.
    r = oci_client.cache_remove(via(proxy, a), cache_dir=cache)
    assert r.tags == ("v1",) and r.snapshots == () and r.blobs == 0
    assert path_a.is_dir()
    assert oci_client.cache_list(cache_dir=cache).models[0].snapshots[0].tags == ("latest",)

    # The last tag: the snapshot and the blobs only it used go, shared ones stay.
    r = oci_client.cache_remove(via(proxy, a, "latest"), cache_dir=cache)
    assert r.tags == ("latest",) and r.snapshots == (a.digest,)
    assert not path_a.exists()
    assert not blob_path(cache, a.layers[1].digest).exists()
    assert blob_path(cache, a.layers[0].digest).exists()
    assert r.bytes >= len(only_a)
    assert [m.repository for m in oci_client.cache_list(cache_dir=cache).models] == ["ls/b"]
    assert tree(oci_client.pull_model(via(proxy, b), cache_dir=cache, offline=True))["shared.bin"] == SHARED

    with pytest.raises(NotFoundError):
        oci_client.cache_remove(via(proxy, a, "latest"), cache_dir=cache)
    with pytest.raises(NotFoundError):
        oci_client.cache_remove(f"{proxy.host}/ls/never:v1", cache_dir=cache)
    with pytest.raises(NotFoundError):
        oci_client.cache_remove(f"{proxy.host}/ls/b@sha256:{'0' * 64}", cache_dir=cache)

    # By digest: the snapshot and every tag pointing to it.
    r = oci_client.cache_remove(pinned(proxy, b), cache_dir=cache)
    assert r.snapshots == (b.digest,) and r.tags == ("v1",)
    assert not path_b.exists()
    assert oci_client.cache_list(cache_dir=cache).models == ()
    assert not blob_path(cache, b.layers[0].digest).exists()


def test_removing_a_model_with_an_archive_layer_leaves_nothing_of_it(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path
) -> None:
    layers = [
        Layer(SHARED, DMR_SAFETENSORS),
        Layer(tar({"config.json": b"{}", "t/v.txt": b"v"}), DMR_VLLM_CONFIG_TAR),
    ]
    pushed = push_layers(
        plain_registry,
        "rm/archive",
        "v1",
        layers,
        config=dmr_config("safetensors", layers),
        config_media_type=DMR_CONFIG_V02,
    )
    path = oci_client.pull_model(via(proxy, pushed), cache_dir=cache)
    assert tree(path) == {"model.safetensors": SHARED, "config.json": b"{}", "t/v.txt": b"v"}
    assert list((cache / "trees").rglob("*.json"))
    # A use refreshes last_used.
    record = path.with_name(path.name + ".json")
    os.utime(record, (0, 0))
    oci_client.pull_model(via(proxy, pushed), cache_dir=cache)
    (snap,) = oci_client.cache_list(cache_dir=cache).models[0].snapshots
    assert snap.last_used is not None and snap.last_used.year > 1970
    assert snap.files == 3
    r = oci_client.cache_remove(via(proxy, pushed), cache_dir=cache)
    assert r.snapshots == (pushed.digest,)
    left = [p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()]
    assert left == ["CACHEDIR.TAG"], left


def test_a_moved_tag_fetches_only_what_is_new_and_keeps_the_old_snapshot(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path
) -> None:
    only_old, only_new = os.urandom(2000), os.urandom(3000)
    old = push_artifact(plain_registry, "moved/m", "v1", {"shared.bin": SHARED, "old.bin": only_old})
    old_path = oci_client.pull_model(via(proxy, old), cache_dir=cache)
    new = push_artifact(plain_registry, "moved/m", "v1", {"shared.bin": SHARED, "new.bin": only_new})
    mark = len(proxy.log)
    new_path = oci_client.pull_model(via(proxy, new), cache_dir=cache)
    assert new_path != old_path
    assert tree(new_path) == {"shared.bin": SHARED, "new.bin": only_new}
    fetched = [s.path.rsplit("/", 1)[1] for s in proxy.log[mark:] if "/blobs/" in s.path]
    assert fetched == [new.layers[1].digest]
    (repo,) = oci_client.cache_list(cache_dir=cache).models
    assert {s.digest: s.tags for s in repo.snapshots} == {old.digest: (), new.digest: ("v1",)}
    assert tree(old_path) == {"shared.bin": SHARED, "old.bin": only_old}
    r = oci_client.cache_remove(pinned(proxy, old), cache_dir=cache)
    assert r.snapshots == (old.digest,) and r.tags == ()
    assert not old_path.exists() and not blob_path(cache, old.layers[1].digest).exists()
    assert tree(new_path) == {"shared.bin": SHARED, "new.bin": only_new}


def test_cache_list_of_an_empty_cache(cache: Path) -> None:
    info = oci_client.cache_list(cache_dir=cache)
    assert info.models == () and info.size == 0


def age(p: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(p, (t, t), follow_symlinks=False)


def test_cache_prune_removes_only_old_unused_blobs(
    proxy: FaultProxy, model: PushedArtifact, cache: Path
) -> None:
    client = OciGoClient()
    path = client.pull_model(via(proxy, model), cache_dir=cache)
    client.wait_durable()  # no state file is being rewritten now
    blobs = cache / "blobs" / "sha256"
    for p in blobs.iterdir():
        age(p, 7200)  # used ones are kept however old
    old, young, partial = (blobs / (c * 64) for c in "abc")
    old.write_bytes(b"o" * 1000)
    young.write_bytes(b"y" * 10)
    Path(f"{partial}.incomplete").write_bytes(b"p" * 500)
    age(old, 7200)
    age(Path(f"{partial}.incomplete"), 7200)

    r = oci_client.cache_prune(cache_dir=cache, min_age=3600)
    assert (r.blobs, r.bytes) == (2, 1500)
    assert not old.exists() and not Path(f"{partial}.incomplete").exists()
    assert young.exists()
    r = oci_client.cache_prune(cache_dir=cache, min_age=0)
    assert (r.blobs, r.bytes) == (1, 10)
    assert not young.exists()
    # The model is whole, and served without the network.
    mark = len(proxy.log)
    assert tree(oci_client.pull_model(via(proxy, model), cache_dir=cache, offline=True)) == FILES
    assert proxy.log[mark:] == []
    assert oci_client.pull_model(via(proxy, model), cache_dir=cache) == path
    assert blob_requests(proxy)[len(FILES) + 1 :] == []
    with pytest.raises(oci_client.InvalidArgumentError):
        oci_client.cache_prune(cache_dir=cache, min_age=-1)
