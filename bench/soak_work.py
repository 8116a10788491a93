"""The soak's calls: random pulls and pushes through the fault proxy, random faults and
cancellations, and the checks of what each call left behind."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import struct
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from faultproxy import FaultProxy, Rule

import oci_client

READ_TIMEOUT_S = 1.0  # a stall longer than this counts as a broken stream, resumed
CALL_TIMEOUT_S = 60.0  # calls not cancelled on purpose: far above any fault's cost; a hang fails


class CancelledByUserError(Exception):
    """Raised from a progress callback: the library cancels the call in Go."""


def _safetensors(rng: random.Random, rows: int) -> bytes:
    header = json.dumps({"w": {"dtype": "BF16", "shape": [rows, 256], "data_offsets": [0, rows * 512]}})
    raw = header.encode() + b" " * (-len(header) % 8)
    return struct.pack("<Q", len(raw)) + raw + rng.randbytes(rows * 512)


def model_files(rng: random.Random) -> dict[str, bytes]:
    """A small model: 2-3 shards of 64 KiB to 3 MiB (several ranged chunks each), a config."""
    n = rng.randint(2, 3)
    files = {
        f"model-{i:05d}-of-{n:05d}.safetensors": _safetensors(rng, rng.randint(128, 6144))
        for i in range(1, n + 1)
    }
    files["config.json"] = json.dumps({"model_type": "llama", "seed": rng.random()}).encode()
    files["tokenizer/tokenizer.json"] = rng.randbytes(rng.randint(10, 5000))
    return files


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}


def random_fault(rng: random.Random) -> Rule:
    """One fault that fires once: each kind the library must survive, or fail cleanly on."""
    kind = rng.choice(
        ["drop", "status", "429", "stall", "stall_body", "flip", "truncate", "no_range", "upload_drop"]
    )
    blobs = r"/blobs/sha256:"
    if kind == "drop":  # the connection cut mid-body
        return Rule(path=blobs, method="GET", truncate_at=rng.randint(0, 2**20), times=1)
    if kind == "status":
        return Rule(
            path=rng.choice([blobs, "/manifests/", "/uploads/"]), status=rng.choice([500, 502, 503]), times=1
        )
    if kind == "429":
        return Rule(
            path=rng.choice([blobs, "/manifests/"]), status=429, headers={"Retry-After": "1"}, times=1
        )
    if kind == "stall":  # before the answer
        return Rule(path=rng.choice([blobs, "/manifests/"]), stall=rng.uniform(0.2, 2.0), times=1)
    if kind == "stall_body":
        return Rule(
            path=blobs, method="GET", stall=rng.uniform(0.5, 2.5), stall_after=rng.randint(0, 2**20), times=1
        )
    if kind == "flip":
        return Rule(path=blobs, method="GET", flip_byte_at=rng.randint(0, 2**16), times=1)
    if kind == "truncate":
        return Rule(path=blobs, method="GET", truncate_at=rng.randint(1, 2**16), times=1)
    if kind == "no_range":
        return Rule(path=blobs, method="GET", strip_range=True, times=1)
    return Rule(path="/uploads/", drop_request_at=rng.randint(0, 2**19), times=1)


class Soak:
    """Shared state of the soak's threads; counters under ``_lock``."""

    def __init__(self, proxy: FaultProxy, root: Path, rng: random.Random) -> None:
        self.proxy, self.root = proxy, root
        self.cache = root / "cache"
        self._seed = rng.randrange(1 << 31)
        self._lock = threading.Lock()
        self.models: dict[str, dict[str, str]] = {}  # reference -> file -> sha256, pushed and whole
        self.n = Counter[str]()
        self.errors = Counter[str]()
        self.problems: list[str] = []
        self.unexpected: list[str] = []
        self.slowest = 0.0
        self._next = 0

    def _id(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def _client(self, timeout: float = CALL_TIMEOUT_S) -> oci_client.OciGoClient:
        return oci_client.OciGoClient(
            timeout=timeout, read_timeout=READ_TIMEOUT_S, chunk_size=256 * 1024, connections=3, retries=5
        )

    def warm_up(self) -> None:
        """A push and a pull with no fault, so the baseline counts what stays (Go's threads and
        transports, the call pool): a model everything later pulls at first."""
        rng = random.Random(self._seed)
        for _ in range(2):
            self._push(rng, cancel=None)
        self._pull(rng, cancel=None)

    def run(self, duration: float, threads: int) -> None:
        deadline = time.monotonic() + duration
        workers = [
            threading.Thread(
                target=self._loop, args=(random.Random(self._seed + i + 1), deadline), name=f"soak-{i}"
            )
            for i in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    def _loop(self, rng: random.Random, deadline: float) -> None:
        while time.monotonic() < deadline:
            for _ in range(rng.choice([0, 1, 1, 2])):
                self.proxy.add(random_fault(rng))
                self._count("faults")
            cancel = rng.choice(
                [None, None, None, ("timeout", rng.uniform(0.05, 1.5)), ("interrupt", rng.uniform(0.1, 1.5))]
            )
            start = time.monotonic()
            try:
                if rng.random() < 0.7:
                    self._pull(rng, cancel)
                else:
                    self._push(rng, cancel)
            except Exception as exc:  # a bug in the soak itself, or an error no class fits
                self._unexpected(f"{type(exc).__name__}: {exc}")
            with self._lock:
                self.slowest = max(self.slowest, time.monotonic() - start)
            if rng.random() < 0.05:
                self.proxy.forget()

    def _count(self, key: str) -> None:
        with self._lock:
            self.n[key] += 1

    def _problem(self, what: str) -> None:
        with self._lock:
            self.problems.append(what)

    def _unexpected(self, what: str) -> None:
        with self._lock:
            self.unexpected.append(what)
            self.problems.append(f"unexpected error: {what}")

    def _call(self, cancel: tuple[str, float] | None, fn: Any, **kw: Any) -> Any:
        """fn(client, progress=...) with ``cancel`` applied; None when it raised (counted)."""
        timeout = cancel[1] if cancel and cancel[0] == "timeout" else CALL_TIMEOUT_S
        progress = None
        if cancel and cancel[0] == "interrupt":
            until = time.monotonic() + cancel[1]

            def progress(done: int, total: int) -> None:
                if time.monotonic() > until:
                    raise CancelledByUserError

        try:
            return fn(self._client(timeout), progress=progress, **kw)
        except CancelledByUserError:
            self._count("cancelled")
        except oci_client.OperationTimeoutError as exc:
            self._count("cancelled" if cancel else "timeouts")
            if not cancel:
                self._problem(f"a call with no cancellation timed out: {exc}")
        except oci_client.OciError as exc:
            with self._lock:
                self.errors[type(exc).__name__] += 1
            if isinstance(exc, oci_client.LibraryError) or exc.code == "INTERNAL":
                self._unexpected(f"{type(exc).__name__} {exc.code}: {exc}")
        return None

    def _pull(self, rng: random.Random, cancel: tuple[str, float] | None) -> None:
        with self._lock:
            ref = rng.choice(sorted(self.models))
            want = self.models[ref]
        local = rng.random() < 0.5
        dest = self.root / "pulls" / f"p{self._id()}" if local else None
        self._count("pulls")
        got = self._call(
            cancel,
            lambda c, **kw: c.pull_model(
                f"{self.proxy.host}/{ref}", cache_dir=self.cache, local_dir=dest, **kw
            ),
        )
        if got is not None:
            self._count("pulls_ok")
            self._check_tree(Path(got), want, ref, complete=True)
        elif dest is not None and dest.exists():
            self._check_tree(dest, want, ref, complete=False)
        if dest is not None:
            shutil.rmtree(dest, ignore_errors=True)

    def _check_tree(self, top: Path, want: dict[str, str], ref: str, *, complete: bool) -> None:
        """Every file under ``top`` (partial downloads aside) is one of ``want``'s, whole; with
        ``complete``, all of them are there."""
        seen = set()
        for p in top.rglob("*"):
            rel = p.relative_to(top).as_posix()
            # An interrupted download (.incomplete, .incomplete.json) is kept for the next call to
            # resume; .oci-client/ is the library's record of what it wrote into a local_dir.
            if p.is_dir() or ".incomplete" in p.name or rel.startswith(".oci-client/"):
                continue
            seen.add(rel)
            if rel not in want or hashlib.sha256(p.read_bytes()).hexdigest() != want[rel]:
                self._count("wrong_files" if complete else "partial_files")
                self._problem(f"{'wrong' if complete else 'partial'} file {rel} of {ref} in {top}")
        if complete and seen != set(want):
            self._count("wrong_files")
            self._problem(f"pull of {ref}: files {sorted(seen)}, expected {sorted(want)}")

    def _push(self, rng: random.Random, cancel: tuple[str, float] | None) -> None:
        i = self._id()
        with self._lock:
            reuse = self.models and rng.random() < 0.3
        src = self.root / "src" / f"m{i}"
        if reuse:  # the blobs of a pushed model again, under a new name: mounts and skips
            with self._lock:
                ref = rng.choice(sorted(self.models))
                want = self.models[ref]
            self._pull_direct(ref, src)
        else:
            files = model_files(rng)
            for rel, data in files.items():
                (src / rel).parent.mkdir(parents=True, exist_ok=True)
                (src / rel).write_bytes(data)
            want = digests(files)
        ref = f"soak/m{i % 7}:t{i}"
        self._count("pushes")
        pushed = self._call(
            cancel, lambda c, **kw: c.push_model(src, f"{self.proxy.host}/{ref}", cache_dir=self.cache, **kw)
        )
        if pushed is not None:
            self._count("pushes_ok")
            with self._lock:
                self.models[ref] = want
        shutil.rmtree(src, ignore_errors=True)

    def _pull_direct(self, ref: str, dest: Path) -> None:
        """A pushed model's files into ``dest`` with no fault in the way (the proxy's rules still
        apply: retried until it works)."""
        for _ in range(20):
            try:
                self._client().pull_model(f"{self.proxy.host}/{ref}", local_dir=dest, cache_dir=self.cache)
                return
            except oci_client.OciError:
                continue
        raise RuntimeError(f"{ref} could not be pulled in 20 tries")

    def check_cache(self) -> None:
        """Every blob in the shared cache holds what its name says."""
        blobs = self.cache / "blobs" / "sha256"
        for p in blobs.iterdir() if blobs.is_dir() else ():
            if len(p.name) != 64:  # <hex>.state, <hex>.incomplete: not content
                continue
            h = hashlib.sha256()
            with p.open("rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            if h.hexdigest() != p.name:
                self._count("bad_cache_blobs")
                self._problem(f"cache blob {p.name} holds {h.hexdigest()}")

    def counts(self) -> dict[str, Any]:
        keys = (
            "pulls",
            "pulls_ok",
            "pushes",
            "pushes_ok",
            "cancelled",
            "timeouts",
            "faults",
            "wrong_files",
            "partial_files",
            "bad_cache_blobs",
        )
        return {
            **{k: self.n[k] for k in keys},
            "errors": dict(self.errors),
            "unexpected": self.unexpected,
            "problems": self.problems,
            "slowest_call_s": round(self.slowest, 1),
        }
