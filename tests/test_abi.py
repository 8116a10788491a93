"""The Go↔Python contract: the keys Python sends are those each export takes (the generated
``_abi.REQUEST_FIELDS``, from go/abi), Go refuses any other, and a library of another ABI
version is refused at load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import oci_client
from oci_client import InvalidArgumentError, _abi, _native, cli


class SentError(Exception):
    """Raised by the stub in place of Go's answer."""


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every (export, request) the client passes to the library, none of which reaches it."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(lib: object, export: str, request: dict[str, Any]) -> Any:
        calls.append((export, request))
        if export == "OperationProgress":
            return {"running": True, "bytes_done": 0, "bytes_total": 0, "blobs_done": 0, "blobs_total": 0}
        if export == "CancelOperation":
            return {"running": True}
        if export == "PullModel" and "operation_id" in request:
            time.sleep(0.5)  # long enough for progress reads
        raise SentError(export)

    monkeypatch.setattr(_native, "_invoke", record)
    # Calls with an operation id run _envelope on a worker thread (their log records ride
    # in the envelope); the same stub stands in for it.
    monkeypatch.setattr(_native, "_envelope", record)
    yield calls


def test_every_key_python_sends_is_one_its_export_takes(
    sent: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    # Every client option set, so that every optional key is sent where it is sent at all.
    c = oci_client.OciGoClient(
        ca_file=tmp_path / "ca.pem",
        insecure_registries=["reg.test"],
        timeout=30,
        user_agent="ua",
        retries=2,
        connections=2,
        chunk_size=1 << 20,
        read_timeout=5,
        direct_io=True,
    )
    ref, cache = "reg.test/a/b:v1", tmp_path / "cache"
    calls = [
        lambda: c.get_manifest(ref),
        lambda: c.pull_blobs(ref, [("sha256:" + "0" * 64, tmp_path / "b", 3)], concurrency=2),
        lambda: c.check_authentication(ref),
        lambda: c.pull_model(
            ref,
            cache_dir=cache,
            local_dir=tmp_path / "out",
            allow_patterns="*.json",
            ignore_patterns=["*.bin"],
            offline=False,
            platform="linux/amd64",
            artifact_type="application/x",
            concurrency=2,
            durability="sync",
            verify=True,
        ),
        lambda: c.inspect(ref, cache_dir=cache, offline=True, platform="linux/amd64", artifact_type="x"),
        lambda: c.push_model(
            tmp_path, ref, format="docker", cache_dir=cache, concurrency=2, mount_from=["a/c"]
        ),
        lambda: c.export_model(ref, tmp_path / "layout", tag="t", concurrency=2),
        lambda: c.cache_list(cache_dir=cache),
        lambda: c.cache_remove(ref, cache_dir=cache),
        lambda: c.cache_prune(cache_dir=cache, min_age=1),
        lambda: c.cache_verify([ref], cache_dir=cache, repair=False, offline=True, concurrency=2),
        lambda: c.wait_durable(),
        lambda: _native.call("RuntimeStats", {"stacks": True}),  # as bench/soak_probe.py asks
    ]
    for call in calls:
        with pytest.raises(SentError):
            call()

    def stop(event: oci_client.Event) -> None:
        raise KeyboardInterrupt  # cancels the call: CancelOperation

    with pytest.raises(KeyboardInterrupt):
        c.pull(ref, cache_dir=cache, on_event=stop, allow_empty=True)
    exports = {export for export, _ in sent}
    assert exports >= set(_abi.EXPORTS) - {"PullBlob"}, "a client method was not exercised"
    for export, request in sent:
        extra = request.keys() - _abi.REQUEST_FIELDS[export]
        assert not extra, f"{export} is sent {sorted(extra)}, which it does not take"


def test_an_unknown_key_is_an_invalid_argument_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError) as e:
        _native.call("CacheList", {"cache_dir": str(tmp_path), "connections": 4})
    assert "CacheList" in str(e.value) and '"connections"' in str(e.value)
    # The match is exact: encoding/json alone would take "Cache_Dir" for cache_dir.
    with pytest.raises(InvalidArgumentError, match="Cache_Dir"):
        _native.call("CacheList", {"Cache_Dir": str(tmp_path)})


