"""Results: per-run records, the summary per tool, the markdown tables and the JSON file."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .model import MIB

__all__ = ["BASELINE", "RunResult", "ToolResult", "markdown_table", "write_json"]

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
