"""The public client: ``OciGoClient``."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _native
from .errors import (
    AuthenticationError,
    InvalidArgumentError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    RegistryError,
)

__all__ = ["AuthInfo", "BlobInfo", "Manifest", "OciGoClient"]


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as the registry served it."""

    reference: str
    digest: str
    media_type: str
    size: int
    raw: bytes

    def json(self) -> dict[str, Any]:
        """The parsed manifest."""
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed


@dataclass(frozen=True)
class BlobInfo:
    """A blob verified and written to ``path``."""

    digest: str
    size: int
    path: Path


@dataclass(frozen=True)
class AuthInfo:
    """What a successful authentication check used (never the secret)."""

    registry: str
    repository: str
    anonymous: bool
    source: str | None
    digest: str


class OciGoClient:
    """Pulls manifests and blobs from OCI registries through the Go library.

    Credentials come from where ``docker login`` and ``podman login`` put
    them (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``, with
    ``credsStore``/``credHelpers``; ``$REGISTRY_AUTH_FILE``;
    ``$XDG_RUNTIME_DIR/containers/auth.json``), read afresh on every call
    from the current ``os.environ``.

    Keyword options:
        lib_path: the native library to load (default ``$OCI_CLIENT_LIB``,
            else the copy inside this package). Loaded once per process.
        ca_file: PEM file of extra trusted certificate authorities.
        insecure_registries: ``host`` or ``host:port`` entries that may use
            plain HTTP and unverified TLS. Loopback hosts may always use
            plain HTTP; every other host needs verified TLS.
        timeout: seconds a whole call may take (default: no limit).
        user_agent: the User-Agent header (default ``oci-client/VERSION``).

    Instances hold only settings and are safe to share between threads;
    calls release the GIL, so threads pull in parallel.
    """

    def __init__(
        self,
        *,
        lib_path: str | os.PathLike[str] | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        insecure_registries: Iterable[str] = (),
        timeout: float | None = None,
        user_agent: str | None = None,
    ) -> None:
        if isinstance(insecure_registries, str):
            raise InvalidArgumentError("insecure_registries must be a list of hosts, not a string")
        if timeout is not None and not timeout > 0:
            raise InvalidArgumentError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._lib_path = lib_path
        self.ca_file = os.path.abspath(os.fspath(ca_file)) if ca_file is not None else None
        self.insecure_registries = tuple(insecure_registries)
        self.timeout = timeout
        self.user_agent = user_agent

    def __repr__(self) -> str:
        return (
            f"OciGoClient(ca_file={self.ca_file!r}, "
            f"insecure_registries={list(self.insecure_registries)!r}, timeout={self.timeout!r})"
        )

    def _request(self, reference: str, **extra: Any) -> dict[str, Any]:
        if not isinstance(reference, str):
            raise InvalidArgumentError(f"reference must be a str, got {type(reference).__name__}")
        req: dict[str, Any] = {
            "reference": reference,
            # The Go runtime froze its own copy of the environment at load;
            # send the current one so os.environ changes take effect.
            "env": dict(os.environ),
            "ca_file": self.ca_file or "",
            "insecure_registries": list(self.insecure_registries),
            "user_agent": self.user_agent or "",
        }
        if self.timeout is not None:
            req["timeout_ms"] = max(1, int(self.timeout * 1000))
        req.update(extra)
        return req

    def _call(self, export: str, request: dict[str, Any]) -> Any:
        return _native.call(export, request, lib_path=self._lib_path)

    def get_manifest(self, reference: str) -> Manifest:
        """Fetch the manifest or index that ``reference`` names, with its digest."""
        r = self._call("PullManifest", self._request(reference))
        return Manifest(
            reference=r["reference"],
            digest=r["digest"],
            media_type=r["media_type"],
            size=int(r["size"]),
            raw=base64.b64decode(r["raw"]),
        )

    def pull_manifest(self, reference: str) -> dict[str, Any]:
        """Fetch and parse the manifest or index that ``reference`` names."""
        return self.get_manifest(reference).json()

    def pull_blob(
        self,
        reference: str,
        digest: str,
        path: str | os.PathLike[str],
        *,
        size: int | None = None,
    ) -> BlobInfo:
        """Download blob ``digest`` of ``reference``'s repository to ``path``.

        The data is verified (digest, and ``size`` when given) while it
        streams into a temporary file beside ``path``, which replaces
        ``path`` only once verified; parent directories are created. On any
        failure ``path`` is left as it was.
        """
        if not isinstance(digest, str):
            raise InvalidArgumentError(f"digest must be a str, got {type(digest).__name__}")
        if size is not None and (not isinstance(size, int) or size < 0):
            raise InvalidArgumentError(f"size must be a non-negative int, got {size!r}")
        dest = os.path.abspath(os.fspath(path))
        r = self._call(
            "PullBlob",
            self._request(reference, digest=digest, path=dest, size=size or 0),
        )
        return BlobInfo(digest=r["digest"], size=int(r["size"]), path=Path(r["path"]))

    def check_authentication(self, reference: str) -> AuthInfo:
        """Check against the registry that the current credentials can pull
        ``reference``; raise the typed error when they cannot."""
        r = self._call("TestAuthentication", self._request(reference))
        return AuthInfo(
            registry=r["registry"],
            repository=r["repository"],
            anonymous=bool(r["anonymous"]),
            source=r.get("source") or None,
            digest=r["digest"],
        )

    def test_authentication(self, reference: str) -> str | None:
        """Return None when ``reference`` can be pulled with the current
        credentials, else a readable reason. Bad input still raises."""
        try:
            self.check_authentication(reference)
        except (
            AuthenticationError,
            NotFoundError,
            RateLimitedError,
            RegistryError,
            NetworkError,
        ) as exc:
            return f"{exc.code}: {exc.message}"
        return None
