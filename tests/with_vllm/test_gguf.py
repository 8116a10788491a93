"""GGUF models through --load-format oci: vLLM no longer loads GGUF itself, so the plugin
hands a GGUF model to vllm-gguf-plugin (installed in the api environment), with the chosen
file pulled into the cache and nothing else of the weights; and it refuses clearly, before
any weights move, where that cannot work."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_loader_api import Flat, assert_holds, tensors
from tinymodel import build_gguf, build_model
from vllm.config.load import LoadConfig
from vllm.engine.arg_utils import EngineArgs
from vllm.model_executor.model_loader import _LOAD_FORMAT_TO_MODEL_LOADER, get_model_loader

import oci_client
from oci_client.server import Registry


@pytest.fixture(autouse=True, scope="module")
def plugins() -> None:
    from vllm.plugins import load_general_plugins

    load_general_plugins()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("tiny-llama"), seed=3)


def gguf_model(out: Path, checkpoint: Path, *quants: str, small_files: bool = True) -> Path:
    """A model directory as a GGUF publisher ships it: one file per quantisation, and (unless
    not ``small_files``, as Docker Model Runner's GGUF models) config.json and the tokenizer
    beside them; no safetensors."""
    out.mkdir()
    if small_files:
        for f in checkpoint.iterdir():
            if f.suffix != ".safetensors" and f.name != "model.safetensors.index.json":
                shutil.copy(f, out / f.name)
    dtypes = {"F32": "float32", "F16": "float16"}
    for q in quants:
        build_gguf(out, checkpoint, name=f"tiny-{q}.gguf", dtype=dtypes[q])
    return out


@pytest.fixture(scope="module", params=["modelpack", "docker"])
def two_quants(
    request: pytest.FixtureRequest,
    registry: Registry,
    checkpoint: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The same files published as CNCF ModelPack and as Docker Model Runner's layout."""
    ref = f"{registry.host}/vllm/tiny-gguf-{request.param}:v1"
    model = gguf_model(tmp_path_factory.mktemp("g") / "m", checkpoint, "F32", "F16")
    oci_client.push_model(model, ref, format=request.param)
    return ref


def blob(cache: Path, ref: str, path: str) -> Path:
    digest = next(f.digest for f in oci_client.inspect(ref, cache_dir=cache).files if f.path == path)
    return cache / "blobs" / "sha256" / digest.removeprefix("sha256:")


def engine_args(ref: str, cache: Path, **kw: Any) -> EngineArgs:
    return EngineArgs(model=f"oci://{ref}", load_format="oci", download_dir=str(cache), **kw)


def test_a_gguf_model_goes_to_vllms_gguf_plugin(two_quants: str, checkpoint: Path, cache: Path) -> None:
    from vllm_gguf_plugin import GGUFModelLoader

    args = engine_args(two_quants, cache, model_loader_extra_config={"gguf": "f32"})
    config = args.create_model_config()
    snapshot = Path(config.model)
    assert snapshot.is_relative_to(cache) and (snapshot / "config.json").is_file()
    assert (args.load_format, config.quantization) == ("gguf", "gguf")
    assert config.model_weights == str(snapshot / "tiny-F32.gguf")
    assert args.model_loader_extra_config == {}  # that loader refuses any key
    assert args.served_model_name == f"oci://{two_quants}"
    assert config.hf_config.model_type == "llama"
    # The chosen file only, verified: its bytes are the published layer's.
    published = blob(cache, two_quants, "tiny-F32.gguf")
    assert hashlib.sha256(Path(config.model_weights).read_bytes()).hexdigest() == published.name
    assert not blob(cache, two_quants, "tiny-F16.gguf").exists()

    loader = get_model_loader(LoadConfig(load_format=args.load_format, download_dir=str(cache)))
    assert isinstance(loader, GGUFModelLoader)
    expected = tensors(checkpoint)
    module = Flat({k: v.shape for k, v in expected.items()})
    loader.load_weights(module, config)
    assert sorted(module.order) == sorted(expected)
    assert_holds(module, expected)


def test_several_quantisations_need_a_choice_that_names_one(two_quants: str, cache: Path) -> None:
    with pytest.raises(
        oci_client.InvalidArgumentError, match=r"2 GGUF models \(tiny-F16.gguf, tiny-F32.gguf\)"
    ):
        engine_args(two_quants, cache).create_model_config()
    with pytest.raises(oci_client.InvalidArgumentError, match="no GGUF file matches 'Q4_K_M'"):
        engine_args(two_quants, cache, model_loader_extra_config={"gguf": "Q4_K_M"}).create_model_config()
    for f in ("tiny-F32.gguf", "tiny-F16.gguf"):
        assert not blob(cache, two_quants, f).exists()  # refused before the weights moved
    glob = engine_args(two_quants, cache, model_loader_extra_config={"gguf": "*-F16.gguf"})
    assert Path(glob.create_model_config().model_weights).name == "tiny-F16.gguf"


def test_without_vllm_gguf_plugin_a_gguf_model_is_refused_before_its_weights_move(
    two_quants: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(_LOAD_FORMAT_TO_MODEL_LOADER, "gguf")
    args = engine_args(two_quants, cache, model_loader_extra_config={"gguf": "F32"})
    with pytest.raises(oci_client.InvalidArgumentError, match="pip install vllm-gguf-plugin"):
        args.create_model_config()
    assert not blob(cache, two_quants, "tiny-F32.gguf").exists()


def test_a_gguf_model_without_config_json_takes_it_from_hf_config_path_or_the_tokenizer(
    registry: Registry, checkpoint: Path, cache: Path, tmp_path: Path
) -> None:
    ref = f"{registry.host}/vllm/tiny-gguf-bare:v1"
    oci_client.push_model(gguf_model(tmp_path / "m", checkpoint, "F32", small_files=False), ref)
    with pytest.raises(
        oci_client.InvalidArgumentError, match=r"no config.json.*--hf-config-path \(or --tokenizer\)"
    ):
        engine_args(ref, cache).create_model_config()
    assert not blob(cache, ref, "tiny-F32.gguf").exists()

    # A config and tokenizer from elsewhere (a directory here; a Hugging Face id works alike).
    by_config = engine_args(ref, cache, hf_config_path=str(checkpoint))
    config = by_config.create_model_config()
    assert config.quantization == "gguf" and Path(config.model_weights).name == "tiny-F32.gguf"
    assert config.hf_config.num_hidden_layers == 2
    assert by_config.tokenizer == str(checkpoint)  # the artifact has no tokenizer of its own
    by_tokenizer = engine_args(ref, cache, tokenizer=str(checkpoint))
    config = by_tokenizer.create_model_config()
    assert by_tokenizer.hf_config_path == str(checkpoint) and config.hf_config.model_type == "llama"
    assert Path(config.model_weights).name == "tiny-F32.gguf"


def test_a_gguf_choice_for_a_safetensors_model_is_refused(
    registry: Registry, checkpoint: Path, cache: Path
) -> None:
    ref = f"{registry.host}/vllm/tiny-st:v1"
    oci_client.push_model(checkpoint, ref)
    with pytest.raises(oci_client.InvalidArgumentError, match="holds no GGUF weights"):
        engine_args(ref, cache, model_loader_extra_config={"gguf": "Q4_K_M"}).create_model_config()
