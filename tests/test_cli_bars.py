"""The progress bars of ``oci-client pull`` and ``push``: fed progress events made of
snapshots of the shape the Go library's OperationProgress returns, then the call's result,
every file's bar ends at 100 % and the total counts bytes for transfers of any size."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest
from oci_testing import LocalRegistry, push_model
from tqdm import tqdm

from oci_client import PulledModel, TransferProgress
from oci_client.cli import _FileBars

pytestmark = pytest.mark.usefixtures("docker_config")

SMALL, BIG = 5, 40 * 1024 * 1024


def blob(label: str, done: int, total: int) -> dict[str, Any]:
    return {
        "label": label,
        "bytes_done": done,
        "bytes_total": total,
        "done": done == total,
        "path": "",
        "present": False,
    }


def snapshot(*blobs: dict[str, Any]) -> TransferProgress:
    return TransferProgress.from_snapshot(
        {
            "running": True,
            "bytes_done": sum(b["bytes_done"] for b in blobs),
            "bytes_total": sum(b["bytes_total"] for b in blobs),
            "blobs_done": sum(1 for b in blobs if b.get("done")),
            "blobs_total": len(blobs),
            "blobs": list(blobs),
        }
    )


def pull_result(sizes: dict[str, int], downloaded: int, files: list[str] | None = None) -> PulledModel:
    return PulledModel.from_result(
        {
            "path": "/cache/models/snapshots/x",
            "reference": "localhost:5000/org/model@sha256:" + "0" * 64,
            "digest": "sha256:" + "0" * 64,
            "files": list(sizes) if files is None else files,
            "blobs_downloaded": 1 if downloaded else 0,
            "bytes_downloaded": downloaded,
            "model": {
                "format": "modelpack",
                "files": [
                    {
                        "path": name,
                        "size": size,
                        "kind": "weight",
                        "digest": "sha256:" + "1" * 64,
                        "media_type": "x",
                        "archive": "",
                        "extract_to": "",
                    }
                    for name, size in sizes.items()
                ],
                "total_size": sum(sizes.values()),
            },
        }
    )


def bars() -> tuple[_FileBars, io.StringIO]:
    out = io.StringIO()
    return _FileBars(lambda **kw: tqdm(disable=False, **kw), out), out


def total_line(out: io.StringIO) -> str:
    return [line for line in re.split(r"[\r\n]", out.getvalue()) if line.startswith("total")][-1]


def test_a_small_file_done_between_two_snapshots_ends_at_100_percent() -> None:
    b, out = bars()
    b(snapshot(blob("config", 0, 304), blob("a.txt", 0, SMALL), blob("c.bin", 1 << 20, BIG)))
    # a.txt finished and c.bin went on after the last snapshot: only the result says so.
    b.finish_pull(pull_result({"a.txt": SMALL, "c.bin": BIG}, downloaded=304 + SMALL + BIG))
    small, big = b.bars["a.txt"], b.bars["c.bin"]
    assert small.n == small.total == SMALL
    assert big.n == big.total == BIG
    assert b.total.n == b.total.total == SMALL + BIG
    b.close()
    assert "100%" in out.getvalue() and "5.00/5.00" in out.getvalue()


def test_a_file_found_in_place_ends_at_100_percent_and_the_total_says_so() -> None:
    b, out = bars()
    size = 12 * 1024
    b(
        snapshot(
            {**blob("config", 304, 304), "done": True}, {**blob("w.bin", 0, 0), "done": True, "present": True}
        )
    )
    assert b.bars["w.bin"].n == 0  # no bytes moved: the snapshot knows no size
    b.finish_pull(pull_result({"w.bin": size}, downloaded=0))
    bar = b.bars["w.bin"]
    assert bar.n == bar.total == size
    assert b.total.n == b.total.total == size
    line = total_line(out)
    assert "100%" in line and "12.0k/12.0k" in line
    assert "all found in place" in line and "0.00B" not in line
    b.close()


def test_a_partly_cached_pull_says_how_much_was_downloaded_and_how_much_found() -> None:
    b, out = bars()
    b(snapshot(blob("a.txt", SMALL, SMALL), {**blob("c.bin", 0, 0), "done": True, "present": True}))
    b.finish_pull(pull_result({"a.txt": SMALL, "c.bin": BIG}, downloaded=SMALL))
    assert b.total.n == b.total.total == SMALL + BIG
    assert "5.00B downloaded, 40.0MB found in place" in total_line(out)
    b.close()


def test_a_pull_faster_than_one_snapshot_still_fills_every_bar() -> None:
    b, out = bars()
    sizes = {"config.json": 17, "tokenizer.json": 2, "LICENSE": 4}
    b.finish_pull(pull_result(sizes, downloaded=sum(sizes.values())))
    for name, size in sizes.items():
        assert b.bars[name].n == b.bars[name].total == size, name
    assert b.total.n == b.total.total == 23
    line = total_line(out)
    assert (
        "23.0/23.0" in line and "0.00B" not in line and "0.00/" not in line and "found in place" not in line
    )
    b.close()


def test_only_files_the_pull_made_ready_get_a_bar() -> None:
    b, _ = bars()
    result = pull_result({"a.txt": SMALL, "skip.bin": BIG}, downloaded=SMALL, files=["a.txt"])  # --exclude
    b.finish_pull(result)
    assert set(b.bars) == {"a.txt"}
    assert b.total.n == b.total.total == SMALL
    b.close()


def test_a_push_ends_with_every_bar_full_from_its_snapshots() -> None:
    b, _ = bars()
    b(snapshot(blob("c.bin", 1 << 20, BIG), blob("a.txt", 0, SMALL), blob("config", 0, 227)))
    b.finish_push()
    for label in ("c.bin", "a.txt", "config"):
        assert b.bars[label].n == b.bars[label].total > 0, label
    assert b.total.n == b.total.total == BIG + SMALL + 227
    b.close()


def test_a_failed_call_leaves_the_bars_where_they_were() -> None:
    b, _ = bars()
    b(snapshot(blob("c.bin", 1 << 20, BIG)))
    b.close()
    assert b.bars["c.bin"].n == 1 << 20 < BIG


def test_pull_on_a_terminal_draws_every_file_to_100_percent(
    plain_registry: LocalRegistry, tmp_path: Path
) -> None:
    files = {"a.txt": b"hello", "b.bin": os.urandom(12 * 1024)}
    pushed = push_model(plain_registry, "cli/bars", "v1", files)
    for attempt in ("kB downloaded", "all found in place"):
        screen = _on_a_terminal(
            sys.executable, "-m", "oci_client", "pull", pushed.reference, "--cache-dir", str(tmp_path)
        )
        for name in files:
            assert re.search(rf"{re.escape(name)}: 100%", screen), (attempt, name, screen)
        totals = [line for line in re.split(r"[\r\n]", screen) if line.lstrip().startswith("total")]
        assert totals and "100%" in totals[-1] and "12.0k/12.0k" in totals[-1], (attempt, screen)
        assert "0.00B" not in totals[-1] and attempt in totals[-1], (attempt, screen)


def test_cache_verify_on_a_terminal_draws_a_bar_to_its_end(
    plain_registry: LocalRegistry, tmp_path: Path
) -> None:
    files = {"a.txt": b"hello", "b.bin": os.urandom(12 * 1024)}
    pushed = push_model(plain_registry, "cli/verifybar", "v1", files)
    cli = (sys.executable, "-m", "oci_client")
    subprocess.run([*cli, "pull", "-q", pushed.reference, "--cache-dir", str(tmp_path)], check=True)
    screen = _on_a_terminal(*cli, "cache", "verify", "--cache-dir", str(tmp_path))
    bar = [line for line in re.split(r"[\r\n]", screen) if line.lstrip().startswith("verify")]
    # Every blob, the config too: done equals total, and it is more than the weights.
    done = re.search(r"100%.*\| ([0-9.]+)k/([0-9.]+)k", bar[-1]) if bar else None
    assert done and done[1] == done[2] and float(done[1]) >= 12.0, screen


def _on_a_terminal(*argv: str) -> str:
    """Run argv with stderr on a pseudo-terminal (the bars are drawn only there); its text."""
    controller, terminal = pty.openpty()
    # A fresh pty is 0 columns wide, and tqdm draws nothing into no width.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=terminal)
    finally:
        os.close(terminal)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(controller)
    assert proc.stdout is not None
    proc.stdout.read()
    assert proc.wait(timeout=60) == 0, b"".join(chunks)
    return b"".join(chunks).decode(errors="replace")
