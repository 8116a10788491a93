"""Cold, to-disk, full-pull benchmark: oci-client against curl, crane, oras-py, skopeo and
plain requests, over plain HTTP and HTTPS + Basic auth, from real distribution registries
on 127.0.0.1. See bench/README.md.

    python -m bench.pull [--quick] [--size-gib 2] [--repeat 1] ...
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/pull.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import extras, model, peers
from bench.measure import kill_all_running, run_measured
from bench.model import GIB, MIB, Model
from bench.registries import Transport, start_transport
from bench.report import RunResult, ToolResult, markdown_table, write_json
from bench.verify import verify_outputs

DEFAULT_CACHE = Path("/tmp/oci-bench")
DEFAULT_OUTPUT = peers.REPO_ROOT / "bench" / "results" / "latest.json"
REPOSITORY, TAG = "bench/model", "v1"
BUSY_THRESHOLD = 0.25  # CPU share used by others while the benchmark is idle
QUIET_WAIT_BUDGET_S = 60.0  # at most this long, in all, waiting for others to finish


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.pull",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--size-gib", type=float, default=None, help="model size (default 2; --quick: 0.25)")
    p.add_argument("--shards", type=int, default=4, help="weight files in the model (default 4)")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per tool and transport; the table shows the median wall time (default 1)",
    )
    p.add_argument("--transports", default="http,https", help="comma list of http, https (default both)")
    p.add_argument(
        "--tools",
        default=",".join(peers.PEERS),
        help=f"comma list of tools (default all: {', '.join(peers.PEERS)})",
    )
    p.add_argument(
        "--big-blob-gib",
        type=float,
        default=None,
        help="size of the one blob whose peak RSS is measured, 0 to skip (default 4; --quick: 0)",
    )
    p.add_argument(
        "--resume-gib",
        type=float,
        default=None,
        help="size of the blob cut at 90%% for the resume measurement, 0 to skip (default 1; --quick: 0.25)",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=30.0,
        help="request latency the resume blob is also pulled with, 0 to skip (default 30)",
    )
    p.add_argument(
        "--tail",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also pull the model one shard fewer at a time than it has, each response paced (default on)",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 256 MiB model, no big blob")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help="model data, crane and scratch files (default /tmp/oci-bench)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="JSON results file (default bench/results/latest.json)",
    )
    args = p.parse_args(argv)
    if args.size_gib is None:
        args.size_gib = 0.25 if args.quick else 2.0
    if args.big_blob_gib is None:
        args.big_blob_gib = 0.0 if args.quick else 4.0
    if args.resume_gib is None:
        args.resume_gib = 0.25 if args.quick else 1.0
    return check_common(p, args, peers.PEERS)


def check_common(
    p: argparse.ArgumentParser, args: argparse.Namespace, tools: Iterable[str]
) -> argparse.Namespace:
    """Split --transports and --tools into lists and check them, --repeat, --shards and --size-gib."""
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    known = list(tools)
    for t in args.transports:
        if t not in ("http", "https"):
            p.error(f"unknown transport {t!r}")
    for t in args.tools:
        if t not in known:
            p.error(f"unknown tool {t!r}; choose from {', '.join(known)}")
    if args.repeat < 1 or args.shards < 1 or args.size_gib <= 0:
        p.error("--repeat, --shards and --size-gib must be positive")
    return args


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Fraction of all CPUs busy over ``seconds`` (from /proc/stat), before we start."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


_quiet_wait_left = [QUIET_WAIT_BUDGET_S]


def wait_for_quiet() -> float | None:
    """Sample how busy the CPUs are while we are idle (whatever runs is someone else's); if
    busy, wait for a quiet second, spending at most QUIET_WAIT_BUDGET_S over the whole run.
    Returns the last sample."""
    busy = cpu_busy(0.5)
    while busy is not None and busy > BUSY_THRESHOLD and _quiet_wait_left[0] > 0:
        started = time.monotonic()
        busy = cpu_busy(1.0)
        _quiet_wait_left[0] -= time.monotonic() - started
    return busy


def _size(gib: float) -> int:
    return int(gib * GIB) // 4096 * 4096 or 4096


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _remove_stale_runs(cache: Path) -> None:
    """Scratch directories of earlier runs that were killed before cleaning up."""
    for d in cache.glob("run-*"):
        try:
            pid = int(d.name.split("-")[1])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


@contextlib.contextmanager
def scratch_dir(cache: Path) -> Iterator[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    _remove_stale_runs(cache)
    path = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=cache))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _timeout(total_bytes: int) -> float:
    return 60 + total_bytes / (16 * MIB)


def measure_tools(tools: list[str], job: peers.PullJob, repeat: int) -> list[ToolResult]:
    """Measure every tool repeat times, in rounds: each round runs each tool once, and
    round i starts i tools further along the list. The machine's speed drifts by 10-20 %
    over minutes (see Reading the numbers), so a tool's runs are spread over the same
    stretch of time as its peers', and no tool always runs right after the same one."""
    results = [ToolResult(tool, job.transport.name, job.model.total_size) for tool in tools]
    commands = {r.tool: _prepare(r, job) for r in results}
    for i in range(repeat):
        for k in range(len(results)):
            result = results[(i + k) % len(results)]
            command = commands[result.tool]
            if command is not None and result.status == "ok":
                _run_once(result, command, job, i)
    return results


def _prepare(
    result: ToolResult,
    job: peers.PullJob,
    table: dict[str, Callable[[peers.PullJob], peers.Command]] | None = None,
) -> peers.Command | None:
    """The tool's command from ``table`` (default: peers.PEERS), or None with
    the row marked skipped or failed."""
    try:
        command = (peers.PEERS if table is None else table)[result.tool](job)
    except peers.Skipped as exc:
        result.status, result.reason = "skipped", str(exc)
        return None
    except Exception as exc:  # a broken builder fails its row, not the benchmark
        result.status, result.reason = "failed", f"could not prepare: {exc!r}"[:300]
        return None
    result.command = command.argv if command.argv[0] != "sh" else ["sh", "-c", "<one curl per layer>"]
    return command


def _run_once(result: ToolResult, command: peers.Command, job: peers.PullJob, i: int) -> None:
    """One timed, verified run of a tool, appended to its result; a failure ends its row."""
    tool, total = result.tool, result.total_bytes
    env = peers.base_environment(job)
    env.update(command.env)
    shutil.rmtree(job.out_dir, ignore_errors=True)
    job.out_dir.mkdir(parents=True)
    os.sync()  # earlier writes (pushes, deleted outputs) must not be flushed inside the timing
    busy = wait_for_quiet()
    label = f"{job.transport.name}-{tool}-{i}"
    try:
        m = run_measured(
            command.argv,
            env=env,
            log_dir=job.work_dir / "logs" / label,
            timeout=_timeout(total),
            cwd=job.work_dir,
        )
        problems = verify_outputs(command.expected) if m.ok else []
    except OSError as exc:
        result.status, result.reason = "failed", f"could not run: {exc}"[:300]
        return
    finally:
        shutil.rmtree(job.out_dir, ignore_errors=True)
    run = RunResult(
        wall_s=m.wall_s,
        peak_rss_mib=m.peak_rss_mib,
        exit_code=m.exit_code,
        verified=m.ok and not problems,
        problems=problems,
        output=(m.stdout.strip().splitlines() or [""])[-1][:500] if m.ok else m.failure(),
        cpu_busy_before=busy,
    )
    result.runs.append(run)
    if not m.ok:
        result.status, result.reason = "failed", m.failure()
    elif problems:
        result.status, result.reason = "failed", f"wrong output: {problems[0]}"
    speed = total / MIB / m.wall_s
    log(f"  {tool:16} {m.wall_s:7.2f} s {speed:7.0f} MiB/s  RSS {m.peak_rss_mib:6.0f} MiB  {result.status}")
    if result.status == "failed":
        log(f"    {result.reason}")


def python_floor(env: dict[str, str], work_dir: Path) -> dict[str, float | None]:
    """Peak RSS of a bare interpreter, for reading the Python tools' numbers."""
    m = run_measured(
        [sys.executable, "-c", "pass"], env=env, log_dir=work_dir / "logs" / "python-floor", timeout=60
    )
    return {"python_interpreter_rss_mib": m.peak_rss_mib}


def library_floor(job: peers.PullJob, env: dict[str, str]) -> float | None:
    """Peak RSS of the interpreter with the library loaded and one manifest fetched."""
    spec = peers.write_spec(job, "oci-client-idle")
    m = run_measured(
        [sys.executable, "-m", "bench.pullers", "oci-client-idle", str(spec)],
        env=env,
        log_dir=job.work_dir / "logs" / "library-floor",
        timeout=60,
    )
    return m.peak_rss_mib if m.ok else None


def _push_single_blob(
    http: Transport, repository: str, gib: float, cache: Path, work_dir: Path, then: str
) -> tuple[str, Model, peers.PullJob]:
    """Push one blob of gib GiB (for the extra measurements) and describe its pull."""
    blob = model.build_single_blob(cache, _size(gib))
    t0 = time.monotonic()
    reference = model.push(http.registry, repository, TAG, blob)
    log(f"pushed {reference} ({time.monotonic() - t0:.1f} s); {then}")
    job = peers.PullJob(http, repository, TAG, blob, work_dir / "out", work_dir, cache / "bin")
    return reference, blob, job


def run(args: argparse.Namespace, work_dir: Path, stack: contextlib.ExitStack) -> dict[str, Any]:
    started = time.monotonic()
    cache: Path = args.cache_dir
    doc: dict[str, Any] = {
        "benchmark": "pull",
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "cpu_busy_before_start": wait_for_quiet(),
        },
        "settings": {
            "size_gib": args.size_gib,
            "shards": args.shards,
            "repeat": args.repeat,
            "wall_statistic": "median",
            "rss_statistic": "max",
            "quick": args.quick,
        },
    }

    t0 = time.monotonic()
    the_model = model.build_model(cache, _size(args.size_gib), args.shards)
    log(
        f"model: {len(the_model.files)} files, {the_model.total_size / MIB:.0f} MiB in {cache / 'data'} "
        f"({time.monotonic() - t0:.1f} s)"
    )
    doc["model"] = {
        "total_bytes": the_model.total_size,
        "files": [{"name": f.name, "digest": f.digest, "size": f.size} for f in the_model.files],
    }
    if "crane" in args.tools:
        t0 = time.monotonic()
        try:
            peers.ensure_crane(cache / "bin")
            log(f"crane ready ({time.monotonic() - t0:.1f} s)")
        except peers.Skipped as exc:
            log(f"crane unavailable: {exc}")
    doc["versions"] = peers.tool_versions(cache / "bin")

    transports: dict[str, Transport] = {}
    needed = list(args.transports)
    if (args.big_blob_gib > 0 or args.resume_gib > 0) and "http" not in needed:
        needed.append("http")
    for name in needed:
        t = start_transport(name, work_dir)
        stack.callback(t.registry.stop)
        transports[name] = t
        log(f"registry {name}: {t.url}")

    doc["transports"] = {}
    doc["tables"] = {}
    floors: dict[str, float | None] = {}
    for name in args.transports:
        t = transports[name]
        t0 = time.monotonic()
        reference = model.push(t.registry, REPOSITORY, TAG, the_model)
        push_s = time.monotonic() - t0
        log(f"pushed {reference} ({push_s:.1f} s, {the_model.total_size / MIB / push_s:.0f} MiB/s)")
        job = peers.PullJob(t, REPOSITORY, TAG, the_model, work_dir / "out", work_dir, cache / "bin")
        if not floors:
            env = peers.base_environment(job)
            floors = python_floor(env, work_dir)
            floors["oci_client_loaded_rss_mib"] = library_floor(job, env)
        results = measure_tools(list(args.tools), job, args.repeat)
        baseline = next((r.wall_s for r in results if r.tool == "curl"), None)
        doc["transports"][name] = {
            "registry": t.url,
            "push_s": push_s,
            "tools": [r.to_json(baseline) for r in results],
        }
        doc["tables"][name] = markdown_table(results)
    doc["rss_floors"] = floors

    http = transports.get("http")
    if http is not None and args.big_blob_gib > 0:
        reference, blob, job = _push_single_blob(
            http, "bench/big", args.big_blob_gib, cache, work_dir, "pulling it with oci-client"
        )
        doc["big_blob"] = extras.big_blob_rss(
            reference, blob, env=peers.base_environment(job), work_dir=work_dir
        )
        big = doc["big_blob"]
        log(f"  big blob: ok={big['ok']} {big['wall_s']:.1f} s, peak RSS {big['peak_rss_mib']:.0f} MiB")
    if http is not None and args.resume_gib > 0:
        reference, blob, job = _push_single_blob(
            http, "bench/resume", args.resume_gib, cache, work_dir, "pulling it through the fault proxy"
        )
        doc["resume"] = extras.resume_after_drop(
            http.url, "bench/resume", TAG, blob, env=peers.base_environment(job), work_dir=work_dir
        )
        res = doc["resume"]
        state = "ok" if res["ok"] else f"failed: {res['error']}"
        log(f"  resume: {state}; forwarded {res['ratio']:.3f} x the blob, {res['cuts_injected']} cut")
        if args.latency_ms > 0:
            doc["latency"] = extras.latency_hidden(
                http.url,
                "bench/resume",
                TAG,
                blob,
                latency_s=args.latency_ms / 1000,
                env=peers.base_environment(job),
                work_dir=work_dir,
            )
            lat = doc["latency"]
            extra, serial = lat["extra_s"], lat["serial_wait_s"]
            log(f"  latency: ok={lat['ok']}; {extra:.2f} s more, {serial:.2f} s if waited out in turn")
    if http is not None and args.tail and "http" in args.transports:  # the model is pushed there
        job = peers.PullJob(http, REPOSITORY, TAG, the_model, work_dir / "out", work_dir, cache / "bin")
        doc["tail"] = extras.uneven_tail(
            http.url, f"{REPOSITORY}:{TAG}", the_model, env=peers.base_environment(job), work_dir=work_dir
        )
        tail = doc["tail"]
        wall, one = tail["wall_s"], tail["one_stream_each_s"]
        log(f"  tail: ok={tail['ok']} {wall:.1f} s, one stream per shard {one:.1f} s")
    doc["total_runtime_s"] = time.monotonic() - started
    return doc


