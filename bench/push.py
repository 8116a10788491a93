"""Push benchmark: ``oci_client.push_model`` of the benchmark model (cold: nothing at the
registry, no remembered digests) against crane (``crane push LAYOUT``), skopeo (``copy
oci:LAYOUT docker://``) and oras-py (``OrasClient.push``), each into an empty real
registry, then the re-push of a model the registry already has (every blob skipped), with
and without the digests remembered. See bench/README.md.

    python -m bench.push [--quick] [--size-gib 2] [--repeat 3] ...
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/push.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"
    import bench  # noqa: F401 - its __init__ puts tests/ on sys.path, for oci_testing

from oci_testing import LocalRegistry

import oci_client
from bench import model, peers
from bench.measure import Measurement, kill_all_running, run_measured
from bench.model import GIB, MIB
from bench.models import _rate, disk_rates, machine
from bench.pull import log, scratch_dir, wait_for_quiet

DEFAULT_OUTPUT = peers.REPO_ROOT / "bench" / "results" / "push.json"
TOOLS = ("oci-client", "oci-client-known", "crane", "skopeo", "oras-py")
# oci-client-known: push_model with the digests already remembered (a directory published
# before, to another registry), as crane and skopeo get them from the layout's names.
REPUSH_TARGET_S = 1.0  # an already-present model, every blob skipped


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.push", description=__doc__.split("\n\n")[0])
    p.add_argument("--size-gib", type=float, default=None, help="model size (default 2; --quick: 0.25)")
    p.add_argument("--shards", type=int, default=4, help="weight files in the model (default 4)")
    p.add_argument("--repeat", type=int, default=3, help="runs per tool, in rotated rounds (default 3)")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma list of {', '.join(TOOLS)}")
    p.add_argument("--quick", action="store_true", help="smoke run: 256 MiB model, one round")
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/oci-bench"), help="model data, crane")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results")
    args = p.parse_args(argv)
    if args.size_gib is None:
        args.size_gib = 0.25 if args.quick else 2.0
    if args.quick:
        args.repeat = 1
    return args


def model_dir(m: model.Model, work: Path) -> Path:
    """The model's files alone in a directory (hard links: no copy of the data)."""
    d = work / "model"
    d.mkdir()
    for f in m.files:
        os.link(f.path, d / f.name)
    return d


