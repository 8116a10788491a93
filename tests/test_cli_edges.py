"""The command at its edges: a reader that leaves early, network failures named by the
step that failed, ports out of range, singular summaries and ``--help``."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from oci_testing import LocalRegistry, PushedArtifact, push_artifact

from oci_client import OciGoClient
from oci_client.errors import InvalidReferenceError, NetworkError, NotCachedError, TLSError

pytestmark = pytest.mark.usefixtures("docker_config")

# What the shell reports for a producer whose reader quit: see cli.EXIT_BROKEN_PIPE.
EXIT_BROKEN_PIPE = 141
# .invalid never resolves (RFC 6761), wherever the tests run.
UNRESOLVABLE = "registry.oci-client.invalid"


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "oci_client", *args]


def run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=120, env=env)


def env_with(buffered: bool, cache: Path) -> dict[str, str]:
    """The environment for a run: the test's own cache, and stdout block-buffered as a
    user's is (``buffered``) or unbuffered (``PYTHONUNBUFFERED``, as some CI sets)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    env["OCI_CLIENT_CACHE"] = str(cache)
    return env


@pytest.fixture(scope="module")
def artifact(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(plain_registry, "edges/one", "v1", {"a.txt": b"alpha\n"})


@pytest.fixture
def refused_port() -> int:
    """A port on 127.0.0.1 that was just bound and closed: nothing listens there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def assert_quiet(stderr: str) -> None:
    for text in ("Traceback", "BrokenPipeError", "Exception ignored", "Errno 32"):
        assert text not in stderr, stderr


# --- (a) a closed pipe ---------------------------------------------------------------


def test_a_reader_that_stops_after_one_line_gets_no_traceback(
    plain_registry: LocalRegistry, tmp_path: Path
) -> None:
    # ~200 KB of indented JSON, more than a pipe and Python's buffer hold together, so
    # the command is still writing when the reader closes its end (`| head -1`).
    annotations = {f"org.example.note.{i:05d}": "x" * 24 for i in range(4000)}
    big = push_artifact(plain_registry, "edges/big", "v1", {"a.txt": b"a"}, annotations=annotations)
    for buffered in (True, False):
        p = subprocess.Popen(
            command("manifest", f"{big.host}/edges/big:v1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env_with(buffered, tmp_path / "cache"),
        )
        assert p.stdout is not None and p.stderr is not None
        first = p.stdout.readline()
        p.stdout.close()
        stderr = p.stderr.read().decode()
        rc = p.wait(timeout=60)
        assert first == b"{\n"
        assert_quiet(stderr)
        # The summary line the command wrote before the pipe broke, and nothing else.
        assert json.loads(stderr)["digest"] == big.digest, stderr
        # The pipe really broke (a command that got all its output out would exit 0).
        assert rc == EXIT_BROKEN_PIPE, (buffered, rc, stderr)


@pytest.mark.parametrize(
    "args",
    [
        ("manifest", "{ref}"),
        ("manifest", "--raw", "{ref}"),
        ("blob", "{ref}", "{layer}", "-o", "{tmp}/blob"),
        ("inspect", "{ref}"),
        ("inspect", "--json", "{ref}"),
        ("check-auth", "{ref}"),
        ("cache", "ls"),
        ("--help",),
        ("pull", "--help"),
        ("--version",),
    ],
    ids=lambda a: " ".join(a),
)
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_output_into_a_closed_pipe_exits_quietly(
    artifact: PushedArtifact, tmp_path: Path, args: tuple[str, ...], buffered: bool
) -> None:
    ref, layer = f"{artifact.host}/edges/one:v1", artifact.layers[0].digest
    values = {"ref": ref, "layer": layer, "tmp": str(tmp_path)}
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    try:
        r = subprocess.run(
            command(*(a.format(**values) for a in args)),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env=env_with(buffered, tmp_path / "cache"),
        )
    finally:
        os.close(write_end)
    assert_quiet(r.stderr)
    assert "error:" not in r.stderr, r.stderr
    if args[-1] in ("--help", "--version") and not buffered:
        # argparse swallows the failed write itself and exits 0: quiet all the same.
        assert r.returncode in (0, EXIT_BROKEN_PIPE), r.stderr
    else:
        assert r.returncode == EXIT_BROKEN_PIPE, r.stderr


# --- (b) network failures say what failed -----------------------------------------------


def test_a_refused_connection_says_connecting(refused_port: int) -> None:
    host = f"127.0.0.1:{refused_port}"
    with pytest.raises(NetworkError) as exc:
        OciGoClient(retries=1).get_manifest(f"{host}/x:v1")
    assert type(exc.value) is NetworkError and exc.value.code == "NETWORK"
    assert exc.value.message == f"connecting to {host}: connection refused"

    r = run("manifest", f"{host}/x:v1")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"error: NETWORK: connecting to {host}: connection refused\n"


def test_a_name_that_does_not_resolve_says_resolving() -> None:
    with pytest.raises(NetworkError) as exc:
        OciGoClient(retries=1).get_manifest(f"{UNRESOLVABLE}:5000/x:v1")
    assert type(exc.value) is NetworkError and exc.value.code == "NETWORK"
    # The resolver's own words follow ("no such host", or its failure to answer).
    assert exc.value.message.startswith(f"resolving {UNRESOLVABLE}: lookup {UNRESOLVABLE}"), exc.value.message
    assert "authenticating" not in exc.value.message and "credentials" not in exc.value.message


def test_an_untrusted_certificate_says_tls_handshake(tls_registry: LocalRegistry) -> None:
    with pytest.raises(TLSError) as exc:
        OciGoClient(retries=1).get_manifest(f"{tls_registry.host}/x:v1")
    assert exc.value.code == "TLS"
    assert exc.value.message.startswith(f"TLS handshake with {tls_registry.host}: "), exc.value.message
    assert "certificate" in exc.value.message and "authenticating" not in exc.value.message


# --- (c) ports out of range ---------------------------------------------------------------


@pytest.mark.parametrize("port", ["99999", "0", "65536"])
def test_a_port_out_of_range_is_an_invalid_reference(port: str) -> None:
    ref = f"localhost:{port}/x:v1"
    # The default retries: a reference error must come before any of them.
    with pytest.raises(InvalidReferenceError) as exc:
        OciGoClient().get_manifest(ref)
    assert f'invalid port "{port}"' in exc.value.message

    r = run("manifest", ref)
    assert r.returncode == 1
    assert r.stderr.startswith(f'error: INVALID_REFERENCE: parsing reference "{ref}": invalid port'), r.stderr


def test_the_highest_port_still_parses(tmp_path: Path) -> None:
    # Offline: parsing is all that happens before the cache says it has nothing.
    with pytest.raises(NotCachedError):
        OciGoClient().inspect("localhost:65535/x:v1", cache_dir=tmp_path / "cache", offline=True)


# --- (d) singular summaries ---------------------------------------------------------------


def test_a_one_file_pull_says_file_and_blob(
    artifact: PushedArtifact, plain_registry: LocalRegistry, tmp_path: Path
) -> None:
    env = env_with(True, tmp_path / "cache")
    assert run("pull", "-q", f"{artifact.host}/edges/one:v1", env=env).returncode == 0
    # The same empty config, another file: one blob left to download.
    other = push_artifact(plain_registry, "edges/other", "v1", {"b.txt": b"beta\n"})
    r = run("pull", "-q", f"{other.host}/edges/other:v1", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"{other.host}/edges/other@{other.digest}: 1 file (downloaded 1 blob, 5 B)\n"


def test_plural() -> None:
    from oci_client.cli import plural

    assert [plural(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]


# --- (e) --help ---------------------------------------------------------------------------


def subcommands() -> Iterator[tuple[str, ...]]:
    from oci_client.cli import build_parser

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield (*prefix, name)
                    yield from walk(sub, (*prefix, name))

    yield from walk(build_parser(), ())


def test_every_subcommand_is_found() -> None:
    found = {" ".join(s) for s in subcommands()}
    expected = {"manifest", "blob", "pull", "push", "inspect", "cache", "cache ls", "cache rm", "cache prune"}
    assert found >= expected | {"check-auth", "serve", "demo"}, found


@pytest.mark.parametrize("sub", list(subcommands()), ids=" ".join)
def test_every_subcommand_has_a_description_and_an_example(sub: tuple[str, ...]) -> None:
    r = run(*sub, "--help")
    assert r.returncode == 0, r.stderr
    usage, _, rest = r.stdout.partition("\n\n")
    assert usage.startswith(f"usage: oci-client {' '.join(sub)}")
    description = rest.split("\n\n", 1)[0]
    assert not description.startswith(("options:", "positional arguments:")), r.stdout
    assert "\nExamples:\n" in r.stdout
    examples = r.stdout.split("\nExamples:\n", 1)[1].splitlines()
    # Whole command lines, as written: the formatter must not rewrap them.
    assert examples and all(line.startswith(f"  oci-client {sub[0]}") for line in examples), examples