def render(doc: dict[str, Any]) -> str:
    """The human-readable summary printed at the end."""
    out = []
    total = doc["model"]["total_bytes"]
    n = len(doc["model"]["files"])
    repeat = doc["settings"]["repeat"]
    how = "one run each" if repeat == 1 else f"median of {repeat} runs, peak RSS the largest"
    for name, table in doc["tables"].items():
        label = "plain HTTP" if name == "http" else "HTTPS + Basic auth (private CA)"
        out.append(f"### {label}: {n} layers, {total / MIB:.0f} MiB, {how}\n\n{table}\n")
    apis = {
        json.loads(run["output"]).get("api")
        for t in doc["transports"].values()
        for tool in t["tools"]
        if tool["tool"] == "oci-client"
        for run in tool["runs"]
        if run["output"].startswith("{")
    }
    if apis:
        out.append(f"oci-client pulled with {', '.join(sorted(a for a in apis if a))}.")
    floors = doc.get("rss_floors") or {}
    if floors:
        lib = floors.get("oci_client_loaded_rss_mib")
        out.append(
            f"RSS floors: bare python {floors['python_interpreter_rss_mib']:.0f} MiB; python + oci_client "
            f"loaded after one manifest fetch {lib:.0f} MiB.\n"
            if lib is not None
            else f"RSS floor: bare python {floors['python_interpreter_rss_mib']:.0f} MiB.\n"
        )
    big = doc.get("big_blob")
    if big:
        state = "ok" if big["ok"] else f"FAILED ({big['error']})"
        out.append(
            f"Big blob ({big['blob_bytes'] / GIB:.1f} GiB, one pull_blob over HTTP): peak RSS "
            f"{big['peak_rss_mb']:.0f} MB ({big['peak_rss_mib']:.0f} MiB), "
            f"target < {big['target_rss_mb']} MB: "
            f"{'met' if big['meets_target'] else 'NOT met'}; {big['wall_s']:.1f} s; {state}."
        )
    res = doc.get("resume")
    if res:
        state = "pull succeeded" if res["ok"] else f"pull FAILED: {res['error']}: {res.get('message') or ''}"
        out.append(
            f"Resume after drop ({res['blob_bytes'] / GIB:.2f} GiB blob cut once at 90%): forwarded "
            f"{res['bytes_forwarded'] / MIB:.0f} MiB in {len(res['blob_requests'])} blob requests = "
            f"{res['ratio']:.3f} x the blob, target < "
            f"{res['target_ratio']}: {'met' if res['meets_target'] else 'NOT met'}; {state}."
        )
    lat = doc.get("latency")
    if lat:
        runs = lat["runs"]
        if lat["ok"]:
            out.append(
                f"Latency ({lat['blob_bytes'] / GIB:.2f} GiB blob in {runs['late']['blob_requests']} ranged "
                f"requests at {lat['rate_per_connection'] / 1e6:.0f} MB/s each, answered "
                f"{lat['latency_s'] * 1000:.0f} ms late): "
                f"{runs['late']['wall_s']:.2f} s against {runs['prompt']['wall_s']:.2f} s answered at once, "
                f"{lat['extra_s']:.2f} s more where waiting out each request in turn on "
                f"{extras.LIBRARY_CONNECTIONS} connections would cost {lat['serial_wait_s']:.2f} s: "
                f"{lat['hidden_share']:.0%} of it hidden."
            )
        else:
            errors = "; ".join(f"{k}: {r['error']}" for k, r in runs.items() if not r["ok"])
            out.append(f"Latency: FAILED ({errors}).")
    tail = doc.get("tail")
    if tail:
        if tail["ok"]:
            out.append(
                f"Uneven tail ({tail['shards']} shards, {tail['concurrency']} at a time, each response at "
                f"{tail['rate_per_connection'] / 1e6:.0f} MB/s): {tail['wall_s']:.2f} s in "
                f"{tail['blob_requests']} blob requests, against {tail['one_stream_each_s']:.2f} s for one "
                f"stream per shard (the last one alone); {tail['forwarded_ratio']:.3f} x the model forwarded."
            )
        else:
            out.append(f"Uneven tail: FAILED ({tail['error']}).")
    out.append(f"\nTotal runtime {doc['total_runtime_s']:.0f} s.")
    out.extend(busy_warning(doc))
    return "\n".join(out)


def busy_warning(doc: dict[str, Any]) -> list[str]:
    """A warning line when other processes kept the CPUs busy before some measurement."""
    samples = [doc["machine"]["cpu_busy_before_start"]] + [
        run["cpu_busy_before"]
        for t in doc["transports"].values()
        for tool in t["tools"]
        for run in tool["runs"]
    ]
    busy = [b for b in samples if b is not None and b > BUSY_THRESHOLD]
    if not busy:
        return []
    return [
        f"WARNING: other processes kept the CPUs up to {max(busy):.0%} busy just before {len(busy)} of "
        f"{len(samples)} measurements (the start, each run), even after waiting: the numbers are noisy."
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    with contextlib.ExitStack() as stack:
        try:
            work_dir = stack.enter_context(scratch_dir(args.cache_dir))
            doc = run(args, work_dir, stack)
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
