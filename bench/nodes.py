"""Many nodes: N processes, each a "node" with a cache of its own, pull one model at once,
straight from the origin registry or through a pull-through cache that a containerd
``hosts.toml`` names as their mirror. Reported per N and mode: the bytes the origin sent
(read from the origin process's ``/proc/PID/io``: the registry answers with sendfile, which the
kernel counts there too), the wall time until the last node had its files, and each node's CPU.

Modes:
  direct   every node from the origin;
  mirror   every node through a cold pull-through cache at once (distribution does not merge
           concurrent fetches of a blob it has not stored yet: they all go upstream);
  warmed   one node through the cold cache first, then the others at once (the origin bytes
           and the time count both steps).

The origin and the cache are the built-in registry (distribution 3), on 127.0.0.1. One
machine's nodes share its CPUs and disk, so the times say how the modes compare here, not what
a fleet of real nodes would see; the origin bytes are what they are anywhere.

  python -m bench.nodes                       # 4 and 8 nodes, 1 GiB model
  python -m bench.nodes --nodes 4,8,16 --size-gib 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import oci_client
from bench import model
from bench.model import GIB, MIB
from bench.models import disk_rates, machine
from bench.pull import log, wait_for_quiet
from bench.report import render_result
from oci_client.server import Registry

MODES = ("direct", "mirror", "warmed")
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "nodes.json"

# A node: load the library, wait for the start, pull, say when it ended and its CPU.
NODE = textwrap.dedent("""\
    import json, os, sys, time
    import oci_client
    ref, cache, certs, start = sys.argv[1:5]
    client = oci_client.Client(certs_dir=certs or None)
    oci_client.cache_list(cache_dir=cache)  # the library loaded before the start
    print("ready", flush=True)
    while not os.path.exists(start):
        time.sleep(0.001)
    cpu = time.process_time()
    client.pull_model(ref, cache_dir=cache)
    print(json.dumps({"end": time.time(), "cpu_s": time.process_time() - cpu}), flush=True)
""")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.nodes", description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", default="4,8", help="comma list of node counts (default 4,8)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma list of {', '.join(MODES)}")
    p.add_argument("--size-gib", type=float, default=1.0, help="model size (default 1)")
    p.add_argument("--shards", type=int, default=4, help="weight files in the model (default 4)")
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/oci-bench"), help="model data, scratch")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results")
    return p.parse_args(argv)


def written(pid: int) -> int:
    """Bytes the process has written (write and sendfile alike)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError(f"no wchar in /proc/{pid}/io")


def hosts_toml(certs: Path, origin: Registry, mirror: Registry) -> None:
    d = certs / origin.host.replace(":", "_")
    d = d.with_name(d.name + "_")  # containerd's name for host:port
    d.mkdir(parents=True)
    (d / "hosts.toml").write_text(
        f'server = "http://{origin.host}"\n\n'
        f'[host."http://{mirror.host}"]\n  capabilities = ["pull", "resolve"]\n'
    )


def run_nodes(ref: str, caches: list[Path], certs: Path | None, work: Path) -> list[dict[str, float]]:
    """The nodes pull at once; each one's end time and CPU seconds, and the start."""
    start = work / f"start-{time.monotonic_ns()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", NODE, ref, str(c), str(certs or ""), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in caches
    ]
    for p in procs:
        assert p.stdout is not None
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError(f"a node did not start: {p.communicate()[1][-2000:]}")
    t0 = time.time()
    start.touch()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"a node failed: {stderr[-2000:]}")
        r = json.loads(stdout.strip().splitlines()[-1])
        out.append({"wall_s": r["end"] - t0, "cpu_s": r["cpu_s"]})
    return out


def run_mode(mode: str, n: int, m: model.Model, directory: Path, work: Path) -> dict[str, Any]:
    run = work / f"{mode}-{n}"
    run.mkdir()
    with Registry(root=run / "origin") as origin:
        ref = f"{origin.host}/bench/model:v1"
        oci_client.push_model(directory, ref, cache_dir=run / "push-cache")
        caches = [run / f"node{i}" for i in range(n)]
        wait_for_quiet()
        if mode == "direct":
            before = written(origin.pid)
            nodes = run_nodes(ref, caches, None, run)
            steps = [nodes]
        else:
            with Registry(root=run / "mirror", proxy=origin.url) as mirror:
                certs = run / "certs.d"
                hosts_toml(certs, origin, mirror)
                before = written(origin.pid)
                if mode == "mirror":
                    steps = [run_nodes(ref, caches, certs, run)]
                else:
                    steps = [run_nodes(ref, caches[:1], certs, run), run_nodes(ref, caches[1:], certs, run)]
        origin_bytes = written(origin.pid) - before
    nodes = [r for step in steps for r in step]
    result = {
        "mode": mode,
        "nodes": n,
        "origin_bytes": origin_bytes,
        "origin_copies": origin_bytes / m.total_size,
        "last_node_s": sum(max(r["wall_s"] for r in step) for step in steps),
        "node_cpu_s": [round(r["cpu_s"], 3) for r in nodes],
        "node_cpu_median_s": statistics.median(r["cpu_s"] for r in nodes),
    }
    shutil.rmtree(run, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = [int(n) for n in args.nodes.split(",") if n]
    modes = [m for m in args.modes.split(",") if m]
    if set(modes) - set(MODES) or any(n < 2 for n in counts):
        print(f"modes are {', '.join(MODES)}; at least 2 nodes", file=sys.stderr)
        return 2
    m = model.build_model(args.cache_dir, int(args.size_gib * GIB), args.shards)
    work = Path(tempfile.mkdtemp(dir=args.cache_dir, prefix="nodes-"))
    try:
        directory = work / "model"
        directory.mkdir()
        for f in m.files:
            os.link(f.path, directory / f.name)
        disk = disk_rates(work, min(m.total_size, 2 * GIB))
        runs = []
        for n in counts:
            for mode in modes:
                r = run_mode(mode, n, m, directory, work)
                runs.append(r)
                log(
                    f"  {n:>2} nodes {mode:<7} origin {r['origin_bytes'] / MIB:8.0f} MiB "
                    f"({r['origin_copies']:.2f} copies)  last {r['last_node_s']:6.2f} s  "
                    f"CPU/node {r['node_cpu_median_s']:.2f} s"
                )
        doc = {
            "benchmark": "nodes",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(work),
            "python": platform.python_version(),
            "disk": disk,
            "model_bytes": m.total_size,
            "files": len(m.files),
            "runs": runs,
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(doc, indent=2) + "\n")
        print(render_result(doc))
        log(f"results written to {args.output}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
