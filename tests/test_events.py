"""The typed event stream (docs/events.md): what a pull through a misbehaving registry, a cached
pull and two pulls of one blob at once tell, parsed into oci_client.events, and never a secret."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from pathlib import Path

import pytest
from credentials import auth_field, write_config
from faultproxy import FaultProxy, Rule
from oci_testing import LocalRegistry, PushedArtifact, push_artifact

import oci_client
from oci_client import _native, events

# Large enough for ranged chunks (16 MiB and up).
BIG = os.urandom(20 * 1024 * 1024)


@pytest.fixture(scope="module")
def big(plain_registry: LocalRegistry) -> PushedArtifact:
    return push_artifact(plain_registry, "events/model", "v1", {"w.bin": BIG, "config.json": b"{}"})


def via(proxy: FaultProxy, pushed: PushedArtifact) -> str:
    return f"{proxy.host}/{pushed.repository}:v1"


def collected(fn: object, *args: object, **kwargs: object) -> list[events.Event]:
    """The events of ``fn(*args, **kwargs)``, in order; their numbers have no gap."""
    seen: list[events.Event] = []
    with _native.collect_events(seen.append):
        fn(*args, **kwargs)  # type: ignore[operator]
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1)), seen
    return seen


def of(kind: type[events.Event], seen: list[events.Event]) -> list[events.Event]:
    return [e for e in seen if isinstance(e, kind)]


def test_a_pull_through_faults_tells_of_retries_redirects_and_verified_files(
    proxy: FaultProxy, big: PushedArtifact, cache: Path
) -> None:
    digest = big.layers[0].digest
    proxy.add(Rule(path=f"^/v2/.*{digest}", method="GET", status=503, times=1))
    proxy.add(Rule(path=f"^/v2/.*{digest}", method="GET", status=429, headers={"Retry-After": "0"}, times=1))
    proxy.add(Rule(path=f"^/v2/.*{digest}", method="GET", redirect=True))
    seen = collected(oci_client.pull_model, via(proxy, big), cache_dir=cache)
    retries = [e for e in of(events.BlobRetried, seen) if isinstance(e, events.BlobRetried)]
    assert [r.reason for r in retries] == ["503 Service Unavailable", "429 Too Many Requests"], seen
    first, second = retries
    assert first.digest == digest and first.wait_ms > 0 and first.attempt == 2 and first.attempts == 5
    assert second.retry_after and second.wait_ms == 0 and second.attempt == 3
    redirects = [e for e in of(events.RedirectFollowed, seen) if isinstance(e, events.RedirectFollowed)]
    assert redirects and redirects[0].status == 307 and redirects[0].from_host == proxy.host
    verified = {e.digest: e for e in of(events.FileVerified, seen) if isinstance(e, events.FileVerified)}
    assert verified[digest].size == len(BIG) and Path(verified[digest].path).read_bytes() == BIG
    done = {e.digest: e for e in of(events.BlobDone, seen) if isinstance(e, events.BlobDone)}
    assert done[digest].fetched >= len(BIG) and done[digest].elapsed_ms >= 0
    # A later event never has an earlier time.
    assert [e.time for e in seen] == sorted(e.time for e in seen)


def test_ranges_refused_say_which_fallback(proxy: FaultProxy, big: PushedArtifact, cache: Path) -> None:
    digest = big.layers[0].digest
    proxy.add(Rule(path=f"^/v2/.*{digest}", method="GET", strip_range=True))
    client = oci_client.OciGoClient(connections=4, chunk_size=4 * 1024 * 1024)
    seen = collected(client.pull_model, via(proxy, big), cache_dir=cache)
    refused = [e for e in of(events.RangeRefused, seen) if isinstance(e, events.RangeRefused)]
    assert refused and refused[0].digest == digest and refused[0].fallback == "one_stream", seen
    assert of(events.FileVerified, seen)


def test_a_cached_pull_finds_every_file_in_place(
    plain_registry: LocalRegistry, big: PushedArtifact, cache: Path
) -> None:
    ref = f"{plain_registry.host}/{big.repository}:v1"
    oci_client.pull_model(ref, cache_dir=cache)
    for verify in (False, True):
        seen = collected(oci_client.pull_model, ref, cache_dir=cache, verify=verify)
        found = [e for e in of(events.FileFound, seen) if isinstance(e, events.FileFound)]
        # The model's files, and on a pull that reads it, its config blob.
        assert {e.label for e in found} - {"config"} == {"config.json", "w.bin"}, (verify, seen)
        assert all(e.how == "cache" and Path(e.path).is_file() for e in found), found
        assert not of(events.FileVerified, seen) and not of(events.BlobDone, seen), seen
    # Into a local directory, the second pull finds the files there.
    oci_client.pull_model(ref, cache_dir=cache, local_dir=cache.parent / "local")
    seen = collected(oci_client.pull_model, ref, cache_dir=cache, local_dir=cache.parent / "local")
    found = [e for e in of(events.FileFound, seen) if isinstance(e, events.FileFound)]
    assert found and all(e.how == "local" for e in found), seen


def test_a_second_pull_waits_on_the_first_one_s_lease(
    proxy: FaultProxy, plain_registry: LocalRegistry, cache: Path
) -> None:
    blob = os.urandom(3 * 1024 * 1024)
    pushed = push_artifact(plain_registry, "events/lease", "v1", {"w.bin": blob})
    digest = pushed.layers[0].digest
    proxy.add(Rule(path=f"^/v2/.*{digest}", method="GET", throttle=1024 * 1024))  # about 3 s
    ref = f"{proxy.host}/{pushed.repository}:v1"
    results: dict[str, list[events.Event]] = {}

    def pull(name: str) -> None:
        results[name] = collected(oci_client.pull_model, ref, cache_dir=cache)

    first = threading.Thread(target=pull, args=("first",))
    first.start()
    deadline = time.monotonic() + 30
    while not any(s.path.endswith(digest) for s in proxy.log) and time.monotonic() < deadline:
        time.sleep(0.05)
    pull("second")
    first.join(60)
    waiting = [e for e in of(events.LeaseWaiting, results["second"]) if isinstance(e, events.LeaseWaiting)]
    assert waiting and waiting[0].digest == digest, results["second"]
    assert waiting[0].holder_pid == os.getpid() and waiting[0].holder_host, waiting
    found = [e for e in of(events.FileFound, results["second"]) if isinstance(e, events.FileFound)]
    assert [e.how for e in found if e.label == "w.bin"] == ["other_process"], results["second"]
    assert of(events.FileVerified, results["first"]) and not of(events.FileVerified, results["second"])


def test_calls_without_the_hook_ask_for_no_events(
    monkeypatch: pytest.MonkeyPatch, plain_registry: LocalRegistry, big: PushedArtifact, cache: Path
) -> None:
    sent: list[dict[str, object]] = []
    real = _native._envelope

    def spy(lib: object, export: str, request: dict[str, object]) -> dict[str, object]:
        sent.append(request)
        return real(lib, export, request)  # type: ignore[arg-type]

    monkeypatch.setattr(_native, "_envelope", spy)
    oci_client.pull_model(f"{plain_registry.host}/{big.repository}:v1", cache_dir=cache)
    assert sent and not any("events" in r for r in sent)


def test_a_callback_s_exception_cancels_the_call(proxy: FaultProxy, big: PushedArtifact, cache: Path) -> None:
    proxy.add(Rule(path=f"^/v2/.*{big.layers[0].digest}", method="GET", status=503, times=1))
    proxy.add(Rule(path=f"^/v2/.*{big.layers[0].digest}", method="GET", throttle=2 * 1024 * 1024))

    class StopError(Exception):
        pass

    def stop(event: events.Event) -> None:
        if isinstance(event, events.BlobRetried):
            raise StopError

    start = time.monotonic()
    with pytest.raises(StopError), _native.collect_events(stop):
        oci_client.pull_model(via(proxy, big), cache_dir=cache)
    assert time.monotonic() - start < 8  # cancelled, not the whole 10 s throttled download


def test_no_secret_in_any_event_with_token_auth(
    token_registry: LocalRegistry, docker_config: Path, tmp_path: Path
) -> None:
    user, password = token_registry.username, token_registry.password
    assert user and password
    pushed = push_artifact(token_registry, "events/token", "v1", {"w.bin": os.urandom(64 * 1024)})
    with FaultProxy(token_registry.url) as proxy:
        digest = pushed.layers[0].digest
        proxy.add(Rule(path=f"^/v2/.*{digest}", method="GET", status=503, times=1))
        proxy.add(Rule(path=f"^/v2/.*{digest}", method="GET", redirect=True))
        write_config(
            docker_config / "config.json", {"auths": {proxy.host: {"auth": auth_field(user, password)}}}
        )
        seen = collected(oci_client.pull_model, f"{proxy.host}/events/token:v1", cache_dir=tmp_path / "cache")
    assert of(events.BlobRetried, seen) and of(events.RedirectFollowed, seen), seen
    text = repr([dataclasses.asdict(e) for e in seen])
    assert token_registry.token_server is not None and token_registry.token_server.tokens_issued > 0
    # Tokens are JWTs ("eyJ…"); a signed redirect's query holds sigN.
    for secret in (password, auth_field(user, password), "eyJ", "X-Amz-Signature"):
        assert secret not in text, secret
    assert not re.search(r"sig\d", text), text


def test_dropped_events_are_told_and_the_rest_delivered(caplog: pytest.LogCaptureFixture) -> None:
    got: list[events.Event] = []
    wire = {
        "seq": 5,
        "time": 1.0,
        "kind": "range_refused",
        "range_refused": {"digest": "d", "fallback": "one_stream", "at": 0},
    }
    carrier = {"running": True, "events": [wire], "events_dropped": 4}
    _native._deliver(carrier, got.append)
    assert carrier == {"running": True}  # taken out of the snapshot a progress callback sees
    assert got == [events.RangeRefused(seq=5, time=1.0, digest="d", fallback="one_stream", at=0)]
    assert "4 events dropped" in caplog.text
