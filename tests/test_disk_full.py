"""A full disk, for real: pulls into a small tmpfs. A model that cannot fit is refused
before any of its blobs is requested; a disk that fills up during the pull, or while an
archive unpacks, fails with NoSpaceError and leaves no half-written file in the model;
once there is room, the same pull continues from what it kept.

Mounting needs root (CAP_SYS_ADMIN), which CI has: there, failing to mount fails."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultproxy import FaultProxy, Rule
from modelfixtures import MiB, blob_gets, blob_path, gz, named, push_layers, tar, tree
from oci_testing import LocalRegistry, PushedArtifact, push_artifact

import oci_client
from oci_client import LocalFileError, NoSpaceError

pytestmark = pytest.mark.usefixtures("docker_config")

WEIGHTS = {
    "config.json": b'{"hidden_size": 8}',
    "model-00001-of-00002.safetensors": os.urandom(14 * MiB),
    "model-00002-of-00002.safetensors": os.urandom(14 * MiB + 5),
}
ONE_SHARD = {"config.json": b"{}", "model.safetensors": os.urandom(16 * MiB)}
ZEROS = {"weights/a.bin": bytes(16 * MiB), "weights/b.bin": bytes(16 * MiB)}  # 32 MiB, gzipped to 64 KiB


class Volume:
    """A tmpfs of a given size, mounted for one test."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        path.mkdir()
        self._mount("-o", f"size={size}", "tmpfs", str(path))

    def _mount(self, *args: str) -> None:
        run = subprocess.run(["mount", "-t", "tmpfs", *args], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            message = f"cannot mount a tmpfs (needs root): {run.stderr.strip()}"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)

    def resize(self, size: int) -> None:
        self._mount("-o", f"remount,size={size}", "tmpfs", str(self.path))

    def used(self) -> int:
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Volume]:
    v = Volume(tmp_path / "volume", 24 * MiB)
    try:
        yield v
    finally:
        v.unmount()


def via(proxy: FaultProxy, pushed: PushedArtifact) -> str:
    return f"{proxy.host}/{pushed.repository}:{pushed.tag}"


def destination(into: str, volume: Volume, tmp_path: Path) -> dict[str, Path]:
    """The pull's keywords: the cache on the volume, or a local_dir there (cache elsewhere)."""
    if into == "cache":
        return {"cache_dir": volume.path / "cache"}
    return {"cache_dir": tmp_path / "cache", "local_dir": volume.path / "model"}


def weight_gets(proxy: FaultProxy, pushed: PushedArtifact) -> list[object]:
    return [s for layer in pushed.layers if layer.size > MiB for s in blob_gets(proxy, layer.digest)]


@pytest.mark.parametrize("into", ["cache", "local_dir"])
def test_a_model_that_cannot_fit_is_refused_before_its_blobs_are_fetched(
    plain_registry: LocalRegistry, proxy: FaultProxy, volume: Volume, tmp_path: Path, into: str
) -> None:
    pushed = push_artifact(plain_registry, f"full/{into}", "v1", WEIGHTS)
    where = destination(into, volume, tmp_path)
    with pytest.raises(NoSpaceError) as exc:
        oci_client.pull_model(via(proxy, pushed), **where)
    assert isinstance(exc.value, LocalFileError) and exc.value.code == "NO_SPACE"
    message = str(exc.value)
    assert "3 blobs under" in message and str(volume.path) in message, message
    assert "28.0 MiB more to download" in message and "MiB free on its file system" in message, message
    assert weight_gets(proxy, pushed) == [], "a blob was requested for a pull that could not fit"
    assert volume.used() < MiB, f"the refused pull took {volume.used()} bytes"

    volume.resize(64 * MiB)
    path = oci_client.pull_model(via(proxy, pushed), **where)
    assert tree(path) == WEIGHTS


def test_a_disk_that_fills_during_the_pull_fails_typed_and_the_next_pull_continues(
    plain_registry: LocalRegistry, proxy: FaultProxy, volume: Volume
) -> None:
    pushed = push_artifact(plain_registry, "full/filling", "v1", ONE_SHARD)
    layer = next(layer for layer in pushed.layers if layer.size > MiB)
    cache = volume.path / "cache"
    partial = Path(f"{blob_path(cache, layer.digest)}.incomplete")
    proxy.add(Rule(path=layer.digest, method="GET", throttle=4 * MiB))
    outcome: dict[str, BaseException | Path] = {}

    def pull() -> None:
        try:
            outcome["path"] = oci_client.Client(connections=1).pull_model(via(proxy, pushed), cache_dir=cache)
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    puller = threading.Thread(target=pull)
    puller.start()
    ballast = volume.path / "ballast"
    try:
        for _ in range(200):  # the pre-check passed: 16 MiB of 24 free; fill the rest once it writes
            if partial.exists() and partial.stat().st_size >= 4 * MiB:
                break
            puller.join(0.05)
        else:
            pytest.fail("the pull wrote no data")
        with ballast.open("wb", buffering=0) as f, pytest.raises(OSError):
            while True:
                f.write(bytes(MiB))
        puller.join(30)
    finally:
        puller.join(30)
    error = outcome.get("error")
    assert isinstance(error, NoSpaceError), outcome
    assert "no space left on device" in str(error) and str(partial) in str(error), error
    kept = partial.stat().st_size
    assert 0 < kept < layer.size
    assert not blob_path(cache, layer.digest).exists()

    ballast.unlink()
    proxy.rules.clear()
    mark = len(proxy.log)
    path = oci_client.pull_model(via(proxy, pushed), cache_dir=cache)
    assert tree(path) == ONE_SHARD
    resumed = [s for s in proxy.log[mark:] if s.method == "GET" and layer.digest in s.path]
    assert resumed and all(s.range and not s.range.startswith("bytes=0-") for s in resumed), resumed


@pytest.mark.parametrize("into", ["cache", "local_dir"])
def test_an_archive_that_unpacks_past_the_free_space_leaves_nothing_half_written(
    plain_registry: LocalRegistry, proxy: FaultProxy, volume: Volume, tmp_path: Path, into: str
) -> None:
    archive = named(gz(tar(ZEROS)), "application/vnd.cncf.model.weight.v1.tar+gzip", "weights")
    pushed = push_layers(plain_registry, f"full/archive-{into}", "v1", [archive])
    model = volume.path / "model"
    where = destination(into, volume, tmp_path)
    with pytest.raises(NoSpaceError) as exc:
        oci_client.pull_model(via(proxy, pushed), **where)
    assert "unpacking layer" in str(exc.value) and "no space left on device" in str(exc.value), exc.value
    # Unpacked entries wait in staging until the whole layer is out: none is in the model.
    assert not model.exists() or tree(model) == {}
    leftovers = [p for p in volume.path.rglob("*") if p.is_file() and p.stat().st_size >= MiB]
    assert leftovers == [], leftovers

    volume.resize(64 * MiB)
    path = oci_client.pull_model(via(proxy, pushed), **where)
    assert tree(path) == ZEROS
    assert len(blob_gets(proxy, archive.digest)) == 1, "the archive was fetched again"
