"""A reverse proxy (127.0.0.1, plain HTTP) that drops the connection once, at a given byte
offset of a blob, and counts every body byte it forwards. It can also hold each blob request
for a while before answering it (the round trip and answer time of a registry far away), send
each blob response no faster than a given rate (a CDN's per-connection speed) and all of them
together no faster than another (the link's speed).

The offset is in blob coordinates: the response whose range covers it (``206`` with
``Content-Range``, or a whole ``200``) is cut there, whether the client fetches the blob in
one stream or in ranged chunks. (tests/faultproxy.py cuts at an offset of each response,
which misses the target when a client asks for ranges.)
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["DropProxy", "Forwarded"]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/")
_PIECE = 256 * 1024


@dataclass
class Forwarded:
    """One request: what was asked and how many body bytes went back."""

    method: str
    path: str
    range: str | None
    status: int = 0
    body_bytes: int = 0
    cut: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: DropProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.proxy._handle(self)

    do_HEAD = do_GET  # noqa: N815 - the name http.server dispatches to


class _Link:
    """One link's bandwidth shared by every response: each chunk books the next free slot on
    the wire and waits for it, so n streams together get ``rate`` and each about rate / n."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._free_at = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._free_at = max(self._free_at, now) + n / self.rate
            wait = self._free_at - now
        if wait > 0:
            time.sleep(wait)


class DropProxy:
    """Forward to ``upstream`` (``http://host:port``); cut the response carrying byte
    ``cut_at`` of any blob GET, once (None: never); answer each blob GET ``delay`` seconds
    late and at most ``rate`` bytes per second, all blob responses together at most
    ``link_rate`` (None: as fast as it can). Use as a context manager."""

    def __init__(
        self,
        upstream: str,
        cut_at: int | None,
        *,
        delay: float = 0.0,
        rate: float | None = None,
        link_rate: float | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream = (parts.hostname, parts.port)
        self.cut_at = cut_at
        self.delay = delay
        self.rate = rate
        self.link = _Link(link_rate) if link_rate else None
        self.cuts = 0
        self.bytes_forwarded = 0
        self.log: list[Forwarded] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> DropProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def blob_gets(self) -> int:
        """How many blob GETs the proxy has seen."""
        return sum(1 for r in self.log if r.method == "GET" and "/blobs/" in r.path)

    def _claim_cut(self, method: str, path: str, start: int, length: int) -> int | None:
        """Bytes of this body to send before cutting, if this response is the one to cut."""
        if method != "GET" or "/blobs/" not in path or self.cut_at is None:
            return None
        with self._lock:
            if self.cuts == 0 and start <= self.cut_at < start + length:
                self.cuts += 1
                return self.cut_at - start
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        record = Forwarded(h.command, h.path, h.headers.get("Range"))
        with self._lock:
            self.log.append(record)
        if self.delay and h.command == "GET" and "/blobs/" in h.path:
            time.sleep(self.delay)
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(h.command, h.path, headers=headers)
            resp = conn.getresponse()
            record.status = resp.status
            h.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in _HOP_BY_HOP:
                    h.send_header(k, v)
            h.end_headers()
            if h.command == "HEAD":
                return
            match = _CONTENT_RANGE.match(resp.getheader("Content-Range") or "")
            start = int(match.group(1)) if resp.status == 206 and match else 0
            length = int(resp.getheader("Content-Length") or 0)
            cut = self._claim_cut(h.command, h.path, start, length) if resp.status in (200, 206) else None
            sent = 0
            started = time.monotonic()
            paced = self.rate is not None and "/blobs/" in h.path
            while chunk := resp.read(_PIECE):
                if paced and self.rate is not None:
                    ahead = sent / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                if cut is not None and sent + len(chunk) > cut:
                    chunk = chunk[: cut - sent]
                    h.wfile.write(chunk)
                    self._count(record, len(chunk))
                    record.cut = True
                    h.wfile.flush()
                    h.connection.shutdown(socket.SHUT_RDWR)
                    h.close_connection = True
                    return
                if self.link is not None and "/blobs/" in h.path:
                    self.link.take(len(chunk))
                h.wfile.write(chunk)
                sent += len(chunk)
                self._count(record, len(chunk))
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True  # the client gave up on this stream
        finally:
            conn.close()

    def _count(self, record: Forwarded, n: int) -> None:
        with self._lock:
            self.bytes_forwarded += n
            record.body_bytes += n
