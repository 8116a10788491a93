"""Writers for the credential files and helper programs tests hand the client."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any


def auth_field(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def login(docker_config: Path, host: str, user: str, password: str) -> Path:
    """``docker login host`` as the config file has it: DOCKER_CONFIG's config.json with one
    ``auth`` entry."""
    return write_config(
        docker_config / "config.json", {"auths": {host: {"auth": auth_field(user, password)}}}
    )


def write_helper(bin_dir: Path, name: str, *, user: str, secret: str, fail: str | None = None) -> Path:
    """A ``docker-credential-NAME`` program speaking the helper protocol.

    It records the server URL it was asked for in ``NAME.log``; with ``fail``
    it prints that text (and the secret, as a badly written helper might) to
    stdout and exits 1.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / f"{name}.log"
    prog = bin_dir / f"docker-credential-{name}"
    if fail is not None:
        body = f'echo "{fail} {secret}"\nexit 1\n'
    else:
        payload = json.dumps({"ServerURL": "", "Username": user, "Secret": secret})
        body = f"cat <<'JSON'\n{payload}\nJSON\n"
    prog.write_text(f'#!/bin/sh\n[ "$1" = get ] || exit 2\nread -r server\necho "$server" >> "{log}"\n{body}')
    prog.chmod(prog.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return prog


def prepend_path(bin_dir: Path) -> str:
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
