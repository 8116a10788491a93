"""Loading the Go library and calling its exports.

The library is loaded lazily, once, and never unloaded (a Go runtime cannot
be). Each export takes a JSON request and returns a malloc'd JSON envelope
that must be freed exactly once with ``FreeString``; returned pointers are
therefore declared ``c_void_p`` (``c_char_p`` would copy the bytes and drop
the pointer, leaking it). ``ctypes.CDLL`` releases the GIL for each call, so
threads call into Go in parallel.

Long calls run on a worker thread while the calling thread polls their
progress and stays responsive to Ctrl-C: a KeyboardInterrupt cancels the
call in Go (``CancelOperation``), waits for it to return, and propagates.
Go never calls back into Python. A call's log records and typed events
(:mod:`oci_client.events`) come the same way, with its progress reads and
in its envelope.

The Go runtime does not survive ``fork``: a child forked after the library
started has one thread and a runtime that believes it has many, and the
first call would hang. Such calls raise :class:`ForkedProcessError` instead.

A pull with background durability leaves its fsyncs to Go, about ten
seconds later; a short-lived process (the command line) exits before then.
So the first such pull registers an exit hook that has Go run them at once,
for at most :data:`EXIT_SYNC_TIMEOUT` seconds: otherwise every blob it
pulled would be re-hashed after the next reboot.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import ctypes
import itertools
import json
import logging
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout  # the builtin only from 3.11
from pathlib import Path
from typing import Any

from . import _env, _logs, events
from ._abi import ABI_VERSION, EXPORTS
from .errors import ForkedProcessError, LibraryError, error_from_envelope

__all__ = ["call", "collect_events", "default_library_path", "load_library"]

LIBRARY_ENV = "OCI_CLIENT_LIB"

# At exit, how long to wait for the fsyncs of what this process pulled, in
# seconds; 0 exits without them (the blobs are then re-hashed after a reboot).
# A bound, so that a stalled disk cannot hold up exit: the blobs still left
# are synced by a later pull.
EXIT_SYNC_ENV = "OCI_CLIENT_EXIT_SYNC_TIMEOUT"
EXIT_SYNC_TIMEOUT = 5.0
# An exit flush longer than this is told on stderr (a warning), not only in
# the debug log: the user sees why the command did not end at once.
EXIT_SYNC_NOTICE = 1.0

log = logging.getLogger("oci_client")

# How often progress is read: a few times a second, cheap next to a transfer.
POLL_INTERVAL = 0.2
# How long a cancelled call may take to return before we stop waiting.
CANCEL_GRACE = 10.0

ProgressPoll = Callable[[dict[str, Any]], None]

#: Called with each of a call's events, parsed, in order, on the calling thread.
EventCallback = Callable[[events.Event], None]

# The callback that calls made in this context hand their events to.
_event_callback: contextvars.ContextVar[EventCallback | None] = contextvars.ContextVar(
    "oci_client_event_callback", default=None
)


@contextlib.contextmanager
def collect_events(callback: EventCallback) -> Iterator[None]:
    """Within the block, every call this thread (or context) makes asks Go for its events and
    hands each, parsed (:mod:`oci_client.events`), to ``callback`` on the calling thread, in order:
    as its progress reads bring them while it runs, and the rest when it returns. An exception
    raised by ``callback`` while the call runs cancels it, as one from a progress callback does.

    The hook a public ``on_event=`` argument stands on; blocks nest (the inner one wins).
    """
    token = _event_callback.set(callback)
    try:
        yield
    finally:
        _event_callback.reset(token)


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_lib_path: Path | None = None
_loaded_in_pid: int | None = None
_exit_sync_registered = False


def library_filename() -> str:
    return "liboci.dylib" if sys.platform == "darwin" else "liboci.so"


def default_library_path() -> Path:
    """Where ``pip install .`` puts the library: inside this package."""
    return Path(__file__).resolve().parent / library_filename()


def _resolve_path(lib_path: str | os.PathLike[str] | None) -> Path:
    if lib_path is not None:
        return Path(lib_path).expanduser().resolve()
    env = _env.library_path()
    if env:
        return Path(env).expanduser().resolve()
    return default_library_path()


def _check_not_forked() -> None:
    if _loaded_in_pid is not None and _loaded_in_pid != os.getpid():
        raise ForkedProcessError(
            "oci_client's Go library was started in process "
            f"{_loaded_in_pid} and cannot be used in this forked child "
            f"(pid {os.getpid()}): the Go runtime does not survive fork. "
            "Use the 'spawn' or 'forkserver' start method, or make the first "
            "oci_client call in the child."
        )


def load_library(lib_path: str | os.PathLike[str] | None = None) -> ctypes.CDLL:
    """Load the library once; later calls return the same handle.

    The path is, in order: ``lib_path``, ``$OCI_CLIENT_LIB``, the copy inside
    the package. Asking for a different path once one is loaded is an error:
    two Go runtimes cannot share a process.
    """
    global _lib, _lib_path, _loaded_in_pid
    _check_not_forked()
    if _lib is not None and lib_path is None:
        return _lib
    path = _resolve_path(lib_path)
    with _lock:
        _check_not_forked()
        if _lib is not None:
            if path != _lib_path:
                raise LibraryError(
                    f"the Go library is already loaded from {_lib_path}; "
                    f"cannot also load {path} in the same process"
                )
            return _lib
        if not path.is_file():
            raise LibraryError(
                f"the oci_client native library was not found at {path}. "
                "Install the package with `pip install .` (which builds it), "
                "or run ./build.sh and set OCI_CLIENT_LIB to the built "
                f"{library_filename()}."
            )
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise LibraryError(f"loading {path}: {exc}") from exc
        _check_abi_version(lib, path)
        for name in EXPORTS:
            fn = getattr(lib, name)
            fn.argtypes = [ctypes.c_char_p]
            fn.restype = ctypes.c_void_p
        lib.FreeString.argtypes = [ctypes.c_void_p]
        lib.FreeString.restype = None
        _lib, _lib_path, _loaded_in_pid = lib, path, os.getpid()
        return lib


def _check_abi_version(lib: ctypes.CDLL, path: Path) -> None:
    """Refuse a library of another contract before any call: its requests or results would be
    misread (an older library has no AbiVersion at all)."""
    try:
        abi_version = lib.AbiVersion
    except AttributeError:
        abi_version = None
    if abi_version is not None:
        abi_version.argtypes = []
        abi_version.restype = ctypes.c_int
        found: object = abi_version()
    else:
        found = "none (a library older than the AbiVersion export)"
    if found != ABI_VERSION:
        raise LibraryError(
            f"{path} speaks ABI version {found}, but this oci_client needs version {ABI_VERSION}: "
            "the library and the Python package come from different builds. Reinstall the "
            "package (`pip install .` builds both), or point OCI_CLIENT_LIB at a matching library."
        )


_operation_ids = itertools.count(1)
_executor: ThreadPoolExecutor | None = None
_in_flight = 0
_in_flight_lock = threading.Lock()


def in_flight() -> int:
    """How many calls are inside the Go library right now."""
    return _in_flight


def _workers() -> ThreadPoolExecutor:
    # Long-lived threads: each new OS thread entering Go costs the runtime a
    # fresh binding (about half a millisecond), a reused one does not.
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="oci-client")
        return _executor


def _invoke(lib: ctypes.CDLL, export: str, request: dict[str, Any]) -> Any:
    return _unwrap(_envelope(lib, export, request))


def _unwrap(envelope: dict[str, Any], on_event: EventCallback | None = None) -> Any:
    """The envelope's result, or its error raised; its log records and events first."""
    _logs.emit(envelope.get("logs"))
    _deliver(envelope, on_event)
    if envelope["ok"]:
        return envelope["result"]
    raise error_from_envelope(envelope["error"])


