"""A reverse proxy in front of a real registry that injects faults.

Requests pass through to the upstream unchanged, streaming, unless a rule
matching the method and path says otherwise: answer with a status (and
headers such as Retry-After), stall before answering or in the middle of the
body, throttle, flip one byte of the body, drop the connection after some
bytes, or hide the Range header (a registry that ignores ranges). It counts
the body bytes it forwards and logs every request, so tests can tell how much
crossed the wire, and when.

It can also play a registry that hands blobs to object storage: a ``redirect``
rule answers with a 307 to ``/storage/<path>?X-Amz-Signature=sigN`` on the
proxy itself, a fresh signature each time, and the proxy serves those paths
from the upstream, refusing with 403 (as S3 does an expired URL) a signature
used more than ``signature_uses`` times.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

EXPIRED = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
}


@dataclass
class Seen:
    """One request as the proxy saw it."""

    method: str
    path: str
    range: str | None
    at: float
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # the request's, as received

    @property
    def authorization(self) -> bool:
        """The request carried an Authorization header."""
        return any(k.lower() == "authorization" for k in self.headers)


@dataclass
class Rule:
    """One fault. ``times`` bounds how often it fires (None: always)."""

    path: str  # regular expression, searched in the request path
    method: str | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0
    stall_after: int | None = None  # with stall: pause after this many body bytes
    throttle: int | None = None  # bytes per second
    strip_range: bool = False
    flip_byte_at: int | None = None
    truncate_at: int | None = None
    redirect: bool = False  # answer with a 307 to a signed /storage/ URL
    drop_request_at: int | None = None  # forward this many request-body bytes, then drop both sides
    times: int | None = None
    hits: int = 0

    def matches(self, method: str, path: str, body_length: int = 0) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.drop_request_at is not None and body_length <= self.drop_request_at:
            return False  # a body too short to cut
        return (self.method is None or self.method == method) and re.search(self.path, path) is not None


class FaultProxy:
    """Threaded reverse proxy on 127.0.0.1 to ``upstream`` (an http:// URL)."""

    def __init__(self, upstream: str, *, idle_timeout: float | None = None, bind: str = "127.0.0.1") -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        # Path prefix -> another upstream ("http://host:port"): a token server behind the
        # same host:port as the registry, as some registries and caches want it.
        self.routes: dict[str, str] = {}
        self.rules: list[Rule] = []
        self.bytes_forwarded = 0
        self.blob_bytes = 0  # the part of bytes_forwarded that was blob content
        self.request_bytes = 0  # request bodies forwarded upstream (uploads)
        self.requests: list[tuple[str, str]] = []
        self.log: list[Seen] = []
        self.signature_uses: int | None = None  # None: signatures never expire
        self._signatures: dict[str, int] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # A socket timeout: a kept-alive connection idle this long is closed (the client's
            # idle pool then empties, so a soak can count file descriptors against a baseline).
            timeout = idle_timeout

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self)

            do_HEAD = do_GET  # noqa: N815 - the names http.server dispatches to
            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

        self._bind = bind
        # Where ``redirect`` rules send blobs: this proxy, or another playing the storage
        # (on a second loopback address, say) that serves the same blobs.
        self.storage: FaultProxy | None = None
        self._server = ThreadingHTTPServer((bind, 0), Handler)
        self._server.handle_error = self._handle_error  # type: ignore[method-assign]
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"{self._bind}:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def _handle_error(self, request: object, client_address: object) -> None:
        # A client that cancels resets its connection; that is no proxy failure worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            ThreadingHTTPServer.handle_error(self._server, request, client_address)  # type: ignore[arg-type]

    def forget(self) -> None:
        """Drop the request log and the rules that have fired their ``times``: a long run
        (the soak) would otherwise grow them without bound."""
        with self._lock:
            self.requests.clear()
            self.log.clear()
            self.rules[:] = [r for r in self.rules if r.times is None or r.hits < r.times]

    def _match(
        self, method: str, path: str, rng: str | None, body_length: int, headers: dict[str, str] | None = None
    ) -> tuple[Rule | None, Seen]:
        seen = Seen(method, path, rng, time.monotonic(), headers=dict(headers or {}))
        with self._lock:
            self.requests.append((method, path))
            self.log.append(seen)
            for rule in self.rules:
                if rule.matches(method, path, body_length):
                    rule.hits += 1
                    return rule, seen
        return None, seen

    def _signed(self, path: str) -> str:
        with self._lock:
            sig = f"sig{len(self._signatures) + 1}"
            self._signatures[sig] = 0
        return f"http://{self.host}/storage{path.split('?', 1)[0]}?X-Amz-Signature={sig}"

    def _signature_good(self, path: str) -> bool:
        sig = parse_qs(urlsplit(path).query).get("X-Amz-Signature", [""])[0]
        with self._lock:
            if sig not in self._signatures:
                return False
            self._signatures[sig] += 1
            return self.signature_uses is None or self._signatures[sig] <= self.signature_uses

    def _answer(
        self, h: BaseHTTPRequestHandler, seen: Seen, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        seen.status = status
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if int(h.headers.get("Content-Length") or 0) > 0:
            # The request body is left unread: its bytes must not be parsed as the next request
            # on this connection (the client would get a 400 it never asked for).
            h.send_header("Connection", "close")
            h.close_connection = True
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        rule, seen = self._match(h.command, h.path, h.headers.get("Range"), length, dict(h.headers.items()))
        upstream_path = h.path
        if h.path.startswith("/storage/"):
            if not self._signature_good(h.path):
                self._answer(h, seen, 403, {"Content-Type": "application/xml"}, EXPIRED)
                return
            upstream_path = urlsplit(h.path).path.removeprefix("/storage")
        if rule and rule.redirect:
            self._answer(h, seen, 307, {"Location": (self.storage or self)._signed(h.path)}, b"")
            return
        if rule and rule.stall and rule.stall_after is None:
            time.sleep(rule.stall)
        if rule and rule.status is not None:
            body = (
                b'{"errors":[{"code":"TOOMANYREQUESTS","message":"injected"}]}' if rule.status == 429 else b""
            )
            self._answer(h, seen, rule.status, {**rule.headers, "Content-Type": "application/json"}, body)
            return
        host, port = self.upstream_host, self.upstream_port
        for prefix, target in self.routes.items():
            if upstream_path.startswith(prefix):
                t = urlsplit(target)
                host, port = t.hostname or host, t.port or port
        conn = http.client.HTTPConnection(host, port, timeout=60)
        # A header sent several times (distribution's clients send one Accept per media
        # type) goes on as one, its values joined: a dict keeps only the last.
        headers: dict[str, str] = {}
        for k, v in h.headers.items():
            if k.lower() not in HOP_BY_HOP:
                headers[k] = f"{headers[k]}, {v}" if k in headers else v
        if rule and rule.strip_range:
            headers = {k: v for k, v in headers.items() if k.lower() != "range"}
        if "content-length" in {k.lower() for k in headers}:
            if not self._forward_body(h, conn, upstream_path, headers, rule):
                return
        else:
            conn.request(h.command, upstream_path, headers=headers)
        resp = conn.getresponse()
        seen.status = resp.status
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP:
                h.send_header(k, v)
        h.end_headers()
        if h.command == "HEAD":
            conn.close()
            return
        sent = 0
        started = time.monotonic()
        piece = 64 * 1024 if rule and (rule.throttle or rule.stall_after is not None) else 256 * 1024
        try:
            while chunk := resp.read(piece):
                if rule and rule.stall_after is not None and sent <= rule.stall_after < sent + len(chunk):
                    time.sleep(rule.stall)
                if rule and rule.throttle:
                    # Paced so that no byte, the last included, arrives before
                    # its offset / rate: a test may count on size / rate in all.
                    ahead = (sent + len(chunk)) / rule.throttle - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                if rule and rule.flip_byte_at is not None and sent <= rule.flip_byte_at < sent + len(chunk):
                    i = rule.flip_byte_at - sent
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
                if rule and rule.truncate_at is not None and sent + len(chunk) > rule.truncate_at:
                    chunk = chunk[: rule.truncate_at - sent]
                    h.wfile.write(chunk)
                    self._count(len(chunk), h.path)
                    h.close_connection = True
                    with contextlib.suppress(OSError):  # the client may have gone already
                        h.connection.shutdown(socket.SHUT_RDWR)
                    return
                h.wfile.write(chunk)
                sent += len(chunk)
                self._count(len(chunk), h.path)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True  # the client went away (cancelled): fine
        finally:
            conn.close()

    def _forward_body(
        self,
        h: BaseHTTPRequestHandler,
        conn: http.client.HTTPConnection,
        path: str,
        headers: dict[str, str],
        rule: Rule | None,
    ) -> bool:
        """Stream the request body upstream; False when a drop rule cut it."""
        conn.putrequest(h.command, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        remaining = int(h.headers["Content-Length"])
        forwarded = 0
        while remaining > 0:
            chunk = h.rfile.read(min(remaining, 256 * 1024))
            if not chunk:
                break
            cut = rule.drop_request_at if rule else None
            if cut is not None and forwarded + len(chunk) > cut:
                conn.send(chunk[: cut - forwarded])
                with self._lock:
                    self.request_bytes += cut - forwarded
                # Half-close, then wait for the registry's answer or its close: it reads every
                # byte sent before it sees the body end early (a plain close could reset the
                # connection with data still unread, and how much the registry kept would
                # depend on timing).
                if conn.sock is not None:
                    conn.sock.shutdown(socket.SHUT_WR)
                    conn.sock.settimeout(10)
                    with contextlib.suppress(OSError):
                        while conn.sock.recv(65536):
                            pass
                conn.close()
                h.connection.shutdown(socket.SHUT_RDWR)
                h.close_connection = True
                return False
            conn.send(chunk)
            forwarded += len(chunk)
            remaining -= len(chunk)
            with self._lock:
                self.request_bytes += len(chunk)
        return True

    def _count(self, n: int, path: str) -> None:
        with self._lock:
            self.bytes_forwarded += n
            if "/blobs/" in path:
                self.blob_bytes += n
