"""Debian's tinyproxy as the corporate forward proxy of the proxy tests.

Loopback hosts never go through a proxy, so the tests name the registry ``registry.test``,
which nothing on this machine resolves but tinyproxy: it runs in a mount namespace of its
own (``unshare --mount``, as root) whose ``/etc/hosts`` says ``registry.test`` is
127.0.0.1. A request that skips the proxy therefore fails to resolve, and one the proxy
carried shows in its log, parsed into :attr:`Tinyproxy.requests`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

FAKE_HOST = "registry.test"


class Tinyproxy:
    """``tinyproxy -d`` on 127.0.0.1; with ``user``/``password`` it asks for them (BasicAuth)."""

    def __init__(self, workdir: Path, *, user: str | None = None, password: str | None = None) -> None:
        self.workdir = workdir
        self.user, self.password = user, password
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The proxy's URL, with the credentials when it asks for some."""
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[str]:
        """The request lines it received (``CONNECT registry.test:PORT HTTP/1.1``, ``GET http://…``)."""
        log = self.workdir / "tinyproxy.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return re.findall(r"Request \(file descriptor \d+\): (.+)", text)

    def start(self) -> Tinyproxy:
        binary = shutil.which("tinyproxy")
        if binary is None:
            raise RuntimeError("tinyproxy is not installed (apt-get install tinyproxy)")
        if os.geteuid() != 0:
            raise RuntimeError("the tinyproxy tests need root, for the proxy's own /etc/hosts")
        self.workdir.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        hosts = self.workdir / "hosts"
        hosts.write_text(f"127.0.0.1 localhost {FAKE_HOST}\n")
        conf = self.workdir / "tinyproxy.conf"
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Allow 127.0.0.1",
            "Timeout 120",
            "MaxClients 64",
            "LogLevel Connect",
            "DisableViaHeader Yes",
        ]
        if self.user:
            lines.append(f"BasicAuth {self.user} {self.password}")
        conf.write_text("\n".join(lines) + "\n")
        log = (self.workdir / "tinyproxy.log").open("wb")
        script = 'mount --bind "$1" /etc/hosts && exec "$2" -d -c "$3"'
        self._proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
                str(hosts),
                binary,
                str(conf),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"tinyproxy exited: {(self.workdir / 'tinyproxy.log').read_text()[-2000:]}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("tinyproxy did not start listening")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
