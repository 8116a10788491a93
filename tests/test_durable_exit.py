"""A process that pulls with background durability and exits at once leaves its blobs durable:
the fsyncs the library would have run about ten seconds later run at exit instead, bounded,
so a command-line pull is not re-hashed after the next reboot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from modelfixtures import this_boot
from oci_testing import LocalRegistry, PushedArtifact, push_model

from oci_client import _native

pytestmark = [
    pytest.mark.usefixtures("docker_config"),
    pytest.mark.skipif(
        not Path("/proc/sys/kernel/random/boot_id").is_file(),
        reason="without a boot id every blob is made durable when it is verified",
    ),
]

FILES = {
    "config.json": b'{"hidden_size": 8}',
    "model.safetensors": os.urandom(3 * 1024 * 1024),
    "tokenizer.json": b"{}",
}

PULL = """
import logging, sys
import oci_client
logging.basicConfig(level=logging.DEBUG, format="%(name)s %(levelname)s %(message)s")
print(oci_client.pull_model(sys.argv[1], cache_dir=sys.argv[2]), flush=True)
"""


@pytest.fixture(scope="module")
def model(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_model(plain_registry, "durable-exit/model", "v1", FILES)


def states(cache: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in (cache / "blobs" / "sha256").glob("*.state")}


def run(args: list[str], **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != _native.EXIT_SYNC_ENV}
    r = subprocess.run(args, capture_output=True, text=True, timeout=120, env={**env, **extra_env})
    assert r.returncode == 0, r.stderr
    return r


def test_a_python_process_that_exits_after_a_pull_leaves_every_blob_durable(
    model: PushedArtifact, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    r = run([sys.executable, "-c", PULL, model.reference, str(cache)])
    after = states(cache)
    assert len(after) == len(FILES) + 1  # and the config
    assert all(s == {"durable": True} for s in after.values()), after
    # The time is told in the debug log, with the count it made durable.
    assert f"made {len(after)} pulled blobs durable at exit in " in r.stderr, r.stderr
    assert "WARNING" not in r.stderr


def test_the_command_line_pull_leaves_every_blob_durable(model: PushedArtifact, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    r = run([sys.executable, "-m", "oci_client", "pull", model.reference, "--cache-dir", str(cache), "-q"])
    after = states(cache)
    assert len(after) == len(FILES) + 1
    assert all(s == {"durable": True} for s in after.values()), after
    assert "at exit" not in r.stderr  # nothing extra when it was quick


def test_without_the_exit_flush_the_blobs_stay_trusted_for_this_boot_only(
    model: PushedArtifact, tmp_path: Path
) -> None:
    # What every pull left before the exit flush existed: the background fsync was still
    # ten seconds away when the process ended.
    cache = tmp_path / "cache"
    r = run([sys.executable, "-c", PULL, model.reference, str(cache)], **{_native.EXIT_SYNC_ENV: "0"})
    after = states(cache)
    assert len(after) == len(FILES) + 1
    assert all(s == {"boot": this_boot(), "durable": False} for s in after.values()), after
    assert "at exit" not in r.stderr


def test_a_bad_wait_in_the_environment_is_told_and_the_default_used(
    model: PushedArtifact, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    r = run([sys.executable, "-c", PULL, model.reference, str(cache)], **{_native.EXIT_SYNC_ENV: "soon"})
    assert all(s == {"durable": True} for s in states(cache).values()), states(cache)
    assert f"{_native.EXIT_SYNC_ENV}='soon' is not a number of seconds" in r.stderr, r.stderr


NO_BACKGROUND_PULL = """
import sys
import oci_client
from oci_client import _native
oci_client.cache_list(cache_dir=sys.argv[2])
oci_client.pull_model(sys.argv[1], cache_dir=sys.argv[2], durability="sync")
print(_native._exit_sync_registered)
"""


def test_a_process_without_a_background_pull_does_nothing_at_exit(
    model: PushedArtifact, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    r = run([sys.executable, "-c", NO_BACKGROUND_PULL, model.reference, str(cache)])
    assert r.stdout.strip() == "False"
    assert all(s == {"durable": True} for s in states(cache).values())


FORK = """
import os, signal, sys, time
import oci_client
oci_client.pull_model(sys.argv[1], cache_dir=sys.argv[2])
pid = os.fork()
if pid == 0:
    sys.exit(0)  # a normal exit: the inherited exit hook runs here and must not call Go
deadline = time.monotonic() + 30
while not (done := os.waitpid(pid, os.WNOHANG))[0]:
    if time.monotonic() > deadline:  # a call into Go in the child hangs there
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        sys.exit("the forked child hung at exit")
    time.sleep(0.02)
print(os.waitstatus_to_exitcode(done[1]), flush=True)
"""


def test_a_forked_child_exits_without_calling_the_library(model: PushedArtifact, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    r = run([sys.executable, "-c", FORK, model.reference, str(cache)])
    assert r.stdout.strip() == "0"
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    assert all(s == {"durable": True} for s in states(cache).values())  # the parent's own exit
