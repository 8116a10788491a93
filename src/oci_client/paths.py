"""Where the files of an artifact may go: never outside the target directory."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from .errors import InvalidArgumentError

TITLE_ANNOTATIONS = ("org.cncf.model.filepath", "org.opencontainers.image.title")


def safe_join(root: str | os.PathLike[str], name: str) -> Path:
    """``root / name`` for a relative, POSIX-style ``name`` that stays inside
    ``root`` (no absolute paths, no ``..``, no NUL, no backslashes), else
    InvalidArgumentError. Symbolic links already under root are resolved
    before the check, so they cannot lead outside either."""
    if not name or "\x00" in name or "\\" in name:
        raise InvalidArgumentError(f"refusing file name {name!r}: empty or with NUL or backslash")
    pure = PurePosixPath(name)
    if pure.is_absolute() or any(part in ("..", "") for part in pure.parts):
        raise InvalidArgumentError(f"refusing file name {name!r}: it would leave the target directory")
    base = Path(root).resolve()
    target = (base / Path(*pure.parts)).resolve()
    if base not in target.parents:
        raise InvalidArgumentError(f"refusing file name {name!r}: it resolves outside {base}")
    return target


def layer_file_name(layer: dict[str, object]) -> str:
    """The file name a layer asks for, or one made from its digest."""
    annotations = layer.get("annotations")
    if isinstance(annotations, dict):
        for key in TITLE_ANNOTATIONS:
            value = annotations.get(key)
            if isinstance(value, str) and value:
                return value
    return str(layer["digest"]).replace(":", "-")
