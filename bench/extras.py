"""The extra measurements: the library's peak RSS on one big blob, how many bytes cross the
wire again when a blob download is cut at 90 % (resume after a dropped connection), and how
much of a far registry's request latency a chunked pull hides."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dropproxy import DropProxy
from .measure import Measurement, run_measured
from .model import MIB, Model
from .verify import verify_outputs

__all__ = ["big_blob_rss", "latency_hidden", "library_blob_pull", "resume_after_drop", "uneven_tail"]

RSS_TARGET_MB = 100  # decimal megabytes, as the project states it
RESUME_TARGET_RATIO = 1.2
CUT_FRACTION = 0.9
LIBRARY_CONNECTIONS = 4  # OciGoClient's default connections per blob
LATENCY_RATE = 50e6  # bytes/s per connection in the latency measurement: a CDN edge's pace


def _timeout(size: int) -> float:
    return 60 + size / (16 * MIB)


def _run_puller(
    mode: str, spec: dict[str, Any], *, env: dict[str, str], work_dir: Path, label: str, size: int
) -> Measurement:
    """``python -m bench.pullers MODE`` on spec (written to work_dir), measured, with a
    deadline for size bytes."""
    spec_path = work_dir / f"spec-{label}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    return run_measured(
        [sys.executable, "-m", "bench.pullers", mode, str(spec_path)],
        env=env,
        log_dir=work_dir / "logs" / label,
        timeout=_timeout(size),
    )


@contextlib.contextmanager
def _empty_out(work_dir: Path, label: str) -> Iterator[Path]:
    """An empty output directory (dirty pages flushed first), removed afterwards."""
    out = work_dir / f"out-{label}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    os.sync()
    try:
        yield out
    finally:
        shutil.rmtree(out, ignore_errors=True)


def library_blob_pull(
    reference: str,
    model: Model,
    dest: Path,
    *,
    env: dict[str, str],
    work_dir: Path,
    label: str,
    ca_file: Path | None = None,
) -> tuple[Measurement, dict[str, Any]]:
    """``OciGoClient().pull_blob`` of the model's single file in a measured subprocess;
    returns the measurement and the puller's JSON result ({"ok": …, "error": …})."""
    (blob,) = model.files
    spec = {
        "reference": reference,
        "digest": blob.digest,
        "size": blob.size,
        "path": str(dest),
        "ca_file": str(ca_file) if ca_file else None,
    }
    m = _run_puller("oci-client-blob", spec, env=env, work_dir=work_dir, label=label, size=blob.size)
    result: dict[str, Any] = {}
    for line in reversed(m.stdout.strip().splitlines()):
        try:
            result = json.loads(line)
            break
        except ValueError:
            continue
    if not result:
        result = {"ok": False, "error": "crashed", "message": m.failure()}
    return m, result


@dataclass
class _VerifiedPull:
    m: Measurement
    result: dict[str, Any]  # the puller's JSON line
    ok: bool  # pulled, exited cleanly, and the file matches its digest
    error: str | None


def _verified_pull(
    reference: str, model: Model, *, env: dict[str, str], work_dir: Path, label: str
) -> _VerifiedPull:
    """library_blob_pull into an empty directory (dirty pages flushed first), the file then
    hashed in full and removed."""
    (blob,) = model.files
    with _empty_out(work_dir, label) as out:
        dest = out / blob.name
        m, result = library_blob_pull(reference, model, dest, env=env, work_dir=work_dir, label=label)
        problems = verify_outputs({dest: (blob.digest, blob.size)}) if result.get("ok") else []
    ok = bool(result.get("ok")) and m.ok and not problems
    error = None if ok else (result.get("error") or "; ".join(problems) or m.failure())
    return _VerifiedPull(m, result, ok, error)


def big_blob_rss(reference: str, model: Model, *, env: dict[str, str], work_dir: Path) -> dict[str, Any]:
    """Peak RSS while the library pulls one big blob to disk (then verified)."""
    (blob,) = model.files
    pull = _verified_pull(reference, model, env=env, work_dir=work_dir, label="big-blob")
    m, ok = pull.m, pull.ok
    return {
        "blob_bytes": blob.size,
        "ok": ok,
        "verified": ok,
        "error": pull.error,
        "message": pull.result.get("message"),
        "wall_s": m.wall_s,
        "mib_per_s": blob.size / MIB / m.wall_s if ok else None,
        "peak_rss_mib": m.peak_rss_mib,
        "peak_rss_mb": m.peak_rss_kib * 1024 / 1e6,
        "target_rss_mb": RSS_TARGET_MB,
        "meets_target": ok and m.peak_rss_kib * 1024 / 1e6 < RSS_TARGET_MB,
    }


