"""Soak: many pull_model and push_model calls at once, for a while, through a proxy that injects
random faults, some calls cancelled; every file a pull returns checked against what was pushed.
See bench/README.md.

    python -m bench.soak [--duration 300] [--seed 1] [--threads 4]
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/soak.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"
    import bench  # noqa: F401 - its __init__ puts tests/ on sys.path, for faultproxy

from faultproxy import FaultProxy

from bench import peers
from bench.soak_probe import Probe, Sample, settle
from bench.soak_work import Soak
from oci_client import _native

DEFAULT_OUTPUT_DIR = peers.REPO_ROOT / "bench" / "results"
# The proxy closes a kept-alive connection idle this long, so the library's idle pool (up to
# 16 connections a host, each a descriptor here and one in the proxy, kept 90 s) empties soon
# after the last call and the descriptors can be counted against the baseline.
PROXY_IDLE_S = 2.0
# Descriptors and goroutines allowed above the baseline. Before each count the background
# fsyncs are flushed (CacheSync) and the settling waits up to 12 s for the baseline itself;
# measured, both come back to it exactly, within 2 s. The margin is for a connection or
# goroutine ending just then on a loaded machine; a leak of one per call would be hundreds.
FD_TOLERANCE = 2
GOROUTINE_TOLERANCE = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=300.0, help="seconds of calls (default 300)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one, printed)")
    p.add_argument("--threads", type=int, default=4, help="calls at once (default 4)")
    p.add_argument(
        "--output", type=Path, default=None, help="JSON result (default bench/results/soak-*.json)"
    )
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    return args


def run(duration: float, seed: int, threads: int = 4, work: Path | None = None) -> dict[str, Any]:
    """The soak; returns the result (also what the JSON file holds)."""
    from oci_client.server import Registry  # the built-in registry, a process of its own

    with tempfile.TemporaryDirectory(prefix="oci-soak-", dir=work) as tmp:
        root = Path(tmp)
        with (
            Registry(root / "registry") as registry,
            FaultProxy(registry.url, idle_timeout=PROXY_IDLE_S) as proxy,
        ):
            soak = Soak(proxy, root, random.Random(seed))
            soak.warm_up()  # Go runtime, transports and worker threads started before the baseline
            time.sleep(PROXY_IDLE_S + 1)  # the warm-up's kept-alive connections closed
            before = settle(Sample.now(), 0, 0)  # and its blobs' fsyncs done
            probe = Probe()
            with probe:
                soak.run(duration, threads)
            after = settle(before, 0, PROXY_IDLE_S + 10)
            soak.check_cache()
    result: dict[str, Any] = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "duration_s": duration,
        "threads": threads,
        **soak.counts(),
        "before": before.as_dict(),
        "after": after.as_dict(),
        "fd_tolerance": FD_TOLERANCE,
        "fds_flat": after.fds <= before.fds + FD_TOLERANCE,
        "goroutines_flat": after.goroutines <= before.goroutines + GOROUTINE_TOLERANCE,
        "operations_flat": after.operations == before.operations,
        "peak_rss_mib": round(probe.peak_rss / 2**20, 1),
    }
    if not result["goroutines_flat"]:  # what stayed behind, for the report
        result["goroutine_stacks"] = _native.call("RuntimeStats", {"stacks": True})["stacks"]
    return result


def summary(r: dict[str, Any]) -> str:
    b, a = r["before"], r["after"]
    lines = [
        f"soak: seed {r['seed']}, {r['duration_s']:.0f} s, {r['threads']} threads",
        f"  pulls {r['pulls']} ({r['pulls_ok']} ok), pushes {r['pushes']} ({r['pushes_ok']} ok), "
        f"cancelled {r['cancelled']}, faults injected {r['faults']}",
        f"  wrong files {r['wrong_files']}, partial files left {r['partial_files']}, "
        f"bad cache blobs {r['bad_cache_blobs']}, unexpected errors {len(r['unexpected'])}",
        f"  errors {r['errors']}",
        f"  fds {b['fds']} -> {a['fds']} ({'flat' if r['fds_flat'] else 'NOT flat'}, settled in "
        f"{a['settle_s']} s), threads {b['threads']} -> {a['threads']}, goroutines "
        f"{b['goroutines']} -> {a['goroutines']}, operations {b['operations']} -> {a['operations']}",
        f"  peak RSS {r['peak_rss_mib']} MiB (before {b['rss_mib']}, after {a['rss_mib']}; Go heap "
        f"{b['go_heap_mib']} -> {a['go_heap_mib']} MiB), "
        f"slowest call {r['slowest_call_s']} s",
    ]
    lines += [f"  ! {p}" for p in r["problems"][:20]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    r = run(args.duration, args.seed, args.threads)
    print(summary(r))
    out = args.output or DEFAULT_OUTPUT_DIR / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=2) + "\n")
    print(f"wrote {out}")
    ok = not r["problems"] and r["fds_flat"] and r["goroutines_flat"] and r["operations_flat"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
