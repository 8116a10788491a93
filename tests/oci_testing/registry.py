"""Run a real CNCF distribution registry (``docker-registry serve``) as a test fixture."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol, final

import requests

from oci_client.server import _terminate  # the same SIGTERM-then-kill stop

from .certs import client_certificate, generate_certificates
from .tokenserver import AccessGrants, AccessPolicy, TokenServer

__all__ = [
    "DEFAULT_REGISTRY_BIN",
    "LocalRegistry",
    "RegistryEndpoint",
    "RegistryMode",
    "RegistryStartupError",
    "RegistryTarget",
    "RegistryUnavailable",
    "find_registry_binary",
    "start_registry",
]

RegistryMode = Literal["plain", "tls_basic", "mtls", "token", "proxy"]
_MODES: tuple[str, ...] = ("plain", "tls_basic", "mtls", "token", "proxy")

REGISTRY_PROGRAM = "docker-registry"  # Debian's package of CNCF distribution
DEFAULT_REGISTRY_BIN = "/usr/bin/docker-registry"
HTPASSWD_BIN_ENV = "OCI_CLIENT_HTPASSWD_BIN"

_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
_STOP_TIMEOUT = 5.0
_DEFAULT_USER = "tester"


class RegistryUnavailable(RuntimeError):  # noqa: N818 - public name the fixtures rely on
    """A tool needed to run the test registry (registry binary, htpasswd) is missing."""


class RegistryStartupError(RuntimeError):
    """The registry process did not come up; the message carries the tail of its log."""


class RegistryEndpoint(Protocol):
    """What clients need to reach a registry; :class:`LocalRegistry` and
    :class:`RegistryTarget` both provide it."""

    @property
    def url(self) -> str: ...

    @property
    def ca_file(self) -> Path | None: ...

    @property
    def username(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...


@dataclass(frozen=True)
class RegistryTarget:
    """A registry address plus how to authenticate to it (e.g. other credentials for a
    :class:`LocalRegistry`, or a registry not started by this module)."""

    url: str
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[-1].rstrip("/")


def find_registry_binary(binary: str | os.PathLike[str] | None = None) -> str:
    """Resolve the registry executable: *binary* (a path, or a name looked up on ``PATH``), else
    ``docker-registry`` on ``PATH``, else ``/usr/bin/docker-registry``. Raises
    :class:`RegistryUnavailable` if it is not executable."""
    if binary:
        candidate = os.fspath(binary)
        resolved = shutil.which(candidate)
        if resolved is None:
            raise RegistryUnavailable(f"registry binary {candidate!r} not found or not executable")
        return resolved
    resolved = shutil.which(REGISTRY_PROGRAM) or shutil.which(DEFAULT_REGISTRY_BIN)
    if resolved is None:
        raise RegistryUnavailable(
            f"registry binary {REGISTRY_PROGRAM!r} not found on PATH or at {DEFAULT_REGISTRY_BIN}; "
            "install CNCF distribution (Debian package docker-registry) or pass binary="
        )
    return resolved


def start_registry(mode: RegistryMode = "plain", **kwargs: Any) -> LocalRegistry:
    """Start a :class:`LocalRegistry` (same keyword arguments); the caller must ``stop()`` it."""
    return LocalRegistry(mode, **kwargs).start()


@final
class LocalRegistry:
    """A ``docker-registry serve`` process on ``127.0.0.1`` with an ephemeral port.

    Modes: ``plain`` (HTTP, no auth), ``tls_basic`` (HTTPS with a generated CA, htpasswd
    Basic auth), ``mtls`` (HTTPS that asks for a client certificate signed by that CA,
    ``client_cert``/``client_key``; no other auth), ``token`` (HTTP, token auth through a
    :class:`TokenServer` it starts), and ``proxy`` (pull-through cache of ``upstream``). All
    state lives in a temporary work directory removed by :meth:`stop` unless
    ``keep_workdir`` is set.

    ``upstream_credentials`` (proxy mode): ``"inherit"`` uses the upstream's default
    credentials, ``None`` pulls anonymously. distribution 2.8 can authenticate a pull-through
    cache only against token-auth upstreams, not Basic ones.
    """

    def __init__(
        self,
        mode: RegistryMode = "plain",
        *,
        users: Mapping[str, str] | None = None,
        token_server: TokenServer | None = None,
        token_grants: AccessPolicy | AccessGrants | None = None,
        token_ttl: int = 300,
        token_effective_ttl: int | None = None,
        upstream: RegistryEndpoint | None = None,
        upstream_credentials: tuple[str, str] | Literal["inherit"] | None = "inherit",
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        workdir: str | os.PathLike[str] | None = None,
        keep_workdir: bool = False,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"unknown registry mode {mode!r}; expected one of {_MODES}")
        if mode == "proxy" and upstream is None:
            raise ValueError("proxy mode needs an upstream registry")
        if mode != "proxy" and upstream is not None:
            raise ValueError("upstream is only meaningful in proxy mode")
        if isinstance(upstream, LocalRegistry) and upstream.mode == "tls_basic":
            raise ValueError(
                "distribution 2.8 pull-through caches cannot authenticate to a Basic-auth "
                "upstream; use a plain or token upstream"
            )
        if users is not None and mode not in ("tls_basic", "token"):
            raise ValueError(f"{mode} registries have no users")
        if token_server is not None and (mode != "token" or users is not None):
            raise ValueError("token_server is for token mode and replaces users")

        self.mode: RegistryMode = mode
        self.upstream = upstream
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._keep_workdir = keep_workdir
        self._given_workdir = Path(workdir) if workdir is not None else None

        self.users: dict[str, str] = {}
        if mode in ("tls_basic", "token") and token_server is None:
            self.users = dict(users) if users else {_DEFAULT_USER: secrets.token_urlsafe(18)}
        for name in self.users:
            if not name or ":" in name:
                raise ValueError(f"invalid user name {name!r}")

        self._owns_token_server = False
        self.token_server: TokenServer | None = token_server
        if mode == "token" and token_server is None:
            self.token_server = TokenServer(
                self.users,
                grants=token_grants,
                ttl=token_ttl,
                effective_ttl=token_effective_ttl,
            )
            # Share one dict so users added later are known to the token server too.
            self.users = self.token_server.users
            self._owns_token_server = True
        elif token_server is not None:
            self.users = token_server.users

        self._upstream_credentials: tuple[str, str] | None = None
        if upstream is not None:
            if upstream_credentials == "inherit":
                if upstream.username is not None and upstream.password is not None:
                    self._upstream_credentials = (upstream.username, upstream.password)
            else:
                self._upstream_credentials = upstream_credentials

        self.workdir: Path | None = None
        self.storage_dir: Path | None = None
        self.log_path: Path | None = None
        self.config_path: Path | None = None
        self.ca_file: Path | None = None
        self.client_cert: Path | None = None
        self.client_key: Path | None = None
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._created_workdir = False

    # -- endpoint --------------------------------------------------------------------------

    @property
    def username(self) -> str | None:
        return next(iter(self.users), None)

    @property
    def password(self) -> str | None:
        name = self.username
        return self.users[name] if name is not None else None

    @property
    def scheme(self) -> str:
        return "https" if self.mode in ("tls_basic", "mtls") else "http"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` (the registry part of an image reference)."""
        if self.port is None:
            raise RuntimeError("registry is not running")
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        """The ``docker-registry`` process's id (for a benchmark's CPU accounting)."""
        if self._process is None:
            raise RuntimeError("the registry is not running")
        return self._process.pid

    def target(self, username: str | None = None, password: str | None = None) -> RegistryTarget:
        """This registry as a :class:`RegistryTarget`, with the default credentials unless
        *username* is given (see :meth:`anonymous` for none)."""
        if username is None:
            username, password = self.username, self.password
        return RegistryTarget(self.url, self.ca_file, username, password)

    def anonymous(self) -> RegistryTarget:
        """This registry without credentials."""
        return RegistryTarget(self.url, self.ca_file)

    def __repr__(self) -> str:
        where = self.url if self.port is not None else "stopped"
        return f"<LocalRegistry {self.mode} {where} user={self.username!r}>"

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LocalRegistry:
        """Start the registry (idempotent) and wait until ``/v2/`` answers."""
        if self._process is not None:
            return self
        binary = find_registry_binary(self._binary)
        try:
            self._prepare_workdir()
            config = self._build_config()
            assert self.config_path is not None and self.log_path is not None
            # The config may hold upstream credentials: keep it private to the owner.
            fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                # YAML is a superset of JSON, so no YAML library (or quoting rules) needed.
                json.dump(config, f, indent=2)
            self._launch(binary)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM the registry (SIGKILL after 5 s), stop an owned token server and remove
        the work directory. Safe to call more than once."""
        process, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if process is not None:
            _terminate(process, _STOP_TIMEOUT)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._owns_token_server and self.token_server is not None:
            self.token_server.stop()
        self.port = None
        if self._created_workdir and self.workdir is not None and not self._keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._created_workdir = False

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the registry log with known passwords masked."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_bytes()[-64 * 1024 :].decode("utf-8", "replace")
        return self._scrub("\n".join(text.splitlines()[-lines:]))

    # -- internals -------------------------------------------------------------------------

    def _secrets(self) -> list[str]:
        found = [p for p in self.users.values() if p]
        if self._upstream_credentials is not None and self._upstream_credentials[1]:
            found.append(self._upstream_credentials[1])
        return found

    def _scrub(self, text: str) -> str:
        for value in self._secrets():
            text = text.replace(value, "***")
        return text

    def _prepare_workdir(self) -> None:
        if self._given_workdir is not None:
            self.workdir = self._given_workdir
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"oci-test-registry-{self.mode}-"))
            self._created_workdir = True
        self.storage_dir = self.workdir / "storage"
        self.storage_dir.mkdir(exist_ok=True)
        self.config_path = self.workdir / "config.yml"
        self.log_path = self.workdir / "registry.log"

    def _build_config(self) -> dict[str, Any]:
        assert self.workdir is not None and self.storage_dir is not None
        http: dict[str, Any] = {
            "addr": "127.0.0.1:0",
            # An explicit secret avoids the startup warning about a generated one.
            "secret": secrets.token_hex(16),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text"},
            # No blob descriptor cache: every lookup reads storage, so deletes show at once.
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage_dir)},
                "delete": {"enabled": True},
            },
            "http": http,
        }
        if self.mode == "tls_basic":
            # registry.test: the name proxy tests give it (only their proxy knows it is 127.0.0.1).
            certs = generate_certificates(self.workdir / "certs", dns_names=("localhost", "registry.test"))
            self.ca_file = certs.ca_cert
            http["tls"] = {
                "certificate": str(certs.server_cert),
                "key": str(certs.server_key),
            }
            htpasswd_path = self.workdir / "htpasswd"
            _write_htpasswd(htpasswd_path, self.users)
            config["auth"] = {"htpasswd": {"realm": "oci-client-test", "path": str(htpasswd_path)}}
        elif self.mode == "mtls":
            certs = generate_certificates(self.workdir / "certs")
            self.ca_file = certs.ca_cert
            client = client_certificate(certs, self.workdir / "client", "oci-client test")
            self.client_cert, self.client_key = client
            http["tls"] = {
                "certificate": str(certs.server_cert),
                "key": str(certs.server_key),
                "clientcas": [str(certs.ca_cert)],
            }
        elif self.mode == "token":
            server = self.token_server
            assert server is not None
            if self._owns_token_server:
                server.start()
            bundle = server.write_root_cert_bundle(self.workdir / "token-root.pem")
            config["auth"] = {
                "token": {
                    "realm": server.realm,
                    "service": server.service,
                    "issuer": server.issuer,
                    "rootcertbundle": str(bundle),
                }
            }
        elif self.mode == "proxy":
            assert self.upstream is not None
            proxy: dict[str, Any] = {"remoteurl": self.upstream.url}
            if self._upstream_credentials is not None:
                proxy["username"], proxy["password"] = self._upstream_credentials
            config["proxy"] = proxy
        return config

    def _launch(self, binary: str) -> None:
        assert self.config_path is not None and self.log_path is not None
        # A minimal environment: inherited REGISTRY_* variables would override the config,
        # and proxy variables would reroute a pull-through cache's upstream traffic.
        env = {"PATH": os.environ.get("PATH", os.defpath)}
        if self.upstream is not None and self.upstream.ca_file is not None:
            env["SSL_CERT_FILE"] = str(self.upstream.ca_file)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self._process = subprocess.Popen(
            [binary, "serve", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
        )
        # Last resort if the owner never calls stop() (garbage collection, interpreter exit).
        self._finalizer = weakref.finalize(
            self,
            _cleanup,
            self._process,
            self.workdir if self._created_workdir and not self._keep_workdir else None,
        )

    def _wait_ready(self) -> None:
        assert self._process is not None and self.log_path is not None
        deadline = time.monotonic() + self._startup_timeout
        while self.port is None:
            match = _LISTENING.search(self.log_path.read_bytes())
            if match:
                self.port = int(match.group(1))
                break
            self._check_alive()
            if time.monotonic() > deadline:
                raise self._startup_error("registry did not report its listening address")
            time.sleep(0.02)

        session = requests.Session()
        session.trust_env = False
        verify: str | bool = str(self.ca_file) if self.ca_file is not None else True
        if self.client_cert is not None and self.client_key is not None:
            session.cert = (str(self.client_cert), str(self.client_key))
        try:
            while True:
                try:
                    response = session.get(f"{self.url}/v2/", timeout=2, verify=verify)
                    if response.status_code in (200, 401):
                        return
                    last = f"GET /v2/ answered {response.status_code}"
                except requests.RequestException as exc:
                    last = f"GET /v2/ failed: {type(exc).__name__}"
                self._check_alive()
                if time.monotonic() > deadline:
                    raise self._startup_error(f"registry not ready ({last})")
                time.sleep(0.05)
        finally:
            session.close()

    def _check_alive(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise self._startup_error(f"registry exited with status {code}")

    def _startup_error(self, reason: str) -> RegistryStartupError:
        tail = self.log_tail()
        return RegistryStartupError(
            f"{self.mode} registry failed to start: {reason}\n--- log tail ({self.log_path}) ---\n{tail}"
        )


def _cleanup(process: subprocess.Popen[bytes], workdir: Path | None) -> None:
    _terminate(process, 1.0)
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


def _write_htpasswd(path: Path, users: Mapping[str, str]) -> None:
    tool = shutil.which(os.environ.get(HTPASSWD_BIN_ENV) or "htpasswd")
    if tool is None:
        raise RegistryUnavailable(
            f"htpasswd not found (Debian package apache2-utils) or set {HTPASSWD_BIN_ENV}"
        )
    lines = []
    for user, password in users.items():
        # -i reads the password from stdin so it never shows in the process list;
        # bcrypt (-B) is the only scheme distribution accepts, cost 4 keeps requests fast.
        result = subprocess.run(
            [tool, "-niB", "-C", "4", user],
            input=password.encode("utf-8"),
            capture_output=True,
            check=False,
            timeout=30,
        )
        entry = result.stdout.decode("utf-8").strip()
        if result.returncode != 0 or not entry.startswith(f"{user}:"):
            raise RegistryStartupError(f"htpasswd failed for user {user!r} (exit {result.returncode})")
        lines.append(entry)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
