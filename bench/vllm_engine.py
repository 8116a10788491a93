"""Time to a ready vLLM engine (``LLM(...)`` returned, on the CPU) for a real Llama of >= 1 GiB
in the built-in registry: (a) ``pull_model`` then ``LLM(model=DIR)``, (b)
``LLM(model="oci://…", load_format="oci")`` (the plugin: small files first, then the weights
read as they are verified), (c) the same with the model already cached, beside the pull alone
and the engine from a local directory alone. Run it with the engine environment's Python
(.ci/vllm-envs engine), alone on the machine:

    ENV=$(.ci/vllm-envs engine | cut -d= -f2); PYTHONPATH=. $ENV/bin/python -m bench.vllm_engine

Each measurement is a fresh process (the engine's own processes start with spawn), timed from
before vLLM is imported to ``LLM(...)`` returning; the model's files stay in the page cache.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.vllm_load import in_children, rounds

MIB = 1 << 20
MODES = ("pull", "local", "sequential", "overlapped", "cached")
# What vLLM's default loader and the oci loader log once the weights are in a model: the part
# of the start-up that the loader decides (the CPU engine logs no other load time).
MODEL_LOADING = re.compile(r"Loading weights took ([\d.]+) seconds")
WORDS = [f"w{i}" for i in range(200)]


def build_model(root: Path, layers: int) -> Path:
    """A randomly initialised Llama (hidden 1024, head_dim 64: vLLM's CPU attention needs 64)
    with a word-level tokenizer, saved as ~300 MB safetensors shards (cached in ``root``)."""
    out = root / f"vllm-engine-llama-{layers}"
    if (out / "tokenizer.json").is_file():
        return out
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=layers,
        num_attention_heads=16,
        num_key_value_heads=16,
        head_dim=64,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    LlamaForCausalLM(config).eval().save_pretrained(out, max_shard_size="300MB", safe_serialization=True)
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    ).save_pretrained(out)
    return out


# -- one measurement, in a process of its own ---------------------------------------------


def measure(mode: str, ref: str, model_dir: Path, cache: Path) -> float:
    """Seconds from before vLLM is imported to the end of ``mode``."""
    start = time.perf_counter()
    import oci_client

    if mode == "cached":
        oci_client.pull_model(ref, cache_dir=cache)
        start = time.perf_counter()
    if mode == "pull":
        oci_client.pull_model(ref, cache_dir=cache)
        return time.perf_counter() - start
    from vllm import LLM

    engine: dict[str, Any] = {
        "dtype": "float32",
        "max_model_len": 64,
        "enforce_eager": True,
        "gpu_memory_utilization": 0.15,
    }
    if mode == "local":
        LLM(model=str(model_dir), **engine)
    elif mode == "sequential":
        LLM(model=str(oci_client.pull_model(ref, cache_dir=cache)), **engine)
    else:  # overlapped, cached
        LLM(model=f"oci://{ref}", load_format="oci", download_dir=str(cache), **engine)
    return time.perf_counter() - start


# -- the driver ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.vllm_engine", description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=16, help="decoder layers (16: 1.3 GiB in float32)")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/oci-bench"))
    p.add_argument("--output", type=Path, default=Path("bench/results/vllm_engine.json"))
    p.add_argument("--one", nargs=4, metavar=("MODE", "REF", "MODEL_DIR", "CACHE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        mode, ref, model_dir, cache = args.one
        seconds = measure(mode, ref, Path(model_dir), Path(cache))
        print("RESULT " + json.dumps({"seconds": seconds}), flush=True)
        return 0

    import oci_client
    from oci_client.server import Registry

    model_dir = build_model(args.cache_dir, args.layers)
    size = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
    runs: dict[str, list[float]] = {m: [] for m in MODES}
    loading: dict[str, list[float]] = {m: [] for m in MODES if m != "pull"}
    with (
        tempfile.TemporaryDirectory(dir=args.cache_dir) as work,
        Registry(Path(work) / "registry") as registry,
    ):
        ref = oci_client.push_model(model_dir, f"{registry.host}/bench/llama:v1").reference
        for mode in rounds(MODES, args.repeat):
            (done,) = in_children("bench.vllm_engine", [], mode, ref, model_dir, Path(work), 900)
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
            if done.returncode != 0 or not lines:
                print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
                return 1
            seconds = json.loads(lines[-1].removeprefix("RESULT "))["seconds"]
            runs[mode].append(seconds)
            logged = MODEL_LOADING.findall(done.stdout + done.stderr)
            if mode in loading and logged:
                loading[mode].append(float(logged[-1]))
            took = f"  (weights {logged[-1]} s)" if logged else ""
            print(f"[bench] {mode:<10} {seconds:6.2f} s{took}", file=sys.stderr, flush=True)
    med = {m: statistics.median(v) for m, v in runs.items()}
    load_med = {m: statistics.median(v) if v else float("nan") for m, v in loading.items()}
    doc = {
        "model_bytes": size,
        "layers": args.layers,
        "repeat": args.repeat,
        "runs": runs,
        "medians": med,
        "loading_weights_s": loading,
        "loading_weights_medians": load_med,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"### LLM(...) ready on the CPU engine: {size / MIB:.0f} MiB Llama, median of {args.repeat}\n")
    print("| seconds | pull alone | engine, local dir | (a) pull then LLM | (b) LLM(oci://…) | (c) cached |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print("| LLM(...) ready | " + " | ".join(f"{med[m]:.2f}" for m in MODES) + " |")
    print("| loading weights | — | " + " | ".join(f"{load_med[m]:.2f}" for m in MODES[1:]) + " |")
    print(
        f"\n(b) - engine alone = {med['overlapped'] - med['local']:.2f} s of pulling not hidden; "
        f"(a) - engine alone = {med['sequential'] - med['local']:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
