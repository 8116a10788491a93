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
from oci_client import InvalidArgumentError, _abi, _native, _vllm_resolve, cli, events


class SentError(Exception):
    """Raised by the stub in place of Go's answer."""


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every (export, request) the client passes to the library, none of which reaches it."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(lib: object, export: str, request: dict[str, Any]) -> Any:
        calls.append((export, request))
        if export in ("OperationProgress", "CancelOperation"):
            return {
                "running": True,
                "bytes_done": 0,
                "bytes_total": 0,
                "blobs_done": 0,
                "blobs_total": 0,
                "blobs": [],
            }
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
    schema = json.loads(SCHEMA_PATH.read_text())
    for export, request in sent:
        extra = request.keys() - _abi.REQUEST_FIELDS[export]
        assert not extra, f"{export} is sent {sorted(extra)}, which it does not take"
        missing = required_keys(schema["$defs"][f"{export}Request"], schema["$defs"], request)
        assert not missing, f"{export} is sent without {missing}, which it must carry"


def required_keys(s: dict[str, Any], defs: dict[str, Any], value: Any, where: str = "") -> list[str]:
    """The keys schema ``s`` requires that ``value`` (a request Python built) lacks, at any depth."""
    if "$ref" in s:
        return required_keys(defs[s["$ref"].rsplit("/", 1)[1]], defs, value, where)
    out: list[str] = []
    if isinstance(value, dict) and "properties" in s:
        out += [where + k for k in s.get("required", ()) if k not in value]
        for k, v in value.items():
            if k in s["properties"]:
                out += required_keys(s["properties"][k], defs, v, f"{where}{k}.")
    elif isinstance(value, list) and "items" in s:
        for i, item in enumerate(value):
            out += required_keys(s["items"], defs, item, f"{where.rstrip('.')}[{i}].")
    return out


def test_an_unknown_key_is_an_invalid_argument_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError) as e:
        _native.call("CacheList", {"cache_dir": str(tmp_path), "connections": 4})
    assert "CacheList" in str(e.value) and '"connections"' in str(e.value)
    # The match is exact: encoding/json alone would take "Cache_Dir" for cache_dir.
    with pytest.raises(InvalidArgumentError, match="Cache_Dir"):
        _native.call("CacheList", {"Cache_Dir": str(tmp_path)})
    # So is a key the request must carry and does not.
    with pytest.raises(InvalidArgumentError, match='missing field "reference"') as e:
        _native.call("CacheRemove", {"cache_dir": str(tmp_path)})
    assert e.value.details == {"export": "CacheRemove", "field": "reference"}


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
        result = schema["$defs"][f"{export}Result"]
        assert result["additionalProperties"] is False, export


SCHEMA_PATH = Path(__file__).parent.parent / "docs" / "reference" / "abi.schema.json"


SCHEMA = json.loads(SCHEMA_PATH.read_text())
SRC = Path(oci_client.__file__).parent

# Python's readers of results that read strictly: a key the schema says is always present is
# taken with [key], never .get(key, default), which would hide it missing. (cli.py and vllm.py
# may read with defaults; every key they read must still be one the schema lists.)
STRICT = {str(SRC / name) for name in ("models.py", "_native.py", "client.py", "events.py")}