def oci_layout(directory: Path, work: Path) -> Path:
    """An OCI image layout holding exactly what push_model publishes for ``directory``
    (its blobs hard links to the files), for the tools that push a layout."""
    with LocalRegistry("plain") as registry:
        pushed = oci_client.push_model(directory, f"{registry.host}/layout/model:v1")
        config = pushed.json()["config"]
        blob = oci_client.OciGoClient().pull_blob(
            f"{registry.host}/layout/model:v1", config["digest"], work / "config.blob"
        )
    layout = work / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for layer in pushed.json()["layers"]:
        target = blobs / layer["digest"].split(":", 1)[1]
        if not target.exists():
            os.link(directory / layer["annotations"]["org.cncf.model.filepath"], target)
    os.replace(blob.path, blobs / config["digest"].split(":", 1)[1])
    (blobs / pushed.digest.split(":", 1)[1]).write_bytes(pushed.raw)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": pushed.media_type,
                "digest": pushed.digest,
                "size": pushed.size,
                "annotations": {"org.opencontainers.image.ref.name": "v1"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return layout


_PUSH_SCRIPT = {
    "oci-client": (
        "import sys, oci_client; oci_client.push_model(sys.argv[1], sys.argv[2], cache_dir=sys.argv[3])"
    ),
    "oras-py": (
        "import os, sys, oras.client; os.chdir(sys.argv[1]); "
        "host = sys.argv[2].split('/', 1)[0]; "
        "r = oras.client.OrasClient(hostname=host, insecure=True).push("
        "target=sys.argv[2], files=sorted(os.listdir('.')), quiet=True); "
        "sys.exit(0 if r.status_code in (200, 201) else 1)"
    ),
}


def command(
    tool: str, directory: Path, layout: Path, ref: str, scratch: Path, crane: Path | None
) -> list[str]:
    if tool == "oci-client-known":
        with LocalRegistry("plain") as elsewhere:  # not timed: fills the digest cache
            oci_client.push_model(directory, f"{elsewhere.host}/seed/model:v1", cache_dir=scratch / "cache")
        tool = "oci-client"
    if tool in _PUSH_SCRIPT:
        return [sys.executable, "-c", _PUSH_SCRIPT[tool], str(directory), ref, str(scratch / "cache")]
    if tool == "crane":
        assert crane is not None
        return [str(crane), "push", "--insecure", str(layout), ref]
    if tool == "skopeo":
        binary = shutil.which("skopeo")
        if binary is None:
            raise peers.Skipped("skopeo not found on PATH")
        return [binary, "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                "--dest-no-creds", f"oci:{layout}:v1", f"docker://{ref}"]  # fmt: skip
    raise ValueError(tool)


def verify(registry: LocalRegistry, ref: str, m: model.Model) -> str:
    """'' when the registry holds a manifest at ref whose layers are the model's files."""
    try:
        manifest = oci_client.OciGoClient().get_manifest(ref).json()
    except oci_client.OciError as exc:
        return f"no manifest: {exc}"
    got = sorted(layer["digest"] for layer in manifest.get("layers", []))
    want = sorted(f.digest for f in m.files)
    return "" if got == want else f"layers {got} differ from the files {want}"


def run_once(tool: str, directory: Path, layout: Path, m: model.Model, work: Path, i: int,
             crane: Path | None, env: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """One cold push into a registry of its own."""
    root = work / f"registry-{tool}-{i}"
    with LocalRegistry("plain", workdir=root) as registry:
        ref = f"{registry.host}/bench/{tool}:v1"
        scratch = Path(tempfile.mkdtemp(dir=work))
        argv = command(tool, directory, layout, ref, scratch, crane)
        wait_for_quiet()
        run = run_measured(argv, env=env, log_dir=scratch / "log", timeout=60 + m.total_size / (8 * MIB))
        result = _result(run, verify(registry, ref, m) if run.ok else run.failure())
        if tool == "oci-client" and run.ok:
            # The same model again: every blob is at the registry. With the digests
            # remembered (the same machine), then as from a machine that must hash.
            for name, cache in (("repush", scratch / "cache"), ("repush-no-digests", scratch / "fresh")):
                argv = [sys.executable, "-c", _PUSH_SCRIPT[tool], str(directory), ref, str(cache)]
                again = run_measured(argv, env=env, log_dir=scratch / name, timeout=120)
                result[name] = _result(again, verify(registry, ref, m) if again.ok else again.failure())
        shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    return result


def _result(run: Measurement, problem: str) -> dict[str, Any]:
    return {
        "wall_s": run.wall_s,
        "peak_rss_mib": run.peak_rss_mib,
        "ok": run.ok and not problem,
        "error": problem,
    }


def median(runs: list[dict[str, Any]], key: Callable[[dict[str, Any]], float | None]) -> float | None:
    values = [v for r in runs if r.get("ok") and (v := key(r)) is not None]
    return statistics.median(values) if values else None


def render(doc: dict[str, Any]) -> str:
    size = doc["model_bytes"]
    lines = [
        f"### push: {doc['files']} files, {size / MIB:.0f} MiB, plain HTTP, median of {doc['repeat']} runs",
        "",
        "| tool | push s | MiB/s | vs crane | peak RSS MiB | ok |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    crane_s = doc["medians"].get("crane")
    for tool, wall in doc["medians"].items():
        runs = doc["runs"][tool]
        rss = median(runs, lambda r: r["peak_rss_mib"])
        ok = "yes" if all(r["ok"] for r in runs) else "NO: " + next(r["error"] for r in runs if not r["ok"])
        rate = f"{size / MIB / wall:.0f}" if wall else "-"
        ratio = f"{crane_s / wall:.2f}" if wall and crane_s else "-"
        lines.append(
            f"| {tool} | {wall:.2f} | {rate} | {ratio} | {rss:.0f} | {ok} |"
            if wall is not None and rss is not None
            else f"| {tool} | - | - | - | - | {ok} |"
        )
    rp = doc.get("repush")
    if rp:
        lines += [
            "",
            f"Re-push of the model the registry has (every blob skipped): {rp['repush_s']:.2f} s with the "
            f"digests remembered, {rp['repush_no_digests_s']:.2f} s hashing every file again "
            f"(process time, interpreter start included).",
        ]
    lines += ["", "Targets:"]
    for row in ("oci-client", "oci-client-known"):
        ours = doc["medians"].get(row)
        for tool in ("crane", "skopeo", "oras-py"):
            theirs = doc["medians"].get(tool)
            if ours is not None and theirs is not None:
                verdict = "PASS" if ours <= theirs else "FAIL"
                lines.append(f"  {verdict}  {row} push <= {tool}: {ours:.2f} s vs {theirs:.2f} s")
    if rp:
        verdict = "PASS" if rp["repush_s"] < REPUSH_TARGET_S else "FAIL"
        lines.append(
            f"  {verdict}  re-push of a present model < {REPUSH_TARGET_S:.0f} s: {rp['repush_s']:.2f} s"
        )
    mach, disk = doc["machine"], doc["disk"]
    lines += [
        "",
        f"Machine: {mach['cpu_model']} x {mach['cpus']} CPUs, {mach['memory_gib']} GiB, "
        f"kernel {mach['kernel']}.",
        f"Disk (dd): O_DIRECT write {_rate(disk, 'o_direct')}, write + fsync {_rate(disk, 'fsync')}, "
        f"buffered {_rate(disk, 'buffered')}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    if unknown := set(tools) - set(TOOLS):
        print(f"unknown tools: {sorted(unknown)}", file=sys.stderr)
        return 2

    try:
        with contextlib.ExitStack() as stack:
            work = stack.enter_context(scratch_dir(args.cache_dir))
            m = model.build_model(args.cache_dir, int(args.size_gib * GIB), args.shards)
            log(f"model: {len(m.files)} files, {m.total_size / MIB:.0f} MiB")
            directory = model_dir(m, work)
            layout = oci_layout(directory, work)
            crane = None
            if "crane" in tools:
                crane = peers.ensure_crane(args.cache_dir / "bin")
            disk = disk_rates(work, min(m.total_size, 2 * GIB))
            env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(peers.REPO_ROOT), env.get("PYTHONPATH")]))
            env["DOCKER_CONFIG"] = str(work / "docker-config")
            (work / "docker-config").mkdir()
            (work / "docker-config" / "config.json").write_text('{"auths": {}}')
            runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
            for i in range(args.repeat):
                for tool in tools[i % len(tools) :] + tools[: i % len(tools)]:
                    r = run_once(tool, directory, layout, m, work, i, crane, env)
                    runs[tool].append(r)
                    status = f"{r['wall_s']:.2f} s" if r["ok"] else f"FAILED: {r['error']}"
                    extra = ""
                    if "repush" in r:
                        again, fresh = r["repush"]["wall_s"], r["repush-no-digests"]["wall_s"]
                        extra = f"  re-push {again:.2f} s, digests not remembered {fresh:.2f} s"
                    log(f"  {tool:<11} push {status}  rss {r['peak_rss_mib']:.0f} MiB{extra}")
            ours = runs.get("oci-client", [])
            doc: dict[str, Any] = {
                "benchmark": "push",
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "machine": machine(work),
                "python": platform.python_version(),
                "disk": disk,
                "model_bytes": m.total_size,
                "files": len(m.files),
                "repeat": args.repeat,
                "runs": runs,
                "medians": {t: median(rs, lambda r: r["wall_s"]) for t, rs in runs.items()},
            }
            if ours and any("repush" in r for r in ours):
                doc["repush"] = {
                    "repush_s": median([r["repush"] for r in ours if "repush" in r], lambda r: r["wall_s"]),
                    "repush_no_digests_s": median(
                        [r["repush-no-digests"] for r in ours if "repush" in r], lambda r: r["wall_s"]
                    ),
                }
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(doc, indent=2) + "\n")
            print(render(doc))
            log(f"results written to {args.output}")
    except KeyboardInterrupt:
        kill_all_running()
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
