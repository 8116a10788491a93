"""``oci-client demo``: the main job end to end, on a registry of its own.

It starts a local CNCF distribution registry, pushes a tiny model as a CNCF
ModelPack artifact, then pulls it back with :class:`OciGoClient` exactly as
one would from Docker Hub or GHCR: check access, fetch the manifest, download
and verify every layer into a model directory.
"""

from __future__ import annotations

import json
import struct
import sys
import tempfile
import time
from pathlib import Path

from .client import OciGoClient
from .paths import layer_file_name, safe_join


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
        reason = client.test_authentication(ref)
        print(f"pull access: {'granted' if reason is None else reason}")
        manifest = client.get_manifest(ref)
        print(f"manifest {manifest.digest} ({manifest.media_type}, {manifest.size} bytes)")

        root = Path(output) if output else Path(tmp) / "tiny-model"
        start = time.perf_counter()
        total = 0
        for layer in manifest.json()["layers"]:
            name = layer_file_name(layer)
            info = client.pull_blob(ref, layer["digest"], safe_join(root, name), size=layer["size"])
            total += info.size
            print(f"  {name:<20} {info.size:>8} bytes  {info.digest}")
        elapsed = time.perf_counter() - start
        for name, data in files.items():
            if (root / name).read_bytes() != data:
                print(f"MISMATCH in {name}", file=sys.stderr)
                return 1
        print(f"pulled and verified {total} bytes in {elapsed * 1000:.0f} ms into {root}")
    return 0
