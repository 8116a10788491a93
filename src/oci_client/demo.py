"""``oci-client demo``: the main job end to end, with nothing but this package.

It starts the registry that ships in the package (CNCF distribution, see
:mod:`oci_client.server`) on 127.0.0.1, writes a small real model (a few MB of
safetensors shards with its config and tokenizer files), publishes it in both
formats with :func:`~oci_client.push_model`, pulls each back with
:func:`~oci_client.pull_model` exactly as one would from Docker Hub or GHCR,
verifies every file, pulls again to show the cache hit, and stops everything.
No network, no system package, no Docker.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .cli import byte_bar, plural
from .client import Client, ModelFormat
from .server import Registry

# A Llama-shaped toy: small enough to write in a blink, big enough to show bars.
HIDDEN, LAYERS, VOCAB, INTERMEDIATE = 256, 4, 512, 688


def _safetensors(tensors: dict[str, tuple[int, ...]], seed: int) -> bytes:
    """A real safetensors file of F32 tensors with deterministic contents."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors.items():
        size = 4
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    data = bytearray()
    block = hashlib.sha256(f"oci-client demo {seed}".encode()).digest()
    while len(data) < offset:
        block = hashlib.sha256(block).digest()
        data += block * 64
    return struct.pack("<Q", len(head)) + head + bytes(data[:offset])


def _tokenizer(vocab: int) -> dict[str, Any]:
    """A word-level tokenizer in the ``tokenizers`` library's JSON format."""
    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(vocab - 3)]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": w,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i, w in enumerate(words[:3])
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {w: i for i, w in enumerate(words)}, "unk_token": "<unk>"},
    }


def demo_model_files() -> dict[str, bytes]:
    """The demo's model: two safetensors shards in Llama's tensor names, an
    index, config, generation config and tokenizer files, a chat template."""
    per_layer = {
        "self_attn.q_proj.weight": (HIDDEN, HIDDEN),
        "self_attn.k_proj.weight": (HIDDEN, HIDDEN),
        "self_attn.v_proj.weight": (HIDDEN, HIDDEN),
        "self_attn.o_proj.weight": (HIDDEN, HIDDEN),
        "mlp.gate_proj.weight": (INTERMEDIATE, HIDDEN),
        "mlp.up_proj.weight": (INTERMEDIATE, HIDDEN),
        "mlp.down_proj.weight": (HIDDEN, INTERMEDIATE),
        "input_layernorm.weight": (HIDDEN,),
        "post_attention_layernorm.weight": (HIDDEN,),
    }
    shards: list[dict[str, tuple[int, ...]]] = [{"model.embed_tokens.weight": (VOCAB, HIDDEN)}, {}]
    for layer in range(LAYERS):
        target = shards[0] if layer < LAYERS // 2 else shards[1]
        for name, shape in per_layer.items():
            target[f"model.layers.{layer}.{name}"] = shape
    shards[1]["model.norm.weight"] = (HIDDEN,)
    shards[1]["lm_head.weight"] = (VOCAB, HIDDEN)
    names = [f"model-0000{i + 1}-of-00002.safetensors" for i in range(2)]
    files = {
        name: _safetensors(tensors, i) for i, (name, tensors) in enumerate(zip(names, shards, strict=True))
    }
    weight_map = {t: name for name, tensors in zip(names, shards, strict=True) for t in tensors}
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "vocab_size": VOCAB,
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-6,
        "torch_dtype": "float32",
        "bos_token_id": 1,
        "eos_token_id": 2,
    }

    def js(v: Any) -> bytes:
        return json.dumps(v, indent=2).encode() + b"\n"

    files |= {
        "model.safetensors.index.json": js({"metadata": {}, "weight_map": weight_map}),
        "config.json": js(config),
        "generation_config.json": js({"bos_token_id": 1, "eos_token_id": 2}),
        "tokenizer.json": js(_tokenizer(VOCAB)),
        "tokenizer_config.json": js(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "model_max_length": 256,
            }
        ),
        "special_tokens_map.json": js({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}),
        "chat_template.jinja": b"{% for m in messages %}{{ m['content'] }}\n{% endfor %}",
        "README.md": b"# demo-llama\nA toy Llama written by `oci-client demo`.\n",
    }
    return files


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def run_demo(*, output: str | None = None, keep: bool = False, out: TextIO = sys.stdout) -> int:
    """Run the demo; ``output`` keeps the pulled model there, ``keep`` leaves the
    registry running and prints what to try next. Returns the exit status."""
    work = Path(tempfile.mkdtemp(prefix="oci-client-demo-"))
    root = work / "registry" if not keep else Path(tempfile.mkdtemp(prefix="oci-client-registry-"))
    start = time.perf_counter()
    registry = Registry(root, detach=keep).start()
    started = time.perf_counter() - start
    print(
        f"started the built-in registry at {registry.url} in {_ms(started)} (data in {registry.root})",
        file=out,
    )
    try:
        return _run(registry, work, output, keep, out)
    finally:
        if not keep:
            registry.stop()
            _remove_tree(work)


