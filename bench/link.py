"""A far registry on demand: cap each TCP connection from a local registry at a rate, in the
kernel, as a CDN edge or a registry across a WAN caps one stream, while any number of streams
together still go as fast as loopback does. Tools that open one connection at a time (curl)
and tools that spread a blob over several (ranged chunks) then rank as they would behind such
a registry, which plain loopback, where one stream is as fast as the CPU, cannot show.

``tc`` on ``lo``: an HTB qdisc whose u32 filter hashes the client's port of every packet the
registry sends (source port = the registry's) into 256 buckets, each an HTB class of its own
at the rate; everything else goes unshaped. Two connections share a rate only if their ports
fall in the same bucket (the filter hashes bits 1-8 of the port, as Linux hands out even
ports to connect()). This needs no CPU of the benchmark's own, unlike a proxy in Python
(bench/dropproxy.py), which needs most of a core at 300 MB/s on two vCPUs. Needs root and
the kernel's HTB and u32 (``CONFIG_NET_SCH_HTB``, ``CONFIG_NET_CLS_U32``); fq's ``maxrate``
would do the same in one line, but kernels of this kind lack it.

Investigation-only: an emulation knob that served single investigations (bench/emulation.md);
not needed to run the benchmarks or to reproduce docs/performance.md.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

DEV = "lo"
BUCKETS = 256
BURST = "256k"  # above loopback's 64 KiB segments, so a class can send one at all


@dataclass(frozen=True)
class FlowCap:
    port: int
    mb_per_s: float
    buckets: int = BUCKETS


def _tc(*args: str) -> None:
    done = subprocess.run(["tc", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tc {' '.join(args)}: {done.stderr.strip() or done.returncode}")


def _commands(port: int, mb_per_s: float) -> list[list[str]]:
    rate = f"{int(mb_per_s * 8)}mbit"
    at = f"dev {DEV} parent 1:"
    cmds = [
        f"qdisc add dev {DEV} root handle 1: htb default 1".split(),
        f"class add {at} classid 1:1 htb rate 100gbit".split(),
    ]
    for i in range(BUCKETS):
        cmds.append(
            f"class add {at} classid 1:{0x100 + i:x} htb rate {rate} ceil {rate} "
            f"burst {BURST} cburst {BURST}".split()
        )
    cmds.append(f"filter add {at} prio 1 handle 2: protocol ip u32 divisor {BUCKETS}".split())
    for i in range(BUCKETS):
        cmds.append(
            f"filter add {at} prio 1 protocol ip u32 ht 2:{i:x}: match ip sport {port} 0xffff "
            f"flowid 1:{0x100 + i:x}".split()
        )
    # The 32-bit word at offset 20 of a TCP/IPv4 packet without IP options is source port <<
    # 16 | destination port: hash the destination (the client's) port, bits 1-8.
    cmds.append(
        f"filter add {at} prio 1 protocol ip u32 ht 800:: match ip protocol 6 0xff match ip sport {port} "
        "0xffff hashkey mask 0x000001fe at 20 link 2:".split()
    )
    return cmds


@contextlib.contextmanager
def capped_flows(port: int, mb_per_s: float | None) -> Iterator[FlowCap | None]:
    """Each connection the registry on ``port`` answers is capped at ``mb_per_s`` MB/s while
    inside; ``lo`` is restored on the way out, however it is left. None: nothing changes."""
    if not mb_per_s:
        yield None
        return
    try:
        for cmd in _commands(port, mb_per_s):
            _tc(*cmd)
    except (OSError, RuntimeError) as exc:
        with contextlib.suppress(OSError, RuntimeError):
            _tc("qdisc", "del", "dev", DEV, "root")
        raise SystemExit(f"cannot cap connections on {DEV} (needs root, HTB and u32): {exc}") from None
    try:
        yield FlowCap(port, mb_per_s)
    finally:
        _tc("qdisc", "del", "dev", DEV, "root")
