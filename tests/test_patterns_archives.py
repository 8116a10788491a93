"""Patterns reach inside archive layers: the files they name are pulled wherever they were
packed (Docker Model Runner's vLLM config archive, a KitOps catch-all code layer, ModelPack
tars), which is what the vLLM plugin's small-file pull relies on; and patterns that select
no file are a typed error that lists the model's files, not an empty directory."""

from __future__ import annotations

import hashlib
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from faultproxy import FaultProxy
from modelfixtures import (
    DMR_CONFIG_V01,
    DMR_GGUF,
    DMR_LICENSE,
    DMR_SAFETENSORS,
    DMR_VLLM_CONFIG_TAR,
    KIT_CONFIG,
    MODELPACK_ARTIFACT,
    MODELPACK_CONFIG,
    Layer,
    blob_gets,
    blob_path,
    dmr_config,
    kit_layer,
    kitfile,
    modelpack_config,
    modelpack_layer,
    named,
    push_layers,
    tar,
    tree,
)
from oci_testing import LocalRegistry, PushedArtifact

import oci_client
from oci_client import InvalidArgumentError, NoMatchingFilesError
from oci_client._vllm_resolve import SMALL, resolve_in_child

pytestmark = pytest.mark.usefixtures("docker_config")

WEIGHTS = b"W" * 50_000
# What vLLM and transformers read before the weights, as a Hugging Face model has them.
SMALL_FILES = {
    "config.json": b'{"model_type": "llama"}',
    "generation_config.json": b'{"max_length": 8}',
    "tokenizer.json": b'{"v": 1}',
    "tokenizer_config.json": b'{"chat_template": null}',
    "special_tokens_map.json": b"{}",
    "chat_template.jinja": b"{{ messages }}",
    "tokenizer/vocab.txt": b"a\nb\n",
}
OTHER = {"README.md": b"# tiny\n", "data/train.csv": b"x,y\n"}


def via(proxy: FaultProxy, pushed: PushedArtifact) -> str:
    return f"{proxy.host}/{pushed.repository}:{pushed.tag}"


def docker_v01(registry: LocalRegistry) -> tuple[PushedArtifact, Layer]:
    """``docker model package`` before v0.2: unnamed safetensors, the configs, tokenizer and
    template in one unnamed ``vllm.config.tar``, a license."""
    weights = Layer(WEIGHTS, DMR_SAFETENSORS)
    layers = [weights, Layer(tar(SMALL_FILES), DMR_VLLM_CONFIG_TAR), Layer(b"MIT\n", DMR_LICENSE)]
    config = dmr_config("safetensors", layers)
    pushed = push_layers(
        registry, "arch/docker", "v1", layers, config=config, config_media_type=DMR_CONFIG_V01
    )
    return pushed, weights


def kit_init(registry: LocalRegistry) -> tuple[PushedArtifact, Layer]:
    """What ``kit init`` writes for a model directory: the weights as the model layer, the
    README as docs, and everything else in one catch-all code layer at ``.``."""
    weights = Layer(tar({"model.safetensors": WEIGHTS}), kit_layer("model"))
    code = Layer(tar({**SMALL_FILES, "data/train.csv": OTHER["data/train.csv"]}), kit_layer("code"))
    docs = Layer(tar({"README.md": OTHER["README.md"]}), kit_layer("docs"))
    layers = [weights, code, docs]
    config = kitfile(
        {"path": "model.safetensors", "digest": weights.digest},
        code=[{"path": ".", "digest": code.digest}],
        docs=[{"path": "README.md", "digest": docs.digest}],
    )
    pushed = push_layers(registry, "arch/kit", "v1", layers, config=config, config_media_type=KIT_CONFIG)
    return pushed, weights


