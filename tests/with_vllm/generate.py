"""Greedy tokens from a real vLLM engine on the CPU, as a JSON line on stdout:
``python generate.py MODEL [--oci] [--download-dir DIR]``. A script of its own because the
engine starts processes with spawn, which re-imports the main module (hence the guard)."""

import argparse
import json

PROMPT = "the model is pulled from a registry and"

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--oci", action="store_true", help="load_format='oci'")
    p.add_argument("--download-dir")
    args = p.parse_args()

    from vllm import LLM, SamplingParams

    kwargs = {"load_format": "oci"} if args.oci else {}
    llm = LLM(
        model=args.model,
        dtype="float32",
        max_model_len=64,
        enforce_eager=True,
        gpu_memory_utilization=0.15,
        download_dir=args.download_dir,
        **kwargs,
    )
    out = llm.generate([PROMPT], SamplingParams(temperature=0.0, max_tokens=8))[0].outputs[0]
    model = llm.llm_engine.model_config.model
    # vLLM logs to stdout too: the result is the line that starts with RESULT.
    result = {"token_ids": list(out.token_ids), "text": out.text, "model": model}
    print("RESULT " + json.dumps(result), flush=True)
