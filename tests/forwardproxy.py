"""A forward HTTP proxy (absolute-URI requests and CONNECT) for proxy tests.

Loopback hosts bypass proxies, so tests name the registry ``registry.test``
and only this proxy knows that it lives on 127.0.0.1. Nothing leaves the
machine: every other host name is refused.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAKE_HOST = "registry.test"


class ForwardProxy:
    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _target(self, host: str | None) -> str | None:
                proxy.seen.append(f"{self.command} {self.path}")
                return "127.0.0.1" if host == FAKE_HOST else None

            def do_CONNECT(self) -> None:
                host, _, port = self.path.partition(":")
                target = self._target(host)
                if target is None:
                    self.send_error(403)
                    return
                upstream = socket.create_connection((target, int(port)), timeout=10)
                self.send_response(200, "Connection established")
                self.end_headers()
                conns = [self.connection, upstream]
                try:
                    while True:
                        readable, _, _ = select.select(conns, [], [], 10)
                        if not readable:
                            return
                        for s in readable:
                            data = s.recv(65536)
                            if not data:
                                return
                            (upstream if s is self.connection else self.connection).sendall(data)
                finally:
                    upstream.close()
                    self.close_connection = True

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                target = self._target(parts.hostname)
                if target is None or parts.port is None:
                    self.send_error(403)
                    return
                conn = http.client.HTTPConnection(target, parts.port, timeout=30)
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
                conn.request(self.command, path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                conn.close()

            do_HEAD = do_GET  # noqa: N815 - the name http.server dispatches to

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
