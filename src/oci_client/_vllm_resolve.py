"""What the vLLM plugin needs without importing vLLM: telling an OCI reference from a
model path or Hugging Face id, fetching a model's files in a child process, and choosing the
files of one GGUF model out of an artifact's.

The child is the point: vLLM resolves the model in the process that later forks its
workers (``VLLM_WORKER_MULTIPROC_METHOD=fork`` is the library default), and a Go runtime
started before a fork is unusable in the child. So the parent never calls into liboci;
``python -m oci_client._vllm_resolve`` does, and prints what it pulled as JSON.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import InvalidArgumentError, LibraryError, error_from_envelope

OCI_SCHEME = "oci://"
LOAD_FORMAT = "oci"

#: What vLLM and transformers read before any weights: configs (``config.json``,
#: ``generation_config.json``, the safetensors index), tokenizer files, chat templates.
SMALL = (
    "*.json",
    "*.jinja",
    "*.txt",
    "*.model",
    "*.tiktoken",
    "*.vocab",
    "tokenizer*",
    "*.py",
)
#: The ``model_loader_extra_config`` key choosing one GGUF model of several in an artifact.
GGUF_KEY = "gguf"


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
    """What a pull put in the cache: ``path`` (the snapshot directory), the reference pinned
    to the manifest digest (``repo@sha256:…``), and the paths of the model's weight files
    (pulled or not), in manifest order."""

    path: str
    reference: str
    weights: tuple[str, ...] = ()


def resolve_in_child(
    reference: str,
    *,
    cache_dir: str | None,
    allow_patterns: Sequence[str] | None = SMALL,
    concurrency: int | None = None,
) -> Resolved:
    """Pull the files ``allow_patterns`` match (the small ones by default; None: the whole
    model) in a child process."""
    argv = [sys.executable, "-m", "oci_client._vllm_resolve", reference]
    if cache_dir:
        argv += ["--cache-dir", cache_dir]
    if allow_patterns is None:
        argv.append("--all")
    else:
        argv += [f"--allow={p}" for p in allow_patterns]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        try:
            error = json.loads(done.stdout)["error"]
        except (ValueError, KeyError, TypeError):
            raise LibraryError(f"resolving {reference}: {done.stderr.strip()[-2000:]}") from None
        raise error_from_envelope(error)
    r = json.loads(done.stdout)
    return Resolved(path=r["path"], reference=r["reference"], weights=tuple(r["weights"]))


def literal(path: str) -> str:
    """A pattern matching exactly ``path`` (the patterns have no escape character)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)


_SHARD = re.compile(r"-\d{5}-of-\d{5}(?=\.gguf$)", re.IGNORECASE)


def choose_gguf(reference: str, weights: Iterable[str], choice: str | None) -> list[str]:
    """The GGUF files of one model out of those in ``weights``: its shards
    (``…-00001-of-00003.gguf``) in order, or its single file.

    An artifact may hold several quantisations. ``choice`` picks one: a quantisation
    (``Q4_K_M``, matched case-insensitively as a whole ``.``/``-`` separated part of the
    name, as vllm-gguf-plugin matches ``repo:Q4_K_M``) or a glob on the path. Without it
    there must be only one."""
    models: dict[str, list[str]] = {}
    for w in weights:
        if w.lower().endswith(".gguf"):
            models.setdefault(_SHARD.sub("", w), []).append(w)
    names = sorted(models)
    picked = names if choice is None else [n for n in names if _names([n, *models[n]], choice)]
    if len(picked) == 1:
        return sorted(models[picked[0]])

    def shown(names: list[str]) -> str:
        return ", ".join(n if len(models[n]) == 1 else f"{n} ({len(models[n])} shards)" for n in names)

    if not names:
        raise InvalidArgumentError(f"{reference} holds no GGUF weights")
    if not picked:
        raise InvalidArgumentError(f"{reference}: no GGUF file matches {choice!r} (it holds {shown(names)})")
    raise InvalidArgumentError(
        f"{reference} holds {len(picked)} GGUF models ({shown(picked)}); choose one with "
        f'model_loader_extra_config={{"{GGUF_KEY}": "Q4_K_M"}} (a quantisation, or a glob on the file name)'
    )


def _names(names: list[str], choice: str) -> bool:
    if any(c in choice for c in "*?["):
        return any(fnmatch.fnmatchcase(n.lower(), choice.lower()) for n in names)
    part = re.escape(choice.lower())
    return re.search(rf"(?:^|[./\-]){part}(?:[.\-]|$)", names[0].lower().removesuffix(".gguf")) is not None


def main(argv: list[str] | None = None) -> int:
    import argparse

    from . import Client
    from .errors import OciError

    p = argparse.ArgumentParser(prog="python -m oci_client._vllm_resolve")
    p.add_argument("reference")
    p.add_argument("--cache-dir")
    p.add_argument("--all", action="store_true", help="every file, not only the small ones")
    p.add_argument("--allow", action="append", help="a pattern of the files to pull (repeatable)")
    p.add_argument("--concurrency", type=int)
    args = p.parse_args(argv)
    try:
        r = Client().pull(
            args.reference,
            cache_dir=args.cache_dir,
            allow_patterns=None if args.all else args.allow or list(SMALL),
            concurrency=args.concurrency,
            # A GGUF model may have no small file at all: its snapshot is then empty.
            allow_empty=True,
        )
    except OciError as exc:
        error = {
            "code": exc.code,
            "message": exc.message,
            "status": exc.status,
            "registry_code": exc.registry_code,
            "details": exc.details,
            "reference": exc.reference,
            "digest": exc.digest,
            "url": exc.url,
        }
        print(json.dumps({"error": error}))
        return 1
    weights = [f.path for f in r.model_files if f.kind == "weight" and not f.archive]
    print(json.dumps({"path": str(r.path), "reference": r.reference, "weights": weights}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
