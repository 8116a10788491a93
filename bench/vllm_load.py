"""Overlapped pull and load (the vLLM plugin's OciModelLoader): the time from start to every
weight of a >= 1 GiB safetensors model copied into a torch module, for (a) pull then load,
(b) the loader's overlap (shard i read while shards i+1… download), (c) the model already
cached, and (c) again with every shard re-hashed as it is served (the loader's ``verify``),
beside the pull alone and the load alone. Run it with a vLLM environment's Python
(.ci/vllm-envs api), alone on the machine:

    ENV=$(.ci/vllm-envs api | cut -d= -f2); PYTHONPATH=. $ENV/bin/python -m bench.vllm_load

Each measurement runs in a fresh process against the built-in registry on 127.0.0.1 (or, with
``--registry distribution``, Debian's docker-registry), with a cache of its own (the model's
data stays in the page cache: what is timed is the transfer, the verification and the copy
into the module, not this VM's disk). ``--link-mbps N`` puts a
link of N MB/s between them (bench/dropproxy.py: every blob response shares it), for a
registry slower to reach than the loader is to fill the model; the proxy is Python and needs a
CPU of its own, so on a 2-vCPU machine shape the loopback with tc instead (bench/emulation.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MIB = 1 << 20
TARGET_OVERLAP = 1.15  # (b) <= 1.15 x max(pull, load)
TARGET_GAIN = 0.70  # (b) < 0.70 x (a) where pull and load take similar time
VERIFY_DEFAULT_BELOW = 0.10  # the loader verifies by default when that costs less than this of the load


def build_model(root: Path, size: int, shards: int) -> Path:
    """``shards`` safetensors files of random F32 tensors, ``size`` bytes in all (cached)."""
    import torch
    from safetensors.torch import save_file

    out = root / f"vllm-load-{size}-{shards}"
    if (out / "config.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    per_tensor = 16 * MIB
    tensors_per_shard = max(1, size // shards // per_tensor)
    gen = torch.Generator().manual_seed(0)
    n = 0
    for s in range(shards):
        tensors = {}
        for _ in range(tensors_per_shard):
            tensors[f"layers.{n}.weight"] = torch.rand((per_tensor // 4 // 1024, 1024), generator=gen)
            n += 1
        save_file(tensors, str(out / f"model-{s + 1:05d}-of-{shards:05d}.safetensors"))
    (out / "config.json").write_text(json.dumps({"architectures": ["Bench"], "model_type": "bench"}))
    return out


# -- one measurement, in a process of its own ---------------------------------------------


def _module(model_dir: Path, device_gbps: float = 0.0) -> Any:
    """A module with one parameter per checkpoint tensor. With ``device_gbps``, the weights
    go to an emulated device over a link of that many GB/s: each tensor is copied into one
    reused staging buffer, as CUDA copies pageable memory to a GPU through a pinned one, then
    the rest of its transfer time is waited out (a DMA: time, not CPU); the parameters
    themselves live on the device (here: ``meta``, no host memory), as a GPU model's do."""
    import torch
    from safetensors import safe_open

    device = "meta" if device_gbps else "cpu"
    params = {}
    largest = 0
    for shard in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - not a mapping
                shape = f.get_slice(key).get_shape()
                params[key.replace(".", "__")] = torch.nn.Parameter(torch.empty(shape, device=device))
                largest = max(largest, math.prod(shape))  # elements
    # Touched now: the staging buffer is allocated once, before any load, as CUDA's is.
    staging = torch.zeros(largest if device_gbps else 0)

    class Flat(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.params = torch.nn.ParameterDict(params)

        def load_weights(self, weights: Any) -> set[str]:
            loaded = set()
            for name, tensor in weights:
                key = name.replace(".", "__")
                copying = time.perf_counter()
                if device_gbps:  # into the staging buffer, then the rest of the time on the link
                    staging[: tensor.numel()].copy_(tensor.reshape(-1))
                    took = time.perf_counter() - copying
                    time.sleep(max(0.0, tensor.numel() * tensor.element_size() / (device_gbps * 1e9) - took))
                else:
                    self.params[key].data.copy_(tensor)
                loaded.add(f"params.{key}")
            return loaded

    return Flat()


def _from_files(paths: list[Path]) -> Any:
    from safetensors import safe_open

    for p in paths:
        with safe_open(str(p), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118
                yield key, f.get_tensor(key)


def measure(
    mode: str,
    ref: str,
    model_dir: Path,
    cache: Path,
    concurrency: int = 0,
    device_gbps: float = 0.0,
    barrier: Path | None = None,
) -> tuple[float, float]:
    """Seconds from start to the end of ``mode`` (pull, load, sequential, overlapped, cached),
    and the CPU-seconds this process spent in them (every thread: Go's, torch's, Python's).
    With ``barrier``, the start is when the driver says so (``barrier/go``), once every rank
    says it is ready."""
    from types import SimpleNamespace

    from vllm.config.load import LoadConfig
    from vllm.model_executor.model_loader import get_model_loader
    from vllm.plugins import load_general_plugins

    import oci_client
    from oci_client.vllm import CONCURRENCY_KEY, REFERENCE_KEY, VERIFY_KEY

    load_general_plugins()  # as every vLLM process does: registers the oci loader
    module = _module(model_dir, device_gbps)
    config = SimpleNamespace(model=ref, quantization=None)
    extra: dict[str, Any] = {REFERENCE_KEY: ref}
    if concurrency:
        extra[CONCURRENCY_KEY] = concurrency
    # The loader as it comes (it verifies what it serves from the cache), but for (c) cached:
    # the same load trusting the cache, against which (c) verified shows what that costs.
    extra[VERIFY_KEY] = mode != "cached"
    load_config = LoadConfig(load_format="oci", download_dir=str(cache), model_loader_extra_config=extra)
    loader = get_model_loader(load_config)
    if mode in ("cached", "verified"):
        loader.download_model(config)
    oci_client.OciGoClient().inspect(ref, cache_dir=cache)  # the library loaded, the manifest cached
    if barrier is not None:
        (barrier / f"ready-{os.getpid()}").touch()
        while not (barrier / "go").exists():
            time.sleep(0.001)
    cpu, start = _cpu_seconds(), time.perf_counter()
    if mode == "pull":
        loader.download_model(config)
    elif mode == "load":
        module.load_weights(_from_files(sorted(model_dir.glob("*.safetensors"))))
    elif mode == "sequential":
        path = oci_client.pull_model(ref, cache_dir=cache, concurrency=concurrency or None)
        module.load_weights(_from_files(sorted(path.glob("*.safetensors"))))
    elif mode in ("overlapped", "cached", "verified"):
        loader.load_weights(module, config)
    return time.perf_counter() - start, _cpu_seconds() - cpu


def _steal() -> tuple[int, int]:
    """All CPUs' jiffies and those stolen by the hypervisor so far (/proc/stat): a VM whose host
    is busy loses time no run here can see otherwise."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values), values[7]


def _cpu_seconds(pid: int | None = None) -> float:
    """User plus system CPU-seconds of this process, or of process ``pid``."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SHARD_LINE = "[shard] "


def _log_shards() -> None:
    """The loader's per-shard timings (its DEBUG lines: when each shard was verified, when its
    load began and ended) to stderr, for the driver to show."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(SHARD_LINE + "%(message)s"))
    handler.addFilter(lambda record: str(record.msg).startswith("shard "))
    log = logging.getLogger("vllm.oci_client")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)


# -- the driver ---------------------------------------------------------------------------


MODES = ("pull", "load", "sequential", "overlapped", "cached", "verified")


def rounds(modes: tuple[str, ...], repeat: int) -> Iterator[str]:
    """Every mode ``repeat`` times, round i starting i modes further along."""
    for i in range(repeat):
        yield from modes[i % len(modes) :] + modes[: i % len(modes)]


def in_children(
    module: str,
    options: list[str],
    mode: str,
    ref: str,
    model_dir: Path,
    work: Path,
    timeout: float,
    ranks: int = 1,
) -> list[subprocess.CompletedProcess[str]]:
    """``python -m module OPTIONS --one MODE REF MODEL_DIR CACHE`` on the CPU with a fresh cache
    under ``work``, removed afterwards. With ``ranks`` > 1 that many at once on the one cache, as
    vLLM's tensor-parallel workers, each starting the clock when all are ready (``--barrier``)."""
    cache = Path(tempfile.mkdtemp(dir=work))
    barrier = cache.with_name(cache.name + ".barrier")
    barrier.mkdir()
    argv = [sys.executable, "-m", module, *options]
    if ranks > 1:
        argv += ["--barrier", str(barrier)]
    argv += ["--one", mode, ref, str(model_dir), str(cache)]
    env = {**os.environ, "VLLM_TARGET_DEVICE": "cpu"}
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(ranks)
    ]
    try:
        deadline = time.monotonic() + timeout
        while ranks > 1 and len(list(barrier.glob("ready-*"))) < ranks and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break  # one died before its start: its error is in what it wrote
            time.sleep(0.01)
        (barrier / "go").touch()
        outs = [p.communicate(timeout=timeout) for p in procs]
        return [
            subprocess.CompletedProcess(argv, p.returncode, out, err)
            for p, (out, err) in zip(procs, outs, strict=True)
        ]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(barrier, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    from bench.memory import add_hold_option, held_freed_memory, page_reporting, reporting_line
    from bench.models import disk_rates, machine

    p = argparse.ArgumentParser(prog="python -m bench.vllm_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--size-gib", type=float, default=1.25)
    p.add_argument("--shards", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=0, help="the loader's concurrency (0: its default)")
    p.add_argument(
        "--ranks",
        type=int,
        default=1,
        help="processes doing each measurement together on one cache, as vLLM's tensor-parallel "
        "workers do (the time is the last one's, the CPU all of theirs)",
    )
    p.add_argument("--link-mbps", type=float, default=0.0, help="link speed in MB/s (0: loopback)")
    p.add_argument(
        "--device-gbps",
        type=float,
        default=0.0,
        help="emulate a device the weights are copied to at this many GB/s (a wait, not CPU; 0: none)",
    )
    p.add_argument(
        "--registry",
        choices=("embedded", "distribution"),
        default="embedded",
        help="serve the model from oci-client's registry, or from Debian's docker-registry "
        "(CNCF distribution 2.8, which copies every byte it sends through user space)",
    )
    add_hold_option(p)
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/oci-bench"))
    p.add_argument("--output", type=Path, default=Path("bench/results/vllm_load.json"))
    p.add_argument("--one", nargs=4, metavar=("MODE", "REF", "MODEL_DIR", "CACHE"), help=argparse.SUPPRESS)
    p.add_argument("--barrier", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        mode, ref, model_dir, cache = args.one
        if args.device_gbps:
            # Read when torch loads. torch's OpenMP workers would otherwise spin through every
            # emulated wait (1.2 instead of 0.5 CPU-s for the load alone), burning a CPU that
            # the wait for a real device's DMA leaves free.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        _log_shards()
        seconds, cpu = measure(
            mode, ref, Path(model_dir), Path(cache), args.concurrency, args.device_gbps, args.barrier
        )
        print(json.dumps({"seconds": seconds, "cpu": cpu}))
        return 0

    from oci_testing import LocalRegistry

    import oci_client
    from oci_client.server import Registry

    model_dir = build_model(args.cache_dir, int(args.size_gib * (1 << 30)), args.shards)
    size = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
    with (
        tempfile.TemporaryDirectory(dir=args.cache_dir) as work,
        contextlib.ExitStack() as stack,
    ):
        # What the numbers were measured on: the cores, and the disk's own rates (dd), since
        # machines of this kind differ several times in disk speed.
        host, disk = machine(Path(work)), disk_rates(Path(work), 1 << 30)
        held = stack.enter_context(held_freed_memory(args.hold_freed_ms))
        if args.registry == "embedded":
            registry: Registry | LocalRegistry = stack.enter_context(Registry(Path(work) / "registry"))
        else:
            registry = stack.enter_context(LocalRegistry("plain", workdir=work))
        ref = oci_client.push_model(model_dir, f"{registry.host}/bench/vllm:v1").reference
        if args.link_mbps > 0:
            from bench.dropproxy import DropProxy

            link = stack.enter_context(
                DropProxy(f"http://{registry.host}", None, link_rate=args.link_mbps * 1e6)
            )
            ref = ref.replace(registry.host, link.host, 1)
        runs: dict[str, list[float]] = {m: [] for m in MODES}
        cpus: dict[str, list[float]] = {m: [] for m in MODES}  # the loading process's
        served: dict[str, list[float]] = {m: [] for m in MODES}  # the registry's
        options = ["--concurrency", str(args.concurrency), "--device-gbps", str(args.device_gbps)]
        steal_from = _steal()
        for mode in rounds(MODES, args.repeat):
            before = _cpu_seconds(registry.pid)
            ranks = in_children("bench.vllm_load", options, mode, ref, model_dir, Path(work), 600, args.ranks)
            if any(done.returncode != 0 for done in ranks):
                print(*(done.stderr[-3000:] for done in ranks), file=sys.stderr)
                return 1
            results = [json.loads(done.stdout.strip().splitlines()[-1]) for done in ranks]
            runs[mode].append(max(r["seconds"] for r in results))
            cpus[mode].append(sum(r["cpu"] for r in results))
            served[mode].append(_cpu_seconds(registry.pid) - before)
            each = ", ".join(f"{r['seconds']:.2f}" for r in results)
            print(
                f"[bench] {mode:<10} {runs[mode][-1]:6.2f} s"
                + (f" (ranks: {each})" if args.ranks > 1 else "")
                + f"  CPU-s: loader {cpus[mode][-1]:.2f}, registry {served[mode][-1]:.2f}",
                file=sys.stderr,
                flush=True,
            )
            for i, done in enumerate(ranks):  # the loader's timeline, in the overlapped and cached runs
                for line in done.stderr.splitlines():
                    if line.startswith(SHARD_LINE):
                        rank = f"rank {i}: " if args.ranks > 1 else ""
                        print(f"[bench]   {rank}{line.removeprefix(SHARD_LINE)}", file=sys.stderr, flush=True)
        total, stolen = (b - a for a, b in zip(steal_from, _steal(), strict=True))
    steal = stolen / max(1, total)
    med = {m: statistics.median(v) for m, v in runs.items()}
    bound = max(med["pull"], med["load"])
    doc = {
        "machine": host,
        "disk": disk,
        "model_bytes": size,
        "shards": args.shards,
        "repeat": args.repeat,
        "registry": args.registry,
        "link_mbps": args.link_mbps or None,
        "concurrency": args.concurrency or None,
        "ranks": args.ranks,
        "device_gbps": args.device_gbps or None,
        "steal": steal,
        "page_reporting": page_reporting(),
        "freed_memory_held": held,
        "runs": runs,
        "medians": med,
        # What re-hashing every shard as it is served adds to a cached load.
        "verify_cost": {
            "seconds": med["verified"] - med["cached"],
            "of_cached": (med["verified"] - med["cached"]) / med["cached"],
            "of_load": (med["verified"] - med["cached"]) / med["load"],
        },
        "cpu_seconds": {"loader": cpus, "registry": served},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(
        f"### overlapped pull and load: {size / MIB:.0f} MiB, {args.shards} shards, median of {args.repeat}, "
        + f"{args.registry} registry, "
        + (f"a {args.link_mbps:g} MB/s link" if args.link_mbps else "loopback")
        + (f", into an emulated {args.device_gbps:g} GB/s device" if args.device_gbps else "")
        + (f", {args.ranks} ranks on one cache (the last rank's time)" if args.ranks > 1 else "")
        + f"; CPU time stolen by the hypervisor: {100 * steal:.1f} %\n"
    )
    columns = MODES
    print("| | pull alone | load alone | (a) pull then load | (b) overlapped | (c) cached | (c) verified |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("| seconds | " + " | ".join(f"{med[m]:.2f}" for m in columns) + " |")
    for who, spent in (("loader", cpus), ("registry", served)):
        print(f"| CPU-s, {who} | " + " | ".join(f"{statistics.median(spent[m]):.2f}" for m in columns) + " |")
    print("\n" + reporting_line(doc["page_reporting"], held))
    ok = med["overlapped"] <= TARGET_OVERLAP * bound
    verdict = "PASS" if ok else "FAIL"
    print(
        f"\n{verdict}  (b) <= {TARGET_OVERLAP} x max(pull, load): {med['overlapped']:.2f} s vs {bound:.2f} s"
    )
    ratio = med["overlapped"] / med["sequential"]
    print(f"      (b) / (a) = {ratio:.2f} (target < {TARGET_GAIN} where pull and load take similar time)")
    cost = doc["verify_cost"]
    print(
        f"\nverify: (c) verified - (c) cached = {med['verified'] - med['cached']:.2f} s, "
        f"{100 * cost['of_cached']:.1f} % of (c) cached, {100 * cost['of_load']:.1f} % of the load alone "
        f"(a default of the loader below {100 * VERIFY_DEFAULT_BELOW:.0f} %)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
