"""The Python pull programs, each run as its own measured subprocess:

    python -m bench.pullers MODE SPEC.json

MODE is ``oci-client`` (this library, whole model), ``oci-client-buffered`` (the same with
``direct_io=False``), ``oci-client-blob`` (one blob),
``oci-client-idle`` (interpreter + library loaded, one manifest fetch: the RSS floor),
``oras-py`` or ``requests``. SPEC.json is written by the driver (it may hold the test
registry's password, so it is a 0600 file rather than arguments). Each prints one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TITLE = "org.opencontainers.image.title"
_CHUNK = 8 * 1024 * 1024


def _title(layer: dict[str, Any]) -> str:
    name = (layer.get("annotations") or {}).get(TITLE) or layer["digest"].split(":", 1)[1]
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"unsafe layer title {name!r}")
    return str(name)


def _oci_client(spec: dict[str, Any], **options: Any) -> dict[str, Any]:
    from oci_client import OciGoClient

    client = OciGoClient(ca_file=spec.get("ca_file"), **options)
    ref = spec["reference"]
    manifest = client.get_manifest(ref).json()
    out = Path(spec["out_dir"])
    items = [(layer["digest"], str(out / _title(layer)), int(layer["size"])) for layer in manifest["layers"]]
    pull_blobs = getattr(client, "pull_blobs", None)
    if pull_blobs is not None:
        pull_blobs(ref, items, concurrency=spec.get("concurrency"))
        return {"api": "pull_blobs", "layers": len(items)}
    for digest, path, size in items:
        client.pull_blob(ref, digest, path, size=size)
    return {"api": "pull_blob", "layers": len(items)}


def _oci_client_buffered(spec: dict[str, Any]) -> dict[str, Any]:
    return _oci_client(spec, direct_io=False)


def _oci_client_blob(spec: dict[str, Any]) -> dict[str, Any]:
    from oci_client import OciError, OciGoClient

    client = OciGoClient(ca_file=spec.get("ca_file"))
    try:
        client.pull_blob(spec["reference"], spec["digest"], spec["path"], size=int(spec["size"]))
    except OciError as exc:
        return {
            "ok": False,
            "error": type(exc).__name__,
            "code": exc.code,
            "message": str(exc)[:500],
        }
    return {"ok": True}


def _oci_client_idle(spec: dict[str, Any]) -> dict[str, Any]:
    from oci_client import OciGoClient

    manifest = OciGoClient(ca_file=spec.get("ca_file")).get_manifest(spec["reference"])
    return {"manifest_bytes": manifest.size}


def _oras_py(spec: dict[str, Any]) -> dict[str, Any]:
    import oras.client

    tls = bool(spec["tls"])
    client = oras.client.OrasClient(
        hostname=spec["host"],
        insecure=not tls,  # oras-py: "insecure" means plain http
        tls_verify=spec["ca_file"] if tls else False,
        auth_backend="basic" if spec.get("username") else "token",
    )
    if spec.get("username"):
        client.auth.set_basic_auth(spec["username"], spec["password"])
    files = client.pull(target=spec["reference"], outdir=spec["out_dir"])
    return {"files": len(files)}


def _requests(spec: dict[str, Any]) -> dict[str, Any]:
    """Manifest, then each layer streamed to disk while hashing, compared at the end: the
    loop vLLM's Python loader used."""
    import requests

    session = requests.Session()
    # Per request: requests lets $REQUESTS_CA_BUNDLE override a session-level verify.
    verify = spec["ca_file"] if spec["tls"] else True
    if spec.get("username"):
        session.auth = (spec["username"], spec["password"])
    base = f"{spec['url']}/v2/{spec['repository']}"
    response = session.get(
        f"{base}/manifests/{spec['tag']}", headers={"Accept": OCI_MANIFEST}, timeout=60, verify=verify
    )
    response.raise_for_status()
    out = Path(spec["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    layers = response.json()["layers"]
    for layer in layers:
        h = hashlib.sha256()
        path = out / _title(layer)
        with session.get(f"{base}/blobs/{layer['digest']}", stream=True, timeout=60, verify=verify) as r:
            r.raise_for_status()
            with open(path, "wb") as f:
                for chunk in r.iter_content(_CHUNK):
                    f.write(chunk)
                    h.update(chunk)
        if f"sha256:{h.hexdigest()}" != layer["digest"]:
            path.unlink()
            raise RuntimeError(f"digest mismatch for {layer['digest']}")
    return {"layers": len(layers)}


MODES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "oci-client": _oci_client,
    "oci-client-buffered": _oci_client_buffered,
    "oci-client-blob": _oci_client_blob,
    "oci-client-idle": _oci_client_idle,
    "oras-py": _oras_py,
    "requests": _requests,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in MODES:
        print(f"usage: python -m bench.pullers {{{','.join(MODES)}}} SPEC.json", file=sys.stderr)
        return 2
    with open(args[1], encoding="utf-8") as f:
        spec = json.load(f)
    result = MODES[args[0]](spec)
    print(json.dumps(result), flush=True)
    return 0 if result.get("ok", True) else 3


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
