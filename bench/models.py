"""Model pull benchmark: ``oci_client.pull_model`` (cold, then read back in full as a loader
would, then the cache hit and the digest-pinned offline hit) against crane, skopeo, oras-py
and curl, from real distribution registries on 127.0.0.1. See bench/README.md.

    python -m bench.models [--quick] [--size-gib 2] [--repeat 3] ...
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/models.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import model, peers, pull, pullers
from bench.disk import throttled_writes
from bench.link import capped_flows
from bench.measure import Measurement, kill_all_running, run_measured
from bench.memory import add_hold_option, held_freed_memory, page_reporting, reporting_line
from bench.model import GIB, MIB
from bench.pull import (
    REPOSITORY,
    TAG,
    _on_sigterm,
    _size,
    _timeout,
    log,
    scratch_dir,
    wait_for_quiet,
)
from bench.registries import Transport, start_transport
from bench.report import RunResult, ToolResult, _fmt, _ratio, write_json
from bench.verify import verify_outputs

DEFAULT_OUTPUT = peers.REPO_ROOT / "bench" / "results" / "models.json"
HIT_TARGET_S = 0.100  # library time of a cache hit by tag
PEER_TOOLS = ("crane", "skopeo", "oras-py", "curl")  # the rows the library is held against
LIBRARY = "oci-client"  # the row with pull_model's defaults: the targets and the cache hit
DD_BLOCK = 4 * MIB
DROP_CACHES = Path("/proc/sys/vm/drop_caches")
_REQUEST_LOG = re.compile(r'http\.request\.method=(\w+) .*?http\.request\.uri="?([^" ]+)')


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.models",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--size-gib", type=float, default=None, help="model size (default 2; --quick: 0.25)")
    p.add_argument("--shards", type=int, default=4, help="weight files in the model (default 4)")
    p.add_argument("--repeat", type=int, default=3, help="runs per tool, in rotated rounds (default 3)")
    p.add_argument("--transports", default="http", help="comma list of http, https (default http)")
    p.add_argument(
        "--tools",
        default=",".join(peers.MODEL_PEERS),
        help=f"comma list of tools (default all: {', '.join(peers.MODEL_PEERS)})",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 256 MiB model")
    p.add_argument(
        "--throttle-write-mbps",
        type=float,
        default=None,
        help="emulate a slower disk: cap writes to the work directory's disk at this many MB/s "
        "for the whole run, dd included (block throttle; needs root; see bench/disk.py)",
    )
    p.add_argument(
        "--flow-mbps",
        type=float,
        default=None,
        help="emulate a far registry: cap each connection from the registry at this many MB/s "
        "during the pulls (tc on lo; needs root; see bench/link.py)",
    )
    add_hold_option(p)
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("/tmp/oci-bench"),
        help="model data, crane and scratch files (default /tmp/oci-bench)",
    )
    p.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results (default bench/results/models.json)"
    )
    args = p.parse_args(argv)
    if args.size_gib is None:
        args.size_gib = 0.25 if args.quick else 2.0
    return pull.check_common(p, args, peers.MODEL_PEERS)


# -- the machine ----------------------------------------------------------------------------


def drop_page_cache() -> str:
    """``sync``, then drop the page cache (needs root): "ok", or why it was not dropped."""
    os.sync()
    try:
        DROP_CACHES.write_text("3\n", encoding="ascii")
    except OSError as exc:
        return f"not dropped: {exc.strerror or exc}"
    return "ok"


def warm_registry(job: peers.PullJob) -> None:
    """Read the registry's storage back into the page cache: the registry stands for one on
    another machine, whose disk is not the client's, so only the client side starts cold."""
    storage = job.transport.registry.storage_dir
    if storage is None or os.environ.get("BENCH_COLD_REGISTRY"):
        return
    for path in sorted(storage.rglob("*")):
        if path.is_file():
            with path.open("rb") as f:
                while f.read(16 << 20):
                    pass


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _filesystem(path: Path) -> dict[str, str]:
    """The mount holding ``path``: mount point, file system type, device (from mountinfo)."""
    best = {"mount": "?", "type": "?", "source": "?"}
    target = str(path.resolve())
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if "-" not in fields:
                continue
            mount, rest = fields[4], fields[fields.index("-") + 1 :]
            inside = target == mount or target.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best["mount"].replace("?", "")) and len(rest) >= 2:
                best = {"mount": mount, "type": rest[0], "source": rest[1]}
    return best


