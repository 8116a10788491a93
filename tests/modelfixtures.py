"""Builders for model artifacts as the real tools push them (Docker Model
Runner, CNCF ModelPack, KitOps, ORAS), tar archives with hostile entries, and
helpers to read back what a pull produced and what crossed a FaultProxy."""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faultproxy import FaultProxy, Seen
from oci_testing import (
    OCI_INDEX_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE,
    PushedArtifact,
    RegistryClient,
    push_image_manifest,
    push_manifest,
    sha256_digest,
)
from oci_testing.registry import RegistryEndpoint

KiB = 1024
MiB = 1024 * KiB

TITLE = "org.opencontainers.image.title"
FILEPATH = "org.cncf.model.filepath"
LEGACY_FILEPATH = "org.cnai.model.filepath"

# Docker Model Runner (docker/model-runner pkg/distribution/types).
DMR_CONFIG_V01 = "application/vnd.docker.ai.model.config.v0.1+json"
DMR_CONFIG_V02 = "application/vnd.docker.ai.model.config.v0.2+json"
DMR_GGUF = "application/vnd.docker.ai.gguf.v3"
DMR_SAFETENSORS = "application/vnd.docker.ai.safetensors"
DMR_VLLM_CONFIG_TAR = "application/vnd.docker.ai.vllm.config.tar"
DMR_LICENSE = "application/vnd.docker.ai.license"
DMR_CHAT_TEMPLATE = "application/vnd.docker.ai.chat.template.jinja"
DMR_MMPROJ = "application/vnd.docker.ai.mmproj"

# CNCF ModelPack (modelpack/model-spec), and the names from before the CNCF.
MODELPACK_ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
MODELPACK_CONFIG = "application/vnd.cncf.model.config.v1+json"
CNAI_ARTIFACT = "application/vnd.cnai.model.manifest.v1+json"
CNAI_CONFIG = "application/vnd.cnai.model.config.v1+json"

# KitOps (kitops-ml/kitops pkg/lib/constants).
KIT_CONFIG = "application/vnd.kitops.modelkit.config.v1+json"

OCI_EMPTY = "application/vnd.oci.empty.v1+json"


def modelpack_layer(kind: str, suffix: str, *, legacy: bool = False) -> str:
    """``application/vnd.cncf.model.<kind>.v1.<suffix>`` (kind: weight, weight.config,
    doc, code, dataset; suffix: raw, tar, tar+gzip, tar+zstd)."""
    return f"application/vnd.{'cnai' if legacy else 'cncf'}.model.{kind}.v1.{suffix}"


def kit_layer(kind: str, *, gzipped: bool = False) -> str:
    """``application/vnd.kitops.modelkit.<kind>.v1.tar[+gzip]`` (kind: model, modelpart,
    dataset, code, docs)."""
    return f"application/vnd.kitops.modelkit.{kind}.v1.tar{'+gzip' if gzipped else ''}"


# -- archives -----------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One tar entry, written exactly as given (no name is cleaned)."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644


def file(name: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(name, data, mode=mode)


def directory(name: str) -> Entry:
    return Entry(name, type=tarfile.DIRTYPE, mode=0o755)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, type=tarfile.SYMTYPE, linkname=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, type=tarfile.LNKTYPE, linkname=target)


def chardev(name: str) -> Entry:
    return Entry(name, type=tarfile.CHRTYPE)


def blockdev(name: str) -> Entry:
    return Entry(name, type=tarfile.BLKTYPE)


def fifo(name: str) -> Entry:
    return Entry(name, type=tarfile.FIFOTYPE)


def tar(entries: Iterable[Entry] | Mapping[str, bytes]) -> bytes:
    """An uncompressed PAX tar of the entries, in order (a mapping: regular files)."""
    items = [file(n, d) for n, d in entries.items()] if isinstance(entries, Mapping) else list(entries)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in items:
            info = tarfile.TarInfo(e.name)
            info.type = e.type
            info.mode = e.mode
            info.mtime = 0
            info.linkname = e.linkname
            if e.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                info.devmajor, info.devminor = 1, 3
            if e.type == tarfile.REGTYPE:
                info.size = len(e.data)
                t.addfile(info, io.BytesIO(e.data))
            else:
                t.addfile(info)
    return out.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zstd(data: bytes) -> bytes:
    """A valid zstd frame holding data in raw (stored) blocks: what a decoder must read,
    without a zstd library. Single-segment frame with a 4-byte content size, no checksum."""
    if len(data) >= 1 << 32:
        raise ValueError("too big for a 4-byte frame content size")
    out = bytearray(struct.pack("<I", 0xFD2FB528))
    out.append(0b10_1_00_0_00)  # FCS 4 bytes, single segment, no checksum, no dictionary
    out += struct.pack("<I", len(data))
    block = 128 * KiB
    chunks = [data[i : i + block] for i in range(0, len(data), block)] or [b""]
    for i, chunk in enumerate(chunks):
        last = 1 if i == len(chunks) - 1 else 0
        header = last | (0 << 1) | (len(chunk) << 3)  # block type 0: raw
        out += header.to_bytes(3, "little")
        out += chunk
    return bytes(out)


def compress(data: bytes, archive: str) -> bytes:
    """A tar compressed as a media type suffix says: tar, tar+gzip or tar+zstd."""
    return {"tar": data, "tar+gzip": gz(data), "tar+zstd": zstd(data)}[archive]


# -- pushing ------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One layer to push: its bytes, media type and annotations."""

    data: bytes
    media_type: str
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)[0]


