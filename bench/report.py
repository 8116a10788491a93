"""Results: per-run records, the summary per tool, the markdown tables and the JSON file; and
the performance page, whose tables are rendered from the committed result files.

    python -m bench.report                    # rewrite docs/performance.md's tables
    python -m bench.report --check            # exit 1 if the page differs from its results
    python -m bench.report --publish bench/results/models.json models-DATE-MACHINE
                                              # commit-ready copy in bench/results/published/

A benchmark writes its full result (every run, commands, tool output) into bench/results/,
which git ignores. ``--publish`` copies it into ``bench/results/published/NAME.json`` without
the tools' output and commands, for committing. In docs/performance.md a table is a pair of
markers, ``<!-- results: NAME.json -->`` and ``<!-- end results -->``, and what lies between
them is rendered from that file; the prose around them is written by hand.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024 * 1024  # as bench.model has it; not imported, so that the page renders without oci_testing

__all__ = [
    "BASELINE",
    "PAGE",
    "PUBLISHED",
    "RunResult",
    "ToolResult",
    "markdown_table",
    "publish",
    "render_page",
    "render_result",
    "write_json",
]

BASELINE = "curl"


@dataclass
class RunResult:
    """One measured pull."""

    wall_s: float
    peak_rss_mib: float
    exit_code: int
    verified: bool
    problems: list[str] = field(default_factory=list)
    output: str = ""  # the tool's one-line JSON result (Python tools) or stderr tail
    cpu_busy_before: float | None = None  # all CPUs, in the idle half second before the run

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.verified


@dataclass
class ToolResult:
    """All runs of one tool over one transport. Wall time: median over the runs; peak
    RSS: the largest over the runs."""

    tool: str
    transport: str
    total_bytes: int
    status: str = "ok"  # ok | failed | skipped
    reason: str = ""
    command: list[str] = field(default_factory=list)
    runs: list[RunResult] = field(default_factory=list)

    @property
    def wall_s(self) -> float | None:
        if self.status != "ok" or not self.runs:
            return None
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def best_wall_s(self) -> float | None:
        if self.status != "ok" or not self.runs:
            return None
        return min(r.wall_s for r in self.runs)

    @property
    def mib_per_s(self) -> float | None:
        wall = self.wall_s
        return self.total_bytes / MIB / wall if wall else None

    @property
    def peak_rss_mib(self) -> float | None:
        return max(r.peak_rss_mib for r in self.runs) if self.runs else None

    @property
    def verified(self) -> bool:
        return bool(self.runs) and all(r.verified for r in self.runs)

    def to_json(self, baseline_wall: float | None) -> dict[str, Any]:
        doc = asdict(self)
        doc.update(
            wall_s=self.wall_s,
            best_wall_s=self.best_wall_s,
            mib_per_s=self.mib_per_s,
            peak_rss_mib=self.peak_rss_mib,
            verified=self.verified,
            ratio_to_curl=_ratio(baseline_wall, self.wall_s),
        )
        # The command may name the spec files but never holds a password; keep it readable.
        doc["command"] = " ".join(self.command)[:2000]
        return doc


def _ratio(baseline: float | None, wall: float | None) -> float | None:
    return baseline / wall if baseline and wall else None


def baseline_wall(results: list[ToolResult]) -> float | None:
    for r in results:
        if r.tool == BASELINE:
            return r.wall_s
    return None


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(results: list[ToolResult]) -> str:
    """One markdown table: tool, wall s, MiB/s, peak RSS MiB, ratio to curl, verified."""
    base = baseline_wall(results)
    lines = [
        "| tool | wall s | MiB/s | peak RSS MiB | ratio to curl | verified |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        if r.status == "skipped":
            lines.append(f"| {r.tool} | skipped ({r.reason}) | | | | |")
            continue
        if r.status == "failed":
            wall = statistics.median(x.wall_s for x in r.runs) if r.runs else None
            rss = _fmt(r.peak_rss_mib, 0)
            lines.append(f"| {r.tool} | FAILED ({r.reason}) after {_fmt(wall, 2)} s | | {rss} | | no |")
            continue
        lines.append(
            f"| {r.tool} | {_fmt(r.wall_s, 2)} | {_fmt(r.mib_per_s, 0)} | {_fmt(r.peak_rss_mib, 0)} "
            f"| {_fmt(_ratio(base, r.wall_s), 2)} | {'yes' if r.verified else 'no'} |"
        )
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


# --- the performance page -------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = REPO / "bench" / "results" / "published"
PAGE = REPO / "docs" / "performance.md"
_BLOCK = re.compile(r"(<!-- results: (\S+?) -->\n).*?(<!-- end results -->)", re.S)
# What a published copy leaves out: the tools' output, command lines and rendered tables, which
# hold paths of the machine and are in the full result.
_DROPPED = frozenset({"output", "command", "tables", "printed", "stdout", "stderr"})

_MODEL_LABELS = {
    "oci-client": "oci-client (defaults)",
    "oci-client-sync": 'oci-client `durability="sync"`',
    "oci-client-direct": "oci-client `direct_io=True`",
    "curl": "curl (no verification)",
}
_TRANSPORT_LABELS = {"http": "HTTP", "https": "HTTPS + Basic"}


def _kind(doc: dict[str, Any]) -> str:
    if "benchmark" in doc:
        return str(doc["benchmark"])
    if "medians" in doc:
        return "push"
    if "disk" in doc and "transports" in doc:
        return "models"
    return "pull"


def _bold_min(values: list[float | None], digits: int) -> list[str]:
    present = [v for v in values if v is not None]
    best = min(present) if present else None
    return [
        "-" if v is None else (f"**{v:.{digits}f}**" if v == best and len(present) > 1 else f"{v:.{digits}f}")
        for v in values
    ]


def _machine_line(doc: dict[str, Any]) -> str:
    m = doc.get("machine", {})
    parts = [m.get("cpu_model") or "CPU model not recorded", f"{m.get('cpus')} vCPUs"]
    if m.get("memory_gib"):
        parts.append(f"{m['memory_gib']} GiB")
    if m.get("kernel"):
        parts.append(f"kernel {m['kernel']}")
    line = "Machine: " + ", ".join(parts)
    disk = doc.get("disk") or {}
    rates = [(label, (disk.get(key) or {}).get("mb_per_s")) for key, label in _DISK_LABELS]
    if any(r is not None for _, r in rates):
        line += "; disk (dd): " + ", ".join(f"{label} {_fmt(r, 0)} MB/s" for label, r in rates)
    when = doc.get("started") or doc.get("date") or ""
    line += f"; {str(when)[:10]}"
    if doc.get("commit"):
        line += f", library at {doc['commit']}"
    return line + "."


_DISK_LABELS = (("o_direct", "O_DIRECT"), ("fsync", "write + fsync"), ("buffered", "buffered"))


def _seeded(doc: dict[str, Any]) -> list[str]:
    return (
        ["", "_Medians as first reported; the per-run records of this run were not kept._"]
        if doc.get("seeded")
        else []
    )


def _ms(seconds: Any) -> str:
    return f"{float(seconds) * 1000:.1f} ms"


def _render_models(doc: dict[str, Any]) -> list[str]:
    out: list[str] = []
    settings = doc.get("settings", {})
    for name, transport in doc["transports"].items():
        rows = [r for r in transport["tools"] if r.get("status", "ok") == "ok"]
        rss = any(r.get("peak_rss_mib") is not None for r in rows)
        head = "| tool | cold pull s | read-back s | pull + read-back s |" + (
            " peak RSS MiB |" if rss else ""
        )
        out += [head, "| --- | ---: | ---: | ---: |" + (" ---: |" if rss else "")]
        cols = [_bold_min([r.get(k) for r in rows], 2) for k in ("pull_s", "read_back_s", "pull_read_back_s")]
        for i, r in enumerate(rows):
            cells = [_MODEL_LABELS.get(r["tool"], r["tool"]), *(c[i] for c in cols)]
            if rss:
                cells.append(_fmt(r.get("peak_rss_mib"), 0))
            out.append("| " + " | ".join(cells) + " |")
        for r in transport["tools"]:
            if r.get("status", "ok") != "ok":
                out.append(
                    f"| {r['tool']} | {r['status']} ({r.get('reason', '')}) | | |" + (" |" if rss else "")
                )
        notes = []
        if name != "http":
            notes.append(f"Over {_TRANSPORT_LABELS.get(name, name)}.")
        hit = transport.get("cache_hit") or {}
        offline = (doc.get("offline") or {}).get(name) or {}
        if hit.get("library_s") is not None:
            notes.append(f"Cache hit by tag: {_ms(hit['library_s'])} of library time.")
        if offline.get("library_s") is not None:
            notes.append(f"Offline digest hit: {_ms(offline['library_s'])}.")
        out += ["", " ".join(notes)] if notes else []
    extra = []
    if settings.get("flow_mb_per_s"):
        extra.append(
            f"each connection from the registry held to {settings['flow_mb_per_s']} MB/s (`--flow-mbps`)"
        )
    if (settings.get("freed_memory_held") or {}).get("min_free_ms"):
        ms = settings["freed_memory_held"]["min_free_ms"]
        extra.append(f"freed memory held {ms / 1000:g} s (`--hold-freed-ms {ms}`)")
    if (settings.get("write_throttle") or {}).get("mb_per_s"):
        extra.append(
            f"writes capped at {settings['write_throttle']['mb_per_s']:g} MB/s (`--throttle-write-mbps`)"
        )
    line = _machine_line(doc)
    if extra:
        line = line[:-1] + "; " + ", ".join(extra) + "."
    repeat = settings.get("repeat")
    out += ["", f"Median of {repeat} runs, wall seconds. {line}" if repeat else line]
    return out


def _render_pull(doc: dict[str, Any]) -> list[str]:
    transports = list(doc["transports"].items())
    tools: list[str] = []
    for _, t in transports:
        tools += [r["tool"] for r in t["tools"] if r["tool"] not in tools]
    head = "| tool |" + "".join(f" {_TRANSPORT_LABELS.get(n, n)}: wall s | vs curl |" for n, _ in transports)
    out = [head + " peak RSS MiB |", "| --- |" + " ---: | ---: |" * len(transports) + " ---: |"]
    by_transport = [{r["tool"]: r for r in t["tools"]} for _, t in transports]
    walls = [
        _bold_min(
            [
                (rows.get(tool) or {}).get("wall_s") if (rows.get(tool) or {}).get("status") == "ok" else None
                for tool in tools
            ],
            2,
        )
        for rows in by_transport
    ]
    for i, tool in enumerate(tools):
        cells = [tool]
        rss: list[float] = []
        for rows, wall in zip(by_transport, walls, strict=True):
            r = rows.get(tool) or {"status": "skipped", "reason": "not run"}
            if r.get("status") != "ok":
                cells += [f"{r.get('status')}", ""]
                continue
            cells += [wall[i], _fmt(r.get("ratio_to_curl"), 2)]
            if r.get("peak_rss_mib") is not None:
                rss.append(r["peak_rss_mib"])
        cells.append(_fmt(max(rss), 0) if rss else "-")
        out.append("| " + " | ".join(cells) + " |")
    notes = []
    if (floors := doc.get("rss_floors")) and floors.get("oci_client_loaded_rss_mib") is not None:
        notes.append(
            f"RSS of Python with oci_client loaded: {_fmt(floors['oci_client_loaded_rss_mib'], 0)} MiB."
        )
    if (big := doc.get("big_blob")) and big.get("ok"):
        notes.append(
            f"A {big['blob_bytes'] / (1 << 30):.0f} GiB blob: {_fmt(big.get('wall_s'), 1)} s, "
            f"peak RSS {_fmt(big.get('peak_rss_mib'), 0)} MiB."
        )
    if (res := doc.get("resume")) and res.get("ok"):
        notes.append(
            f"A connection dropped at {res['cut_at']:.0%} of a {res['blob_bytes'] / (1 << 30):.0f} GiB blob: "
            f"{res['ratio']:.3f} x the blob crossed."
        )
    if (tail := doc.get("tail")) and tail.get("ok"):
        notes.append(
            f"Each response paced at {tail['rate_per_connection']}, {tail['concurrency']} of "
            f"{tail['shards']} shards at a time: {tail['wall_s']:.1f} s, against "
            f"{tail['one_stream_each_s']:.1f} s for one stream per shard."
        )
    settings = doc.get("settings", {})
    out += ["", " ".join(notes)] if notes else []
    out += [
        "",
        f"Median of {settings.get('repeat')} runs, wall seconds; vs curl: curl's time / the tool's. "
        + _machine_line(doc),
    ]
    return out


def _render_push(doc: dict[str, Any]) -> list[str]:
    medians: dict[str, float | None] = doc["medians"]
    crane = medians.get("crane")
    tools = list(medians)
    walls = _bold_min([medians[t] for t in tools], 2)
    out = ["| tool | push s | MiB/s | vs crane | peak RSS MiB |", "| --- | ---: | ---: | ---: | ---: |"]
    for tool, wall in zip(tools, walls, strict=True):
        runs = doc.get("runs", {}).get(tool) or []
        rss = (
            statistics.median(r["peak_rss_mib"] for r in runs)
            if runs
            else doc.get("peak_rss_mib", {}).get(tool)
        )
        seconds = medians[tool]
        mibs = doc["model_bytes"] / MIB / seconds if seconds else None
        out.append(
            f"| {tool} | {wall} | {_fmt(mibs, 0)} | {_fmt(_ratio(crane, seconds), 2)} | {_fmt(rss, 0)} |"
        )
    if rp := doc.get("repush"):
        out += [
            "",
            f"Re-push of the model the registry has: {rp['repush_s']:.2f} s with the digests remembered, "
            f"{rp['repush_no_digests_s']:.2f} s hashing every file again.",
        ]
    out += [
        "",
        f"Median of {doc.get('repeat')} runs, wall seconds; vs crane: crane's time / the tool's. "
        + _machine_line(doc),
    ]
    return out


def _render_nodes(doc: dict[str, Any]) -> list[str]:
    out = [
        "| nodes | mode | origin sent MiB | copies of the model | last node done s | CPU per node s |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in doc["runs"]:
        out.append(
            f"| {r['nodes']} | {r['mode']} | {r['origin_bytes'] / MIB:.0f} | {r['origin_copies']:.2f} | "
            f"{r['last_node_s']:.2f} | {r['node_cpu_median_s']:.2f} |"
        )
    size = doc["model_bytes"] / MIB
    out += [
        "",
        f"One run each; a {size:.0f} MiB model of {doc['files']} files; CPU per node: the median of "
        "the nodes' process CPU time for the pull. " + _machine_line(doc),
    ]
    return out


def render_result(doc: dict[str, Any]) -> str:
    """The markdown the performance page shows for one published result."""
    kind = _kind(doc)
    renderers = {"pull": _render_pull, "models": _render_models, "push": _render_push, "nodes": _render_nodes}
    render = renderers[kind]
    return "\n".join([*render(doc), *_seeded(doc)]) + "\n"


def render_page(text: str, published: Path = PUBLISHED) -> str:
    """text with every results block rendered anew from its file in published."""

    def block(m: re.Match[str]) -> str:
        path = published / m.group(2)
        if not path.is_file():
            raise SystemExit(f"docs/performance.md names {m.group(2)}, which is not in {published}")
        doc = json.loads(path.read_text(encoding="utf-8"))
        return f"{m.group(1)}\n{render_result(doc)}\n{m.group(3)}"

    return _BLOCK.sub(block, text)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _DROPPED}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def publish(source: Path, name: str, published: Path = PUBLISHED) -> Path:
    """A commit-ready copy of a benchmark's result: bench/results/published/NAME.json."""
    doc = _strip(json.loads(source.read_text(encoding="utf-8")))
    doc.setdefault("benchmark", _kind(doc))
    dest = published / (name if name.endswith(".json") else name + ".json")
    write_json(dest, doc)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/performance.md is stale")
    ap.add_argument("--publish", nargs=2, metavar=("RESULT", "NAME"), help="copy a result for committing")
    args = ap.parse_args(argv)
    if args.publish:
        dest = publish(Path(args.publish[0]), args.publish[1])
        print(
            f"wrote {dest.relative_to(REPO)}; name it in docs/performance.md, then run python -m bench.report"
        )
        return 0
    text = PAGE.read_text(encoding="utf-8")
    want = render_page(text)
    if want == text:
        return 0
    if args.check:
        print("docs/performance.md is stale: run `python -m bench.report`", file=sys.stderr)
        return 1
    PAGE.write_text(want, encoding="utf-8")
    print("wrote docs/performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
