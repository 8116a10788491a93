"""What the vLLM plugin needs without importing vLLM: telling an OCI reference from a
model path or Hugging Face id, and fetching a model's small files in a child process.

The child is the point: vLLM resolves the model in the process that later forks its
workers (``VLLM_WORKER_MULTIPROC_METHOD=fork`` is the library default), and a Go runtime
started before a fork is unusable in the child. So the parent never calls into liboci;
``python -m oci_client._vllm_resolve`` does, and prints what it pulled as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

OCI_SCHEME = "oci://"
LOAD_FORMAT = "oci"

#: What vLLM and transformers read before any weights: configs (``config.json``,
#: ``generation_config.json``, the safetensors index), tokenizer files, chat templates.
SMALL_FILES = (
    "*.json",
    "*.jinja",
    "*.txt",
    "*.model",
    "*.tiktoken",
    "*.vocab",
    "tokenizer*",
    "*.py",
)


def oci_reference(model: str, load_format: str | None) -> str | None:
    """The registry reference ``model`` names, or None for a local path or a Hugging Face id.

    ``oci://REF`` always names one; a bare ``registry/repo[:tag|@digest]`` only with
    ``--load-format oci``, and only when its first component is a registry host (it has a
    dot or a port, or is ``localhost``), as docker tells a host from a Hub namespace.
    """
    if model.startswith(OCI_SCHEME):
        return model[len(OCI_SCHEME) :]
    if load_format != LOAD_FORMAT or os.path.exists(model) or "/" not in model:
        return None
    host = model.split("/", 1)[0]
    if "." in host or ":" in host or host == "localhost":
        return model
    return None


@dataclass(frozen=True)
class Resolved:
    """A model's small files in the cache: ``path`` (the snapshot directory) and the
    reference pinned to the manifest digest (``repo@sha256:…``) its weights come from."""

    path: str
    reference: str


def resolve_in_child(reference: str, *, cache_dir: str | None, all_files: bool = False) -> Resolved:
    """Pull the small files (or, with ``all_files``, the whole model) in a child process."""
    argv = [sys.executable, "-m", "oci_client._vllm_resolve", reference]
    if cache_dir:
        argv += ["--cache-dir", cache_dir]
    if all_files:
        argv.append("--all")
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        from .errors import LibraryError, error_from_envelope

        try:
            error = json.loads(done.stdout)["error"]
        except (ValueError, KeyError, TypeError):
            raise LibraryError(f"resolving {reference}: {done.stderr.strip()[-2000:]}") from None
        raise error_from_envelope(error)
    r = json.loads(done.stdout)
    return Resolved(path=r["path"], reference=r["reference"])


def main(argv: list[str] | None = None) -> int:
    import argparse

    from . import OciGoClient
    from .errors import OciError

    p = argparse.ArgumentParser(prog="python -m oci_client._vllm_resolve")
    p.add_argument("reference")
    p.add_argument("--cache-dir")
    p.add_argument("--all", action="store_true", help="every file, not only the small ones")
    args = p.parse_args(argv)
    try:
        r = OciGoClient()._pull_model(
            args.reference,
            cache_dir=args.cache_dir,
            allow_patterns=None if args.all else list(SMALL_FILES),
        )
    except OciError as exc:
        error = {
            "code": exc.code,
            "message": exc.message,
            "status": exc.status,
            "registry_code": exc.registry_code,
        }
        print(json.dumps({"error": error}))
        return 1
    print(json.dumps({"path": r["path"], "reference": r["reference"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