def modelpack(registry: LocalRegistry, layout: str) -> tuple[PushedArtifact, Layer]:
    """ModelPack tar layouts: every file a tar of its own named by its path (modctl), the
    tokenizer and the configs as directory tars, or the whole model as one tar at ``.``."""
    mt = modelpack_layer
    weights = named(tar({"model.safetensors": WEIGHTS}), mt("weight", "tar"), "model.safetensors")
    if layout == "per-file":
        layers = [weights] + [
            named(tar({p: data}), mt("weight.config", "tar"), p) for p, data in SMALL_FILES.items()
        ]
        layers += [named(tar({p: data}), mt("doc", "tar"), p) for p, data in OTHER.items()]
    elif layout == "directories":
        configs = {p: d for p, d in SMALL_FILES.items() if not p.startswith("tokenizer/")}
        layers = [
            weights,
            named(
                tar({f"configs/{p}": d for p, d in configs.items()}), mt("weight.config", "tar"), "configs"
            ),
            named(
                tar({"tokenizer/vocab.txt": SMALL_FILES["tokenizer/vocab.txt"]}),
                mt("code", "tar"),
                "tokenizer",
            ),
            named(tar(OTHER), mt("doc", "tar"), "docs"),
        ]
    else:
        weights = named(tar({"model.safetensors": WEIGHTS, **SMALL_FILES, **OTHER}), mt("weight", "tar"), ".")
        layers = [weights]
    config = modelpack_config("tiny", layers)
    pushed = push_layers(
        registry,
        f"arch/modelpack-{layout}",
        "v1",
        layers,
        config=config,
        config_media_type=MODELPACK_CONFIG,
        artifact_type=MODELPACK_ARTIFACT,
    )
    return pushed, weights


def small_files_of(layout: str) -> dict[str, bytes]:
    if layout == "modelpack-directories":
        # The configs were packed under configs/, and are found there.
        return {
            **{f"configs/{p}": d for p, d in SMALL_FILES.items() if not p.startswith("tokenizer/")},
            "tokenizer/vocab.txt": SMALL_FILES["tokenizer/vocab.txt"],
        }
    return SMALL_FILES


LAYOUTS = ["docker-v0.1", "kit-init", "modelpack-per-file", "modelpack-directories", "modelpack-whole"]


def push(registry: LocalRegistry, layout: str) -> tuple[PushedArtifact, Layer]:
    if layout == "docker-v0.1":
        return docker_v01(registry)
    if layout == "kit-init":
        return kit_init(registry)
    return modelpack(registry, layout.removeprefix("modelpack-"))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_small_file_pull_gets_every_config_tokenizer_and_template_file(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path, layout: str
) -> None:
    pushed, weights = push(plain_registry, layout)
    path = oci_client.pull_model(via(proxy, pushed), cache_dir=cache, allow_patterns=list(SMALL))
    assert tree(path) == small_files_of(layout)
    if layout != "modelpack-whole":  # there the weights share the one archive
        assert not blob_gets(proxy, weights.digest), "the weights were fetched for a small-file pull"
    # Everything after: what the small-file pull fetched (archives included) is not
    # fetched again, and every file is there.
    first = {s.path.rsplit("/", 1)[1] for s in blob_gets(proxy)}
    before = len(blob_gets(proxy))
    full = oci_client.pull_model(via(proxy, pushed), cache_dir=cache)
    assert full == path
    got = tree(full)
    assert got["model.safetensors"] == WEIGHTS
    assert {p: got[p] for p in small_files_of(layout)} == small_files_of(layout)
    fetched = {s.path.rsplit("/", 1)[1] for s in blob_gets(proxy)[before:]}
    assert not fetched & first, "a layer fetched by the small-file pull was fetched again"


def test_patterns_pick_entries_into_a_local_dir_and_offline(
    plain_registry: LocalRegistry, proxy: FaultProxy, tmp_path: Path
) -> None:
    pushed, _ = kit_init(plain_registry)
    cache, out = tmp_path / "cache", tmp_path / "out"
    r = oci_client.pull(
        via(proxy, pushed), cache_dir=cache, local_dir=out, allow_patterns=["*.jinja", "tokenizer/"]
    )
    want = {"chat_template.jinja": SMALL_FILES["chat_template.jinja"], "tokenizer/vocab.txt": b"a\nb\n"}
    assert tree(out) == want
    # The result names the files picked out of the archive, not the archive.
    assert sorted(r.files) == sorted(want)
    assert not (out / "chat_template.jinja").is_symlink()
    # Offline, other patterns: from the archive the cache unpacked whole.
    proxy.log.clear()
    oci_client.pull_model(
        via(proxy, pushed), cache_dir=cache, local_dir=out, allow_patterns="data/*", offline=True
    )
    assert tree(out) == {**want, "data/train.csv": OTHER["data/train.csv"]}
    snap = oci_client.pull_model(via(proxy, pushed), cache_dir=cache, allow_patterns="*.json", offline=True)
    assert tree(snap) == {p: d for p, d in SMALL_FILES.items() if p.endswith(".json")}
    assert proxy.log == []


