"""The transfer engine against a real registry behind a fault-injecting
proxy: resume within a call and across calls, retries that honour
Retry-After, registries that ignore Range, stalls, chunked parallel pulls,
progress, timeouts and Ctrl-C."""

from __future__ import annotations

import email.utils
import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy, Rule
from oci_testing import LocalRegistry, PushedArtifact, push_artifact

from oci_client import (
    DigestMismatchError,
    InvalidArgumentError,
    NetworkError,
    NotFoundError,
    OciError,
    OciGoClient,
    OperationTimeoutError,
    RateLimitedError,
)

MiB = 1024 * 1024
BIG = os.urandom(24 * MiB)
SMALL = [os.urandom(3 * MiB + i) for i in range(4)]


@pytest.fixture(scope="module")
def artifact(plain_registry: LocalRegistry) -> PushedArtifact:
    files = {"big.bin": BIG, **{f"small-{i}.bin": data for i, data in enumerate(SMALL)}}
    return push_artifact(plain_registry, "transfer/model", "v1", files)


def ref(proxy: FaultProxy) -> str:
    return f"{proxy.host}/transfer/model:v1"


def big(artifact: PushedArtifact) -> tuple[str, int]:
    layer = artifact.layers[0]
    assert layer.size == len(BIG)
    return layer.digest, layer.size


def blob_gets(proxy: FaultProxy) -> list[Any]:
    return [s for s in proxy.log if s.method == "GET" and "/blobs/" in s.path]


def partial_files(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir() if p.name.startswith(dest.name + "."))


def wait_for_partial(dest: Path, at_least: int, timeout: float = 20) -> None:
    """Wait until the partial file beside dest holds at_least bytes. It is
    always a verified prefix: pieces are hashed and written in order."""
    kept = dest.with_name(dest.name + ".incomplete")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (kept.stat().st_size if kept.exists() else 0) < at_least:
        time.sleep(0.05)


def settled_blob_bytes(proxy: FaultProxy) -> int:
    """The proxy's blob byte count once it stops moving: its handlers of a
    dead process's streams notice the closed sockets a little later."""
    before, settle = -1, time.monotonic() + 5
    while proxy.blob_bytes != before and time.monotonic() < settle:
        before = proxy.blob_bytes
        time.sleep(0.5)
    return before


@pytest.mark.parametrize("connections", [1, 4])
def test_drop_at_90_percent_resumes_without_refetching(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path, connections: int
) -> None:
    digest, size = big(artifact)
    cut = size * 9 // 10 if connections == 1 else 4 * MiB - 1000  # inside the first chunk
    proxy.add(Rule(path=r"/blobs/", truncate_at=cut, times=1))
    client = OciGoClient(connections=connections, chunk_size=8 * MiB)
    dest = tmp_path / "big.bin"
    client.pull_blob(ref(proxy), digest, dest, size=size)
    assert dest.read_bytes() == BIG
    assert partial_files(dest) == []
    # Less than a fifth crossed again (the resumed request asked for the rest).
    assert proxy.blob_bytes < 1.2 * size, proxy.blob_bytes
    ranges = [s.range for s in blob_gets(proxy)]
    assert f"bytes={cut}-{size - 1 if connections == 1 else 8 * MiB - 1}" in ranges