def _deliver(carrier: dict[str, Any], on_event: EventCallback | None) -> None:
    """Hand the events an envelope or a progress read carries (``events``, ``events_dropped``:
    both present only when there are some) to ``on_event``, and take them out of it."""
    wire = carrier.pop("events", None)
    dropped = carrier.pop("events_dropped", 0)
    if on_event is None:
        return
    if dropped:
        log.warning("oci-client: %d events dropped: more than 1000 waited between two reads", dropped)
    for event in events.parse_all(wire):
        on_event(event)


def _envelope(lib: ctypes.CDLL, export: str, request: dict[str, Any]) -> dict[str, Any]:
    global _in_flight
    payload = json.dumps(request, separators=(",", ":")).encode("utf-8")
    fn = getattr(lib, export)
    ptr = None
    with _in_flight_lock:
        _in_flight += 1
    try:
        # One try block from the call to the free, so that an exception
        # raised between them (a KeyboardInterrupt) cannot leak the envelope.
        ptr = fn(payload)
        if not ptr:
            raise LibraryError(f"{export} returned NULL, which the ABI forbids")
        raw = ctypes.string_at(ptr)
    finally:
        with _in_flight_lock:
            _in_flight -= 1
        if ptr:
            lib.FreeString(ptr)
    envelope: dict[str, Any] = json.loads(raw)
    return envelope


