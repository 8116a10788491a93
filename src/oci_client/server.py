"""oci-client's own registry: CNCF distribution with its data in a local directory.

:class:`Registry` runs ``oci-registry``, a small Go program shipped in the wheel
(``oci_client/bin/oci-registry``, built from ``go/registry``), as a child process::

    with Registry("/srv/models") as registry:          # 127.0.0.1, a free port
        oci_client.push_model("./my-model", f"{registry.host}/org/model:v1")
        oci_client.pull_model(f"{registry.host}/org/model:v1")

It serves the OCI distribution API from a directory that outlives it (restart
it on the same root and everything is still there), binds loopback unless told
otherwise (it has no authentication), and with ``proxy=URL`` is a pull-through
cache of another registry that keeps serving what it has when that registry is
gone. ``oci-client serve`` (:func:`serve_main`) runs it in the foreground.

Why a separate program and not part of liboci: liboci is loaded into every vLLM
worker, a process can hold only one Go runtime, and a separate process can be
left running (``demo --keep``). The child reads its stdin until end of file, so
it exits when this process dies, however it dies (children forked since hold the
pipe too: it exits when the last of them has gone).

A :class:`Registry` has what a client needs to reach it: ``url``, ``host``, ``ca_file``,
``username``, ``password`` (the test suite's ``oci_testing.RegistryEndpoint``).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, final

from . import _env
from .errors import OciError

__all__ = [
    "REGISTRY_BINARY_ENV",
    "Registry",
    "RegistryServerError",
    "add_serve_parser",
    "find_registry_binary",
    "serve_main",
]

REGISTRY_BINARY_ENV = "OCI_CLIENT_REGISTRY_BINARY"
_PROXY_USERNAME_ENV = "OCI_REGISTRY_PROXY_USERNAME"
_PROXY_PASSWORD_ENV = "OCI_REGISTRY_PROXY_PASSWORD"
_MIRRORS_ENV = "OCI_CLIENT_MIRRORS"
_CERTS_DIR_ENV = "OCI_CLIENT_CERTS_DIR"

_PACKAGED_BINARY = Path(__file__).resolve().parent / "bin" / "oci-registry"
_LOG_TAIL_LINES = 20


def _mirror_list(mirrors: Mapping[str, Iterable[str] | str]) -> str:
    """``mirrors=`` in ``OCI_CLIENT_MIRRORS``' form, ``REGISTRY=URL,URL;…``."""
    if not isinstance(mirrors, Mapping):
        raise TypeError("mirrors must map registries to lists of mirror URLs")
    entries = []
    for registry, urls in mirrors.items():
        urls = [urls] if isinstance(urls, str) else list(urls)
        if not isinstance(registry, str) or not registry or any(c in registry for c in "=;,\n"):
            raise ValueError(f"mirrors: {registry!r} is not a registry name")
        for url in urls:
            if not isinstance(url, str) or not url or any(c in url for c in ";,\n"):
                raise ValueError(f"mirrors[{registry!r}]: {url!r} is not a mirror URL")
        entries.append(f"{registry}={','.join(urls)}")
    return ";".join(entries)


class RegistryServerError(OciError):
    """The registry program is missing, did not start, or failed while serving.

    Not :class:`oci_client.RegistryError`, which is an error a registry *answered*."""

    default_code = "REGISTRY_SERVER"


def find_registry_binary() -> Path:
    """The ``oci-registry`` program: ``$OCI_CLIENT_REGISTRY_BINARY`` when set (an explicit
    choice wins over the packaged one), else the one packaged with oci_client. Raises
    :class:`RegistryServerError` if the variable names no file, or, unset, if the package
    has none."""
    override = _env.registry_binary()
    if override:
        path = Path(override)
        if not path.is_file():
            raise RegistryServerError(f"${REGISTRY_BINARY_ENV} is {override!r}, which is not a file")
        _ensure_executable(path)
        return path
    if not _PACKAGED_BINARY.is_file():
        raise RegistryServerError(
            f"the registry program is missing ({_PACKAGED_BINARY} not built, ${REGISTRY_BINARY_ENV} "
            "unset): rebuild with ./build.sh or pip install ., or set the variable to one"
        )
    _ensure_executable(_PACKAGED_BINARY)
    return _PACKAGED_BINARY