class Reading(dict[str, Any]):
    """A result object that notes each key read: one its schema does not list, one it lists as
    always present read with a default by a strict reader, and every key read, for the check
    that Python reads each field Go sends."""

    def __init__(
        self, items: dict[str, Any], schema: dict[str, Any], where: str, notes: dict[str, Any]
    ) -> None:
        super().__init__(items)
        self.allowed, self.required = set(schema["properties"]), set(schema.get("required", ()))
        self.where, self.notes = where, notes

    def _note(self, key: object, defaulted: bool) -> None:
        if key not in self.allowed:
            self.notes["unknown"].append(f"{self.where}.{key}")
        self.notes["read"].add(f"{self.where}.{key}")
        caller = sys._getframe(2).f_code.co_filename
        if defaulted and key in self.required and caller in STRICT:
            self.notes["defaulted"].append(f"{self.where}.{key} in {Path(caller).name}")

    def __getitem__(self, key: str) -> Any:
        self._note(key, defaulted=False)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self._note(key, defaulted=True)
        return super().get(key, default)

    def pop(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self._note(key, defaulted=True)
        return super().pop(key, default)


def sample(
    s: dict[str, Any], defs: dict[str, Any], where: str, notes: dict[str, Any], truth: bool = True
) -> Any:
    """A value of schema ``s`` with every property present, objects as :class:`Reading`; a list
    holds two items, the second with its booleans false (a reader may read some keys only then)."""
    if "$ref" in s:
        return sample(defs[s["$ref"].rsplit("/", 1)[1]], defs, where, notes, truth)
    types = s.get("type")
    ty = next((t for t in types if t != "null"), None) if isinstance(types, list) else types
    if ty == "object" and "properties" in s:
        props = s["properties"]
        items = {k: sample(v, defs, f"{where}.{k}", notes, truth) for k, v in props.items()}
        if "events" in props:  # progress and envelopes: one event of each kind
            items["events"] = [sample_event(kind, where, notes) for kind in SCHEMA["event_kinds"]]
            items["events_dropped"] = 0
        return Reading(items, s, where, notes)
    if ty == "object":
        return {}
    if ty == "array":
        return [sample(s["items"], defs, f"{where}[]", notes, t) for t in (True, False)]
    if ty == "string":
        if s.get("contentEncoding") == "base64":
            return "e30="  # {}: a manifest's raw bytes are parsed
        return "2026-01-02T03:04:05.123456789Z" if s.get("format") == "date-time" else "x"
    return {"integer": 1, "number": 1.5, "boolean": truth}.get(str(ty), {})


def sample_event(kind: str, where: str, notes: dict[str, Any]) -> dict[str, Any]:
    """One wire event of ``kind``, its fields as :class:`Reading`."""
    defs = SCHEMA["$defs"]
    member = defs["Event"]["properties"][kind]
    return {
        "seq": 1,
        "time": 1.5,
        "kind": kind,
        kind: sample(member, defs, f"{where}.events[].{kind}", notes),
    }


# Result fields no Python code reads, each with why: a field Go adds must be read somewhere, or
# named here, so that adding it on one side only fails.
NOT_READ = {
    "PullBlobs.blobs[].fetched": "BlobInfo does not report it (yet)",
    "PullModel.model.config_descriptor": "the config's descriptor: for inspect --json readers",
    "PullModel.model.total_size": "the CLI sizes the selected files, not the whole model",
    "PullModel.model.manifest_media_type": "as above",
    "PullModel.model.artifact_type": "as above",
    "InspectModel.model.config_descriptor": "ModelInfo gives config_media_type and the config itself",
    "InspectModel.model.manifest_media_type": "ModelInfo's media_type falls back on it, if Go gives none",
    "CacheVerify.problems": "CacheVerified.problems counts the blobs not fixed",
    "RuntimeStats": "read by bench/soak_probe.py, outside the package",
    "CancelOperation": "its answer is not read: the cancelled call's own error is",
}


def test_python_reads_results_strictly_and_every_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Each client method, the command line, the vLLM resolver and the exit hook parse a result
    # with every key the schema lists: they may read no other, the strict readers take an
    # always-present key without a default, and every key Go sends is read by someone (or is in
    # NOT_READ), so that a field added on one side only fails.
    defs = SCHEMA["$defs"]
    notes: dict[str, Any] = {"unknown": [], "defaulted": [], "read": set()}
    answered: set[str] = set()

    def answer(lib: object, export: str, request: dict[str, Any]) -> Any:
        if export == "PullModel" and "operation_id" in request:
            time.sleep(0.5)  # long enough for progress reads
        answered.add(export)
        return sample(defs[f"{export}Result"], defs, export, notes)

    def envelope(lib: object, export: str, request: dict[str, Any]) -> Any:
        env = sample(defs["Envelope"], defs, "Envelope", notes)
        env["ok"], env["result"] = True, answer(lib, export, request)
        return env

    monkeypatch.setattr(_native, "_invoke", answer)
    monkeypatch.setattr(_native, "_envelope", envelope)
    seen: list[events.Event] = []
    c = oci_client.OciGoClient()
    ref, cache = "reg.test/a/b:v1", tmp_path / "cache"
    with _native.collect_events(seen.append):
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
    assert {type(e) for e in seen} == set(events.KINDS.values()), "an event kind was not parsed"
    # The command line reads results and progress snapshots itself (its bars: on a terminal).
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    for argv in (
        ["manifest", ref],
        ["blob", ref, "sha256:" + "0" * 64, "-o", str(tmp_path / "blob")],
        ["pull", ref, "--cache-dir", str(cache)],
        ["push", str(tmp_path), ref, "--cache-dir", str(cache)],
        ["inspect", ref, "--cache-dir", str(cache)],
        ["inspect", ref, "--cache-dir", str(cache), "--json"],
        ["cache", "ls", "--cache-dir", str(cache)],
        ["cache", "rm", ref, "--cache-dir", str(cache)],
        ["cache", "prune", "--cache-dir", str(cache)],
        ["cache", "verify", "--cache-dir", str(cache)],
        ["check-auth", ref],
    ):
        # cache verify exits 1 while a blob is still wrong: the second sample blob is.
        assert cli.main(argv) == (1 if argv[:2] == ["cache", "verify"] else 0), argv
    # vLLM's resolver, run as a subprocess by the plugin, reads PullModel's result.
    assert _vllm_resolve.main([ref]) == 0
    # The exit hook's read of CacheSync's counters, as if the library were loaded here.
    monkeypatch.setattr(_native, "_lib", object())
    monkeypatch.setattr(_native, "_loaded_in_pid", os.getpid())
    _native._sync_at_exit()
    assert not notes["unknown"], (
        f"Python reads result keys the schema does not list: {sorted(set(notes['unknown']))}"
    )
    assert not notes["defaulted"], (
        f"read with a default, though always sent: {sorted(set(notes['defaulted']))}"
    )
    unread = []
    for export in answered:
        for path in leaves(defs[f"{export}Result"], defs, export):
            ignored = any(path == n or path.startswith((n + ".", n + "[")) for n in NOT_READ)
            if not ignored and path not in notes["read"]:
                unread.append(path)
    unread = sorted(set(unread))
    assert not unread, f"result fields no Python code reads (read them, or add to NOT_READ): {unread}"
    # And NOT_READ stays true: each entry is a field (or an export) no Python code reads.
    every = {e for e in _abi.EXPORTS} | {p for e in _abi.EXPORTS for p in leaves(defs[f"{e}Result"], defs, e)}
    stale = [
        n
        for n in NOT_READ
        if n not in every or any(r == n or r.startswith((n + ".", n + "[")) for r in notes["read"])
    ]
    assert not stale, f"NOT_READ names fields that do not exist or are read: {stale}"


def leaves(s: dict[str, Any], defs: dict[str, Any], where: str) -> Iterator[str]:
    """The path of every property of schema ``s`` (``blobs[].path``), objects' own included."""
    if "$ref" in s:
        yield from leaves(defs[s["$ref"].rsplit("/", 1)[1]], defs, where)
        return
    types = s.get("type")
    ty = next((t for t in types if t != "null"), None) if isinstance(types, list) else types
    if ty == "array":
        yield from leaves(s["items"], defs, f"{where}[]")
    elif ty == "object" and "properties" in s:
        for k, v in s["properties"].items():
            if k in ("logs", "events", "events_dropped"):
                continue  # read by _logs and events, checked by their own tests
            yield f"{where}.{k}"
            yield from leaves(v, defs, f"{where}.{k}")


def test_the_event_classes_are_the_schema_s_kinds_field_by_field() -> None:
    defs = SCHEMA["$defs"]
    assert list(events.KINDS) == SCHEMA["event_kinds"]
    event = defs["Event"]
    assert set(event["required"]) == {"seq", "time", "kind"}
    for kind, cls in events.KINDS.items():
        member = event["properties"][kind]
        assert member["additionalProperties"] is False
        assert set(events.fields_of(cls)) == set(member["properties"]), kind
        assert set(member["required"]) == set(member["properties"]), kind
        notes: dict[str, Any] = {"unknown": [], "defaulted": [], "read": set()}
        parsed = events.parse(sample_event(kind, "Event", notes))
        assert type(parsed) is cls and parsed.seq == 1 and parsed.time == 1.5
    unknown = events.parse({"seq": 7, "time": 2.0, "kind": "from_the_future", "from_the_future": {"a": 1}})
    assert isinstance(unknown, events.UnknownEvent) and unknown.name == "from_the_future"
    assert unknown.fields == {"a": 1} and unknown.seq == 7
    with pytest.raises(KeyError):  # a known kind without one of its fields: the two sides disagree
        events.parse({"seq": 1, "time": 1.0, "kind": "file_found", "file_found": {"path": "p"}})
