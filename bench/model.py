"""The benchmark model: random weight shards plus a config.json, generated once into a cache
directory (reused across runs) and pushed as one CNCF ModelPack manifest."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oci_testing import (
    MODEL_WEIGHT_CONFIG_MEDIA_TYPE,
    MODEL_WEIGHT_MEDIA_TYPE,
    LayerSpec,
    LocalRegistry,
    push_model,
)

__all__ = ["GIB", "MIB", "Model", "ModelFile", "build_model", "build_single_blob", "push"]

MIB = 1024 * 1024
GIB = 1024 * MIB
_PIECE = 64 * MIB


@dataclass(frozen=True)
class ModelFile:
    """One file of the model, i.e. one layer of the pushed manifest."""

    name: str
    path: Path
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class Model:
    """Files pushed as the layers of one manifest, in order."""

    files: tuple[ModelFile, ...]

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def _keystream(name: str) -> Callable[[int], bytes]:
    """Incompressible, reproducible bytes: AES-CTR keystream keyed by the file name
    (falls back to os.urandom without the cryptography package)."""
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        return os.urandom
    key = hashlib.sha256(name.encode()).digest()[:16]
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    zeros = bytes(_PIECE)

    def stream(n: int) -> bytes:
        return encryptor.update(zeros[:n] if n < _PIECE else zeros)

    return stream


def _cached_random_file(path: Path, size: int) -> tuple[str, int]:
    """Create ``path`` with ``size`` random bytes unless a complete copy is cached; returns
    its digest. The digest sits in ``PATH.sha256``, written only after the data is complete."""
    record = path.with_name(path.name + ".sha256")
    if path.is_file() and record.is_file() and path.stat().st_size == size:
        digest = record.read_text().strip()
        if digest.startswith("sha256:"):
            return digest, size
    path.parent.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)
    tmp = path.with_name(path.name + ".partial")
    h = hashlib.sha256()
    stream = _keystream(path.name)
    with open(tmp, "wb") as f:
        left = size
        while left > 0:
            piece = stream(min(_PIECE, left))
            f.write(piece)
            h.update(piece)
            left -= len(piece)
    os.replace(tmp, path)
    digest = f"sha256:{h.hexdigest()}"
    record.write_text(digest + "\n")
    return digest, size


def build_model(cache_dir: Path, total_size: int, shards: int) -> Model:
    """``shards`` weight files adding up to ``total_size`` bytes, plus ``config.json``."""
    if shards < 1 or total_size < shards:
        raise ValueError("need at least one shard and one byte per shard")
    directory = cache_dir / "data" / f"model-{total_size}-{shards}"
    files = []
    base, extra = divmod(total_size, shards)
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        size = base + (extra if i == shards - 1 else 0)
        digest, _ = _cached_random_file(directory / name, size)
        files.append(ModelFile(name, directory / name, digest, size, MODEL_WEIGHT_MEDIA_TYPE))
    config = json.dumps(
        {"architectures": ["BenchModel"], "model_type": "bench", "num_shards": shards},
        indent=2,
    ).encode()
    config_path = directory / "config.json"
    config_path.write_bytes(config)
    files.append(
        ModelFile(
            "config.json",
            config_path,
            f"sha256:{hashlib.sha256(config).hexdigest()}",
            len(config),
            MODEL_WEIGHT_CONFIG_MEDIA_TYPE,
        )
    )
    return Model(tuple(files))


def build_single_blob(cache_dir: Path, size: int) -> Model:
    """A one-file model: one random blob of ``size`` bytes."""
    name = f"blob-{size}.bin"
    path = cache_dir / "data" / name
    digest, _ = _cached_random_file(path, size)
    return Model((ModelFile(name, path, digest, size, MODEL_WEIGHT_MEDIA_TYPE),))


def push(registry: LocalRegistry, repository: str, tag: str, model: Model) -> str:
    """Push ``model`` as one OCI manifest under ``repository:tag``; returns ``host/repo:tag``."""
    files = {f.name: LayerSpec(f.path, media_type=f.media_type) for f in model.files}
    pushed = push_model(registry, repository, tag, files)
    got = [layer.digest for layer in pushed.layers]
    want = [f.digest for f in model.files]
    if got != want:
        raise RuntimeError(f"pushed layer digests {got} differ from the cached files' {want}")
    return pushed.reference
