"""The soak, short (bench/soak.py): pulls and pushes at once through random faults and
cancellations leave no wrong file, no partial file, no bad cache blob, and give back every
file descriptor and goroutine they took."""

from __future__ import annotations

from pathlib import Path

from bench.soak import FD_TOLERANCE, GOROUTINE_TOLERANCE, run, summary

SECONDS = 30.0
SEED = 24  # fixed: a failure replays with python -m bench.soak --duration 30 --seed 24


def test_soak(tmp_path: Path) -> None:
    r = run(SECONDS, SEED, threads=4, work=tmp_path)
    print(summary(r))
    # It did what it is for: calls of both kinds succeeded, failed, and were cancelled.
    assert r["pulls_ok"] > 20 and r["pushes_ok"] > 5, r
    assert r["pulls"] > r["pulls_ok"] and r["cancelled"] > 0 and r["faults"] > 50, r
    assert r["wrong_files"] == 0 and r["partial_files"] == 0 and r["bad_cache_blobs"] == 0, r["problems"]
    assert r["unexpected"] == [] and r["problems"] == [], r["problems"]
    b, a = r["before"], r["after"]
    assert a["fds"] <= b["fds"] + FD_TOLERANCE, (b["fd_targets"], a["fd_targets"])
    assert a["goroutines"] <= b["goroutines"] + GOROUTINE_TOLERANCE, r.get("goroutine_stacks")
    assert a["operations"] == b["operations"], (b, a)
