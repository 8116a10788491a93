"""Go's log records on Python's logging and on the command line's -v/--debug:
what a pull through a misbehaving registry did, and never a secret."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from credentials import auth_field, login, write_config
from faultproxy import FaultProxy, Rule
from oci_testing import LocalRegistry, PushedArtifact, push_artifact
from test_cli_bars import _on_a_terminal

import oci_client

# Large enough for ranged chunks (16 MiB and up) and for the connection tuner
# to measure a throttled rate before the pull ends.
BIG = os.urandom(40 * 1024 * 1024)


@pytest.fixture(scope="module")
def big(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(plain_registry, "logs/model", "v1", {"w.bin": BIG, "config.json": b"{}"})


def misbehave(proxy: FaultProxy, pushed: PushedArtifact) -> None:
    """The big blob's first GET gets a 503, the second a 429 with Retry-After;
    then the registry hands it to "object storage" with a signed URL, which
    holds each connection to 8 MB/s (a CDN far away)."""
    digest = pushed.layers[0].digest
    proxy.add(Rule(path=f"^/v2/.*{digest}", method="GET", status=503, times=1))
    proxy.add(Rule(path=f"^/v2/.*{digest}", method="GET", status=429, headers={"Retry-After": "0"}, times=1))
    proxy.add(Rule(path=f"^/v2/.*{digest}", method="GET", redirect=True))
    proxy.add(Rule(path="^/storage/", throttle=8 * 1000 * 1000))


def via(proxy: FaultProxy, pushed: PushedArtifact) -> str:
    return f"{proxy.host}/{pushed.repository}:v1"


def cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OCI_CLIENT_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "oci_client", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_cli_verbose_pull_shows_retries_redirects_and_connections(
    proxy: FaultProxy, big: PushedArtifact, tmp_path: Path
) -> None:
    misbehave(proxy, big)
    r = cli("-v", "pull", via(proxy, big), cache=tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()

    def line(*words: str) -> str:
        found = [x for x in lines if all(w in x for w in words)]
        assert found, f"no line with {words} in:\n{r.stderr}"
        return found[0]

    line("INFO transfer: retrying request", 'reason="503 Service Unavailable"', "wait=")
    line("INFO transfer: retrying request", 'reason="429 Too Many Requests"', "wait=0s", "retry_after=true")
    line("INFO http: redirected", "status=307", "X-Amz-Signature=[REDACTED]")
    line("INFO oci: adding connections", "connections=8")
    assert "X-Amz-Signature=sig" not in r.stderr
    assert not [x for x in lines if " DEBUG " in x], "request lines without --debug"
    assert (Path(r.stdout.strip()) / "w.bin").stat().st_size == len(BIG)


def test_cli_debug_has_request_lines_and_quiet_has_none(
    proxy: FaultProxy, big: PushedArtifact, tmp_path: Path
) -> None:
    proxy.add(Rule(path=f"^/v2/.*{big.layers[1].digest}", method="GET", redirect=True))
    r = cli("pull", "--debug", via(proxy, big), "--include", "config.json", cache=tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    assert f"DEBUG http: GET http://{proxy.host}/v2/{big.repository}/manifests/v1 200 OK took=" in r.stderr
    assert "/storage/v2/" in r.stderr and "X-Amz-Signature=[REDACTED] 200 OK" in r.stderr
    assert "X-Amz-Signature=sig" not in r.stderr
    # Without -v: not a line more than before.
    r = cli("pull", via(proxy, big), "--include", "config.json", cache=tmp_path / "cache2")
    assert r.returncode == 0 and r.stderr.count("\n") == 1, r.stderr


def test_library_pull_logs_to_oci_client_loggers(
    proxy: FaultProxy, big: PushedArtifact, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    misbehave(proxy, big)
    caplog.set_level(logging.INFO, logger="oci_client")
    path = oci_client.pull_model(via(proxy, big), cache_dir=tmp_path / "cache")
    assert (path / "w.bin").stat().st_size == len(BIG)
    ours = [r for r in caplog.records if r.name.startswith("oci_client.")]
    retries = [r for r in ours if r.name == "oci_client.transfer" and r.msg.startswith("retrying request")]
    assert len(retries) == 2 and all(r.levelno == logging.INFO for r in retries), ours
    assert retries[0].attrs["reason"] == "503 Service Unavailable"
    assert retries[1].attrs["retry_after"] is True
    assert retries[0].reason == "503 Service Unavailable"
    assert any(r.name == "oci_client.http" and r.msg.startswith("redirected") for r in ours)
    assert any(r.name == "oci_client.oci" and r.msg.startswith("adding connections") for r in ours)
    assert not any(r.levelno < logging.INFO for r in ours)
    # In the order Go made them, with Go's clock.
    assert [r.created for r in ours] == sorted(r.created for r in ours)


def test_nothing_below_the_level_and_records_from_threads(
    proxy: FaultProxy, big: PushedArtifact, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    digest = big.layers[1].digest
    proxy.add(Rule(path=f"^/v2/.*{digest}", method="GET", status=503, times=1))
    caplog.set_level(logging.WARNING, logger="oci_client")
    oci_client.pull_model(via(proxy, big), cache_dir=tmp_path / "a", allow_patterns=["config.json"])
    assert not [r for r in caplog.records if r.name.startswith("oci_client")]

    # A call from another thread is not polled: its records come with its answer.
    proxy.add(Rule(path=f"^/v2/.*{digest}", method="GET", status=503, times=1))
    caplog.set_level(logging.INFO, logger="oci_client")
    t = threading.Thread(
        target=oci_client.pull_model,
        args=(via(proxy, big),),
        kwargs={"cache_dir": tmp_path / "b", "allow_patterns": ["config.json"]},
    )
    t.start()
    t.join(60)
    assert [r for r in caplog.records if r.msg.startswith("retrying request")]


def _all_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.name} {r.getMessage()} {getattr(r, 'attrs', {})}" for r in caplog.records)


def test_no_secret_in_any_record_with_token_auth(
    token_registry: LocalRegistry,
    docker_config: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user, password = token_registry.username, token_registry.password
    assert user and password
    pushed = push_artifact(token_registry, "logs/token", "v1", {"w.bin": os.urandom(64 * 1024)})
    write_config(
        docker_config / "config.json", {"auths": {token_registry.host: {"auth": auth_field(user, password)}}}
    )
    caplog.set_level(logging.DEBUG, logger="oci_client")
    with FaultProxy(token_registry.url) as proxy:
        proxy.add(Rule(path=f"^/v2/.*{pushed.layers[0].digest}", method="GET", status=503, times=1))
        proxy.add(Rule(path=f"^/v2/.*{pushed.layers[0].digest}", method="GET", redirect=True))
        login(docker_config, proxy.host, user, password)
        oci_client.pull_model(f"{proxy.host}/logs/token:v1", cache_dir=tmp_path / "cache")
    text = _all_text(caplog)
    assert "retrying request" in text and "redirected" in text and "/token?" in text
    for secret in (password, auth_field(user, password), "eyJ", "X-Amz-Signature=sig"):
        assert secret not in text


def test_no_secret_in_any_record_with_basic_auth(
    tls_registry: LocalRegistry, docker_config: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    user, password = tls_registry.username, tls_registry.password
    assert user and password
    pushed = push_artifact(tls_registry, "logs/basic", "v1", {"w.bin": b"weights"})
    write_config(
        docker_config / "config.json", {"auths": {tls_registry.host: {"auth": auth_field(user, password)}}}
    )
    caplog.set_level(logging.DEBUG, logger="oci_client")
    client = oci_client.OciGoClient(ca_file=tls_registry.ca_file)
    client.pull_blob(f"{tls_registry.host}/logs/basic:v1", pushed.layers[0].digest, tmp_path / "w")
    # A wrong password makes the registry answer 401: still nothing of it in a record.
    wrong = "Wr0ng-Pa55word-in-logs"
    write_config(
        docker_config / "config.json", {"auths": {tls_registry.host: {"auth": auth_field(user, wrong)}}}
    )
    with pytest.raises(oci_client.AuthenticationError):
        client.get_manifest(f"{tls_registry.host}/logs/basic:v1")
    text = _all_text(caplog)
    assert " 200 OK" in text and " 401 Unauthorized" in text
    for secret in (password, wrong, auth_field(user, password), auth_field(user, wrong)):
        assert secret not in text


def test_verbose_lines_and_bars_share_the_terminal(
    proxy: FaultProxy, big: PushedArtifact, tmp_path: Path
) -> None:
    proxy.add(Rule(path=f"^/v2/.*{big.layers[1].digest}", method="GET", status=503, times=1))
    screen = _on_a_terminal(
        sys.executable, "-m", "oci_client", "pull", "-v", via(proxy, big), "--include", "config.json",
        "--cache-dir", str(tmp_path),
    )  # fmt: skip
    lines = [x.strip() for x in re.split(r"[\r\n]", screen)]
    # Whole lines of their own, between the bars, and the bars still end at 100 %.
    retry = re.compile(r"^\S* ?\d\d:\d\d:\d\d\.\d{3} INFO transfer: retrying request")
    assert [x for x in lines if retry.search(x)], screen
    assert re.search(r"config\.json: 100%", screen), screen
