"""A slower disk on demand: cap the write rate of the disk under a directory with the kernel's
block throttle, so one machine can show how a design fares where the disk, not the CPU, is
the limit (machines of this kind differ several times in disk speed, and rankings flip).

cgroup v1 (``blkio.throttle.write_bps_device``) throttles the root group, which holds the
kernel's flusher threads too, so page-cache write-back is capped as well as O_DIRECT and
fsync. cgroup v2 has no limit on the root group; there the current group's ``io.max`` is
used, and write-back is capped only for the pages its processes dirtied. Needs root.

Investigation-only: an emulation knob that served single investigations (bench/emulation.md);
not needed to run the benchmarks or to reproduce docs/performance.md.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_V1 = Path("/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device")


@dataclass(frozen=True)
class Throttle:
    device: str  # MAJ:MIN of the whole disk
    mb_per_s: float
    control: str  # the cgroup file written


def disk_of(path: Path) -> str:
    """MAJ:MIN of the whole disk holding ``path`` (a partition's parent disk)."""
    dev = os.stat(path).st_dev
    number = f"{os.major(dev)}:{os.minor(dev)}"
    sysfs = Path("/sys/dev/block") / number
    if not sysfs.exists():
        raise SystemExit(f"{path} is on {number}, no block device (tmpfs, overlay?): cannot throttle it")
    if (sysfs / "partition").exists():
        number = (sysfs.resolve().parent / "dev").read_text().strip()
    return number


def _v2_control() -> Path | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                control = Path("/sys/fs/cgroup") / line[3:].lstrip("/") / "io.max"
                return control if control.exists() else None
    return None


@contextlib.contextmanager
def throttled_writes(path: Path, mb_per_s: float | None) -> Iterator[Throttle | None]:
    """Writes to the disk under ``path`` capped at ``mb_per_s`` (MB/s) while inside; restored
    on the way out, however it is left. None: nothing is changed."""
    if not mb_per_s:
        yield None
        return
    device, rate = disk_of(path), int(mb_per_s * 1e6)
    if _V1.exists():
        control, on, off = _V1, f"{device} {rate}", f"{device} 0"
    elif (v2 := _v2_control()) is not None:
        control, on, off = v2, f"{device} wbps={rate}", f"{device} wbps=max"
    else:
        raise SystemExit("no block throttle here (neither cgroup v1 blkio nor a v2 io.max)")
    try:
        control.write_text(on + "\n")
    except OSError as exc:
        raise SystemExit(f"cannot throttle writes to {device} ({control}): {exc.strerror or exc}") from None
    try:
        yield Throttle(device, mb_per_s, str(control))
    finally:
        os.sync()  # the dirty pages go at the capped rate, before the cap is lifted
        control.write_text(off + "\n")