def machine(work_dir: Path) -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "filesystem": _filesystem(work_dir),
        "page_reporting": page_reporting(),
        "cpu_busy_before_start": wait_for_quiet(),
    }


_DD_COPIED = re.compile(r"(\d+) bytes .* copied, ([0-9.]+) s")


def disk_rates(work_dir: Path, size: int) -> dict[str, Any]:
    """The disk's own write rates with dd, in the work directory: O_DIRECT, buffered then
    fsynced, and buffered (page cache only); page cache dropped before each."""
    count = max(1, size // DD_BLOCK)
    target = work_dir / "dd.bin"
    doc: dict[str, Any] = {"bytes": count * DD_BLOCK, "block": "4M", "count": count}
    for name, flags in (("o_direct", ["oflag=direct"]), ("fsync", ["conv=fsync"]), ("buffered", [])):
        drop_page_cache()
        argv = ["dd", "if=/dev/zero", f"of={target}", "bs=4M", f"count={count}", *flags]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
            copied = _DD_COPIED.search(done.stderr)
            if done.returncode != 0 or copied is None:
                doc[name] = {"argv": " ".join(argv), "error": done.stderr.strip()[-300:]}
                continue
            seconds = float(copied.group(2))
            doc[name] = {
                "argv": " ".join(argv),
                "seconds": seconds,
                "mb_per_s": int(copied.group(1)) / 1e6 / seconds if seconds > 0 else None,
            }
        except (OSError, subprocess.TimeoutExpired) as exc:
            doc[name] = {"argv": " ".join(argv), "error": str(exc)[:300]}
        finally:
            target.unlink(missing_ok=True)
        log(f"  dd {name:8} {_fmt(doc[name].get('mb_per_s'), 0)} MB/s")
    return doc


# -- one tool's runs ----------------------------------------------------------------------------


@dataclass
class ReadBack:
    """Every file of one pull read back in full, right after it, in its own process."""

    read_s: float  # inside the reader: open + read of every file
    wall_s: float  # the reader's subprocess, interpreter start included
    bytes: int


@dataclass
class ModelRow:
    """One tool over one transport: the cold pulls (as bench.pull's ToolResult) and the
    read-back after each, index for index."""

    pulls: ToolResult
    reads: list[ReadBack] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.pulls.status == "ok" and bool(self.reads)

    @property
    def pull_s(self) -> float | None:
        return self.pulls.wall_s if self.ok else None

    @property
    def read_s(self) -> float | None:
        return statistics.median(r.read_s for r in self.reads) if self.ok else None

    @property
    def total_s(self) -> float | None:
        """Median over the runs of pull + read-back (not the sum of the medians)."""
        if not self.ok:
            return None
        return statistics.median(
            p.wall_s + r.read_s for p, r in zip(self.pulls.runs, self.reads, strict=True)
        )

    def to_json(self, rows: dict[str, ModelRow]) -> dict[str, Any]:
        doc = self.pulls.to_json(_pull_of(rows, "curl"))
        for run, read in zip(doc["runs"], self.reads, strict=False):  # a failed run has none
            run["read_back"] = read.__dict__
        for run in doc["runs"]:
            with contextlib.suppress(ValueError):
                run["printed"] = json.loads(run["output"])  # the Python pullers' own result
        doc.update(
            pull_s=self.pull_s,
            read_back_s=self.read_s,
            pull_read_back_s=self.total_s,
            ratios={
                f"{kind}_vs_{peer}": _ratio(getattr(rows[peer], attr), getattr(self, attr))
                if peer in rows
                else None
                for peer in ("crane", "curl")
                for kind, attr in (("pull", "pull_s"), ("pull_read_back", "total_s"))
            },
        )
        return doc


def _pull_of(rows: dict[str, ModelRow], tool: str) -> float | None:
    return rows[tool].pull_s if tool in rows else None


def _last_json(m: Measurement) -> dict[str, Any]:
    """The JSON line a bench.pullers program printed last ({} if none)."""
    for line in reversed(m.stdout.strip().splitlines()):
        with contextlib.suppress(ValueError):
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                return parsed
    return {}


def _puller_argv(job: peers.PullJob, mode: str, label: str, **spec: object) -> list[str]:
    """``python -m bench.pullers MODE SPEC`` with a spec for job plus ``spec`` (written now,
    while the registry runs: the spec names its address)."""
    return [sys.executable, "-m", "bench.pullers", mode, str(peers.write_spec(job, label, **spec))]


def _run_puller(job: peers.PullJob, argv: list[str], label: str) -> Measurement:
    return run_measured(
        argv,
        env=peers.base_environment(job),
        log_dir=job.work_dir / "logs" / f"{job.transport.name}-{label}",
        timeout=_timeout(job.model.total_size),
        cwd=job.work_dir,
    )


def _puller(job: peers.PullJob, mode: str, label: str, **spec: object) -> Measurement:
    return _run_puller(job, _puller_argv(job, mode, label, **spec), label)


def _landed(command: peers.Command, job: peers.PullJob, m: Measurement) -> dict[Path, tuple[str, int]]:
    """Where the tool's files are: its fixed paths, or under the directory it printed."""
    if not command.in_printed_dir:
        return command.expected
    printed = Path(str(_last_json(m).get("path") or job.out_dir))
    return {printed / path.relative_to(job.out_dir): want for path, want in command.expected.items()}


def _read_back(job: peers.PullJob, files: list[Path], label: str) -> ReadBack | str:
    m = _puller(job, "read-back", f"read-{label}", files=[str(f) for f in files])
    result = _last_json(m)
    if not m.ok or "read_s" not in result:
        return m.failure() or "reader printed no result"
    return ReadBack(float(result["read_s"]), m.wall_s, int(result["bytes"]))


def _registry_log_size(t: Transport) -> int:
    path = t.registry.log_path
    return path.stat().st_size if path is not None and path.exists() else 0


_LOG_TIME = re.compile(r'^time="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z"')


def _registry_requests(t: Transport, since: int) -> list[tuple[float, str]]:
    """(epoch, ``METHOD URI``) of each request the registry logged after byte ``since`` of its
    log, the time being when its response completed."""
    path = t.registry.log_path
    if path is None or not path.exists():
        return []
    time.sleep(0.2)  # the registry logs a request once its response is complete
    with open(path, "rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", "replace")
    found = []
    for line in text.splitlines():
        request, stamp = _REQUEST_LOG.search(line), _LOG_TIME.match(line)
        if "response completed" in line and request and stamp:
            when = datetime.datetime.fromisoformat(stamp.group(1)).replace(tzinfo=datetime.timezone.utc)
            fraction = float(stamp.group(2) or 0)
            found.append((when.timestamp() + fraction, f"{request.group(1)} {request.group(2)}"))
    return found


def cache_hit(job: peers.PullJob, label: str) -> dict[str, Any]:
    """A second pull_model of the tag in ``job.out_dir`` (the cache the cold pull filled), in
    a fresh process: its wall time, the call's own time, a second call's in the same process,
    and the requests the registry saw during each call."""
    since = _registry_log_size(job.transport)
    m = _puller(job, "oci-client-model-again", f"hit-{label}", cache_dir=str(job.out_dir))
    record = _again_record(m)
    split = float(_last_json(m).get("first_done_epoch") or 0)
    requests = _registry_requests(job.transport, since)
    record["first_call_requests"] = [r for when, r in requests if when <= split]
    record["second_call_requests"] = [r for when, r in requests if when > split]
    return record


def _again_record(m: Measurement) -> dict[str, Any]:
    """One run of the ``oci-client-model-again`` puller: its wall time and what it printed."""
    result = _last_json(m)
    return {
        "ok": m.ok and "library_s" in result,
        "error": None if m.ok else m.failure(),
        "wall_s": m.wall_s,
        "import_s": result.get("import_s"),
        "library_s": result.get("library_s"),
        "in_process_s": result.get("in_process_s"),
        "path": result.get("path"),
        "digest": result.get("digest"),
    }


def _run_cold(row: ModelRow, command: peers.Command, job: peers.PullJob, i: int) -> dict[str, Any] | None:
    """One cold pull (page cache dropped first), the read-back right after it, the cache hit
    for the library's row, then, outside the timing, every file hashed; a failure ends the
    row. Returns the cache hit's record, if one ran."""
    result = row.pulls
    label = f"{result.tool}-{i}"
    shutil.rmtree(job.out_dir, ignore_errors=True)
    job.out_dir.mkdir(parents=True)
    dropped = drop_page_cache()
    warm_registry(job)
    busy = wait_for_quiet()
    env = dict(peers.base_environment(job), **command.env)
    hit = None
    problems: list[str] = []
    read: ReadBack | str = "not read: the pull failed"
    try:
        m = run_measured(
            command.argv,
            env=env,
            log_dir=job.work_dir / "logs" / f"{job.transport.name}-{label}",
            timeout=_timeout(result.total_bytes),
            cwd=job.work_dir,
        )
        if m.ok:
            landed = _landed(command, job, m)
            read = _read_back(job, list(landed), label)
            if result.tool == LIBRARY:
                hit = cache_hit(job, label)
            problems = verify_outputs(landed)
    except OSError as exc:
        result.status, result.reason = "failed", f"could not run: {exc}"[:300]
        return None
    finally:
        shutil.rmtree(job.out_dir, ignore_errors=True)
    output = (m.stdout.strip().splitlines() or [""])[-1][:500] if m.ok else m.failure()
    result.runs.append(
        RunResult(m.wall_s, m.peak_rss_mib, m.exit_code, m.ok and not problems, problems, output, busy)
    )
    failure = m.failure() or (f"wrong output: {problems[0]}" if problems else "")
    if not failure and isinstance(read, str):
        failure = f"read-back: {read}"
    if failure:
        result.status, result.reason = "failed", failure
    elif isinstance(read, ReadBack):
        row.reads.append(read)
    back = f"read-back {read.read_s:6.2f} s" if isinstance(read, ReadBack) else ""
    log(f"  {result.tool:18} pull {m.wall_s:6.2f} s  {back}  {result.status}  (page cache {dropped})")
    if hit is not None:
        log(f"    cache hit: library {_ms(hit['library_s'])}, process {_ms(hit['wall_s'])}")
    if result.status == "failed":
        log(f"    {result.reason}")
    return hit


def _command(row: ModelRow, job: peers.PullJob) -> peers.Command | None:
    """The tool's command, or None with its row marked skipped or failed."""
    return pull._prepare(row.pulls, job, peers.MODEL_PEERS)


def measure_rows(
    tools: list[str], job: peers.PullJob, repeat: int
) -> tuple[dict[str, ModelRow], list[dict[str, Any]]]:
    """Every tool repeat times in rounds, round i starting i tools further along (as
    bench.pull does); returns the rows and the cache hits measured after the library's pulls."""
    rows = [ModelRow(ToolResult(tool, job.transport.name, job.model.total_size)) for tool in tools]
    commands = {row.pulls.tool: _command(row, job) for row in rows}
    hits = []
    for i in range(repeat):
        for k in range(len(rows)):
            row = rows[(i + k) % len(rows)]
            command = commands[row.pulls.tool]
            if command is not None and row.pulls.status == "ok":
                hit = _run_cold(row, command, job, i)
                if hit is not None:
                    hits.append(hit)
    return {row.pulls.tool: row for row in rows}, hits


def _median(values: list[Any]) -> float | None:
    numbers = [float(v) for v in values if v is not None]
    return statistics.median(numbers) if numbers else None


def summarize_hits(hits: list[dict[str, Any]]) -> dict[str, Any]:
    """The cache hits after the library's cold pulls: medians, and the target on library time."""
    ok = bool(hits) and all(h["ok"] for h in hits)
    library = _median([h["library_s"] for h in hits]) if ok else None
    return {
        "ok": ok,
        "runs": hits,
        "wall_s": _median([h["wall_s"] for h in hits]) if ok else None,
        "library_s": library,
        "in_process_s": _median([h["in_process_s"] for h in hits]) if ok else None,
        "target_library_s": HIT_TARGET_S,
        "meets_target": library is not None and library < HIT_TARGET_S,
        "first_call_requests": [len(h["first_call_requests"]) for h in hits],
        "second_call_requests": [len(h["second_call_requests"]) for h in hits],
    }


@dataclass(frozen=True)
class _OfflinePlan:
    reference: str  # host/repo@digest
    argv: list[str]  # the puller, its spec written while the registry still ran
    job: peers.PullJob  # out_dir: the cache that holds the model


def _plan_offline(name: str, job: peers.PullJob) -> _OfflinePlan | str:
    """Fill a cache of its own with the model (by tag, untimed); the plan, or why not."""
    warm = dataclasses.replace(job, out_dir=job.work_dir / f"warm-{name}")
    shutil.rmtree(warm.out_dir, ignore_errors=True)
    warm.out_dir.mkdir(parents=True)
    setup = cache_hit(warm, "offline-setup")
    if not setup["ok"] or not setup["digest"]:
        return f"could not fill the cache: {setup['error']}"
    reference = f"{job.transport.host}/{job.repository}@{setup['digest']}"
    spec = {"reference": reference, "cache_dir": str(warm.out_dir), "offline": True}
    return _OfflinePlan(reference, _puller_argv(warm, "oci-client-model-again", "offline", **spec), warm)


def _offline_runs(name: str, plan: _OfflinePlan, repeat: int) -> dict[str, Any]:
    runs = [_again_record(_run_puller(plan.job, plan.argv, f"offline-{i}")) for i in range(repeat)]
    for r in runs:
        log(f"  offline {name}: library {_ms(r['library_s'])}, process {_ms(r['wall_s'])}")
    ok = all(r["ok"] for r in runs)
    problems = []
    if ok:
        snapshot = Path(str(runs[-1]["path"]))
        problems = verify_outputs({snapshot / f.name: (f.digest, f.size) for f in plan.job.model.files})
    shutil.rmtree(plan.job.out_dir, ignore_errors=True)
    return {
        "ok": ok and not problems,
        "reference": plan.reference,
        "registry_stopped": True,
        "error": next((r["error"] for r in runs if r["error"]), None) or "; ".join(problems) or None,
        "runs": runs,
        "wall_s": _median([r["wall_s"] for r in runs]) if ok else None,
        "library_s": _median([r["library_s"] for r in runs]) if ok else None,
        "in_process_s": _median([r["in_process_s"] for r in runs]) if ok else None,
        "verified": ok and not problems,
    }


def offline_hits(
    jobs: dict[str, peers.PullJob], transports: dict[str, Transport], repeat: int
) -> dict[str, Any]:
    """Per transport: pull the model into a cache of its own, then stop every registry and
    pull ``host/repo@digest`` with ``offline=True`` from that cache, repeat times, each in a
    fresh process; the snapshot is then hashed in full."""
    plans = {name: _plan_offline(name, job) for name, job in jobs.items()}
    for t in transports.values():
        t.registry.stop()
    log("registries stopped")
    return {
        name: _offline_runs(name, plan, repeat)
        if isinstance(plan, _OfflinePlan)
        else {"ok": False, "error": plan, "registry_stopped": True}
        for name, plan in plans.items()
    }


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


# -- targets, tables, the run -----------------------------------------------------------------


def targets(name: str, rows: dict[str, ModelRow], hit: dict[str, Any]) -> list[dict[str, Any]]:
    """The pass/fail lines for one transport (ok None: not measured)."""
    lib = rows.get(LIBRARY)
    out = []

    def add(target: str, ok: bool | None, detail: str) -> None:
        out.append({"transport": name, "target": target, "ok": ok, "detail": detail})

    for peer in ("crane", "curl"):
        mine, theirs = (lib.pull_s if lib else None), _pull_of(rows, peer)
        ok = None if mine is None or theirs is None else mine <= theirs
        add(f"cold pull <= {peer}", ok, f"{_fmt(mine, 2)} s vs {_fmt(theirs, 2)} s")
    mine = lib.total_s if lib else None
    others = {p: total for p in PEER_TOOLS if p in rows and (total := rows[p].total_s) is not None}
    ok = None if mine is None or not others else all(mine < v for v in others.values())
    detail = ", ".join(f"{p} {v:.2f} s" for p, v in others.items()) or "no peer measured"
    add("pull+read-back < every peer's", ok, f"{_fmt(mine, 2)} s vs {detail}")
    library = hit.get("library_s")
    ok = None if library is None else library < HIT_TARGET_S
    add(f"cache hit library time < {HIT_TARGET_S * 1000:.0f} ms", ok, _ms(library))
    return out


def markdown_table(rows: dict[str, ModelRow]) -> str:
    """tool | cold pull | read-back | pull+read-back | peer time / tool time vs crane and curl."""
    lines = [
        "| tool | cold pull s | read-back s | pull+read-back s | pull: vs crane | vs curl "
        "| pull+read-back: vs crane | vs curl | verified |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for tool, row in rows.items():
        r = row.pulls
        if r.status != "ok":
            what = "skipped" if r.status == "skipped" else "FAILED"
            lines.append(
                f"| {tool} | {what} ({r.reason}) | | | | | | | {'' if what == 'skipped' else 'no'} |"
            )
            continue
        ratios = row.to_json(rows)["ratios"]
        lines.append(
            f"| {tool} | {_fmt(row.pull_s, 2)} | {_fmt(row.read_s, 2)} | {_fmt(row.total_s, 2)} "
            f"| {_fmt(ratios['pull_vs_crane'], 2)} | {_fmt(ratios['pull_vs_curl'], 2)} "
            f"| {_fmt(ratios['pull_read_back_vs_crane'], 2)} | {_fmt(ratios['pull_read_back_vs_curl'], 2)} "
            f"| {'yes' if r.verified else 'no'} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace, work_dir: Path, stack: contextlib.ExitStack) -> dict[str, Any]:
    started = time.monotonic()
    cache: Path = args.cache_dir
    throttle = stack.enter_context(throttled_writes(work_dir, args.throttle_write_mbps))
    if throttle is not None:
        log(f"writes to disk {throttle.device} capped at {throttle.mb_per_s:g} MB/s ({throttle.control})")
    held = stack.enter_context(held_freed_memory(args.hold_freed_ms))
    if held is not None:
        log(f"freed memory held {held['min_free_ms']} ms before it goes to the host (was {held['was']})")
    doc: dict[str, Any] = {
        "benchmark": "models",
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(work_dir),
        "settings": {
            "size_gib": args.size_gib,
            "shards": args.shards,
            "repeat": args.repeat,
            "statistic": "median",
            "quick": args.quick,
            "page_cache_before_each_pull": drop_page_cache(),
            "read_back_chunk": pullers.READ_BACK_CHUNK,
            "write_throttle": dataclasses.asdict(throttle) if throttle is not None else None,
            "flow_mb_per_s": args.flow_mbps,
            "freed_memory_held": held,
        },
    }
    if doc["settings"]["page_cache_before_each_pull"] != "ok":
        log(f"page cache cannot be dropped ({doc['settings']['page_cache_before_each_pull']}); going on")
    the_model = model.build_model(cache, _size(args.size_gib), args.shards)
    log(f"model: {len(the_model.files)} files, {the_model.total_size / MIB:.0f} MiB in {cache / 'data'}")
    doc["model"] = {
        "total_bytes": the_model.total_size,
        "files": [{"name": f.name, "digest": f.digest, "size": f.size} for f in the_model.files],
    }
    if "crane" in args.tools:
        with contextlib.suppress(peers.Skipped):
            peers.ensure_crane(cache / "bin")
    doc["versions"] = peers.tool_versions(cache / "bin")
    log(f"disk rates with dd in {work_dir} ({doc['machine']['filesystem']['type']})")
    doc["disk"] = disk_rates(work_dir, the_model.total_size)

    transports: dict[str, Transport] = {}
    jobs: dict[str, peers.PullJob] = {}
    doc["transports"], doc["tables"], doc["targets"] = {}, {}, []
    for name in args.transports:
        t = start_transport(name, work_dir)
        stack.callback(t.registry.stop)
        transports[name] = t
        t0 = time.monotonic()
        reference = model.push(t.registry, REPOSITORY, TAG, the_model)
        push_s = time.monotonic() - t0
        log(f"registry {name}: pushed {reference} ({push_s:.1f} s)")
        job = peers.PullJob(t, REPOSITORY, TAG, the_model, work_dir / "out", work_dir, cache / "bin")
        jobs[name] = job
        port = int(t.registry.host.rsplit(":", 1)[1])
        with capped_flows(port, args.flow_mbps) as cap:
            if cap is not None:
                log(f"each connection from {t.registry.host} capped at {cap.mb_per_s:g} MB/s (tc on lo)")
            rows, hits = measure_rows(list(args.tools), job, args.repeat)
        hit = summarize_hits(hits)
        doc["transports"][name] = {
            "registry": t.url,
            "push_s": push_s,
            "tools": [row.to_json(rows) for row in rows.values()],
            "cache_hit": hit,
        }
        doc["tables"][name] = markdown_table(rows)
        doc["targets"] += targets(name, rows, hit)
    if LIBRARY in args.tools:
        doc["offline"] = offline_hits(jobs, transports, args.repeat)
    doc["total_runtime_s"] = time.monotonic() - started
    return doc


def _counts(counts: list[int]) -> str:
    """One number when every run agrees, else the range."""
    low, high = min(counts, default=0), max(counts, default=0)
    return str(low) if low == high else f"{low}-{high}"


def _rate(disk: dict[str, Any], name: str) -> str:
    entry = disk.get(name) or {}
    return f"{entry['mb_per_s']:.0f} MB/s" if entry.get("mb_per_s") else f"failed ({entry.get('error')})"


def render(doc: dict[str, Any]) -> str:
    """The summary printed at the end."""
    out = []
    total, n = doc["model"]["total_bytes"], len(doc["model"]["files"])
    repeat = doc["settings"]["repeat"]
    how = "one run each" if repeat == 1 else f"median of {repeat} runs"
    for name, table in doc["tables"].items():
        label = "plain HTTP" if name == "http" else "HTTPS + Basic auth (private CA)"
        out.append(f"### {label}: {n} files, {total / MIB:.0f} MiB, {how}\n\n{table}\n")
        hit = doc["transports"][name]["cache_hit"]
        if hit["runs"]:
            last = hit["runs"][-1]
            first, second = (
                "; ".join(last[k]) or "none" for k in ("first_call_requests", "second_call_requests")
            )
            out.append(
                f"Cache hit by tag ({name}, fresh process, {len(hit['runs'])} runs): library time "
                f"{_ms(hit['library_s'])}, process {_ms(hit['wall_s'])}, second call in the same "
                f"process {_ms(hit['in_process_s'])}. Registry requests, first call "
                f"{_counts(hit['first_call_requests'])} ({first}), second call "
                f"{_counts(hit['second_call_requests'])} ({second})."
            )
    for name, off in (doc.get("offline") or {}).items():
        if off["ok"]:
            out.append(
                f"Offline digest hit ({name}, registry stopped, {off['reference']}): library time "
                f"{_ms(off['library_s'])}, process {_ms(off['wall_s'])}, second call "
                f"{_ms(off['in_process_s'])}; snapshot verified."
            )
        else:
            out.append(f"Offline digest hit ({name}): FAILED ({off['error']}).")
    out.append("\nTargets:")
    for t in doc["targets"]:
        state = {True: "PASS", False: "FAIL", None: "n/a "}[t["ok"]]
        out.append(f"  {state}  [{t['transport']}] {t['target']}: {t['detail']}")
    m, disk = doc["machine"], doc["disk"]
    fs = m["filesystem"]
    out.append(
        f"\nMachine: {m['cpu_model']} x {m['cpus']} CPUs, {m['memory_gib']} GiB, kernel {m['kernel']}; "
        f"work dir on {fs['type']} ({fs['source']} at {fs['mount']})."
    )
    out.append(
        f"Disk (dd, {disk['count']} x 4 MiB): O_DIRECT write {_rate(disk, 'o_direct')}, write + fsync "
        f"{_rate(disk, 'fsync')}, buffered (page cache) {_rate(disk, 'buffered')}."
    )
    if throttle := doc["settings"].get("write_throttle"):
        out.append(
            f"NOTE: a slower disk, emulated: writes to {throttle['device']} capped at "
            f"{throttle['mb_per_s']:g} MB/s for the whole run (dd included; bench/disk.py)."
        )
    if flow := doc["settings"].get("flow_mb_per_s"):
        out.append(
            f"NOTE: a far registry, emulated: each connection from it capped at {flow:g} MB/s during "
            "the pulls (tc on lo; bench/link.py)."
        )
    out.append(reporting_line(m.get("page_reporting"), doc["settings"].get("freed_memory_held")))
    if doc["settings"]["page_cache_before_each_pull"] != "ok":
        out.append(f"NOTE: page cache {doc['settings']['page_cache_before_each_pull']} before the pulls.")
    out.append(f"Total runtime {doc['total_runtime_s']:.0f} s.")
    out.extend(pull.busy_warning(doc))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    with contextlib.ExitStack() as stack:
        try:
            doc = run(args, stack.enter_context(scratch_dir(args.cache_dir)), stack)
        except KeyboardInterrupt:
            kill_all_running()
            log("interrupted; stopping registries and removing scratch files")
            return 130
    write_json(args.output, doc)
    print(render(doc))
    log(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
