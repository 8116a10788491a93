"""docs/performance.md's tables are what bench/report.py renders from the committed results in
bench/results/published/, and every committed result is shown."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402


def test_page_equals_its_rendering() -> None:
    text = report.PAGE.read_text(encoding="utf-8")
    assert text == report.render_page(text), "docs/performance.md is stale: run `python -m bench.report`"


def test_every_published_result_is_on_the_page() -> None:
    named = set(re.findall(r"<!-- results: (\S+?) -->", report.PAGE.read_text(encoding="utf-8")))
    files = {p.name for p in report.PUBLISHED.glob("*.json")}
    assert files, "no committed results"
    assert named == files


def test_results_are_committable() -> None:
    """bench/results/ is ignored by git, bench/results/published/ is not."""
    ignore = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "/bench/results/*" in ignore
    assert "!/bench/results/published/" in ignore


def test_publish_keeps_the_numbers_and_drops_the_output(tmp_path: Path) -> None:
    full = {
        "benchmark": "push",
        "date": "2026-12-07T00:00:00+00:00",
        "machine": {"cpu_model": "X", "cpus": 2},
        "disk": {},
        "model_bytes": 1 << 20,
        "files": 1,
        "repeat": 1,
        "runs": {"oci-client": [{"ok": True, "wall_s": 1.0, "peak_rss_mib": 30, "output": "/tmp/x …"}]},
        "medians": {"oci-client": 1.0},
        "tables": {"http": "| … |"},
    }
    src = tmp_path / "push.json"
    src.write_text(json.dumps(full))
    dest = report.publish(src, "push-test", published=tmp_path / "published")
    doc = json.loads(dest.read_text())
    assert dest.name == "push-test.json"
    assert "tables" not in doc and "output" not in doc["runs"]["oci-client"][0]
    assert doc["medians"] == {"oci-client": 1.0}
    rendered = report.render_result(doc)
    assert "| oci-client | **1.00** |" not in rendered  # one row: nothing to bold against
    assert "| oci-client | 1.00 | 1 |" in rendered
