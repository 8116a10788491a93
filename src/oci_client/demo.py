"""``oci-client demo``: the main job end to end, on a registry of its own.

It starts a local CNCF distribution registry, pushes a tiny model as a CNCF
ModelPack artifact, then pulls it back with :meth:`OciGoClient.pull_model`
exactly as one would from Docker Hub or GHCR, verifies every file, and pulls
it again to show the cache hit.
"""

from __future__ import annotations

import json
import struct
import sys
import tempfile
import time
from pathlib import Path

from .client import OciGoClient


def tiny_model_files() -> dict[str, bytes]:
    """A small but well-formed model: a safetensors file and its configs."""
    header = {
        "__metadata__": {"format": "pt"},
        "weight": {"dtype": "F32", "shape": [64, 64], "data_offsets": [0, 64 * 64 * 4]},
    }
    header_bytes = json.dumps(header).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)
    tensor = b"".join(struct.pack("<f", (i % 97) / 97.0) for i in range(64 * 64))
    safetensors = struct.pack("<Q", len(header_bytes)) + header_bytes + tensor
    config = {"architectures": ["TinyModel"], "hidden_size": 64, "model_type": "tiny"}
    return {
        "config.json": json.dumps(config, indent=2).encode(),
        "model.safetensors": safetensors,
        "README.md": b"# tiny-model\nA demo model for oci-client.\n",
    }


def run_demo(*, output: str | None = None) -> int:
    try:
        from .testing import LocalRegistry, RegistryUnavailable, push_model
    except ImportError as exc:  # the demo's helpers need the [testing] extra
        print(f"the demo needs: pip install 'oci-client[testing]' ({exc})", file=sys.stderr)
        return 1
    try:
        registry = LocalRegistry("plain").start()
    except RegistryUnavailable as exc:
        print(f"the demo needs a local registry: {exc}", file=sys.stderr)
        return 1
    with registry, tempfile.TemporaryDirectory(prefix="oci-client-demo-") as tmp:
        files = tiny_model_files()
        pushed = push_model(registry, "demo/tiny-model", "v1", files)
        ref = f"{registry.host}/demo/tiny-model:v1"
        print(f"pushed {len(files)} files to {ref} ({pushed.digest})")

        client = OciGoClient()
        cache = Path(tmp) / "cache"
        info = client.inspect(ref, cache_dir=cache)
        print(f"{info.format} model, {len(info.files)} files, {info.total_size} bytes")

        start = time.perf_counter()
        root = client.pull_model(ref, cache_dir=cache, local_dir=output)
        cold = time.perf_counter() - start
        for name, data in files.items():
            if (root / name).read_bytes() != data:
                print(f"MISMATCH in {name}", file=sys.stderr)
                return 1
        print(f"pulled and verified {len(files)} files in {cold * 1000:.0f} ms into {root}")
        start = time.perf_counter()
        client.pull_model(ref, cache_dir=cache)
        print(f"pulled again from the cache in {(time.perf_counter() - start) * 1000:.0f} ms")
    return 0