def test_a_library_of_another_abi_version_is_refused_at_load() -> None:
    code = """
import oci_client._native as n
n.ABI_VERSION += 1
try:
    n.load_library()
except n.LibraryError as e:
    print(e)
else:
    print("loaded")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    want = f"speaks ABI version {_abi.ABI_VERSION}, but this oci_client needs version {_abi.ABI_VERSION + 1}"
    assert want in r.stdout, r.stdout


def test_the_library_exports_every_symbol_of_the_abi() -> None:
    lib = _native.load_library()
    for name in _abi.SYMBOLS:
        assert hasattr(lib, name), name


def test_python_knows_the_fields_the_committed_schema_gives() -> None:
    # docs/reference/abi.schema.json and _abi.py are both generated from go/abi (`go test ./...` holds
    # both to the Go types); this holds them to each other.
    schema = json.loads((Path(__file__).parent.parent / "docs" / "reference" / "abi.schema.json").read_text())
    assert schema["abi_version"] == _abi.ABI_VERSION
    assert [e["name"] for e in schema["exports"]] == list(_abi.EXPORTS)
    for export in _abi.EXPORTS:
        request = schema["$defs"][f"{export}Request"]
        assert request["additionalProperties"] is False
        assert set(request["properties"]) == _abi.REQUEST_FIELDS[export], export


SCHEMA_PATH = Path(__file__).parent.parent / "docs" / "reference" / "abi.schema.json"


class Reading(dict[str, Any]):
    """A result object that notes each key read which its schema does not list."""

    def __init__(self, items: dict[str, Any], allowed: set[str], where: str, misses: list[str]) -> None:
        super().__init__(items)
        self.allowed, self.where, self.misses = allowed, where, misses

    def _note(self, key: object) -> None:
        if key not in self.allowed:
            self.misses.append(f"{self.where}.{key}")

    def __getitem__(self, key: str) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self._note(key)
        return super().get(key, default)


def sample(s: dict[str, Any], defs: dict[str, Any], where: str, misses: list[str]) -> Any:
    """A value of schema ``s`` with every property present, objects as :class:`Reading`."""
    if "$ref" in s:
        return sample(defs[s["$ref"].rsplit("/", 1)[1]], defs, where, misses)
    types = s.get("type")
    ty = next((t for t in types if t != "null"), None) if isinstance(types, list) else types
    if ty == "object" and "properties" in s:
        props = s["properties"]
        items = {k: sample(v, defs, f"{where}.{k}", misses) for k, v in props.items()}
        return Reading(items, set(props), where, misses)
    if ty == "object":
        return {}
    if ty == "array":
        return [sample(s["items"], defs, f"{where}[]", misses)]
    if ty == "string":
        if s.get("contentEncoding") == "base64":
            return "e30="  # {}: a manifest's raw bytes are parsed
        return "2026-01-02T03:04:05.123456789Z" if s.get("format") == "date-time" else "x"
    return {"integer": 1, "number": 1.5, "boolean": True}.get(str(ty), {})


def test_every_result_key_python_reads_is_in_the_schema(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Python reads results with .get(key, default), which would hide a key Go never sends:
    # each client method parses a result with every key the schema lists, and may read no other.
    schema = json.loads(SCHEMA_PATH.read_text())
    defs = schema["$defs"]
    misses: list[str] = []

    def answer(lib: object, export: str, request: dict[str, Any]) -> Any:
        if export == "PullModel" and "operation_id" in request:
            time.sleep(0.5)  # long enough for progress reads
        return sample(defs[f"{export}Result"], defs, export, misses)

    monkeypatch.setattr(_native, "_invoke", answer)
    monkeypatch.setattr(_native, "_envelope", lambda *a: {"ok": True, "result": answer(*a)})
    c = oci_client.OciGoClient()
    ref, cache = "reg.test/a/b:v1", tmp_path / "cache"
    c.get_manifest(ref)
    c.pull_blobs(ref, [("sha256:" + "0" * 64, tmp_path / "b")], progress=lambda done, total: None)
    c.check_authentication(ref)
    c.pull_model(ref, cache_dir=cache, progress=lambda done, total: None)
    c.pull(ref, cache_dir=cache, on_event=lambda e: None)
    c.inspect(ref, cache_dir=cache)
    c.push_model(tmp_path, ref, cache_dir=cache)
    c.export_model(ref, tmp_path / "layout")
    c.cache_list(cache_dir=cache)
    c.cache_remove(ref, cache_dir=cache)
    c.cache_prune(cache_dir=cache)
    c.cache_verify(cache_dir=cache, progress=lambda done, total: None)
    c.wait_durable()
    # The command line reads results and progress snapshots itself.
    for argv in (
        ["manifest", ref],
        ["blob", ref, "sha256:" + "0" * 64, "-o", str(tmp_path / "blob")],
        ["pull", ref, "--cache-dir", str(cache)],
        ["push", str(tmp_path), ref, "--cache-dir", str(cache)],
        ["inspect", ref, "--cache-dir", str(cache)],
        ["cache", "ls", "--cache-dir", str(cache)],
        ["cache", "rm", ref, "--cache-dir", str(cache)],
        ["cache", "prune", "--cache-dir", str(cache)],
        ["cache", "verify", "--cache-dir", str(cache)],
        ["check-auth", ref],
    ):
        assert cli.main(argv) == 0, argv
    # The exit hook's read of CacheSync's counters, as if the library were loaded here.
    monkeypatch.setattr(_native, "_lib", object())
    monkeypatch.setattr(_native, "_loaded_in_pid", os.getpid())
    _native._sync_at_exit()
    assert not misses, f"Python reads result keys the schema does not list: {sorted(set(misses))}"
