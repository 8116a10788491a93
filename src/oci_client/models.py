"""What ``pull_model``, ``push_model``, ``inspect`` and the cache functions return.

The work is done in Go (format detection, safe extraction, the cache); this
module only turns its JSON into typed, immutable values. Results are read
strictly: every field the schema (docs/abi.schema.json) lists as always
present is taken with ``r[key]``, never with a default, so a field Go stops
sending fails loudly here instead of reading as 0 (tests/test_abi.py holds
these readers to the schema, field by field).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError

__all__ = [
    "BlobCheck",
    "CacheInfo",
    "CacheVerified",
    "CachedModel",
    "CachedSnapshot",
    "ExportedModel",
    "Manifest",
    "ModelFile",
    "ModelInfo",
    "PulledModel",
    "PushedBlob",
    "PushedModel",
    "Removed",
    "patterns",
]

log = logging.getLogger("oci_client")


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
class PushedBlob:
    """One blob of a push: a file (``path``) or the config (``path`` None).
    ``how`` is ``"uploaded"``, ``"exists"`` (the repository had it: nothing
    sent) or ``"mounted"`` (linked from ``mounted_from``, same registry).
    ``continued_at`` is where an upload an earlier push left unfinished was
    continued (the bytes the registry had kept; 0 when it started afresh)."""

    digest: str
    size: int
    how: str
    media_type: str
    path: str | None = None
    mounted_from: str | None = None
    bytes_sent: int = 0
    continued_at: int = 0


@dataclass(frozen=True)
class PushedModel(Manifest):
    """The manifest :meth:`Client.push_model` published (``reference`` is
    ``repo@digest``), with what the push did."""

    tag: str | None = None
    format: str = "modelpack"
    blobs: tuple[PushedBlob, ...] = ()
    uploaded: int = 0
    skipped: int = 0
    mounted: int = 0
    bytes_sent: int = 0
    continued: int = 0
    files: int = 0
    file_bytes: int = 0

    @classmethod
    def from_result(cls, r: dict[str, Any]) -> PushedModel:
        return cls(
            reference=r["reference"],
            digest=r["digest"],
            media_type=r["media_type"],
            size=int(r["size"]),
            raw=base64.b64decode(r["raw"]),
            tag=r["tag"] or None,
            format=r["format"],
            blobs=tuple(
                PushedBlob(
                    digest=b["digest"],
                    size=int(b["size"]),
                    how=b["how"],
                    media_type=b["media_type"],
                    path=b["path"] or None,
                    mounted_from=b["mounted_from"] or None,
                    bytes_sent=int(b["bytes_sent"]),
                    continued_at=int(b["continued_at"]),
                )
                for b in r["blobs"]
            ),
            uploaded=int(r["uploaded"]),
            skipped=int(r["skipped"]),
            mounted=int(r["mounted"]),
            bytes_sent=int(r["bytes_sent"]),
            continued=int(r["continued"]),
            files=int(r["files"]),
            file_bytes=int(r["file_bytes"]),
        )


@dataclass(frozen=True)
class ModelFile:
    """One file of a model, or one archive layer unpacked into ``extract_to``."""

    path: str
    digest: str
    size: int
    media_type: str
    kind: str
    archive: str | None = None
    extract_to: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """A model as its manifest and config describe it (:meth:`Client.inspect`)."""

    reference: str
    digest: str
    media_type: str
    format: str
    artifact_type: str | None
    #: The digest of the model manifest (through an index: the manifest chosen from it).
    manifest_digest: str
    config_media_type: str
    files: tuple[ModelFile, ...]
    total_size: int
    config: dict[str, Any] | None
    skipped: tuple[dict[str, str], ...]

    @classmethod
    def from_result(cls, r: dict[str, Any]) -> ModelInfo:
        m = r["model"]
        config = r["config"]
        return cls(
            reference=r["reference"],
            digest=r["digest"],
            media_type=r["media_type"] or m["manifest_media_type"],
            format=m["format"],
            artifact_type=m["artifact_type"] or None,
            manifest_digest=r["manifest_digest"],
            config_media_type=r["config_media_type"],
            files=files_of(m),
            total_size=int(m["total_size"]),
            config=config if isinstance(config, dict) else None,
            skipped=tuple(
                {"digest": s["digest"], "media_type": s["media_type"], "reason": s["reason"]}
                for s in m["skipped"]
            ),
        )


@dataclass(frozen=True)
class PulledModel:
    """What :meth:`Client.pull` made ready.

    ``path`` is the model directory (a cache snapshot, or ``local_dir``);
    ``reference`` is the repository pinned to ``digest``, the model manifest's
    digest (through an index: the manifest chosen from it), so pulling
    ``reference`` again gets exactly this model. ``files`` are the paths placed
    in ``path``, in manifest order (with patterns: those they selected, files
    picked out of archives included); ``model_files`` are all of the model's
    files as its manifest lists them. ``blobs_downloaded``/``bytes_downloaded``
    are what this call fetched itself (0 when the cache had everything; a blob
    resumed from an earlier call's partial data counts only the rest)."""

    path: Path
    reference: str
    digest: str
    format: str
    files: tuple[str, ...]
    model_files: tuple[ModelFile, ...]
    blobs_downloaded: int
    bytes_downloaded: int

    @classmethod
    def from_result(cls, r: dict[str, Any]) -> PulledModel:
        m = r["model"]
        return cls(
            path=Path(r["path"]),
            reference=r["reference"],
            digest=r["digest"],
            format=m["format"],
            files=tuple(r["files"]),
            model_files=files_of(m),
            blobs_downloaded=int(r["blobs_downloaded"]),
            bytes_downloaded=int(r["bytes_downloaded"]),
        )


@dataclass(frozen=True)
class ExportedModel:
    """What :meth:`Client.export_model` wrote: ``reference`` reads it back
    (``oci-layout:DIR:TAG``, or ``oci-layout:DIR@sha256:…`` without a tag); ``blobs`` counts
    every blob of the model in the layout (manifests included), ``blobs_downloaded`` and
    ``bytes_downloaded`` what this call fetched (a blob the layout held, right, is kept)."""

    layout: Path
    reference: str
    digest: str
    media_type: str
    tag: str | None
    blobs: int
    blobs_downloaded: int
    bytes_downloaded: int

    @classmethod
    def from_result(cls, r: dict[str, Any]) -> ExportedModel:
        return cls(
            layout=Path(r["layout"]),
            reference=r["reference"],
            digest=r["digest"],
            media_type=r["media_type"],
            tag=r["tag"] or None,
            blobs=int(r["blobs"]),
            blobs_downloaded=int(r["blobs_downloaded"]),
            bytes_downloaded=int(r["bytes_downloaded"]),
        )


def files_of(m: dict[str, Any]) -> tuple[ModelFile, ...]:
    return tuple(
        ModelFile(
            path=f["path"],
            digest=f["digest"],
            size=int(f["size"]),
            media_type=f["media_type"],
            kind=f["kind"],
            archive=f["archive"] or None,
            extract_to=f["extract_to"] or None,
        )
        for f in m["files"]
    )


def log_skipped(reference: str, m: dict[str, Any]) -> None:
    """One log line for each layer the model does not use."""
    for s in m["skipped"]:
        log.warning("%s: skipped layer %s (%s): %s", reference, s["digest"], s["media_type"], s["reason"])


@dataclass(frozen=True)
class CachedSnapshot:
    """One cached manifest of a model: its snapshot directory and the tags that point to it."""

    digest: str
    tags: tuple[str, ...]
    path: Path
    format: str
    files: int
    size: int
    last_used: _dt.datetime | None


@dataclass(frozen=True)
class CachedModel:
    """One cached repository."""

    registry: str
    repository: str
    snapshots: tuple[CachedSnapshot, ...]
    size: int

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"


@dataclass(frozen=True)
class CacheInfo:
    """What :meth:`Client.cache_list` found; ``size`` counts shared blobs once."""

    root: Path
    models: tuple[CachedModel, ...]
    size: int

    @classmethod
    def from_result(cls, r: dict[str, Any]) -> CacheInfo:
        return cls(
            root=Path(r["root"]),
            size=int(r["size"]),
            models=tuple(
                CachedModel(
                    registry=m["registry"],
                    repository=m["repository"],
                    size=int(m["size"]),
                    snapshots=tuple(
                        CachedSnapshot(
                            digest=s["digest"],
                            tags=tuple(s["tags"]),
                            path=Path(s["path"]),
                            format=s["format"],
                            files=int(s["files"]),
                            size=int(s["size"]),
                            last_used=_parse_time(s["last_used"]),
                        )
                        for s in m["snapshots"]
                    ),
                )
                for m in r["repos"]
            ),
        )


def _parse_time(value: Any) -> _dt.datetime | None:
    if not isinstance(value, str) or value.startswith("0001-"):
        return None
    try:
        # Go writes RFC 3339 with nanoseconds; Python 3.10 takes microseconds.
        head, _, frac = value.rstrip("Z").partition(".")
        micro = (frac[:6]).ljust(6, "0") if frac else "000000"
        return _dt.datetime.fromisoformat(f"{head}.{micro}+00:00")
    except ValueError:
        return None


@dataclass(frozen=True)
class Removed:
    """What ``cache_remove`` or ``cache_prune`` deleted."""

    snapshots: tuple[str, ...]
    tags: tuple[str, ...]
    blobs: int
    bytes: int

    @classmethod
    def from_result(cls, r: dict[str, Any]) -> Removed:
        return cls(
            snapshots=tuple(r["snapshots"]),
            tags=tuple(r["tags"]),
            blobs=int(r["blobs"]),
            bytes=int(r["bytes"]),
        )


@dataclass(frozen=True)
class BlobCheck:
    """One blob :meth:`Client.cache_verify` looked at. ``status`` is ``"ok"``,
    ``"corrupt"`` (its bytes do not hash to its digest) or ``"missing"`` (a cached
    model needs it and it is not there); ``action`` says what was done about it
    (empty for a blob that is fine) and ``fixed`` whether it is fine now."""

    digest: str
    size: int
    status: str
    path: Path
    fixed: bool
    action: str = ""
    moved_to: Path | None = None
    models: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class CacheVerified:
    """What :meth:`Client.cache_verify` found and did: ``checked`` blobs,
    ``bytes_hashed`` of them re-hashed; ``corrupt`` and ``missing`` are the blobs
    found wrong (each says whether it was ``fixed``), ``repaired`` the models
    (``repo@digest``) pulled again; ``ok`` is true when nothing is wrong any more."""

    root: Path
    checked: int
    bytes_hashed: int
    blobs: tuple[BlobCheck, ...]
    repaired: tuple[str, ...]

    @property
    def corrupt(self) -> tuple[BlobCheck, ...]:
        return tuple(b for b in self.blobs if b.status == "corrupt")

    @property
    def missing(self) -> tuple[BlobCheck, ...]:
        return tuple(b for b in self.blobs if b.status == "missing")

    @property
    def problems(self) -> tuple[BlobCheck, ...]:
        """The blobs still wrong."""
        return tuple(b for b in self.blobs if not b.fixed)

    @property
    def ok(self) -> bool:
        return not self.problems

    @classmethod
    def from_result(cls, r: dict[str, Any]) -> CacheVerified:
        return cls(
            root=Path(r["root"]),
            checked=int(r["checked"]),
            bytes_hashed=int(r["bytes_hashed"]),
            repaired=tuple(r["repaired"]),
            blobs=tuple(
                BlobCheck(
                    digest=b["digest"],
                    size=int(b["size"]),
                    status=b["status"],
                    path=Path(b["path"]),
                    fixed=bool(b["fixed"]),
                    action=b["action"],
                    moved_to=Path(b["moved_to"]) if b["moved_to"] else None,
                    models=tuple(b["models"]),
                    error=b["error"] or None,
                )
                for b in r["blobs"]
            ),
        )


def patterns(name: str, value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """A pattern argument as a list: one glob, or several (huggingface_hub takes both)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) for p in value):
        raise InvalidArgumentError(f"{name} must be a str or a list of str, got {value!r}")
    return list(value)