def resume_after_drop(
    registry_url: str,
    repository: str,
    tag: str,
    model: Model,
    *,
    env: dict[str, str],
    work_dir: Path,
) -> dict[str, Any]:
    """Pull the model's single blob through a reverse proxy that drops the connection once,
    at 90 % of the blob; report the body bytes the proxy forwarded per blob byte."""
    (blob,) = model.files
    cut_at = int(blob.size * CUT_FRACTION)
    with DropProxy(registry_url, cut_at) as proxy:
        pull = _verified_pull(
            f"{proxy.host}/{repository}:{tag}", model, env=env, work_dir=work_dir, label="resume"
        )
        forwarded = proxy.bytes_forwarded
        cuts = proxy.cuts
        blob_requests = [
            f"{r.method} {r.range or 'whole'} -> {r.status}, {r.body_bytes} B{' (cut)' if r.cut else ''}"
            for r in proxy.log
            if "/blobs/" in r.path
        ]
    m, ok = pull.m, pull.ok
    ratio = forwarded / blob.size
    return {
        "blob_bytes": blob.size,
        "cut_at": cut_at,
        "cuts_injected": cuts,
        "bytes_forwarded": forwarded,
        "ratio": ratio,
        "target_ratio": RESUME_TARGET_RATIO,
        "ok": ok,
        "error": pull.error,
        "message": None if ok else pull.result.get("message"),
        "meets_target": ok and cuts == 1 and ratio < RESUME_TARGET_RATIO,
        "wall_s": m.wall_s,
        "peak_rss_mib": m.peak_rss_mib,
        "blob_requests": blob_requests[:50],
    }


def latency_hidden(
    registry_url: str,
    repository: str,
    tag: str,
    model: Model,
    *,
    latency_s: float,
    env: dict[str, str],
    work_dir: Path,
) -> dict[str, Any]:
    """Pull the model's single blob (in ranged chunks, the library's defaults) through a proxy
    that sends each response at LATENCY_RATE and answers each blob request at once, then
    through one that answers latency_s late. The extra time, set against what its requests
    would idle if each connection waited out every one in turn, is the share of the latency
    the pull hides."""
    (blob,) = model.files
    runs: dict[str, dict[str, Any]] = {}
    for name, delay in (("prompt", 0.0), ("late", latency_s)):
        with DropProxy(registry_url, None, delay=delay, rate=LATENCY_RATE) as proxy:
            pull = _verified_pull(
                f"{proxy.host}/{repository}:{tag}", model, env=env, work_dir=work_dir, label=f"latency-{name}"
            )
            requests = proxy.blob_gets()
        runs[name] = {"ok": pull.ok, "error": pull.error, "wall_s": pull.m.wall_s, "blob_requests": requests}
    ok = all(r["ok"] for r in runs.values())
    serial = runs["late"]["blob_requests"] / LIBRARY_CONNECTIONS * latency_s
    extra = runs["late"]["wall_s"] - runs["prompt"]["wall_s"]
    return {
        "blob_bytes": blob.size,
        "latency_s": latency_s,
        "rate_per_connection": LATENCY_RATE,
        "ok": ok,
        "runs": runs,
        "extra_s": extra,
        "serial_wait_s": serial,
        "hidden_share": 1 - extra / serial if ok and serial > 0 else None,
    }


def uneven_tail(
    registry_url: str, reference_path: str, model: Model, *, env: dict[str, str], work_dir: Path
) -> dict[str, Any]:
    """Pull the whole model through a proxy that sends each response at LATENCY_RATE, one
    shard fewer at a time than it has, so the last shard starts behind the others. Sets the
    time against what one stream per shard would take: two rounds of the largest shard."""
    shards = [f for f in model.files if f.size >= 16 * MIB]
    concurrency = max(1, len(shards) - 1)
    with _empty_out(work_dir, "tail") as out, DropProxy(registry_url, None, rate=LATENCY_RATE) as proxy:
        spec = {
            "reference": f"{proxy.host}/{reference_path}",
            "out_dir": str(out),
            "concurrency": concurrency,
        }
        m = _run_puller("oci-client", spec, env=env, work_dir=work_dir, label="tail", size=model.total_size)
        problems = verify_outputs({out / f.name: (f.digest, f.size) for f in model.files}) if m.ok else []
        forwarded = proxy.bytes_forwarded
        requests = proxy.blob_gets()
    ok = m.ok and not problems
    one_stream_each = -(-len(shards) // concurrency) * max(f.size for f in shards) / LATENCY_RATE
    return {
        "shards": len(shards),
        "concurrency": concurrency,
        "rate_per_connection": LATENCY_RATE,
        "ok": ok,
        "error": None if ok else ("; ".join(problems) or m.failure()),
        "wall_s": m.wall_s,
        "one_stream_each_s": one_stream_each,
        "blob_requests": requests,
        "forwarded_ratio": forwarded / model.total_size,
    }
