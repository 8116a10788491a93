"""What ``on_event=`` hears while a pull or a push runs: :class:`TransferProgress`, the
state of the whole call a few times a second (the bytes moved and, per file, its own bytes,
whether it was found in place and, once verified, where its blob is), and the typed events of
:mod:`oci_client.events` (a file found in place or verified, a request retried, a redirect, a
range refused, connections changed, a lease waited on or broken), each exactly once, in order.

The command line's bars are built on the first, the vLLM loader's shard-by-shard hand-off on
the second: a progress snapshot may miss a file verified just before the call returns, an
event never does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from . import events

__all__ = ["Event", "EventCallback", "FileProgress", "TransferProgress"]


@dataclass(frozen=True)
class FileProgress:
    """One file of a pull or push while the call runs.

    ``name`` is the file's path in the model (for a push, in the directory;
    the config blob is ``"config"``). ``found_in_place`` is a file that moved
    no bytes: its blob was in the cache, or another process fetched it
    meanwhile; its ``bytes_total`` is then 0. ``blob_path``, on a pull, is
    where the verified blob lies once it does (the cache's copy, or the file
    itself in ``local_dir``): a caller may read it from then on, while the
    rest still downloads."""

    name: str
    bytes_done: int
    bytes_total: int
    done: bool
    found_in_place: bool = False
    blob_path: Path | None = None


@dataclass(frozen=True)
class TransferProgress:
    """The state of a pull or a push: bytes and files so far. Counters never
    decrease within one call; ``bytes_total`` grows as sizes become known."""

    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int
    files: tuple[FileProgress, ...] = ()

    @classmethod
    def from_snapshot(cls, s: dict[str, Any]) -> TransferProgress:
        return cls(
            bytes_done=int(s["bytes_done"]),
            bytes_total=int(s["bytes_total"]),
            files_done=int(s["blobs_done"]),
            files_total=int(s["blobs_total"]),
            files=tuple(
                FileProgress(
                    name=str(b["label"]),
                    bytes_done=int(b["bytes_done"]),
                    bytes_total=int(b["bytes_total"]),
                    done=bool(b["done"]),
                    found_in_place=bool(b["present"]),
                    blob_path=Path(b["path"]) if b["path"] else None,
                )
                for b in s["blobs"] or ()
            ),
        )


#: Everything ``on_event=`` may be called with: a :class:`TransferProgress`, or one of the
#: typed events (subclasses of :class:`oci_client.events.Event`).
Event: TypeAlias = "TransferProgress | events.Event"

#: Called on the calling thread (the call's own, which waits for the library) with each
#: event in order; an exception it raises cancels the call and is raised from it.
EventCallback = Callable[[Event], None]
