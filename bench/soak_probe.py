"""What the soak measures of its own process: open file descriptors, threads, the Go library's
goroutines, resident memory (current, and the peak over a run, sampled)."""

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


def goroutines() -> int | None:
    """The Go runtime's goroutine count, when the library exports it (RuntimeStats)."""
    if "RuntimeStats" not in _native.EXPORTS:
        return None
    return int(_native.call("RuntimeStats", {})["goroutines"])


@dataclass
class Sample:
    fds: int
    threads: int
    goroutines: int | None
    rss_mib: float
    settle_s: float = 0.0
    fd_targets: list[str] = field(default_factory=list)

    @classmethod
    def now(cls) -> Sample:
        targets = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the directory's own descriptor, gone already
                targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        return cls(
            fds=len(targets),
            fd_targets=sorted(targets),
            threads=_status("Threads"),
            goroutines=goroutines(),
            rss_mib=round(_status("VmRSS") / 1024, 1),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def settle(baseline: Sample, tolerance: int, timeout: float) -> Sample:
    """A sample once descriptors and goroutines are back within ``tolerance`` of ``baseline``
    (connections closing, calls' goroutines ending take a moment), or after ``timeout`` s."""
    start = time.monotonic()
    while True:
        s = Sample.now()
        back = s.fds <= baseline.fds + tolerance and (
            s.goroutines is None
            or baseline.goroutines is None
            or s.goroutines <= baseline.goroutines + tolerance
        )
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
