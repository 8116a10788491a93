"""The two registries the benchmark pulls from (plain HTTP, and HTTPS with a private CA and
Basic auth) and the per-transport credential files each tool reads."""

from __future__ import annotations

import base64
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from oci_testing import LocalRegistry

__all__ = ["Transport", "start_transport"]


@dataclass(frozen=True)
class Transport:
    """A running registry plus how each tool reaches it.

    ``docker_config`` is a DOCKER_CONFIG directory (``config.json`` with the Basic auth for
    HTTPS, empty ``auths`` for HTTP, so nobody's ``~/.docker`` leaks in); ``cert_dir`` holds
    ``ca.crt`` (the containers/image layout skopeo wants).
    """

    name: str  # "http" or "https"
    registry: LocalRegistry
    docker_config: Path
    cert_dir: Path | None

    @property
    def host(self) -> str:
        return self.registry.host

    @property
    def url(self) -> str:
        return self.registry.url

    @property
    def tls(self) -> bool:
        return self.registry.scheme == "https"

    @property
    def ca_file(self) -> Path | None:
        return self.registry.ca_file

    @property
    def username(self) -> str | None:
        return self.registry.username

    @property
    def password(self) -> str | None:
        return self.registry.password

    @property
    def auth_file(self) -> Path:
        return self.docker_config / "config.json"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def start_transport(name: str, work_dir: Path) -> Transport:
    """Start the registry for ``name`` ("http": plain mode, "https": tls_basic mode) and
    write its tool configuration under ``work_dir``. The caller stops ``.registry``."""
    if name not in ("http", "https"):
        raise ValueError(f"unknown transport {name!r}")
    registry = LocalRegistry("plain" if name == "http" else "tls_basic").start()
    try:
        config_dir = work_dir / f"docker-config-{name}"
        config_dir.mkdir(parents=True, exist_ok=True)
        auths: dict[str, dict[str, str]] = {}
        cert_dir = None
        if name == "https":
            assert registry.ca_file is not None
            user, password = registry.username, registry.password
            assert user is not None and password is not None
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            auths[registry.host] = {"auth": token}
            cert_dir = work_dir / f"certs-{name}"
            cert_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(registry.ca_file, cert_dir / "ca.crt")
        _write_private(config_dir / "config.json", json.dumps({"auths": auths}, indent=2))
        return Transport(name, registry, config_dir, cert_dir)
    except BaseException:
        registry.stop()
        raise
