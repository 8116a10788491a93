"""Every environment variable oci-client reads, in one place.

The table :data:`VARIABLES` names each variable, its default, what it does and who reads it:
this package (through the accessors below, the only code in ``src/oci_client`` that reads
``os.environ`` for a setting), the Go library (from the caller's environment, which every
request carries as ``"env"``: the Go runtime froze its own copy when it loaded), or the
``oci-registry`` program. ``docs/reference/environment.md`` is generated from the table
(``python tools/gendocs.py``), and the tests hold the table to the names the Python and Go
sources use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "VARIABLES",
    "Variable",
    "exit_sync_timeout",
    "get",
    "library_path",
    "registry_binary",
]


@dataclass(frozen=True)
class Variable:
    """One environment variable: ``name``, its ``default`` (as a reader would write it),
    what it ``means`` and who ``read_by`` (the package's module or the Go package)."""

    name: str
    default: str
    meaning: str
    read_by: str


# In the order of the documentation's table: the cache and pulls, credentials, network, then
# the package's own and the registry program's.
VARIABLES: tuple[Variable, ...] = (
    Variable(
        "OCI_CLIENT_CACHE",
        "`~/.cache/oci-client`",
        "The cache root when no `cache_dir=` (`--cache-dir`) is given.",
        "Go `cache`",
    ),
    Variable(
        "OCI_CLIENT_OFFLINE",
        "unset (online)",
        "`1`, `true`, `yes` or `on`: pulls and inspects serve from the cache only and never touch "
        "the network; what is not cached raises `NotCachedError`. `offline=` overrides it.",
        "Go `capi`",
    ),
    Variable(
        "HF_HUB_OFFLINE",
        "unset (online)",
        "The same as `OCI_CLIENT_OFFLINE`, as huggingface_hub reads it.",
        "Go `capi`",
    ),
    Variable(
        "OCI_CLIENT_MIRRORS",
        "unset (hosts.toml, then registries.conf)",
        "Mirrors tried before each registry: `docker.io=https://m1,https://m2;ghcr.io=…`, `*` for "
        "every registry, an empty list for none (docs/guides/mirrors.md). `mirrors=` overrides it. "
        "`serve --proxy` reads it for its upstream.",
        "Go `mirrors`",
    ),
    Variable(
        "OCI_CLIENT_CERTS_DIR",
        "unset",
        "A `certs.d` directory (`hosts.toml`, `ca.crt`, `client.cert`, `client.key` per registry) "
        "searched before `/etc/containerd/certs.d`, `/etc/docker/certs.d`, `/etc/containers/certs.d`. "
        "`certs_dir=` overrides it. `serve --proxy` reads it for its upstream.",
        "Go `mirrors`",
    ),
    Variable(
        "CONTAINERS_REGISTRIES_CONF",
        "`~/.config/containers/registries.conf`, else `/etc/containers/registries.conf`",
        "The containers `registries.conf` (v2) whose mirrors (and `blocked` registries) a pull "
        "uses, as podman reads it; the `registries.conf.d` drop-ins are read after it.",
        "Go `mirrors`",
    ),
    Variable(
        "OCI_CLIENT_VERIFY",
        "unset (trust blobs hashed when fetched)",
        "`1`, `true`, `yes` or `on`: re-hash every blob a pull serves from the cache, as "
        "`verify=True` (`pull --verify`) does. `verify=` overrides it.",
        "Go `capi`",
    ),
    Variable(
        "DOCKER_CONFIG",
        "`~/.docker`",
        "The directory of docker's `config.json`: the first credential file searched.",
        "Go `auth`",
    ),
    Variable(
        "REGISTRY_AUTH_FILE",
        "unset",
        "A containers-style `auth.json`, searched after docker's.",
        "Go `auth`",
    ),
    Variable(
        "XDG_RUNTIME_DIR",
        "unset",
        "`$XDG_RUNTIME_DIR/containers/auth.json` (what `podman login` writes) is searched next, then "
        "`~/.config/containers/auth.json`.",
        "Go `auth`",
    ),
    Variable(
        "PATH",
        "the process's",
        "Where `docker-credential-*` helpers are looked up, the caller's current value.",
        "Go `auth`",
    ),
    Variable(
        "HOME",
        "the process's",
        "The base of the default cache root and of the default credential files.",
        "Go `auth`, `cache`",
    ),
    Variable(
        "SSL_CERT_FILE",
        "unset (the system's roots)",
        "A PEM bundle that replaces the system's trusted roots; `ca_file=` adds to them.",
        "Go `netconf`",
    ),
    Variable(
        "SSL_CERT_DIR",
        "unset (the system's roots)",
        "A directory of PEM certificates that replaces the system's trusted roots.",
        "Go `netconf`",
    ),
    Variable(
        "HTTPS_PROXY",
        "unset",
        "Proxy for HTTPS registries (also `https_proxy`).",
        "Go `netconf`",
    ),
    Variable(
        "HTTP_PROXY",
        "unset",
        "Proxy for plain-HTTP registries (also `http_proxy`).",
        "Go `netconf`",
    ),
    Variable(
        "NO_PROXY",
        "unset",
        "Hosts reached without the proxy (also `no_proxy`).",
        "Go `netconf`",
    ),
    Variable(
        "OCI_CLIENT_LIB",
        "the `liboci` inside the package",
        "Load this native library instead (`Client(lib_path=)` overrides it).",
        "`oci_client._native`",
    ),
    Variable(
        "OCI_CLIENT_EXIT_SYNC_TIMEOUT",
        "`5`",
        "Seconds a process that pulled waits at exit for its background fsyncs; `0` skips them "
        "(the blobs are then re-hashed after a reboot).",
        "`oci_client._native`",
    ),
    Variable(
        "OCI_CLIENT_REGISTRY_BINARY",
        "the `bin/oci-registry` inside the package",
        "The registry program `oci-client serve`, the demo and `oci_client.server.Registry` run.",
        "`oci_client.server`",
    ),
    Variable(
        "OCI_CLIENT_REGISTRY_ROOT",
        "`~/.local/share/oci-client/registry`",
        "The built-in registry's storage when no `--root` is given.",
        "`oci-registry`",
    ),
    Variable(
        "OCI_REGISTRY_PROXY_USERNAME",
        "unset",
        "The upstream user of a pull-through registry (`serve --proxy URL`).",
        "`oci-registry`",
    ),
    Variable(
        "OCI_REGISTRY_PROXY_PASSWORD",
        "unset",
        "The upstream password of a pull-through registry; an environment variable, which `ps` "
        "does not show.",
        "`oci-registry`",
    ),
)

_NAMES = frozenset(v.name for v in VARIABLES)


def get(name: str) -> str | None:
    """The value of ``name``, one of :data:`VARIABLES`, in the current environment
    (``None`` when unset). Raises ``KeyError`` for a name the table lacks."""
    if name not in _NAMES:
        raise KeyError(f"{name} is not in oci_client._env.VARIABLES")
    return os.environ.get(name)


def library_path() -> str | None:
    """``$OCI_CLIENT_LIB``: the native library to load, when set and not empty."""
    return get("OCI_CLIENT_LIB") or None


def exit_sync_timeout() -> str | None:
    """``$OCI_CLIENT_EXIT_SYNC_TIMEOUT`` as written (the caller parses and judges it)."""
    return get("OCI_CLIENT_EXIT_SYNC_TIMEOUT")


def registry_binary() -> str | None:
    """``$OCI_CLIENT_REGISTRY_BINARY``: the registry program to run, when set and not empty."""
    return get("OCI_CLIENT_REGISTRY_BINARY") or None