def test_patterns_that_select_nothing_raise_and_list_the_files(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path
) -> None:
    pushed, _ = docker_v01(plain_registry)
    with pytest.raises(NoMatchingFilesError) as e:
        oci_client.pull_model(via(proxy, pushed), cache_dir=cache, allow_patterns=["*.safetensor"])
    err = e.value
    assert isinstance(err, InvalidArgumentError) and err.code == "NO_MATCH"
    assert err.patterns == ["*.safetensor"] and err.ignore_patterns == []
    # The model's files, with the entries of the archive that had to be fetched to know.
    assert set(err.files) == {"model.safetensors", "LICENSE", *SMALL_FILES}
    assert "'*.safetensor'" in err.message or '"*.safetensor"' in err.message
    assert "model.safetensors" in err.message
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is NoMatchingFilesError
    assert (again.message, again.files, again.patterns) == (err.message, err.files, err.patterns)
    # No snapshot was made of nothing.
    assert not list((cache / "models").rglob("snapshots/*"))


def test_the_message_is_bounded(plain_registry: LocalRegistry, cache: Path) -> None:
    many = {f"part/{i:03}.txt": b"x" for i in range(50)}
    layers = [Layer(tar(many), DMR_VLLM_CONFIG_TAR), Layer(WEIGHTS, DMR_SAFETENSORS)]
    pushed = push_layers(
        plain_registry,
        "arch/many",
        "v1",
        layers,
        config=dmr_config("safetensors", layers),
        config_media_type=DMR_CONFIG_V01,
    )
    with pytest.raises(NoMatchingFilesError) as e:
        oci_client.pull_model(pushed.reference, cache_dir=cache, ignore_patterns=["part/", "*.safetensors"])
    assert len(e.value.files) == 51
    assert "and 31 more" in e.value.message and "part/049.txt" not in e.value.message


def test_the_cli_exits_1_with_one_line(plain_registry: LocalRegistry, cache: Path) -> None:
    pushed, _ = docker_v01(plain_registry)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "oci_client",
            "pull",
            pushed.reference,
            "--cache-dir",
            str(cache),
            "--include",
            "*.gguf",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: NO_MATCH: "), r.stderr
    assert "config.json" in lines[0]


def test_the_vllm_resolver_accepts_a_model_without_small_files(
    plain_registry: LocalRegistry, cache: Path
) -> None:
    layers = [Layer(b"GGUF" + WEIGHTS, DMR_GGUF)]
    pushed = push_layers(
        plain_registry,
        "arch/gguf",
        "v1",
        layers,
        config=dmr_config("gguf", layers),
        config_media_type=DMR_CONFIG_V01,
    )
    resolved = resolve_in_child(pushed.reference, cache_dir=str(cache))
    assert resolved.weights == ("model.gguf",)
    assert Path(resolved.path).is_dir() and tree(Path(resolved.path)) == {}


def test_cache_verify_repairs_an_entry_picked_out_of_an_archive(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path
) -> None:
    pushed, _ = kit_init(plain_registry)
    client = oci_client.OciGoClient()
    path = client.pull_model(via(proxy, pushed), cache_dir=cache, allow_patterns="*.jinja")
    client.wait_durable()
    template = SMALL_FILES["chat_template.jinja"]
    blob = blob_path(cache, "sha256:" + hashlib.sha256(template).hexdigest())
    blob.write_bytes(bytes([template[0] ^ 0xFF]) + template[1:])

    r = oci_client.cache_verify(cache_dir=cache)
    assert r.ok and len(r.corrupt) == 1 and r.corrupt[0].fixed, r
    # Pulled again as it was: the entry the pattern picked, and no other.
    assert tree(path) == {"chat_template.jinja": template}