def named(data: bytes, media_type: str, path: str, *, key: str = FILEPATH, title: bool = True) -> Layer:
    """A layer named by ``key`` (and the OCI title too, as modctl writes both)."""
    annotations = {key: path}
    if title and key != TITLE:
        annotations[TITLE] = path
    return Layer(data, media_type, annotations)


def push_layers(
    registry: RegistryEndpoint,
    repository: str,
    tag: str | None,
    layers: Sequence[Layer],
    *,
    config: bytes | Mapping[str, Any] = b"{}",
    config_media_type: str = OCI_EMPTY,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> PushedArtifact:
    """Push the layers, the config and an OCI image manifest naming them."""
    config_bytes = config if isinstance(config, bytes) else json.dumps(config).encode()
    specs = [
        (
            layer.annotations.get(FILEPATH) or layer.annotations.get(TITLE),
            layer.data,
            layer.media_type,
            layer.annotations,
        )
        for layer in layers
    ]
    with RegistryClient(registry) as client:
        return push_image_manifest(
            client,
            repository,
            tag,
            layers=specs,
            config=config_bytes,
            config_media_type=config_media_type,
            manifest_media_type=OCI_MANIFEST_MEDIA_TYPE,
            artifact_type=artifact_type,
            annotations=annotations,
        )


def push_index_of(
    registry: RegistryEndpoint,
    repository: str,
    tag: str,
    entries: Sequence[tuple[PushedArtifact, Mapping[str, Any]]],
) -> PushedArtifact:
    """Push an OCI index over manifests already in the repository; each entry's mapping
    is merged into its descriptor (``platform``, ``artifactType``, ``annotations``)."""
    manifests = [{**m.descriptor(), **extra} for m, extra in entries]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX_MEDIA_TYPE, "manifests": manifests}
    raw = json.dumps(index, separators=(",", ":")).encode()
    digest = push_manifest(registry, repository, tag, raw, OCI_INDEX_MEDIA_TYPE)
    host = registry.url.split("://", 1)[1]
    return PushedArtifact(host, repository, tag, digest, OCI_INDEX_MEDIA_TYPE, index, raw, [], None)


def dmr_config(fmt: str, layers: Sequence[Layer], *, size: str = "1.2M") -> dict[str, Any]:
    """A Docker Model Runner config (``docker model package``)."""
    return {
        "config": {"format": fmt, "quantization": "F16", "parameters": "361.82 K", "size": size},
        "descriptor": {"created": "2025-06-01T00:00:00Z"},
        "rootfs": {"type": "rootfs", "diff_ids": [layer.digest for layer in layers]},
    }


def modelpack_config(
    name: str, layers: Sequence[Layer], *, fmt: str | None = "safetensors"
) -> dict[str, Any]:
    """A ModelPack config (modctl build): descriptor, config (with the weights' format
    unless ``fmt`` is None) and modelfs."""
    config: dict[str, Any] = {"architecture": "transformer", "paramSize": "1M"}
    if fmt is not None:
        config["format"] = fmt
    return {
        "descriptor": {"name": name, "family": "tiny", "version": "1.0"},
        "config": config,
        "modelfs": {"type": "layers", "diffIds": [layer.digest for layer in layers]},
    }


def kitfile(
    model: Mapping[str, Any] | None = None,
    *,
    parts: Sequence[Mapping[str, Any]] = (),
    code: Sequence[Mapping[str, Any]] = (),
    datasets: Sequence[Mapping[str, Any]] = (),
    docs: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A KitOps config: the Kitfile as JSON."""
    kf: dict[str, Any] = {"manifestVersion": "1.0.0", "package": {"name": "tiny", "authors": ["tests"]}}
    if model is not None:
        kf["model"] = {"name": "tiny", **model, "parts": list(parts)}
    if code:
        kf["code"] = list(code)
    if datasets:
        kf["datasets"] = list(datasets)
    if docs:
        kf["docs"] = list(docs)
    return kf


# -- reading results ------------------------------------------------------------


def tree(root: Path, *, skip: str = ".oci-client") -> dict[str, bytes]:
    """Every file under root (through symlinks) by its relative path, except ``skip``."""
    assert root.is_dir(), f"{root} is not a directory"
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel == Path(".") and skip in dirnames:
            dirnames.remove(skip)
        for name in filenames:
            out[(rel / name).as_posix()] = (Path(dirpath) / name).read_bytes()
    return out


def entries_named(root: Path, name: str) -> list[Path]:
    """Everything called ``name`` anywhere under root, links included."""
    return [p for p in root.rglob(name)] if root.exists() else []


def blob_requests(proxy: FaultProxy, digest: str | None = None) -> list[Seen]:
    """Every request for a blob (any method), or for one digest."""
    return [s for s in proxy.log if "/blobs/" in s.path and (digest is None or digest in s.path)]


def blob_gets(proxy: FaultProxy, digest: str | None = None) -> list[Seen]:
    return [s for s in blob_requests(proxy, digest) if s.method == "GET"]


def manifest_gets(proxy: FaultProxy) -> list[Seen]:
    return [s for s in proxy.log if s.method == "GET" and "/manifests/" in s.path]


def state_of(cache: Path, digest: str) -> dict[str, Any]:
    """The ``.state`` JSON of a cached blob."""
    loaded: dict[str, Any] = json.loads(Path(f"{blob_path(cache, digest)}.state").read_text())
    return loaded


def flip_a_byte(blob: Path) -> None:
    """What a bad sector or a stray write leaves: same size, state untouched."""
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))


def blob_path(cache: Path, digest: str) -> Path:
    alg, hexdigest = digest.split(":", 1)
    return cache / "blobs" / alg / hexdigest


def this_boot() -> str:
    """``<host>/<boot id>`` as the cache writes it into a blob's state."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return f"{os.uname().nodename}/{boot}"
