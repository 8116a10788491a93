"""The Python pull programs, each run as its own measured subprocess:

    python -m bench.pullers MODE SPEC.json

MODE is ``oci-client`` (this library, whole model), ``oci-client-buffered`` (the same with
``direct_io=False``), ``oci-client-blob`` (one blob),
``oci-client-idle`` (interpreter + library loaded, one manifest fetch: the RSS floor),
``oras-py`` or ``requests``; for ``bench.models``: ``oci-client-model`` (``pull_model`` into a
cache directory, the defaults), ``oci-client-model-sync`` (``durability="sync"``),
``oci-client-model-direct`` (``direct_io=True`` and ``durability="sync"``),
``oci-client-model-again`` (``pull_model`` twice, each call timed: the cache hit, or with
``offline`` in the spec the offline hit) and ``read-back`` (read files in full, timed).
SPEC.json is written by the driver (it may hold the test registry's password, so it is a 0600
file rather than arguments). Each prints one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TITLE = "org.opencontainers.image.title"
_CHUNK = 8 * 1024 * 1024
READ_BACK_CHUNK = 16 * 1024 * 1024


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


def _model_options(spec: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"cache_dir": spec["cache_dir"]}
    if spec.get("offline") is not None:
        options["offline"] = bool(spec["offline"])
    return options


def _pull_model(spec: dict[str, Any], direct_io: bool | None = None, **options: Any) -> dict[str, Any]:
    """``Client.pull_model`` into ``out_dir`` as the cache; prints the model directory."""
    import oci_client

    started = time.perf_counter()
    client = oci_client.Client(ca_file=spec.get("ca_file"), direct_io=direct_io)
    path = client.pull_model(spec["reference"], cache_dir=spec["out_dir"], **options)
    return {"path": str(path), "library_s": time.perf_counter() - started}


def _pull_model_default(spec: dict[str, Any]) -> dict[str, Any]:
    return _pull_model(spec)


def _pull_model_sync(spec: dict[str, Any]) -> dict[str, Any]:
    return _pull_model(spec, durability="sync")


def _pull_model_direct(spec: dict[str, Any]) -> dict[str, Any]:
    return _pull_model(spec, durability="sync", direct_io=True)


def _pull_model_again(spec: dict[str, Any]) -> dict[str, Any]:
    """Two ``pull_model`` calls of a model already in ``cache_dir``, each timed: the first in
    this fresh process (the library loads in it), the second the steady state. Then, outside
    the timing, the manifest digest the cache holds (for a digest-pinned reference)."""
    started = time.perf_counter()
    import oci_client

    options = _model_options(spec)
    client = oci_client.Client(ca_file=spec.get("ca_file"))
    t0 = time.perf_counter()
    first = client.pull_model(spec["reference"], **options)
    t1 = time.perf_counter()
    first_done = time.time()  # to tell the registry's log lines of the two calls apart
    second = client.pull_model(spec["reference"], **options)
    t2 = time.perf_counter()
    info = client.inspect(spec["reference"], cache_dir=spec["cache_dir"], offline=True)
    return {
        "path": str(first),
        "same_path": first == second,
        "import_s": t0 - started,
        "library_s": t1 - t0,
        "in_process_s": t2 - t1,
        "first_done_epoch": first_done,
        "digest": info.digest,
    }


def _read_back(spec: dict[str, Any]) -> dict[str, Any]:
    """Read every file of ``files`` in full, in READ_BACK_CHUNK reads (what a loader does next)."""
    buf = bytearray(READ_BACK_CHUNK)
    view = memoryview(buf)
    total = 0
    started = time.perf_counter()
    for name in spec["files"]:
        with open(name, "rb", buffering=0) as f:
            while n := f.readinto(view):
                total += n
    return {"bytes": total, "read_s": time.perf_counter() - started}


MODES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "oci-client": _oci_client,
    "oci-client-buffered": _oci_client_buffered,
    "oci-client-blob": _oci_client_blob,
    "oci-client-idle": _oci_client_idle,
    "oras-py": _oras_py,
    "requests": _requests,
    "oci-client-model": _pull_model_default,
    "oci-client-model-sync": _pull_model_sync,
    "oci-client-model-direct": _pull_model_direct,
    "oci-client-model-again": _pull_model_again,
    "read-back": _read_back,
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
