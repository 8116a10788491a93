"""Docker registry token-auth server (the ``auth.token`` realm) for tests.

Implements the parts of the Docker token and OAuth2 token protocols that clients use:
``GET /token?service=…&scope=…`` with optional HTTP Basic credentials, and ``POST /token``
with ``grant_type=password`` or ``grant_type=refresh_token`` (identity tokens).
Tokens are ES256 JWTs that CNCF distribution 2.8 accepts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .certs import self_signed_certificate

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_SERVICE",
    "AccessGrants",
    "AccessPolicy",
    "TokenRequest",
    "TokenServer",
    "libtrust_key_id",
]

_log = logging.getLogger(__name__)

DEFAULT_ISSUER = "oci-client-test-token-server"
DEFAULT_SERVICE = "oci-client-test-registry"

# distribution accepts a token up to this long after its exp claim.
REGISTRY_EXP_LEEWAY_SECONDS = 60

_MAX_FORM_BYTES = 64 * 1024

#: ``(user or None for anonymous, resource) -> allowed actions``. For ``repository`` scopes the
#: resource is the repository name; for other scope types it is ``"<type>:<name>"``
#: (e.g. ``"registry:catalog"``). ``"*"`` among the allowed actions allows every action.
AccessPolicy = Callable[[str | None, str], Iterable[str]]

#: Dict form of a policy: keys ``(user or None, resource)``; resource ``"*"`` matches any.
AccessGrants = Mapping[tuple[str | None, str], Iterable[str]]


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server answered (credentials are never recorded)."""

    method: str
    user: str | None
    scopes: tuple[str, ...]
    service: str | None
    grant_type: str | None
    offline: bool
    status: int


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """Key id distribution expects in the JWT ``kid`` header (docker/libtrust format)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def default_access_policy(user: str | None, resource: str) -> tuple[str, ...]:
    """Authenticated users may pull, push and delete everywhere (and list the catalog);
    anonymous users get nothing."""
    if user is None:
        return ()
    if resource == "registry:catalog":
        return ("*",)
    return ("pull", "push", "delete")


def _policy_from_grants(grants: AccessGrants) -> AccessPolicy:
    table = {key: tuple(actions) for key, actions in grants.items()}

    def policy(user: str | None, resource: str) -> tuple[str, ...]:
        return table.get((user, resource), table.get((user, "*"), ()))

    return policy


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: TokenServer


@final
class TokenServer:
    """Threaded token server on ``127.0.0.1`` (ephemeral port).

    ``users`` maps user names to passwords. ``grants`` is an :data:`AccessPolicy` callable or
    a dict keyed by ``(user or None, repository)``; by default authenticated users get
    pull/push/delete on every repository and anonymous users nothing.

    ``ttl`` is the token lifetime in seconds as written into ``exp``. Because distribution
    tolerates 60 s past ``exp``, short real lifetimes need ``effective_ttl``: the token is then
    rejected by the registry ``effective_ttl`` seconds after issue. Both may be changed on a
    running server.
    """

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        grants: AccessPolicy | AccessGrants | None = None,
        service: str = DEFAULT_SERVICE,
        issuer: str = DEFAULT_ISSUER,
        ttl: int = 300,
        effective_ttl: int | None = None,
        realm_host: str = "localhost",
        realm_base: str | None = None,
    ) -> None:
        self.users: dict[str, str] = dict(users or {})
        self.realm_host = realm_host
        # Where registries send clients for tokens when not here: a proxy on the registry's
        # own host:port that forwards /token to this server (distribution 3's pull-through
        # cache takes a realm only on its upstream's host).
        self.realm_base = realm_base
        if grants is None:
            self.policy: AccessPolicy = default_access_policy
        elif callable(grants):
            self.policy = grants
        else:
            self.policy = _policy_from_grants(grants)
        self.service = service
        self.issuer = issuer
        self.ttl = ttl
        self.effective_ttl = effective_ttl

        self._key = ec.generate_private_key(ec.SECP256R1())
        self.key_id = libtrust_key_id(self._key.public_key())
        self.root_cert_pem = self_signed_certificate(self._key, issuer)

        self._lock = threading.Lock()
        self._tokens_issued = 0
        self._requests: list[TokenRequest] = []
        self._refresh_tokens: dict[str, str] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> TokenServer:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer(("127.0.0.1", 0), _TokenHandler)
        httpd.app = self
        self._httpd = httpd
        # A short poll interval keeps stop() fast (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="oci-test-token-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("token server is not running")
        return int(self._httpd.server_address[1])

    @property
    def realm(self) -> str:
        """Realm URL for the registry config.

        By default the name ``localhost``: go-containerregistry refuses realms on loopback or
        private IP literals other than the registry's own host:port (an SSRF guard that
        oci-client relaxes for registries on private addresses; ``realm_host="127.0.0.1"``
        tests that).
        """
        if self.realm_base is not None:
            return f"{self.realm_base}/token"
        return f"http://{self.realm_host}:{self.port}/token"

    def write_root_cert_bundle(self, path: str | Path) -> Path:
        """Write the signing certificate for ``auth.token.rootcertbundle``; returns the path."""
        out = Path(path)
        out.write_bytes(self.root_cert_pem)
        return out

    # -- records ---------------------------------------------------------------------------

    @property
    def tokens_issued(self) -> int:
        with self._lock:
            return self._tokens_issued

    @property
    def requests(self) -> list[TokenRequest]:
        """Snapshot of the requests answered so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset_records(self) -> None:
        with self._lock:
            self._tokens_issued = 0
            self._requests.clear()

    def _record(self, request: TokenRequest, issued: bool) -> None:
        with self._lock:
            self._requests.append(request)
            if issued:
                self._tokens_issued += 1

    # -- tokens ----------------------------------------------------------------------------

    def mint_token(
        self,
        subject: str | None,
        access: list[dict[str, Any]],
        *,
        audience: str | None = None,
        lifetime: int | None = None,
    ) -> str:
        """Sign a token directly (no policy check, not counted). ``lifetime`` is the effective
        lifetime in seconds as seen by the registry; defaults to the server's settings."""
        now = int(time.time())
        if lifetime is not None:
            exp = now + lifetime - REGISTRY_EXP_LEEWAY_SECONDS
        elif self.effective_ttl is not None:
            exp = now + self.effective_ttl - REGISTRY_EXP_LEEWAY_SECONDS
        else:
            exp = now + self.ttl
        claims = {
            "iss": self.issuer,
            "sub": subject or "",
            # distribution 2.8 unmarshals aud into a string; a JSON list fails verification.
            "aud": audience or self.service,
            "exp": exp,
            # A short effective lifetime puts exp in the past; keep nbf <= exp for sane JWTs.
            "nbf": min(now, exp),
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.key_id})

    def _expires_in(self) -> int:
        return self.effective_ttl if self.effective_ttl is not None else self.ttl

    def _authorize(self, user: str | None, scopes: Iterable[str]) -> list[dict[str, Any]]:
        requested: dict[tuple[str, str], list[str]] = {}
        for scope in scopes:
            parsed = _parse_scope(scope)
            if parsed is None:
                continue
            rtype, name, actions = parsed
            bucket = requested.setdefault((rtype, name), [])
            bucket.extend(a for a in actions if a not in bucket)
        access = []
        for (rtype, name), actions in requested.items():
            resource = name if rtype == "repository" else f"{rtype}:{name}"
            allowed = set(self.policy(user, resource))
            granted = actions if "*" in allowed else [a for a in actions if a in allowed]
            if granted:
                access.append({"type": rtype, "name": name, "actions": granted})
        return access

    def _check_password(self, user: str, password: str) -> bool:
        expected = self.users.get(user)
        return expected is not None and secrets.compare_digest(
            expected.encode("utf-8"), password.encode("utf-8")
        )

    def _new_refresh_token(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh_tokens[token] = user
        return token

    def _refresh_token_user(self, token: str) -> str | None:
        with self._lock:
            return self._refresh_tokens.get(token)

    def _issue(
        self,
        user: str | None,
        scopes: list[str],
        service: str | None,
        refresh_token: str | None,
    ) -> dict[str, Any]:
        token = self.mint_token(user, self._authorize(user, scopes), audience=service)
        body: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": self._expires_in(),
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return body


def _parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    # type[(class)]:name:actions — names may themselves contain ':', actions never do.
    rtype, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not rtype or not name:
        return None
    rtype = rtype.split("(", 1)[0]
    return rtype, name, [a for a in actions.split(",") if a]


def _split_scopes(values: Iterable[str]) -> list[str]:
    # Clients send scopes as repeated parameters and/or space-separated in one parameter.
    return [s for value in values for s in value.split()]


class _AuthenticationError(Exception):
    def __init__(self, user: str | None) -> None:
        super().__init__("authentication failed")
        self.user = user


class _TokenHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections release their thread after this many seconds.
    timeout = 60
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        # The request line holds scopes only; credentials travel in headers and bodies.
        _log.debug("token server: " + format, *args)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            self._send_json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})
            return
        query = urllib.parse.parse_qs(url.query)
        scopes = _split_scopes(query.get("scope", []))
        service = _first(query, "service")
        offline = _first(query, "offline_token") == "true"
        app = self.server.app
        user: str | None = None
        try:
            user = self._basic_user()
        except _AuthenticationError as exc:
            app._record(
                TokenRequest("GET", exc.user, tuple(scopes), service, None, offline, 401),
                False,
            )
            self._send_unauthorized()
            return
        refresh = app._new_refresh_token(user) if offline and user is not None else None
        body = app._issue(user, scopes, service, refresh)
        app._record(TokenRequest("GET", user, tuple(scopes), service, None, offline, 200), True)
        self._send_json(200, body)

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if url.path != "/token" or length > _MAX_FORM_BYTES:
            # The unread body would be parsed as the next request on this connection.
            self.close_connection = True
            status = 404 if url.path != "/token" else 413
            self._send_json(status, {"errors": [{"code": "UNSUPPORTED", "message": "rejected"}]})
            return
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        grant_type = _first(form, "grant_type")
        scopes = _split_scopes(form.get("scope", []))
        service = _first(form, "service")
        offline = _first(form, "access_type") == "offline"
        app = self.server.app

        def reject(user: str | None, status: int, error: str) -> None:
            app._record(
                TokenRequest("POST", user, tuple(scopes), service, grant_type, offline, status),
                False,
            )
            self._send_json(status, {"error": error})

        if grant_type == "password":
            user = _first(form, "username")
            if user is None or not app._check_password(user, _first(form, "password") or ""):
                reject(user, 401, "invalid_grant")
                return
            refresh = app._new_refresh_token(user)
        elif grant_type == "refresh_token":
            refresh = _first(form, "refresh_token") or ""
            found = app._refresh_token_user(refresh)
            if found is None:
                reject(None, 401, "invalid_grant")
                return
            user = found
        else:
            reject(None, 400, "unsupported_grant_type")
            return
        body = app._issue(user, scopes, service, refresh)
        app._record(
            TokenRequest("POST", user, tuple(scopes), service, grant_type, offline, 200),
            True,
        )
        self._send_json(200, body)

    def _basic_user(self) -> str | None:
        header = self.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise _AuthenticationError(None)
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _AuthenticationError(None) from None
        user, sep, password = decoded.partition(":")
        if not sep or not self.server.app._check_password(user, password):
            raise _AuthenticationError(user or None)
        return user

    def _send_unauthorized(self) -> None:
        self._send_json(
            401,
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication failed"}]},
            {"WWW-Authenticate": 'Basic realm="oci-client-test-token-server"'},
        )

    def _send_json(
        self,
        status: int,
        body: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _first(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None