def _ensure_executable(path: Path) -> None:
    # An install that lost the file mode (a wheel unpacked by a tool that drops
    # it) would otherwise fail with a bare "Permission denied".
    mode = path.stat().st_mode
    if mode & 0o111 == 0o111 or os.access(path, os.X_OK):
        return
    try:
        path.chmod(mode | 0o111)
    except OSError as exc:
        raise RegistryServerError(f"the registry program {path} is not executable: {exc}") from exc


@final
class Registry:
    """An ``oci-registry`` process serving ``root`` (default ``$OCI_CLIENT_REGISTRY_ROOT``,
    else ``~/.local/share/oci-client/registry``) on ``addr`` (port 0: a free one).

    After :meth:`start`: ``.address`` and ``.host`` (``127.0.0.1:PORT``), ``.url``,
    ``.root`` (absolute :class:`~pathlib.Path`), ``.pid``. ``proxy`` makes it a
    pull-through cache of that registry URL (credentials: ``proxy_username`` and
    ``proxy_password``, else ``$OCI_REGISTRY_PROXY_USERNAME``/``_PASSWORD``; they reach
    the child through its environment, never its command line). A cache fetches from its
    upstream through the mirrors configured for it, as a pull does: ``mirrors`` (registry
    to mirror URLs) and ``certs_dir`` (a ``certs.d`` directory with ``hosts.toml``) set
    ``OCI_CLIENT_MIRRORS`` and ``OCI_CLIENT_CERTS_DIR`` for it; without them it reads
    those variables, the system's ``certs.d`` directories and ``registries.conf``.
    Every blob is checked against its digest before the cache stores it. ``log_level``: error,
    warn (the default), info or debug (both log each request). ``log_stream``: where
    the registry's log lines go once it is up (default: kept, and the last lines are in
    errors and :meth:`log_tail`).

    ``detach=True`` lets the registry outlive this process: it runs in a session of its
    own (Ctrl-C here does not reach it), logs to the file ``.log_path``, and is stopped
    only by :meth:`stop` or a signal to ``.pid``.
    """

    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        addr: str = "127.0.0.1:0",
        proxy: str | None = None,
        proxy_username: str | None = None,
        proxy_password: str | None = None,
        mirrors: Mapping[str, Iterable[str] | str] | None = None,
        certs_dir: str | os.PathLike[str] | None = None,
        allow_remote: bool = False,
        log_level: str | None = None,
        binary: str | os.PathLike[str] | None = None,
        log_stream: IO[str] | None = None,
        detach: bool = False,
    ) -> None:
        if proxy is None and (proxy_username is not None or proxy_password is not None):
            raise ValueError("proxy credentials given without a proxy URL")
        if proxy is None and (mirrors is not None or certs_dir is not None):
            raise ValueError(
                "mirrors given without a proxy URL: only a pull-through cache has an upstream to mirror"
            )
        self._mirrors = _mirror_list(mirrors) if mirrors is not None else None
        self._certs_dir = os.path.abspath(os.fspath(certs_dir)) if certs_dir is not None else None
        self._root_arg = Path(root) if root is not None else None
        self._addr = addr
        self.proxy = proxy
        self._proxy_username = proxy_username
        self._proxy_password = proxy_password
        self._allow_remote = allow_remote
        self._log_level = log_level
        self._binary = Path(binary) if binary is not None else None
        self._log_stream = log_stream
        self._detach = detach
        self.log_path: Path | None = None

        self._ready: dict[str, Any] | None = None
        self.returncode: int | None = None

        self._process: subprocess.Popen[bytes] | None = None
        self._log_lines: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)
        self._log_lock = threading.Lock()
        self._echo = False
        self._log_thread: threading.Thread | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # What the registry reported once listening; kept after stop() for reference.

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: where it listens."""
        return str(self._started()["address"])

    @property
    def host(self) -> str:
        """``host:port`` as in an image reference (the same as :attr:`address`)."""
        return self.address

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return str(self._started()["url"])

    @property
    def root(self) -> Path:
        """The absolute storage directory."""
        return Path(self._started()["root"])

    @property
    def pid(self) -> int:
        return int(self._started()["pid"])

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _started(self) -> dict[str, Any]:
        if self._ready is None:
            raise RegistryServerError("the registry has not been started")
        return self._ready

    def __repr__(self) -> str:
        if self._ready is None:
            where, root = self._addr, self._root_arg
        else:
            where, root = self.url, self.root
        proxy = f", proxy={self.proxy!r}" if self.proxy else ""
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"Registry({where!r}, root={str(root) if root else None!r}{proxy}, {state})"

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 30) -> Registry:
        """Spawn the registry and wait (at most ``timeout`` seconds) until it listens.
        Raises :class:`RegistryServerError`, with the end of its log, if it does not."""
        if self._process is not None:
            return self
        binary = self._binary or find_registry_binary()
        argv = [str(binary), "--addr", self._addr]
        if self._root_arg is not None:
            argv += ["--root", str(self._root_arg)]
        if self.proxy is not None:
            argv += ["--proxy", self.proxy]
        if self._allow_remote:
            argv.append("--allow-remote")
        if self._log_level is not None:
            argv += ["--log-level", self._log_level]

        env = dict(os.environ)
        if self.proxy is None:
            env.pop(_PROXY_USERNAME_ENV, None)
            env.pop(_PROXY_PASSWORD_ENV, None)
        if self._proxy_username is not None:
            env[_PROXY_USERNAME_ENV] = self._proxy_username
        if self._proxy_password is not None:
            env[_PROXY_PASSWORD_ENV] = self._proxy_password
        if self._mirrors is not None:
            env[_MIRRORS_ENV] = self._mirrors
        if self._certs_dir is not None:
            env[_CERTS_DIR_ENV] = self._certs_dir

        self._log_lines.clear()
        self._echo = False
        self.returncode = None
        log_fd: int | None = None
        if self._detach:
            # A file, not a pipe: once this process has gone, a write to a pipe
            # nobody reads would kill the registry with SIGPIPE.
            log_fd, log_name = tempfile.mkstemp(prefix="oci-registry-", suffix=".log")
            self.log_path = Path(log_name)
        else:
            # stdin stays open for the child's lifetime: its end of file is how the
            # child learns that this process has gone.
            argv.append("--exit-with-stdin")
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL if self._detach else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_fd if log_fd is not None else subprocess.PIPE,
                env=env,
                start_new_session=self._detach,
            )
        except OSError as exc:
            raise RegistryServerError(f"cannot run the registry program {binary}: {exc}") from exc
        finally:
            if log_fd is not None:
                os.close(log_fd)
        self._process = process
        if not self._detach:
            self._finalizer = weakref.finalize(self, _terminate, process, 1.0)
            assert process.stderr is not None
            self._log_thread = threading.Thread(
                target=self._drain_log, args=(process.stderr,), name="oci-registry-log", daemon=True
            )
            self._log_thread.start()
        try:
            ready = self._read_ready_line(process, timeout)
        except BaseException:
            self.stop()
            if self.log_path is not None:
                # Its tail is in the error; nothing will write to it again.
                self.log_path.unlink(missing_ok=True)
            raise
        self._ready = ready
        with self._log_lock:
            if self._log_stream is not None:
                for line in self._log_lines:
                    self._log_stream.write(line + "\n")
                self._log_stream.flush()
            self._echo = True
        return self

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM the registry, SIGKILL it if it has not exited after ``timeout`` seconds;
        return its exit status (None if it was not running). Safe to call more than once."""
        process, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if process is None:
            return None
        _terminate(process, timeout)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        if self._log_thread is not None:
            self._log_thread.join(timeout=2)
            self._log_thread = None
        if process.stderr is not None:
            process.stderr.close()
        self.returncode = process.returncode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the registry to exit by itself; return its exit status."""
        if self._process is None:
            raise RegistryServerError("the registry is not running")
        return self._process.wait(timeout)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines the registry logged (its stderr)."""
        if self.log_path is not None:
            try:
                with self.log_path.open("rb") as f:
                    f.seek(max(0, f.seek(0, os.SEEK_END) - 64 * 1024))
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                return ""
            return "\n".join(text.splitlines()[-lines:])
        with self._log_lock:
            return "\n".join(list(self._log_lines)[-lines:])

    # -- internals -------------------------------------------------------------------------

    def _drain_log(self, stream: IO[bytes]) -> None:
        # Drained all along: a full pipe would block the registry mid-request.
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._log_lock:
                self._log_lines.append(line)
                if self._echo and self._log_stream is not None:
                    try:
                        self._log_stream.write(line + "\n")
                        self._log_stream.flush()
                    except (OSError, ValueError):
                        self._log_stream = None

    def _read_ready_line(self, process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        deadline = time.monotonic() + timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._startup_error(f"no address reported within {timeout:g} s")
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    try:
                        code = process.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        code = None
                    raise self._startup_error(f"exited with status {code} before listening")
                buf += chunk
        line = buf.split(b"\n", 1)[0]
        try:
            ready = json.loads(line)
            if not isinstance(ready, dict) or not {"address", "url", "root", "pid"} <= ready.keys():
                raise ValueError("fields missing")
        except ValueError as exc:
            raise self._startup_error(f"unexpected first line {line[:200]!r}") from exc
        return ready

    def _startup_error(self, reason: str) -> RegistryServerError:
        if self._log_thread is not None:
            # The log is complete once the child has exited and closed stderr.
            self._log_thread.join(timeout=1)
        lines = self.log_tail().splitlines()
        # The program's last word on why it could not start is the best reason to give.
        if lines and lines[-1].startswith("oci-registry: "):
            reason = lines.pop().removeprefix("oci-registry: ")
        detail = "".join(f"\n{line}" for line in lines)
        return RegistryServerError(f"the registry did not start: {reason}{detail}")


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    except ProcessLookupError:
        pass


# -- oci-client serve --------------------------------------------------------------------------


_SERVE_HELP = "run a local registry with its data in a directory"
_SERVE_DESCRIPTION = (
    "Serve the OCI distribution API from a local directory until Ctrl-C. Upstream "
    f"credentials for --proxy come from ${_PROXY_USERNAME_ENV} and ${_PROXY_PASSWORD_ENV}; "
    f"the upstream is reached through the mirrors ${_MIRRORS_ENV}, ${_CERTS_DIR_ENV}, the "
    "system's certs.d directories or registries.conf name for it, as a pull does."
)


def add_serve_parser(subparsers: Any) -> None:
    """Add ``serve`` to an argparse subparsers object; it sets ``func=serve_main``."""
    p = subparsers.add_parser("serve", help=_SERVE_HELP, description=_SERVE_DESCRIPTION)
    _add_serve_arguments(p)


def _add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        help="storage directory (default $OCI_CLIENT_REGISTRY_ROOT or ~/.local/share/oci-client/registry)",
    )
    p.add_argument("--addr", default="127.0.0.1:5000", help="host:port to listen on (default 127.0.0.1:5000)")
    p.add_argument("--proxy", metavar="URL", help="be a pull-through cache of this registry")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow listening on a non-loopback address (the registry has no authentication)",
    )
    p.add_argument(
        "--log-level",
        choices=["error", "warn", "info", "debug"],
        help="default warn; info and debug log each request",
    )
    p.set_defaults(func=serve_main)


def serve_main(args: argparse.Namespace) -> int:
    """Run the registry in the foreground until Ctrl-C (or SIGTERM); 0 then, 1 if it
    cannot start or dies while serving."""
    registry = Registry(
        args.root,
        addr=args.addr,
        proxy=args.proxy,
        allow_remote=args.allow_remote,
        log_level=args.log_level,
        log_stream=sys.stderr,
    )
    try:
        registry.start()
    except RegistryServerError as exc:
        print(f"error: {exc.message.splitlines()[0]}", file=sys.stderr)
        return 1
    # SIGTERM stops it as Ctrl-C does: a supervisor's stop is not an error.
    # (Only the main thread may set a signal handler.)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt) if in_main else None
    try:
        print(f"serving {registry.root} at {registry.url} (Ctrl-C stops)", flush=True)
        if registry.proxy:
            print(f"as a pull-through cache of {registry.proxy}", flush=True)
        code = registry.wait()
        print(f"error: the registry exited with status {code}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        registry.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """``python -m oci_client.server [serve options]``: the same as ``oci-client serve``."""
    parser = argparse.ArgumentParser(prog="python -m oci_client.server", description=_SERVE_DESCRIPTION)
    _add_serve_arguments(parser)
    return serve_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
