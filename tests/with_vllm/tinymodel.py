"""A small real model for the vLLM tests: a Llama built by transformers from a tiny config
(head_dim 64, which vLLM's CPU attention accepts), its weights saved as several safetensors
shards, and a real tokenizer made with the ``tokenizers`` library."""

from __future__ import annotations

from pathlib import Path

CORPUS = (
    "the model is pulled from a registry and loaded by vllm while later shards are still on the "
    "wire every blob is verified before it is read and each machine fetches it once"
)


def build_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    vocab = {w: i for i, w in enumerate([*specials, *sorted(set(CORPUS.split()))])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    fast.save_pretrained(out)


def build_model(out: Path, *, seed: int = 0) -> Path:
    """Write the model to ``out`` (config, generation config, 3+ shards, index, tokenizer)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(out, max_shard_size="200KB", safe_serialization=True)
    build_tokenizer(out)
    return out


def logits(path: Path, text: str = "the model is pulled from a registry") -> object:
    """The logits transformers computes for ``text`` with the model in ``path``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
    with torch.no_grad():
        return model(**tok(text, return_tensors="pt")).logits


def build_gguf(out: Path, weights: Path, *, name: str, dtype: str = "float32") -> Path:
    """Write the checkpoint in ``weights`` (``build_model``'s shards) to ``out/name`` as a GGUF
    file of vLLM's GGUF plugin's llama layout: llama.cpp's tensor names, in ``dtype``."""
    import json

    import gguf
    from safetensors.torch import load_file

    config = json.loads((weights / "config.json").read_text())
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    writer = gguf.GGUFWriter(str(out / name), "llama")
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    for shard in sorted(weights.glob("*.safetensors")):
        for hf_name, tensor in load_file(str(shard)).items():
            base, suffix = hf_name.rsplit(".", 1)
            writer.add_tensor(f"{names.get_name(base)}.{suffix}", tensor.numpy().astype(dtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out / name
