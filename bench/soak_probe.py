"""What the soak measures of its own process: open file descriptors, threads, the Go library's
goroutines and memory, resident memory (current, and the peak over a run, sampled)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from oci_client import _native


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def go_stats() -> dict[str, Any]:
    """The library's own counters (RuntimeStats): registered operations (this call's own among
    them), Go memory, and ``goroutines``: those at work. Every OS thread that has called into
    Go keeps an idle goroutine bound to it until the thread ends (a cgo binding, "syscall,
    locked to thread" with nothing but goexit on its stack); the call pool's threads stay, and
    how many of them have called yet depends on timing, so those are left out."""
    stats = dict(_native.call("RuntimeStats", {"stacks": True}))
    stacks = stats.pop("stacks").strip().split("\n\n")
    stats["goroutines"] = sum(1 for g in stacks if not _idle_binding(g))
    return stats


def _idle_binding(stack: str) -> bool:
    lines = stack.splitlines()
    return "[syscall, locked to thread]" in lines[0] and len(lines) <= 3 and "runtime.goexit" in lines[1]


@dataclass
class Sample:
    fds: int
    threads: int
    goroutines: int
    operations: int
    go_heap_mib: float
    rss_mib: float
    settle_s: float = 0.0
    fd_targets: list[str] = field(default_factory=list)

    @classmethod
    def now(cls) -> Sample:
        go = go_stats()
        targets = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the directory's own descriptor, gone already
                targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        return cls(
            fds=len(targets),
            fd_targets=sorted(targets),
            threads=_status("Threads"),
            goroutines=go["goroutines"],
            operations=go["operations"],
            go_heap_mib=round(go["heap_bytes"] / 2**20, 1),
            rss_mib=round(_status("VmRSS") / 1024, 1),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def settle(baseline: Sample, tolerance: int, timeout: float) -> Sample:
    """A sample once descriptors and goroutines are back within ``tolerance`` of ``baseline``
    (connections closing, calls' goroutines ending take a moment), or after ``timeout`` s."""
    start = time.monotonic()
    # The blobs pulled in the last 10 s wait for their background fsync, which holds a goroutine
    # and opens each file: done now, so that what stays after is what leaked.
    _native.call("CacheSync", {})
    while True:
        s = Sample.now()
        back = s.fds <= baseline.fds + tolerance and s.goroutines <= baseline.goroutines + tolerance
        if back or time.monotonic() - start > timeout:
            s.settle_s = round(time.monotonic() - start, 1)
            return s
        time.sleep(0.25)


class Probe:
    """Samples resident memory every 50 ms while entered; ``peak_rss`` in bytes. ru_maxrss
    would do for one run in a fresh process, not for a soak inside a test session."""

    def __init__(self) -> None:
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="soak-probe", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_rss = max(self.peak_rss, _status("VmRSS") * 1024)

    def __enter__(self) -> Probe:
        self.peak_rss = _status("VmRSS") * 1024
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
