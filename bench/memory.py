"""How this VM hands freed memory back to its host, and a switch to make it wait.

A guest with virtio-balloon free page reporting tells the host about the pages it frees; the
host takes them back, and the next time the guest touches such a page (the page cache filling
up during a pull, a process's first write to new memory) the host must fault it in again. On
the VMs of this kind the reporting module waits ``min_free_ms`` after a page is freed (0: not
at all) and fresh memory then comes at about 1 GB/s, a cost bare metal and most GPU servers do
not have: every benchmark drops the page cache, frees what its last run used, and the next run
pays for all of it again, more or less depending on how much the host already took back.

``held_freed_memory(ms)`` sets ``min_free_ms`` for a run and restores it after, so that memory
freed by one run is still the guest's when the next one starts, as on a machine without
reporting. Needs root; the benchmarks record the setting with their results.

Investigation-only: an emulation knob that served single investigations (bench/emulation.md);
not needed to run the benchmarks or to reproduce docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_PARAMS = Path("/sys/module/page_reporting/parameters")


def add_hold_option(parser: argparse.ArgumentParser) -> None:
    """``--hold-freed-ms N``, for :func:`held_freed_memory`."""
    parser.add_argument(
        "--hold-freed-ms",
        type=int,
        default=None,
        help="keep memory the VM frees this many ms before it goes back to the host (free page "
        "reporting's min_free_ms), as on a machine without reporting; needs root; see bench/memory.py",
    )


def page_reporting() -> dict[str, Any] | None:
    """This kernel's free page reporting settings (None: it reports nothing to a host)."""
    if not _PARAMS.is_dir():
        return None
    doc: dict[str, Any] = {}
    for p in sorted(_PARAMS.iterdir()):
        with contextlib.suppress(OSError):
            text = p.read_text().strip()
            doc[p.name] = int(text) if text.isdigit() else text
    return doc


@contextlib.contextmanager
def held_freed_memory(ms: int | None) -> Iterator[dict[str, Any] | None]:
    """Freed pages kept in the guest ``ms`` milliseconds before they are reported, while
    inside; the previous setting restored on the way out. None or 0: nothing is changed."""
    control = _PARAMS / "min_free_ms"
    if not ms:
        yield None
        return
    if not control.exists():
        raise SystemExit(f"{control} is missing: this kernel has no such free page reporting to hold back")
    before = control.read_text().strip()
    try:
        control.write_text(f"{int(ms)}\n")
    except OSError as exc:
        raise SystemExit(f"cannot set {control}: {exc.strerror or exc} (needs root)") from None
    try:
        yield {"min_free_ms": int(ms), "was": int(before) if before.isdigit() else before}
    finally:
        control.write_text(before + "\n")


def reporting_line(reporting: dict[str, Any] | None, held: dict[str, Any] | None) -> str:
    """One line for a results summary: what the VM did with freed memory during the run."""
    if reporting is None:
        return "Freed memory: no free page reporting (it stays with this machine)."
    if held is not None:
        return (
            f"NOTE: freed memory held {held['min_free_ms']} ms before it went back to the host "
            f"(free page reporting's min_free_ms, normally {held['was']}; bench/memory.py)."
        )
    return (
        f"Freed memory goes back to the host {reporting.get('min_free_ms', '?')} ms after it is freed "
        "(free page reporting; fresh memory then faults in at the host: bench/memory.py)."
    )