def test_registry_ignoring_range_starts_over_and_is_still_verified(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    digest, size = big(artifact)
    proxy.add(Rule(path=r"/blobs/", strip_range=True, truncate_at=size // 2, times=1))
    proxy.add(Rule(path=r"/blobs/", strip_range=True))
    dest = tmp_path / "big.bin"
    OciGoClient(connections=4, chunk_size=4 * MiB).pull_blob(ref(proxy), digest, dest, size=size)
    assert dest.read_bytes() == BIG
    statuses = [s.status for s in blob_gets(proxy)]
    assert 206 not in statuses and statuses.count(200) >= 2


def storage_gets(proxy: FaultProxy) -> list[Any]:
    return [s for s in proxy.log if s.method == "GET" and s.path.startswith("/storage/")]


def registry_blob_gets(proxy: FaultProxy) -> list[Any]:
    return [s for s in proxy.log if s.method == "GET" and s.path.startswith("/v2/") and "/blobs/" in s.path]


@pytest.mark.parametrize("connections", [1, 4])
def test_redirected_blob_is_fetched_from_the_learned_url(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path, connections: int
) -> None:
    digest, size = big(artifact)
    proxy.add(Rule(path=r"^/v2/.*/blobs/", method="GET", redirect=True))
    # The stream breaks once, so both modes make several requests.
    proxy.add(Rule(path=r"^/storage/", truncate_at=3 * MiB, times=1))
    dest = tmp_path / "big.bin"
    OciGoClient(connections=connections, chunk_size=4 * MiB).pull_blob(ref(proxy), digest, dest, size=size)
    assert dest.read_bytes() == BIG
    # One trip through the registry; every later request (the chunks, the
    # resume) went straight to the signed storage URL it redirected to.
    assert len(registry_blob_gets(proxy)) == 1
    stored = storage_gets(proxy)
    assert len(stored) == (2 if connections == 1 else size // (4 * MiB) + 1)
    assert {s.status for s in stored} <= {200, 206}
    assert all("X-Amz-Signature=sig1" in s.path for s in stored)


def test_expired_signed_url_goes_back_to_the_registry(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    digest, size = big(artifact)
    proxy.signature_uses = 2
    proxy.add(Rule(path=r"^/v2/.*/blobs/", method="GET", redirect=True))
    dest = tmp_path / "big.bin"
    OciGoClient(connections=2, chunk_size=2 * MiB).pull_blob(ref(proxy), digest, dest, size=size)
    assert dest.read_bytes() == BIG
    refused = [s for s in storage_gets(proxy) if s.status == 403]
    registry = len(registry_blob_gets(proxy))
    assert refused, "no signature expired: the test proves nothing"
    # Each expiry costs at most one registry request per connection, and
    # the learned URLs still saved most of them.
    assert registry <= 1 + 2 * len(refused)
    assert registry < size // (2 * MiB)


def test_refused_signed_url_is_a_typed_error_without_the_signature(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    digest, size = big(artifact)
    proxy.signature_uses = 0
    proxy.add(Rule(path=r"^/v2/.*/blobs/", method="GET", redirect=True))
    dest = tmp_path / "big.bin"
    with pytest.raises(OciError) as exc:
        OciGoClient(connections=4, chunk_size=4 * MiB).pull_blob(ref(proxy), digest, dest, size=size)
    assert exc.value.status == 403
    assert "sig1" not in str(exc.value) and "sig1" not in repr(exc.value)
    assert not dest.exists()
    # Nothing was learned from a URL that never answered: no loop.
    assert len(registry_blob_gets(proxy)) == 1


def test_corrupt_byte_fails_and_keeps_nothing(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    digest, size = big(artifact)
    proxy.add(Rule(path=r"/blobs/", flip_byte_at=5 * MiB))
    dest = tmp_path / "big.bin"
    with pytest.raises(DigestMismatchError):
        OciGoClient(connections=1).pull_blob(ref(proxy), digest, dest, size=size)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_chunk_fails_and_keeps_nothing(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    digest, size = big(artifact)
    proxy.add(Rule(path=r"/blobs/", flip_byte_at=100))
    dest = tmp_path / "big.bin"
    with pytest.raises(DigestMismatchError):
        OciGoClient(connections=4, chunk_size=4 * MiB).pull_blob(ref(proxy), digest, dest, size=size)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("retry_after", ["1", "date"])
def test_retry_after_is_honoured(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path, retry_after: str
) -> None:
    layer = artifact.layers[1]
    value = email.utils.formatdate(time.time() + 2, usegmt=True) if retry_after == "date" else retry_after
    proxy.add(Rule(path=r"/blobs/", status=429, headers={"Retry-After": value}, times=1))
    OciGoClient().pull_blob(ref(proxy), layer.digest, tmp_path / "s", size=layer.size)
    gets = blob_gets(proxy)
    assert [g.status for g in gets][-1] == 200
    assert gets[1].at - gets[0].at >= 0.9, "retried before Retry-After elapsed"


def test_server_errors_are_retried_with_backoff(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    layer = artifact.layers[1]
    proxy.add(Rule(path=r"/blobs/", status=503, times=2))
    OciGoClient().pull_blob(ref(proxy), layer.digest, tmp_path / "s", size=layer.size)
    assert (tmp_path / "s").read_bytes() == SMALL[0]
    assert len(blob_gets(proxy)) == 3


def test_rate_limited_when_retries_run_out(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    layer = artifact.layers[1]
    rule = proxy.add(Rule(path=r"/blobs/", status=429, headers={"Retry-After": "0"}))
    with pytest.raises(RateLimitedError) as exc:
        OciGoClient(retries=3).pull_blob(ref(proxy), layer.digest, tmp_path / "s", size=layer.size)
    assert exc.value.status == 429 and rule.hits == 3


def test_excessive_retry_after_fails_fast(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    layer = artifact.layers[1]
    proxy.add(Rule(path=r"/blobs/", status=429, headers={"Retry-After": "3600"}))
    start = time.monotonic()
    with pytest.raises(RateLimitedError):
        OciGoClient().pull_blob(ref(proxy), layer.digest, tmp_path / "s", size=layer.size)
    assert time.monotonic() - start < 30


def test_stalled_stream_is_resumed(proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path) -> None:
    digest, size = big(artifact)
    proxy.add(Rule(path=r"/blobs/", stall_after=10 * MiB, stall=5, times=1))
    dest = tmp_path / "big.bin"
    OciGoClient(connections=1, read_timeout=1).pull_blob(ref(proxy), digest, dest, size=size)
    assert dest.read_bytes() == BIG
    assert blob_gets(proxy)[1].range is not None


def test_resume_across_calls(proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path) -> None:
    digest, size = big(artifact)
    cut = 15 * MiB
    proxy.add(Rule(path=r"/blobs/", truncate_at=cut, times=1))
    proxy.add(Rule(path=r"/blobs/", status=500))
    dest = tmp_path / "big.bin"
    with pytest.raises(Exception):  # noqa: B017 - a registry error, after the data was cut
        OciGoClient(connections=1, retries=1).pull_blob(ref(proxy), digest, dest, size=size)
    assert not dest.exists()
    kept = dest.with_name("big.bin.incomplete")
    assert kept.stat().st_size == cut
    meta = json.loads(dest.with_name("big.bin.incomplete.json").read_text())
    assert meta["digest"] == digest

    proxy.rules.clear()
    before = proxy.blob_bytes
    OciGoClient(connections=1).pull_blob(ref(proxy), digest, dest, size=size)
    assert dest.read_bytes() == BIG
    assert proxy.blob_bytes - before == size - cut
    assert partial_files(dest) == []


def test_resumed_pull_model_counts_only_the_bytes_it_received(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    digest, size = big(artifact)
    cut = 15 * MiB
    proxy.add(Rule(path=digest, truncate_at=cut, times=1))
    proxy.add(Rule(path=digest, status=500))
    cache = tmp_path / "cache"
    failing = OciGoClient(connections=1, retries=1)
    with pytest.raises(OciError):
        failing.pull(ref(proxy), cache_dir=cache, allow_patterns="big.bin")

    proxy.rules.clear()
    before = proxy.blob_bytes
    r = OciGoClient(connections=1).pull(ref(proxy), cache_dir=cache, allow_patterns="big.bin")
    assert (r.path / "big.bin").read_bytes() == BIG
    assert r.blobs_downloaded >= 1
    # What crossed the wire this time (the rest of the big blob, and any other blob not yet
    # cached), not the big blob's size.
    assert size - cut <= r.bytes_downloaded < size, r.bytes_downloaded
    assert r.bytes_downloaded == proxy.blob_bytes - before


def test_corrupt_partial_from_an_earlier_run_is_replaced(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    digest, size = big(artifact)
    dest = tmp_path / "big.bin"
    dest.with_name("big.bin.incomplete").write_bytes(b"\0" * (3 * MiB))
    dest.with_name("big.bin.incomplete.json").write_text(
        json.dumps({"digest": digest, "size": size, "valid": -1})
    )
    OciGoClient(connections=1).pull_blob(ref(proxy), digest, dest, size=size)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest.split(":")[1]
    assert partial_files(dest) == []


def test_partial_of_another_blob_is_ignored(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    digest, size = big(artifact)
    dest = tmp_path / "big.bin"
    dest.with_name("big.bin.incomplete").write_bytes(BIG[: 5 * MiB])
    dest.with_name("big.bin.incomplete.json").write_text(
        json.dumps({"digest": "sha256:" + "0" * 64, "valid": -1})
    )
    OciGoClient(connections=1).pull_blob(ref(proxy), digest, dest, size=size)
    assert dest.read_bytes() == BIG
    assert blob_gets(proxy)[0].range is None  # nothing was trusted


def test_timeout_keeps_the_partial_for_the_next_call(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    digest, size = big(artifact)
    proxy.add(Rule(path=r"/blobs/", throttle=8 * MiB, times=1))
    dest = tmp_path / "big.bin"
    with pytest.raises(OperationTimeoutError):
        OciGoClient(connections=1, timeout=1.0).pull_blob(ref(proxy), digest, dest, size=size)
    kept = dest.with_name("big.bin.incomplete").stat().st_size
    assert 0 < kept < size
    OciGoClient(connections=1).pull_blob(ref(proxy), digest, dest, size=size)
    assert dest.read_bytes() == BIG
    assert blob_gets(proxy)[-1].range == f"bytes={kept}-{size - 1}"


def test_parallel_blobs_with_progress(proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path) -> None:
    proxy.add(Rule(path=r"/blobs/", throttle=16 * MiB))
    calls: list[tuple[int, int]] = []
    specs = [(layer.digest, tmp_path / (layer.name or "x"), layer.size) for layer in artifact.layers]
    infos = OciGoClient(chunk_size=4 * MiB).pull_blobs(
        ref(proxy), specs, concurrency=3, progress=lambda d, t: calls.append((d, t))
    )
    total = sum(layer.size for layer in artifact.layers)
    assert [i.size for i in infos] == [layer.size for layer in artifact.layers]
    assert (tmp_path / "big.bin").read_bytes() == BIG
    assert all((tmp_path / f"small-{i}.bin").read_bytes() == data for i, data in enumerate(SMALL))
    assert len(calls) >= 3, calls
    assert calls[-1] == (total, total)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(calls))
    assert all(0 <= d <= t for d, t in calls)


@pytest.mark.parametrize("redirected", [False, True])
def test_last_blob_running_takes_over_the_connections_of_finished_ones(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path, redirected: bool
) -> None:
    digest, size = big(artifact)
    if redirected:
        proxy.add(Rule(path=r"^/v2/.*/blobs/", method="GET", redirect=True))
    # One connection per blob; the big one's stream crawls, so it is still
    # running when the small ones are all done.
    proxy.add(Rule(path=("^/storage/.*" if redirected else "") + digest, throttle=4 * MiB, times=1))
    specs = [(layer.digest, tmp_path / (layer.name or "x"), layer.size) for layer in artifact.layers]
    OciGoClient(connections=2, chunk_size=2 * MiB).pull_blobs(ref(proxy), specs, concurrency=2)
    assert (tmp_path / "big.bin").read_bytes() == BIG
    assert all((tmp_path / f"small-{i}.bin").read_bytes() == data for i, data in enumerate(SMALL))
    if redirected:
        # The chunks went straight to the storage URL the stream was sent to.
        assert len([s for s in registry_blob_gets(proxy) if digest in s.path]) == 1
    gets = [s.range for s in blob_gets(proxy) if digest in s.path and (s.status or 0) < 300]
    assert gets[0] is None and len(gets) >= 3, gets
    # The rest came in closed ranges from where the stream had got to, each
    # byte once.
    spans = sorted(tuple(map(int, r.removeprefix("bytes=").split("-"))) for r in gets[1:])
    assert spans[0][0] > 0 and spans[-1][1] == size - 1, spans
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(spans)), spans


@pytest.mark.parametrize("direct_io", [True, False])
@pytest.mark.parametrize("where", ["tmp_path", "shm"])
def test_direct_and_buffered_writes_give_the_same_verified_files(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path, direct_io: bool, where: str
) -> None:
    # O_DIRECT by default, page cache when asked; on a tmpfs, where the
    # library always writes buffered, too. A drop inside the big blob makes
    # the resume continue an unaligned piece. One connection each: a stream
    # widened into chunks would drop what it had on the way, and the byte
    # count is about the resume.
    root = tmp_path
    if where == "shm":
        if not Path("/dev/shm").is_dir():
            pytest.skip("no /dev/shm here")
        root = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        proxy.add(Rule(path=r"/blobs/", truncate_at=5 * MiB + 333, times=1))
        specs = [(layer.digest, root / (layer.name or "x"), layer.size) for layer in artifact.layers]
        OciGoClient(direct_io=direct_io, connections=1).pull_blobs(ref(proxy), specs)
        assert (root / "big.bin").read_bytes() == BIG
        assert all((root / f"small-{i}.bin").read_bytes() == data for i, data in enumerate(SMALL))
        names = sorted(layer.name or "x" for layer in artifact.layers)
        assert sorted(p.name for p in root.iterdir()) == names, "partial files left behind"
        assert proxy.blob_bytes < len(BIG) + sum(map(len, SMALL)) + 1 * MiB
    finally:
        if root != tmp_path:
            shutil.rmtree(root)


def test_direct_io_must_be_a_bool() -> None:
    with pytest.raises(InvalidArgumentError, match="direct_io"):
        OciGoClient(direct_io="no")  # type: ignore[arg-type]


def test_unknown_size_progress_ends_at_the_blob_size(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    digest, size = big(artifact)
    proxy.add(Rule(path=r"/blobs/", throttle=32 * MiB))
    calls: list[tuple[int, int]] = []
    OciGoClient().pull_blob(ref(proxy), digest, tmp_path / "b", progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1] == (size, size)


def test_failure_in_one_blob_cancels_the_others(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path
) -> None:
    proxy.add(Rule(path=r"/blobs/sha256:0{64}", status=404))
    specs = [(layer.digest, tmp_path / f"{i}", layer.size) for i, layer in enumerate(artifact.layers)]
    specs.insert(0, ("sha256:" + "0" * 64, tmp_path / "missing", None))
    with pytest.raises(NotFoundError):
        OciGoClient().pull_blobs(ref(proxy), specs, concurrency=2)


SIGINT_SCRIPT = """
import sys, time
from oci_client import OciGoClient, _native
ref, digest, size, dest, conns = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
try:
    OciGoClient(connections=conns, chunk_size=int(sys.argv[6])).pull_blob(ref, digest, dest, size=size)
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted, calls in Go:", _native.in_flight(), flush=True)
    sys.exit(130)
"""


def start_slow_pull(
    proxy: FaultProxy, artifact: PushedArtifact, dest: Path, connections: int, **popen: Any
) -> subprocess.Popen[str]:
    """Start SIGINT_SCRIPT pulling the big blob through the proxy, each response throttled.
    With several connections, 1 MiB chunks make the verified prefix grow steadily instead of
    all chunks ending together."""
    digest, size = big(artifact)
    proxy.add(Rule(path=r"/blobs/", throttle=(4 if connections == 1 else 1) * MiB))
    chunk = 4 * MiB if connections == 1 else MiB
    argv = [SIGINT_SCRIPT, ref(proxy), digest, str(size), str(dest), str(connections), str(chunk)]
    return subprocess.Popen([sys.executable, "-c", *argv], text=True, **popen)


@pytest.mark.parametrize("connections", [1, 4])
def test_ctrl_c_cancels_keeps_the_partial_and_resumes(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path, connections: int
) -> None:
    digest, size = big(artifact)
    dest = tmp_path / "big.bin"
    proc = start_slow_pull(proxy, artifact, dest, connections, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kept_path = dest.with_name("big.bin.incomplete")
    wait_for_partial(dest, 2 * MiB)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    returned = time.monotonic() - sent
    assert proc.returncode == 130, (out, err)
    assert "interrupted, calls in Go: 0" in out, out
    assert returned < 3, f"took {returned:.1f}s to give control back"
    kept = kept_path.stat().st_size
    assert 2 * MiB <= kept < size
    if connections > 1:
        assert kept % MiB == 0, "kept more than the verified prefix of whole pieces"
    assert not dest.exists()

    proxy.rules.clear()
    before = settled_blob_bytes(proxy)
    OciGoClient(connections=1).pull_blob(ref(proxy), digest, dest, size=size)
    assert dest.read_bytes() == BIG
    assert proxy.blob_bytes - before == size - kept


@pytest.mark.parametrize("connections", [1, 4])
def test_a_killed_process_leaves_a_partial_the_next_pull_continues(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path, connections: int
) -> None:
    # SIGKILL: no cancellation, no clean-up, whatever the writer had done.
    digest, size = big(artifact)
    dest = tmp_path / "big.bin"
    kept_path = dest.with_name("big.bin.incomplete")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = start_slow_pull(proxy, artifact, dest, connections, **quiet)
    try:
        wait_for_partial(dest, 4 * MiB)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    kept = kept_path.stat().st_size
    assert 4 * MiB <= kept < size
    assert kept_path.read_bytes() == BIG[:kept], "the partial file is not a prefix of the blob"
    assert not dest.exists()

    proxy.rules.clear()
    before = settled_blob_bytes(proxy)
    OciGoClient(connections=connections, chunk_size=4 * MiB).pull_blob(ref(proxy), digest, dest, size=size)
    assert dest.read_bytes() == BIG
    assert partial_files(dest) == []
    assert proxy.blob_bytes - before == size - kept


FSIZE_SCRIPT = """
import resource, signal, sys
from oci_client import LocalFileError, OciGoClient
ref, digest, size, dest, limit, direct = sys.argv[1:]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.RLIM_INFINITY))
try:
    OciGoClient(direct_io=direct == "1").pull_blob(ref, digest, dest, size=int(size))
except LocalFileError as exc:
    print(exc.code, exc)
    sys.exit(3)
"""


@pytest.mark.parametrize("direct_io", [True, False])
def test_a_full_disk_is_a_local_file_error_and_the_next_pull_continues(
    proxy: FaultProxy, artifact: PushedArtifact, tmp_path: Path, direct_io: bool
) -> None:
    # A file size limit stands in for a full disk: the write that crosses it
    # fails, as one would with ENOSPC, wherever the writer is in the blob.
    digest, size = big(artifact)
    dest = tmp_path / "big.bin"
    limit = 10 * MiB
    argv = [sys.executable, "-c", FSIZE_SCRIPT, ref(proxy), digest, str(size), str(dest), str(limit)]
    r = subprocess.run([*argv, "1" if direct_io else "0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stdout.startswith("IO ") and str(dest) + ".incomplete" in r.stdout, r.stdout
    assert not dest.exists()
    kept_path = dest.with_name("big.bin.incomplete")
    kept = kept_path.stat().st_size
    assert 0 < kept <= limit
    assert kept_path.read_bytes() == BIG[:kept], "the partial file is not a prefix of the blob"

    before = settled_blob_bytes(proxy)
    OciGoClient(direct_io=direct_io).pull_blob(ref(proxy), digest, dest, size=size)
    assert dest.read_bytes() == BIG
    assert partial_files(dest) == []
    assert proxy.blob_bytes - before == size - kept


def test_a_network_error_still_ends_in_the_typed_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetworkError):
        OciGoClient(retries=2).pull_blob(f"127.0.0.1:{port}/x/y:z", "sha256:" + "1" * 64, tmp_path / "x")
    assert list(tmp_path.iterdir()) == []
