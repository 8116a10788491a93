"""Loading the Go library and calling its exports.

The library is loaded lazily, once, and never unloaded (a Go runtime cannot
be). Each export takes a JSON request and returns a malloc'd JSON envelope
that must be freed exactly once with ``FreeString``; returned pointers are
therefore declared ``c_void_p`` (``c_char_p`` would copy the bytes and drop
the pointer, leaking it). ``ctypes.CDLL`` releases the GIL for each call, so
threads call into Go in parallel.

The Go runtime does not survive ``fork``: a child forked after the library
started has one thread and a runtime that believes it has many, and the
first call would hang. Such calls raise :class:`ForkedProcessError` instead.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from .errors import ForkedProcessError, LibraryError, error_from_envelope

__all__ = ["call", "default_library_path", "load_library"]

LIBRARY_ENV = "OCI_CLIENT_LIB"
EXPORTS = ("PullManifest", "PullBlob", "TestAuthentication")

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_lib_path: Path | None = None
_loaded_in_pid: int | None = None


def library_filename() -> str:
    return "liboci.dylib" if sys.platform == "darwin" else "liboci.so"


def default_library_path() -> Path:
    """Where ``pip install .`` puts the library: inside this package."""
    return Path(__file__).resolve().parent / library_filename()


def _resolve_path(lib_path: str | os.PathLike[str] | None) -> Path:
    if lib_path is not None:
        return Path(lib_path).expanduser().resolve()
    env = os.environ.get(LIBRARY_ENV)
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
        for name in EXPORTS:
            fn = getattr(lib, name)
            fn.argtypes = [ctypes.c_char_p]
            fn.restype = ctypes.c_void_p
        lib.FreeString.argtypes = [ctypes.c_void_p]
        lib.FreeString.restype = None
        _lib, _lib_path, _loaded_in_pid = lib, path, os.getpid()
        return lib


def call(
    export: str,
    request: dict[str, Any],
    *,
    lib_path: str | os.PathLike[str] | None = None,
) -> Any:
    """Call ``export`` with ``request``; return the result or raise its error."""
    if export not in EXPORTS:
        raise ValueError(f"unknown export {export!r}")
    lib = load_library(lib_path)
    payload = json.dumps(request, separators=(",", ":")).encode("utf-8")
    ptr = getattr(lib, export)(payload)
    if not ptr:
        raise LibraryError(f"{export} returned NULL, which the ABI forbids")
    try:
        raw = ctypes.string_at(ptr)
    finally:
        lib.FreeString(ptr)
    envelope = json.loads(raw)
    if envelope.get("ok"):
        return envelope.get("result")
    raise error_from_envelope(envelope.get("error") or {})
