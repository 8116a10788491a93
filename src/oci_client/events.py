"""What a call did, as typed events: files found in place or verified, requests retried, redirects,
ranges refused, connections changed, leases waited on or broken (docs/reference/events.md).

Go makes them where it logs the same things in words, and hands them over with the call's progress
reads and its result (Go never calls back into Python). Each event is a frozen dataclass with the
call's sequence number ``seq`` (1, 2, 3…; a gap is events dropped because more than 1000 waited
between two reads) and ``time`` (seconds since the epoch); a kind this package does not know
arrives as :class:`UnknownEvent`. No event holds a URL, a header or a secret.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "KINDS",
    "BlobDone",
    "BlobRetried",
    "ConnectionsChanged",
    "Event",
    "FileFound",
    "FileVerified",
    "LeaseBroken",
    "LeaseWaiting",
    "RangeRefused",
    "RedirectFollowed",
    "UnknownEvent",
    "parse",
]


@dataclass(frozen=True)
class Event:
    """What every event has: its number in the call (``seq``) and when it happened (``time``)."""

    #: The wire name of the kind; the class's, or the unknown one's.
    kind: ClassVar[str] = ""

    seq: int
    time: float


@dataclass(frozen=True)
class FileFound(Event):
    """A pull found a file in place, verified, without downloading it. ``how`` is ``"cache"``,
    ``"local"`` (its ``local_dir`` held it) or ``"other_process"`` (another process fetched it
    while this one waited). ``path`` is where the file is, ``label`` its name in the model."""

    kind: ClassVar[str] = "file_found"

    path: str
    label: str
    digest: str
    how: str


@dataclass(frozen=True)
class FileVerified(Event):
    """A downloaded blob's digest checked and its file put in place at ``path``: a reader may
    open it now, before the call returns."""

    kind: ClassVar[str] = "file_verified"

    path: str
    digest: str
    size: int


@dataclass(frozen=True)
class BlobDone(Event):
    """A blob download finished: ``fetched`` bytes received for it (less than ``size`` when
    earlier partial data was resumed, more when broken streams were retried) in ``elapsed_ms``."""

    kind: ClassVar[str] = "blob_done"

    digest: str
    size: int
    fetched: int
    elapsed_ms: int


@dataclass(frozen=True)
class BlobRetried(Event):
    """A request tried again, or a broken stream resumed. ``reason`` is the status
    (``"503 Service Unavailable"``) or the error; the next try, number ``attempt`` of
    ``attempts`` (0 for a stream, which resumes while it makes progress), comes after ``wait_ms``,
    which the registry's ``Retry-After`` set when ``retry_after``. ``resume_at`` is the byte a
    broken stream resumes at (0 for a request tried from its start). ``digest`` is ``""`` for a
    request that is not for a blob (a manifest, a token)."""

    kind: ClassVar[str] = "blob_retried"

    digest: str
    reason: str
    wait_ms: int
    attempt: int
    attempts: int
    retry_after: bool
    resume_at: int


@dataclass(frozen=True)
class RedirectFollowed(Event):
    """The registry redirected a request (to a storage bucket or CDN, usually): hosts only, never
    the URL, whose query is a credential."""

    kind: ClassVar[str] = "redirect_followed"

    from_host: str
    to_host: str
    status: int


@dataclass(frozen=True)
class RangeRefused(Event):
    """The registry did not honour a range request. ``fallback`` is ``"one_stream"`` (the blob
    comes over one connection instead of chunks) or ``"rest_one_stream"`` (from byte ``at`` on)."""

    kind: ClassVar[str] = "range_refused"

    digest: str
    fallback: str
    at: int


@dataclass(frozen=True)
class ConnectionsChanged(Event):
    """The connection tuner went from ``before`` connections to ``after``: ``why`` is
    ``"slow_connections"`` (each brings little, so more may help) or ``"no_gain"`` (the added ones
    did not raise the rate), ``rate_bps`` the rate that decided it, in bytes per second."""

    kind: ClassVar[str] = "connections_changed"

    before: int
    after: int
    why: str
    rate_bps: int


@dataclass(frozen=True)
class LeaseWaiting(Event):
    """This call waits while another process (or call) holds the lease on a blob it needs (that
    one is fetching it). ``holder_pid`` and ``holder_host`` are the holder as far as the lease file
    says (0 and ``""`` when it does not); ``digest`` is ``""`` for a lease that is not a blob's."""

    kind: ClassVar[str] = "lease_waiting"

    digest: str
    lease: str
    holder_pid: int
    holder_host: str


@dataclass(frozen=True)
class LeaseBroken(Event):
    """A lease broken: a stale one this call broke (``why``: its holder exited, or no heartbeat for
    a whole lease), or this call's own, broken by another process because it stalled (``ours``)."""

    kind: ClassVar[str] = "lease_broken"

    digest: str
    lease: str
    why: str
    ours: bool


@dataclass(frozen=True)
class UnknownEvent(Event):
    """An event of a kind this package does not know (a newer library): its ``kind`` name and its
    fields as they came."""

    name: str = ""
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)


#: Every kind this package knows, by its wire name.
KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        FileFound,
        FileVerified,
        BlobDone,
        BlobRetried,
        RedirectFollowed,
        RangeRefused,
        ConnectionsChanged,
        LeaseWaiting,
        LeaseBroken,
    )
}


def fields_of(cls: type[Event]) -> tuple[str, ...]:
    """The wire fields of kind ``cls`` (those past ``seq`` and ``time``)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("seq", "time"))


def parse(obj: dict[str, Any]) -> Event:
    """One event as Go sends it, ``{"seq", "time", "kind", <kind>: {...}}``, as its class.

    A known kind must carry every field of its class (a missing one raises ``KeyError``: the
    library and this package disagree); fields it carries beyond them are ignored (a newer library
    may add some). An unknown kind becomes :class:`UnknownEvent`.
    """
    kind = obj["kind"]
    data = obj.get(kind) or {}
    cls = KINDS.get(kind)
    if cls is None:
        return UnknownEvent(seq=int(obj["seq"]), time=float(obj["time"]), name=kind, fields=dict(data))
    values = {name: data[name] for name in fields_of(cls)}
    return cls(seq=int(obj["seq"]), time=float(obj["time"]), **values)


def parse_all(objs: Any) -> list[Event]:
    """Each of a list of wire events parsed; anything but a list gives none."""
    if not isinstance(objs, list):
        return []
    return [parse(o) for o in objs if isinstance(o, dict)]