def _run(registry: Registry, work: Path, output: str | None, keep: bool, out: TextIO) -> int:
    files = demo_model_files()
    model = work / "demo-llama"
    for rel, data in files.items():
        (model / rel).parent.mkdir(parents=True, exist_ok=True)
        (model / rel).write_bytes(data)
    size = sum(len(d) for d in files.values())
    print(f"wrote a toy Llama: {plural(len(files), 'file')}, {size / 2**20:.1f} MiB in {model}", file=out)

    client = Client()
    cache = work / "cache"
    refs: dict[ModelFormat, str] = {}
    formats: tuple[tuple[ModelFormat, str], ...] = (
        ("modelpack", "demo/llama"),
        ("docker", "demo/llama-docker"),
    )
    for fmt, repo in formats:
        ref = refs[fmt] = f"{registry.host}/{repo}:v1"
        start = time.perf_counter()
        with byte_bar(f"push {fmt}", out) as bar:
            pushed = client.push_model(model, ref, format=fmt, cache_dir=cache, progress=bar)
        took = time.perf_counter() - start
        how = f"uploaded {pushed.uploaded}, mounted {pushed.mounted}, already there {pushed.skipped}"
        print(f"pushed {ref} as {fmt} in {_ms(took)}: {pushed.digest[:19]}… ({how})", file=out)

    for fmt, ref in refs.items():
        info = client.inspect(ref, cache_dir=cache)
        print(
            f"inspect {ref}: {info.format}, {plural(len(info.files), 'file')}, "
            f"{plural(info.total_size, 'byte')}",
            file=out,
        )
        local_dir = output if fmt == "modelpack" else None
        start = time.perf_counter()
        with byte_bar(f"pull {fmt}", out) as bar:
            pulled = client.pull(ref, cache_dir=cache, local_dir=local_dir, progress=bar)
        took = time.perf_counter() - start
        path = pulled.path
        bad = [rel for rel, data in files.items() if (path / rel).read_bytes() != data]
        if bad:
            print(f"MISMATCH in {', '.join(bad)}", file=sys.stderr)
            return 1
        n, size = pulled.blobs_downloaded, pulled.bytes_downloaded
        if n:
            fetched = f"{plural(n, 'blob')} fetched, {size / 2**20:.1f} MiB; the rest shared in the cache"
            print(
                f"pulled and verified {plural(len(files), 'file')} in {_ms(took)} ({fetched}) into {path}",
                file=out,
            )
        else:
            # Nothing was hashed here: the cache trusts what it hashed when it was
            # fetched (see docs/design/cache-format.md); only the comparison above read it.
            print(
                f"served {plural(len(files), 'file')} from the cache in {_ms(took)} (verified when fetched, "
                f"not hashed again; each file compared with the original) into {path}",
                file=out,
            )

    start = time.perf_counter()
    client.pull_model(refs["modelpack"], cache_dir=cache)
    print(f"pulled {refs['modelpack']} again from the cache in {_ms(time.perf_counter() - start)}", file=out)
    start = time.perf_counter()
    again = client.push_model(model, refs["modelpack"], cache_dir=cache)
    took = time.perf_counter() - start
    print(
        f"pushed it again in {_ms(took)}: {plural(again.skipped, 'blob')} already there, "
        f"{plural(again.bytes_sent, 'byte')} sent",
        file=out,
    )

    if keep:
        print(
            f"\nthe registry keeps running (pid {registry.pid}); try:\n"
            f"  oci-client inspect {refs['modelpack']}\n"
            f"  oci-client pull {refs['docker']}\n"
            f"  oci-client push {model} {registry.host}/you/model:v1\n"
            f"  kill {registry.pid}     # stop it (its data: {registry.root})",
            file=out,
        )
    return 0


def _remove_tree(path: Path) -> None:
    """Remove the demo's scratch directory, read-only parts included."""

    def retry_writable(fn: Callable[..., Any], p: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o755)
            fn(p)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry_writable)
    else:
        shutil.rmtree(path, onerror=retry_writable)