def call(
    export: str,
    request: dict[str, Any],
    *,
    lib_path: str | os.PathLike[str] | None = None,
    on_progress: ProgressPoll | None = None,
    wake_on_blob: bool = False,
    on_event: EventCallback | None = None,
) -> Any:
    """Call ``export`` with ``request``; return the result or raise its error.

    On the main thread, or when ``on_progress`` is given, the call runs on a
    worker thread; ``on_progress`` receives the call's counters every
    :data:`POLL_INTERVAL`, and a KeyboardInterrupt (or an exception raised
    by ``on_progress``) cancels the call in Go before it propagates.

    ``wake_on_blob``: ``on_progress`` also hears of each finished blob as it
    finishes (the read waits in Go for the next one, up to
    :data:`POLL_INTERVAL`), for a caller that starts work on each verified
    blob; a KeyboardInterrupt then takes up to that long to be seen.

    ``on_event`` (default: the callback of an enclosing :func:`collect_events`)
    asks Go for the call's typed events and receives each, parsed, on this
    thread, as the progress reads bring them and the rest at the end.
    """
    if export not in EXPORTS:
        raise ValueError(f"unknown export {export!r}")
    lib = load_library(lib_path)
    if export == "PullModel" and request.get("durability") != "sync":
        _register_exit_sync()
    level = _logs.requested_level()
    if level is not None:
        request = {**request, "log_level": level}
    if on_event is None:
        on_event = _event_callback.get()
    if on_event is not None:
        request = {**request, "events": True}
    if on_progress is None and on_event is None and threading.current_thread() is not threading.main_thread():
        # Its records arrive with its envelope: polling from every thread
        # would queue calls behind the few workers.
        return _invoke(lib, export, request)

    op_id = f"{os.getpid()}-{next(_operation_ids)}"
    request = {**request, "operation_id": op_id}
    future: Future[dict[str, Any]] = _workers().submit(_envelope, lib, export, request)
    # Waiting for blobs, the progress read itself is the pause between reads.
    waits = wake_on_blob and on_progress is not None
    # Records are read as they are made (a long pull's retries while it
    # retries), on this thread, so that they stay in order.
    reads = on_progress is not None or on_event is not None or _logs.polls(level)
    try:
        blobs_done = 0
        while True:
            if waits and future.done():
                return _unwrap(future.result(), on_event)
            if not waits:
                try:
                    envelope = future.result(timeout=POLL_INTERVAL)
                except FutureTimeout:
                    pass
                else:
                    return _unwrap(envelope, on_event)
            if not reads:
                continue
            read: dict[str, Any] = {"id": op_id}
            if waits:
                read.update(wait_ms=int(POLL_INTERVAL * 1000), blobs_after=blobs_done)
            snapshot = _invoke(lib, "OperationProgress", read)
            _logs.emit(snapshot.pop("logs", None))
            _deliver(snapshot, on_event)
            if snapshot["running"]:
                blobs_done = snapshot["blobs_done"]
                if on_progress is not None:
                    on_progress(snapshot)
            elif waits:  # not started yet, or just ended: Go does not wait then
                try:
                    envelope = future.result(timeout=POLL_INTERVAL / 10)
                except FutureTimeout:
                    pass
                else:
                    return _unwrap(envelope, on_event)
    except BaseException:
        if not future.done():
            _invoke(lib, "CancelOperation", {"id": op_id})
            # The cancelled call's own error (CANCELED) is expected and
            # dropped; its records still tell what it was doing.
            with contextlib.suppress(BaseException):
                envelope = future.result(timeout=CANCEL_GRACE)
                _logs.emit(envelope.get("logs"))
                _deliver(envelope, on_event)
        raise


def _register_exit_sync() -> None:
    # Registered at the first background pull, not at load: a process that
    # never pulls pays nothing at exit. After logging's own exit hook, so
    # that ours runs first and its message still goes out.
    global _exit_sync_registered
    with _lock:
        if not _exit_sync_registered:
            atexit.register(_sync_at_exit)
            _exit_sync_registered = True


def _exit_sync_timeout() -> float:
    """:data:`EXIT_SYNC_TIMEOUT`, or ``$OCI_CLIENT_EXIT_SYNC_TIMEOUT`` when set."""
    raw = _env.exit_sync_timeout()
    if raw is None or raw.strip() == "":
        return EXIT_SYNC_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        # At exit there is no caller left to raise to: say so and use the default.
        log.warning(
            "oci-client: %s=%r is not a number of seconds >= 0; using %s",
            EXIT_SYNC_ENV,
            raw,
            EXIT_SYNC_TIMEOUT,
        )
        return EXIT_SYNC_TIMEOUT
    return value


def _sync_at_exit() -> None:
    # A forked child inherits the hook but not a working Go runtime; its
    # parent flushes its own blobs.
    lib = _lib
    if lib is None or _loaded_in_pid != os.getpid():
        return
    timeout = _exit_sync_timeout()
    if timeout == 0:
        return
    try:
        done = _invoke(lib, "CacheSync", {"wait_ms": max(1, math.ceil(timeout * 1000))})
    except KeyboardInterrupt:
        return  # a second Ctrl-C while exiting: the user wants out now
    except Exception as exc:  # exit goes on whatever failed here
        log.warning("oci-client: making the pulled blobs durable at exit failed: %s", exc)
        return
    synced, left = int(done["synced"]), int(done["left"])
    seconds = float(done["elapsed_ms"]) / 1000
    if left:
        log.warning(
            "oci-client: waited %.1f s at exit for pulled blobs to reach the disk; %d are not on it "
            "yet and will be re-hashed after a reboot (%s sets the wait)",
            seconds,
            left,
            EXIT_SYNC_ENV,
        )
    elif seconds > EXIT_SYNC_NOTICE:
        log.warning(
            "oci-client: waited %.1f s at exit for %d pulled blobs to reach the disk", seconds, synced
        )
    else:
        log.debug("made %d pulled blobs durable at exit in %.3f s", synced, seconds)
