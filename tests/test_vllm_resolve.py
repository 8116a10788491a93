"""The vLLM plugin's resolution helpers that need no vLLM: choosing the GGUF files of one
model out of an artifact's weights, and patterns that match one path exactly."""

from __future__ import annotations

import fnmatch

import pytest

from oci_client import InvalidArgumentError
from oci_client._vllm_resolve import choose_gguf, literal

REF = "r.example/org/model:v1"
QUANTS = [
    "Qwen3-0.6B-Q4_K_M.gguf",
    "Qwen3-0.6B-Q4_K.gguf",
    "Qwen3-0.6B-Q8_0-00002-of-00002.gguf",
    "Qwen3-0.6B-Q8_0-00001-of-00002.gguf",
    "sub/llama.F16.gguf",
]


@pytest.mark.parametrize(
    ("choice", "files"),
    [
        ("Q4_K_M", ["Qwen3-0.6B-Q4_K_M.gguf"]),
        ("q4_k", ["Qwen3-0.6B-Q4_K.gguf"]),  # a whole part of the name: not Q4_K_M
        ("Q8_0", ["Qwen3-0.6B-Q8_0-00001-of-00002.gguf", "Qwen3-0.6B-Q8_0-00002-of-00002.gguf"]),
        ("f16", ["sub/llama.F16.gguf"]),
        ("*Q4_K_M*", ["Qwen3-0.6B-Q4_K_M.gguf"]),
        ("sub/*", ["sub/llama.F16.gguf"]),
    ],
)
def test_a_choice_picks_one_model_and_all_its_shards_in_order(choice: str, files: list[str]) -> None:
    assert choose_gguf(REF, [*QUANTS, "config.json", "model.safetensors"], choice) == files


def test_one_gguf_model_needs_no_choice() -> None:
    shards = ["m-00003-of-00003.gguf", "m-00001-of-00003.gguf", "m-00002-of-00003.gguf"]
    assert choose_gguf(REF, shards, None) == sorted(shards)


@pytest.mark.parametrize(
    ("weights", "choice", "message"),
    [
        (
            QUANTS,
            None,
            r"holds 4 GGUF models \(.*, Qwen3-0.6B-Q8_0.gguf \(2 shards\), sub/llama.F16.gguf\); choose",
        ),
        (QUANTS, "Q4", r"no GGUF file matches 'Q4' \(it holds Qwen3-0.6B-Q4_K.gguf, "),
        (QUANTS, "*Q4_K*", r"holds 2 GGUF models \(Qwen3-0.6B-Q4_K.gguf, Qwen3-0.6B-Q4_K_M.gguf\)"),
        (["model.safetensors"], None, "holds no GGUF weights"),
    ],
)
def test_an_ambiguous_or_unmatched_choice_is_a_typed_error(
    weights: list[str], choice: str | None, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message) as e:
        choose_gguf(REF, weights, choice)
    assert REF in str(e.value)


@pytest.mark.parametrize("path", ["m-Q4_K_M.gguf", "a[1]/b*c?.gguf", "[!x].gguf", "dir/x.gguf"])
def test_a_literal_pattern_matches_its_path_and_nothing_else(path: str) -> None:
    assert fnmatch.fnmatchcase(path, literal(path))
    for other in ("m-Q4_K_M.gguf", "a1/bXc!.gguf", "a[1]/b*c?.gguf", "x.gguf", "dir/x.gguf", "[!x].gguf"):
        assert fnmatch.fnmatchcase(other, literal(path)) == (other == path)
