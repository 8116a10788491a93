"""Wall time and peak RSS of one subprocess, with a deadline and clean Ctrl-C handling."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RSS_SOURCE", "Measurement", "kill_all_running", "run_measured"]

# ru_maxrss survives exec: a child forked from this (large) Python process starts with our
# high-water mark, so wait4 on it would report at least our size. GNU time forks the tool
# from a ~2 MiB process and reports that child's own peak, so it is used when present.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else shutil.which("time")
RSS_SOURCE = "GNU time %M" if GNU_TIME else "wait4 ru_maxrss (overstated: includes the forked driver)"
_SIGNALLED = re.compile(r"Command terminated by signal (\d+)")

# Process groups of measured children still alive, so an interrupted run can end them.
_running: set[int] = set()
_running_lock = threading.Lock()


@dataclass(frozen=True)
class Measurement:
    """One finished subprocess.

    ``peak_rss_kib`` is the largest resident set of the tool's process or of any descendant
    it waited for (the biggest single process, not a sum), as ``ru_maxrss`` reports it.
    """

    argv: tuple[str, ...]
    wall_s: float
    peak_rss_kib: int
    exit_code: int  # negative: killed by that signal
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_kib / 1024

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def failure(self) -> str:
        """A one-line reason why the run did not succeed ('' if it did)."""
        if self.timed_out:
            return f"timed out after {self.wall_s:.0f} s"
        if self.exit_code == 0:
            return ""
        how = f"signal {-self.exit_code}" if self.exit_code < 0 else f"exit {self.exit_code}"
        lines = [line for line in (self.stderr or self.stdout).strip().splitlines() if line.strip()]
        return f"{how}: {lines[-1][:300]}" if lines else how


# Killed processes whose parent was killed too are reparented to us (see _become_subreaper)
# and must be reaped here, or they linger as zombies under a pid 1 that may not reap.
_orphans: dict[int, list[int]] = {}


def _become_subreaper() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _group_members(pgid: int) -> list[int]:
    """Processes in group ``pgid`` other than its leader, parents before children."""
    parent: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 2 and int(fields[2]) == pgid and int(entry) != pgid:
                parent[int(entry)] = int(fields[1])

    def depth(pid: int) -> int:
        d = 0
        while pid in parent and d < 64:
            pid, d = parent[pid], d + 1
        return d

    return sorted(parent, key=depth)


def _kill_group(pgid: int) -> None:
    # Only groups this module created (start_new_session) are ever signalled.
    with _running_lock:
        if pgid not in _running:
            return
        _orphans[pgid] = _group_members(pgid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _reap_orphans(pgid: int) -> None:
    """After the leader is reaped: wait for the killed members now reparented to us."""
    with _running_lock:
        members = _orphans.pop(pgid, [])
    for pid in members:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def kill_all_running() -> None:
    """SIGKILL every measured process group that is still running (used on Ctrl-C)."""
    with _running_lock:
        groups = list(_running)
    for pgid in groups:
        _kill_group(pgid)


def _tail(path: Path, limit: int = 16 * 1024) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - limit))
        return f.read().decode("utf-8", "replace")


def _read_gnu_time(path: Path) -> tuple[int, int]:
    """(peak RSS KiB, signal that ended the command or 0) from GNU time's -o file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0, 0
    killed = _SIGNALLED.search(text)
    numbers = [line.strip() for line in text.splitlines() if line.strip().isdigit()]
    return (int(numbers[-1]) if numbers else 0), (int(killed.group(1)) if killed else 0)


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_dir: Path,
    timeout: float,
    cwd: Path | None = None,
) -> Measurement:
    """Run ``argv`` in its own session and wait for it with ``wait4``.

    The wall time spans fork/exec to exit (``time.perf_counter``). Output goes to files in
    ``log_dir`` (never a pipe, which could fill and stall the child); their tails are kept.
    After ``timeout`` seconds the whole process group is killed.
    """
    _become_subreaper()
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / "stdout.txt", log_dir / "stderr.txt"
    rss_path = log_dir / "rss.txt"
    rss_path.unlink(missing_ok=True)
    full_argv = [GNU_TIME, "-f", "%M", "-o", str(rss_path), *argv] if GNU_TIME else list(argv)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            full_argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    pid = proc.pid
    with _running_lock:
        _running.add(pid)
    timed_out = threading.Event()

    def on_deadline() -> None:
        timed_out.set()
        _kill_group(pid)

    timer = threading.Timer(timeout, on_deadline)
    timer.daemon = True
    timer.start()
    try:
        # Wait for the exit without reaping, so the deadline timer can never signal a
        # recycled process group id; reap (and read the rusage) only afterwards.
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        end = time.perf_counter()
    except BaseException:
        _kill_group(pid)
        os.wait4(pid, 0)
        _reap_orphans(pid)
        proc.returncode = -signal.SIGKILL
        raise
    finally:
        timer.cancel()
        with _running_lock:
            _running.discard(pid)
    _, status, usage = os.wait4(pid, 0)
    _reap_orphans(pid)
    proc.returncode = exit_code = os.waitstatus_to_exitcode(status)
    peak_rss_kib = int(usage.ru_maxrss)
    if GNU_TIME:
        peak_rss_kib, signalled = _read_gnu_time(rss_path)
        if signalled:
            exit_code = -signalled
    return Measurement(
        argv=tuple(argv),
        wall_s=end - start,
        peak_rss_kib=peak_rss_kib,
        exit_code=exit_code,
        timed_out=timed_out.is_set(),
        stdout=_tail(out_path),
        stderr=_tail(err_path),
    )
