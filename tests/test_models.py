"""pull_model against a real registry: every model format as its tool pushes
it, file naming, archive layers, index selection, allow/ignore patterns,
local_dir, inspect, and refusing anything that would write outside the
model directory."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path

import pytest
from credentials import auth_field, write_config
from faultproxy import FaultProxy, Rule
from modelfixtures import (
    CNAI_ARTIFACT,
    CNAI_CONFIG,
    DMR_CHAT_TEMPLATE,
    DMR_CONFIG_V01,
    DMR_CONFIG_V02,
    DMR_GGUF,
    DMR_LICENSE,
    DMR_SAFETENSORS,
    DMR_VLLM_CONFIG_TAR,
    FILEPATH,
    KIT_CONFIG,
    LEGACY_FILEPATH,
    MODELPACK_ARTIFACT,
    MODELPACK_CONFIG,
    TITLE,
    Entry,
    Layer,
    blob_gets,
    blob_requests,
    blockdev,
    chardev,
    compress,
    directory,
    dmr_config,
    fifo,
    file,
    hardlink,
    kit_layer,
    kitfile,
    modelpack_config,
    modelpack_layer,
    named,
    push_index_of,
    push_layers,
    symlink,
    tar,
    tree,
)
from oci_testing import LayerSpec, LocalRegistry, PushedArtifact, push_artifact

import oci_client
from oci_client import (
    AuthenticationError,
    InvalidArgumentError,
    InvalidModelError,
    InvalidReferenceError,
    OciGoClient,
    OperationTimeoutError,
    TLSError,
    UnsafeArchiveError,
    _native,
)

pytestmark = pytest.mark.usefixtures("docker_config")

SHARD_1 = os.urandom(40_000)
SHARD_2 = os.urandom(30_000)
GGUF = b"GGUF" + os.urandom(20_000)
VLLM_FILES = {
    "config.json": b'{"model_type": "llama"}',
    "tokenizer.json": b'{"v": 1}',
    "sub/vocab.txt": b"a\nb\n",
}


def via(proxy: FaultProxy, pushed: PushedArtifact, tag: str | None = None) -> str:
    """The pushed model's reference through the proxy."""
    return f"{proxy.host}/{pushed.repository}:{tag or pushed.tag}"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def assert_snapshot_links(path: Path, cache: Path) -> None:
    """Every file of a cache snapshot is a symlink to the blob of its content."""
    blobs = (cache / "blobs" / "sha256").resolve()
    files = [p for p in path.rglob("*") if not p.is_dir()]
    assert files
    for p in files:
        assert p.is_symlink(), f"{p} is not a link into the cache"
        target = p.resolve()
        assert target.parent == blobs, target
        assert "sha256:" + target.name == sha256(target.read_bytes())


# -- formats and names ----------------------------------------------------------


def test_docker_model_runner_safetensors_shards_vllm_config_and_license(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path
) -> None:
    layers = [
        Layer(SHARD_1, DMR_SAFETENSORS),
        Layer(SHARD_2, DMR_SAFETENSORS),
        Layer(tar(VLLM_FILES), DMR_VLLM_CONFIG_TAR),
        Layer(b"Apache License 2.0\n", DMR_LICENSE),
    ]
    pushed = push_layers(
        plain_registry,
        "models/dmr-st",
        "v1",
        layers,
        config=dmr_config("safetensors", layers),
        config_media_type=DMR_CONFIG_V02,
    )
    path = oci_client.pull_model(via(proxy, pushed), cache_dir=cache)
    # Unnamed shards are numbered in manifest order, the vLLM archive is unpacked into
    # the root, and the license gets its conventional name.
    assert tree(path) == {
        "model-00001-of-00002.safetensors": SHARD_1,
        "model-00002-of-00002.safetensors": SHARD_2,
        **VLLM_FILES,
        "LICENSE": b"Apache License 2.0\n",
    }
    assert path == cache / "models" / proxy.host / "models+dmr-st" / "snapshots" / pushed.digest.replace(
        ":", "-"
    )
    assert_snapshot_links(path, cache)
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert record["format"] == "docker"
    assert (
        cache / "models" / proxy.host / "models+dmr-st" / "refs" / "v1"
    ).read_text().strip() == pushed.digest
    assert (cache / "manifests" / "sha256" / (pushed.digest.split(":")[1] + ".json")).is_file()
    # Nothing half-done is left: no partial download, temporary name, lease or staging.
    junk = [p.name for p in cache.rglob("*") if ".incomplete" in p.name or ".tmp" in p.name]
    assert junk == []
    assert list((cache / "locks").iterdir()) == [] and list((cache / "tmp").iterdir()) == []


def test_docker_model_runner_gguf_with_chat_template(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path
) -> None:
    layers = [
        Layer(GGUF, DMR_GGUF),
        Layer(b"{{ messages }}", DMR_CHAT_TEMPLATE),
        named(b"Proprietary\n", DMR_LICENSE, "licenses/LICENSE-model.txt"),
    ]
    pushed = push_layers(
        plain_registry,
        "models/dmr-gguf",
        "v1",
        layers,
        config=dmr_config("gguf", layers),
        config_media_type=DMR_CONFIG_V01,
    )
    path = OciGoClient().pull_model(via(proxy, pushed), cache_dir=cache)
    assert tree(path) == {
        "model.gguf": GGUF,
        "template.jinja": b"{{ messages }}",
        "licenses/LICENSE-model.txt": b"Proprietary\n",
    }


@pytest.mark.parametrize("legacy", [False, True], ids=["cncf", "cnai"])
def test_modelpack_every_layer_kind_and_archive_compression(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path, legacy: bool
) -> None:
    key = LEGACY_FILEPATH if legacy else FILEPATH

    def mt(kind: str, suffix: str) -> str:
        return modelpack_layer(kind, suffix, legacy=legacy)

    configs = {"config.json": b'{"hidden": 8}', "tokenizer.json": b'{"t": 2}'}
    docs = {"README.md": b"# tiny\n", "docs/usage.md": b"use it\n"}
    code = {"src/run.py": b"print('hi')\n", "src/lib/util.py": b"X = 1\n"}
    layers = [
        named(SHARD_1, mt("weight", "raw"), "model.safetensors", key=key),
        named(tar(configs), mt("weight.config", "tar"), "configs", key=key),
        named(compress(tar(docs), "tar+zstd"), mt("doc", "tar+zstd"), "docs", key=key),
        named(compress(tar(code), "tar+gzip"), mt("code", "tar+gzip"), "src", key=key),
        named(b"a,b\n1,2\n", mt("dataset", "raw"), "data/train.csv", key=key),
    ]
    pushed = push_layers(
        plain_registry,
        f"models/modelpack-{'cnai' if legacy else 'cncf'}",
        "v1",
        layers,
        config=modelpack_config("tiny", layers),
        config_media_type=CNAI_CONFIG if legacy else MODELPACK_CONFIG,
        artifact_type=CNAI_ARTIFACT if legacy else MODELPACK_ARTIFACT,
    )
    path = oci_client.pull_model(via(proxy, pushed), cache_dir=cache)
    assert tree(path) == {
        "model.safetensors": SHARD_1,
        **configs,
        **docs,
        **code,
        "data/train.csv": b"a,b\n1,2\n",
    }
    assert_snapshot_links(path, cache)
    info = oci_client.inspect(via(proxy, pushed), cache_dir=cache)
    assert info.format == "modelpack"
    kinds = {f.path: (f.kind, f.archive) for f in info.files}
    assert kinds == {
        "model.safetensors": ("weight", None),
        "configs": ("weight-config", "tar"),
        "docs": ("doc", "tar+zstd"),
        "src": ("code", "tar+gzip"),
        "data/train.csv": ("dataset", None),
    }


@pytest.mark.parametrize(("fmt", "ext"), [("safetensors", "safetensors"), ("gguf", "gguf"), (None, "bin")])
def test_unnamed_weights_are_numbered_in_manifest_order(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path, fmt: str | None, ext: str
) -> None:
    # ModelPack raw weights take their extension from the config's format.
    shards = [os.urandom(5000 + i) for i in range(3)]
    layers = [Layer(s, modelpack_layer("weight", "raw")) for s in shards]
    layers.insert(1, named(b"{}", modelpack_layer("weight.config", "raw"), "config.json"))
    pushed = push_layers(
        plain_registry,
        f"models/unnamed-{ext}",
        "v1",
        layers,
        config=modelpack_config("unnamed", layers, fmt=fmt),
        config_media_type=MODELPACK_CONFIG,
        artifact_type=MODELPACK_ARTIFACT,
    )
    path = oci_client.pull_model(via(proxy, pushed), cache_dir=cache)
    assert tree(path) == {
        f"model-00001-of-00003.{ext}": shards[0],
        "config.json": b"{}",
        f"model-00002-of-00003.{ext}": shards[1],
        f"model-00003-of-00003.{ext}": shards[2],
    }


def test_filepath_annotation_wins_over_the_title(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path
) -> None:
    layers = [
        Layer(SHARD_1, DMR_SAFETENSORS, {FILEPATH: "weights/a.safetensors", TITLE: "a.safetensors"}),
        Layer(SHARD_2, DMR_SAFETENSORS, {TITLE: "b.safetensors"}),
    ]
    pushed = push_layers(
        plain_registry,
        "models/names",
        "v1",
        layers,
        config=dmr_config("safetensors", layers),
        config_media_type=DMR_CONFIG_V02,
    )
    path = oci_client.pull_model(via(proxy, pushed), cache_dir=cache)
    assert tree(path) == {"weights/a.safetensors": SHARD_1, "b.safetensors": SHARD_2}


@pytest.mark.parametrize("kit_05", [True, False], ids=["kit>=0.5", "kit<0.5"])
def test_kitops_modelkit_layers_go_where_the_kitfile_says(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path, kit_05: bool
) -> None:
    # Since kit 0.5 archive entries are relative to the model root and the Kitfile
    # records each layer's digest; before, entries were relative to the directory
    # of the path the Kitfile gives.
    def entries(files: dict[str, bytes], base: str) -> dict[str, bytes]:
        if kit_05:
            return files
        return {os.path.relpath(k, base) if base else k: v for k, v in files.items()}

    model_files = {"models/tiny.gguf": GGUF}
    part_files = {"models/tokenizer/tokenizer.json": b'{"tok": 1}'}
    code_files = {"src/app/main.py": b"print(1)\n", "src/app/util.py": b"pass\n"}
    data_files = {"data/train.csv": b"x,y\n"}
    docs_files = {"README.md": b"# kit\n"}
    layers = [
        Layer(tar(entries(model_files, "models")), kit_layer("model")),
        Layer(tar(entries(part_files, "models")), kit_layer("modelpart")),
        Layer(compress(tar(entries(code_files, "src")), "tar+gzip"), kit_layer("code", gzipped=True)),
        Layer(tar(entries(data_files, "data")), kit_layer("dataset")),
        Layer(tar(entries(docs_files, "")), kit_layer("docs")),
    ]

    def entry(p: str, layer: Layer) -> dict[str, str]:
        return {"path": p, "digest": layer.digest} if kit_05 else {"path": p}

    config = kitfile(
        entry("models/tiny.gguf", layers[0]),
        parts=[entry("models/tokenizer", layers[1])],
        code=[entry("src/app", layers[2])],
        datasets=[{"name": "train", **entry("data/train.csv", layers[3])}],
        docs=[entry("README.md", layers[4])],
    )
    repo = f"models/kit-{'new' if kit_05 else 'old'}"
    pushed = push_layers(plain_registry, repo, "v1", layers, config=config, config_media_type=KIT_CONFIG)
    path = oci_client.pull_model(via(proxy, pushed), cache_dir=cache)
    assert tree(path) == {**model_files, **part_files, **code_files, **data_files, **docs_files}
    info = oci_client.inspect(via(proxy, pushed), cache_dir=cache)
    assert info.format == "kitops"
    assert info.config == config
    assert [f.path for f in info.files] == [
        "models/tiny.gguf",
        "models/tokenizer",
        "src/app",
        "data/train.csv",
        "README.md",
    ]


def test_oras_py_push_gives_titled_files(
    plain_registry: LocalRegistry,
    proxy: FaultProxy,
    cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import oras.client

    src = tmp_path / "src"
    src.mkdir()
    files = {"config.json": b'{"a": 1}', "model.safetensors": SHARD_1, "tokenizer.json": b"{}"}
    for name, data in files.items():
        (src / name).write_bytes(data)
    monkeypatch.chdir(src)  # oras-py refuses paths outside the working directory
    target = f"{plain_registry.host}/oras/model:v1"
    response = oras.client.OrasClient(hostname=plain_registry.host, insecure=True).push(
        target=target, files=list(files), quiet=True
    )
    assert response.status_code == 201
    path = oci_client.pull_model(f"{proxy.host}/oras/model:v1", cache_dir=cache)
    assert tree(path) == files
    assert oci_client.inspect(f"{proxy.host}/oras/model:v1", cache_dir=cache).format == "artifact"


def test_plain_artifact_with_titled_layers_in_subdirectories(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path
) -> None:
    files = {"config.json": b"{}", "weights/part-1.bin": SHARD_1, "weights/deep/part-2.bin": SHARD_2}
    pushed = push_artifact(plain_registry, "artifacts/titled", "v1", files)
    path = oci_client.pull_model(via(proxy, pushed), cache_dir=cache)
    assert tree(path) == files
    assert_snapshot_links(path, cache)


def test_a_container_image_is_not_a_model(plain_registry: LocalRegistry, cache: Path) -> None:
    from oci_testing import push_docker_v2_image

    image = push_docker_v2_image(plain_registry, "images/notamodel", "v1")
    with pytest.raises(InvalidModelError, match="container image"):
        oci_client.pull_model(image.reference, cache_dir=cache)


# -- indexes ----------------------------------------------------------------------


def push_platform_models(registry: LocalRegistry, repo: str) -> tuple[PushedArtifact, PushedArtifact]:
    amd = push_artifact(registry, repo, None, {"model.gguf": b"amd64 " + GGUF})
    arm = push_artifact(registry, repo, None, {"model.gguf": b"arm64 " + GGUF})
    return amd, arm


def test_index_with_one_model_manifest(plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path) -> None:
    model = push_artifact(plain_registry, "index/single", None, {"model.gguf": GGUF})
    index = push_index_of(plain_registry, "index/single", "v1", [(model, {})])
    path = oci_client.pull_model(via(proxy, index), cache_dir=cache)
    assert tree(path) == {"model.gguf": GGUF}
    assert path.name == model.digest.replace(":", "-")


def test_index_platform_selection(plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path) -> None:
    amd, arm = push_platform_models(plain_registry, "index/platforms")
    index = push_index_of(
        plain_registry,
        "index/platforms",
        "v1",
        [
            (amd, {"platform": {"os": "linux", "architecture": "amd64"}}),
            (arm, {"platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}),
        ],
    )
    ref = via(proxy, index)
    arm_path = oci_client.pull_model(ref, cache_dir=cache, platform="linux/arm64")
    assert tree(arm_path) == {"model.gguf": b"arm64 " + GGUF}
    assert arm_path.name == arm.digest.replace(":", "-")
    amd_path = oci_client.pull_model(ref, cache_dir=cache, platform="linux/amd64")
    assert tree(amd_path) == {"model.gguf": b"amd64 " + GGUF}
    # Two candidates and no selector: the error lists them, nothing is guessed.
    with pytest.raises(InvalidArgumentError) as exc:
        oci_client.pull_model(ref, cache_dir=cache)
    assert amd.digest in str(exc.value) and arm.digest in str(exc.value)
    with pytest.raises(InvalidArgumentError, match="s390x"):
        oci_client.pull_model(ref, cache_dir=cache, platform="linux/s390x")


def test_index_artifact_type_selection(plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path) -> None:
    weights = [named(GGUF, modelpack_layer("weight", "raw"), "model.gguf")]
    model = push_layers(
        plain_registry,
        "index/types",
        None,
        weights,
        config=modelpack_config("m", weights),
        config_media_type=MODELPACK_CONFIG,
        artifact_type=MODELPACK_ARTIFACT,
    )
    sbom_type = "application/vnd.example.sbom.v1+json"
    sbom = push_artifact(
        plain_registry, "index/types", None, {"sbom.json": b'{"sbom": true}'}, artifact_type=sbom_type
    )
    attestation = push_artifact(plain_registry, "index/types", None, {"att.json": b"{}"})
    index = push_index_of(
        plain_registry,
        "index/types",
        "v1",
        [
            (sbom, {"artifactType": sbom_type}),
            (model, {"artifactType": MODELPACK_ARTIFACT}),
            (
                attestation,
                {
                    "platform": {"os": "unknown", "architecture": "unknown"},
                    "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                },
            ),
        ],
    )
    ref = via(proxy, index)
    assert tree(oci_client.pull_model(ref, cache_dir=cache, artifact_type=MODELPACK_ARTIFACT)) == {
        "model.gguf": GGUF
    }
    assert tree(oci_client.pull_model(ref, cache_dir=cache, artifact_type=sbom_type)) == {
        "sbom.json": b'{"sbom": true}'
    }
    # Without a selector the one entry that says it is a model is taken.
    assert oci_client.pull_model(ref, cache_dir=cache).name == model.digest.replace(":", "-")


# -- patterns -----------------------------------------------------------------------


@pytest.fixture
def mixed(plain_registry: LocalRegistry) -> PushedArtifact:
    """A DMR model with two shards, a vLLM config archive holding JSON files, a raw JSON
    file and a license."""
    layers = [
        Layer(SHARD_1, DMR_SAFETENSORS),
        Layer(SHARD_2, DMR_SAFETENSORS),
        Layer(tar(VLLM_FILES), DMR_VLLM_CONFIG_TAR),
        named(b'{"gen": 1}', "application/json", "generation_config.json", key=TITLE),
        Layer(b"MIT\n", DMR_LICENSE),
    ]
    return push_layers(
        plain_registry,
        "models/mixed",
        "v1",
        layers,
        config=dmr_config("safetensors", layers),
        config_media_type=DMR_CONFIG_V02,
    )


def test_allow_patterns_select_files_and_fetch_nothing_else(
    proxy: FaultProxy, mixed: PushedArtifact, cache: Path
) -> None:
    path = oci_client.pull_model(via(proxy, mixed), cache_dir=cache, allow_patterns="*.json")
    # A glob on the file path: the raw JSON layer, and the JSON entries of the vLLM config
    # archive, which has no name of its own and so is fetched for what it holds.
    assert tree(path) == {
        "generation_config.json": b'{"gen": 1}',
        "config.json": VLLM_FILES["config.json"],
        "tokenizer.json": VLLM_FILES["tokenizer.json"],
    }
    requested = {s.path.rsplit("/", 1)[1] for s in blob_requests(proxy)}
    assert requested == {
        mixed.layers[2].digest,
        mixed.layers[3].digest,
        mixed.config.digest if mixed.config else "",
    }


def test_ignore_patterns_and_lists(proxy: FaultProxy, mixed: PushedArtifact, cache: Path) -> None:
    path = oci_client.pull_model(
        via(proxy, mixed),
        cache_dir=cache,
        allow_patterns=["*.safetensors", "LICENSE"],
        ignore_patterns=["*-00002-of-*"],
    )
    assert tree(path) == {"model-00001-of-00002.safetensors": SHARD_1, "LICENSE": b"MIT\n"}
    assert not blob_gets(proxy, mixed.layers[1].digest)
    # The vLLM config archive has no name of its own: only fetching it tells that none of
    # its entries matches.
    assert len(blob_gets(proxy, mixed.layers[2].digest)) == 1


def test_an_archive_is_selected_whole_by_its_own_path_or_for_its_entries(
    proxy: FaultProxy, mixed: PushedArtifact, cache: Path
) -> None:
    path = oci_client.pull_model(via(proxy, mixed), cache_dir=cache, allow_patterns=["vllm-*.tar"])
    assert tree(path) == VLLM_FILES
    assert len(blob_gets(proxy, mixed.layers[2].digest)) == 1
    # Patterns naming entries inside the archive select those entries.
    inner = oci_client.pull_model(
        via(proxy, mixed), cache_dir=cache.with_name("inner"), allow_patterns=["tokenizer.json", "sub/*"]
    )
    assert tree(inner) == {k: v for k, v in VLLM_FILES.items() if k != "config.json"}
    # An ignore pattern on the name it is listed under drops it whole.
    ignored = cache.with_name("ignored")
    only = oci_client.pull_model(via(proxy, mixed), cache_dir=ignored, ignore_patterns=["vllm-config.tar"])
    assert set(tree(only)) == {
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "generation_config.json",
        "LICENSE",
    }
    # Other ignore patterns apply to its entries.
    some = oci_client.pull_model(
        via(proxy, mixed), cache_dir=cache.with_name("some"), ignore_patterns=["sub/*", "*.safetensors"]
    )
    assert tree(some) == {
        "config.json": VLLM_FILES["config.json"],
        "tokenizer.json": VLLM_FILES["tokenizer.json"],
        "generation_config.json": b'{"gen": 1}',
        "LICENSE": b"MIT\n",
    }


NESTED = {
    "config.json": b"{}",
    "README.md": b"# r",
    "weights/part-1.bin": b"1",
    "weights/deep/part-2.bin": b"2",
}


@pytest.mark.parametrize(
    ("allow", "ignore", "expected"),
    [
        ("*.bin", None, {"weights/part-1.bin", "weights/deep/part-2.bin"}),  # '*' crosses '/'
        ("weights/", None, {"weights/part-1.bin", "weights/deep/part-2.bin"}),  # a directory: all under it
        (["?EADME.md", "config.*"], None, {"README.md", "config.json"}),
        ("[cr]*", None, {"config.json"}),  # case-sensitive, as fnmatchcase
        ("[!cw]*", None, {"README.md"}),
        (None, "weights/deep/*", {"config.json", "README.md", "weights/part-1.bin"}),
        (None, ["*.md", "*.json"], {"weights/part-1.bin", "weights/deep/part-2.bin"}),
    ],
)
def test_patterns_are_fnmatch_globs_on_the_path(
    plain_registry: LocalRegistry,
    tmp_path: Path,
    allow: str | list[str] | None,
    ignore: str | list[str] | None,
    expected: set[str],
) -> None:
    pushed = push_artifact(plain_registry, "patterns/nested", "v1", NESTED)
    path = oci_client.pull_model(
        pushed.reference, cache_dir=tmp_path / "cache", allow_patterns=allow, ignore_patterns=ignore
    )
    assert tree(path) == {k: v for k, v in NESTED.items() if k in expected}


def test_a_full_pull_after_a_filtered_one_has_every_file(
    proxy: FaultProxy, mixed: PushedArtifact, cache: Path
) -> None:
    first = oci_client.pull_model(via(proxy, mixed), cache_dir=cache, allow_patterns="*.json")
    full = oci_client.pull_model(via(proxy, mixed), cache_dir=cache)
    assert full == first
    assert tree(full) == {
        "model-00001-of-00002.safetensors": SHARD_1,
        "model-00002-of-00002.safetensors": SHARD_2,
        **VLLM_FILES,
        "generation_config.json": b'{"gen": 1}',
        "LICENSE": b"MIT\n",
    }
    # The JSON layer and the archive fetched by the first pull were not fetched again.
    assert len(blob_gets(proxy, mixed.layers[3].digest)) == 1
    assert len(blob_gets(proxy, mixed.layers[2].digest)) == 1


def test_a_bad_pattern_is_an_argument_error(proxy: FaultProxy, mixed: PushedArtifact, cache: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        oci_client.pull_model(via(proxy, mixed), cache_dir=cache, allow_patterns="[abc")
    with pytest.raises(InvalidArgumentError):
        oci_client.pull_model(via(proxy, mixed), cache_dir=cache, allow_patterns=[1])  # type: ignore[list-item]
    assert not any(blob_requests(proxy, layer.digest) for layer in mixed.layers), "a layer was fetched"


# -- local_dir -------------------------------------------------------------------------


def real_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".oci-client" not in p.relative_to(root).parts and not p.is_dir()]


def test_local_dir_gets_real_files(proxy: FaultProxy, mixed: PushedArtifact, tmp_path: Path) -> None:
    out = tmp_path / "out"
    path = oci_client.pull_model(via(proxy, mixed), cache_dir=tmp_path / "cache", local_dir=out)
    assert path == out
    assert tree(out) == {
        "model-00001-of-00002.safetensors": SHARD_1,
        "model-00002-of-00002.safetensors": SHARD_2,
        **VLLM_FILES,
        "generation_config.json": b'{"gen": 1}',
        "LICENSE": b"MIT\n",
    }
    files = real_files(out)
    assert files and all(not p.is_symlink() and p.is_file() for p in files)
    assert (out / ".oci-client").is_dir()
    # Nothing of the archive layer itself, and no partial file, is left among the model's files.
    assert (
        sorted(p.name for p in out.iterdir() if p.is_file() and p.name.endswith((".tar", ".incomplete")))
        == []
    )


def test_local_dir_repeat_pull_skips_present_files_and_refetches_changed_ones(
    proxy: FaultProxy, mixed: PushedArtifact, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    ref = via(proxy, mixed)
    oci_client.pull_model(ref, cache_dir=tmp_path / "cache", local_dir=out)
    before = len(proxy.log)
    oci_client.pull_model(ref, cache_dir=tmp_path / "cache", local_dir=out)
    assert not [s for s in proxy.log[before:] if "/blobs/" in s.path], "a present file was fetched again"

    # Same size, other bytes: a raw file; and a file that came out of the archive.
    shard = out / "model-00002-of-00002.safetensors"
    shard.write_bytes(bytes(len(SHARD_2)))
    (out / "tokenizer.json").write_bytes(b"tampered")
    (out / "LICENSE").unlink()
    mark = len(proxy.log)
    oci_client.pull_model(ref, cache_dir=tmp_path / "cache", local_dir=out)
    again = [s.path.rsplit("/", 1)[1] for s in proxy.log[mark:] if "/blobs/" in s.path and s.method == "GET"]
    assert sorted(again) == sorted([mixed.layers[1].digest, mixed.layers[2].digest, mixed.layers[4].digest])
    assert shard.read_bytes() == SHARD_2
    assert (out / "tokenizer.json").read_bytes() == VLLM_FILES["tokenizer.json"]
    assert (out / "LICENSE").read_bytes() == b"MIT\n"
    assert not shard.is_symlink()


def test_local_dir_file_with_a_new_mtime_but_the_same_content_is_not_fetched(
    proxy: FaultProxy, mixed: PushedArtifact, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    oci_client.pull_model(via(proxy, mixed), cache_dir=tmp_path / "cache", local_dir=out)
    os.utime(out / "model-00001-of-00002.safetensors", (1, 1))
    mark = len(proxy.log)
    oci_client.pull_model(via(proxy, mixed), cache_dir=tmp_path / "cache", local_dir=out)
    assert [s for s in proxy.log[mark:] if "/blobs/" in s.path] == []
    assert (out / "model-00001-of-00002.safetensors").read_bytes() == SHARD_1


def test_progress_reports_what_the_call_downloads(
    proxy: FaultProxy, mixed: PushedArtifact, cache: Path
) -> None:
    calls: list[tuple[int, int]] = []
    oci_client.pull_model(via(proxy, mixed), cache_dir=cache, progress=lambda d, t: calls.append((d, t)))
    total = sum(layer.size for layer in mixed.layers) + (mixed.config.size if mixed.config else 0)
    assert calls and calls[-1] == (total, total), calls
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(calls))
    hit: list[tuple[int, int]] = []
    oci_client.pull_model(via(proxy, mixed), cache_dir=cache, progress=lambda d, t: hit.append((d, t)))
    assert all(d == t == 0 for d, t in hit), "a cache hit downloads nothing"


def test_blobs_are_reported_as_they_finish_without_busy_polling(
    plain_registry: LocalRegistry, proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small, slow = os.urandom(1024), os.urandom(3 * 1024 * 1024)
    pushed = push_artifact(plain_registry, "local/handoff", "v1", {"a.bin": small, "b.bin": slow})
    proxy.add(Rule(path=pushed.layers[1].digest, method="GET", throttle=3 * 1024 * 1024))
    reads: list[dict[str, object]] = []
    invoke = _native._invoke

    def counted(lib: object, export: str, request: dict[str, object]) -> object:
        if export == "OperationProgress":
            reads.append(request)
        return invoke(lib, export, request)

    monkeypatch.setattr(_native, "_invoke", counted)
    seen: list[oci_client.Event] = []
    r = oci_client.pull(via(proxy, pushed), cache_dir=tmp_path / "cache", on_event=seen.append)
    assert (r.path / "b.bin").read_bytes() == slow
    # About one second of pull: a read per finished blob and per 0.2 s wait, not a busy loop.
    assert 2 <= len(reads) <= 30, len(reads)
    assert all(q.get("wait_ms") == 200 for q in reads)
    done = [e.files_done for e in seen if isinstance(e, oci_client.TransferProgress)]
    assert done == sorted(done) and 1 in done, done  # a.bin was heard of while b.bin downloaded
    later = [q["blobs_after"] for q in reads]
    assert later == sorted(later)


def test_an_interrupted_local_dir_pull_resumes_beside_the_file(
    plain_registry: LocalRegistry, proxy: FaultProxy, tmp_path: Path
) -> None:
    big = os.urandom(10 * 1024 * 1024)
    pushed = push_artifact(plain_registry, "local/big", "v1", {"w.bin": big})
    digest = pushed.layers[0].digest
    proxy.add(Rule(path=digest, method="GET", throttle=3 * 1024 * 1024))
    out = tmp_path / "out"
    with pytest.raises(OperationTimeoutError):
        oci_client.Client(timeout=2.5).pull_model(
            via(proxy, pushed), cache_dir=tmp_path / "cache", local_dir=out
        )
    kept = (out / "w.bin.incomplete").stat().st_size
    assert 0 < kept < len(big)
    proxy.rules.clear()
    mark = len(proxy.log)
    oci_client.pull_model(via(proxy, pushed), cache_dir=tmp_path / "cache", local_dir=out)
    assert (out / "w.bin").read_bytes() == big
    (get,) = [s for s in proxy.log[mark:] if s.method == "GET" and digest in s.path]
    assert get.range == f"bytes={kept}-{len(big) - 1}"
    assert sorted(p.name for p in out.iterdir()) == [".oci-client", "w.bin"]


def test_local_dir_offline_with_a_missing_model_is_not_cached(proxy: FaultProxy, tmp_path: Path) -> None:
    with pytest.raises(oci_client.NotCachedError, match="local/missing"):
        ref = f"{proxy.host}/local/missing:v1"
        oci_client.pull_model(ref, cache_dir=tmp_path / "cache", local_dir=tmp_path / "out", offline=True)
    assert proxy.log == []


def test_local_dir_with_patterns(proxy: FaultProxy, mixed: PushedArtifact, tmp_path: Path) -> None:
    out = tmp_path / "out"
    oci_client.pull_model(
        via(proxy, mixed), cache_dir=tmp_path / "cache", local_dir=out, allow_patterns="LICENSE"
    )
    assert tree(out) == {"LICENSE": b"MIT\n"}


# -- inspect ----------------------------------------------------------------------------


def test_inspect_describes_without_fetching_layers(
    proxy: FaultProxy, mixed: PushedArtifact, cache: Path
) -> None:
    info = oci_client.inspect(via(proxy, mixed), cache_dir=cache)
    assert info.format == "docker"
    assert info.digest == mixed.digest
    assert info.manifest_digest == mixed.digest
    assert mixed.config is not None and info.config_media_type == mixed.config.media_type
    assert info.reference == f"{proxy.host}/models/mixed@{mixed.digest}"
    by_path = {f.path: f for f in info.files}
    assert list(by_path) == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "vllm-config.tar",
        "generation_config.json",
        "LICENSE",
    ]
    for f, layer in zip(info.files, mixed.layers, strict=True):
        assert (f.digest, f.size, f.media_type) == (layer.digest, layer.size, layer.media_type)
    assert by_path["model-00001-of-00002.safetensors"].kind == "weight"
    assert by_path["vllm-config.tar"].kind == "weight-config"
    assert by_path["vllm-config.tar"].archive == "tar"
    assert by_path["LICENSE"].kind == "license"
    assert info.total_size == sum(layer.size for layer in mixed.layers)
    assert info.config is not None and info.config["config"]["format"] == "safetensors"
    # Only the config blob was fetched.
    assert {s.path.rsplit("/", 1)[1] for s in blob_requests(proxy)} == {
        mixed.config.digest if mixed.config else ""
    }


# -- path escapes -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil", "/etc/x", "a/../../evil", "weights/../../../evil"])
@pytest.mark.parametrize("where", ["cache", "local_dir"])
def test_a_layer_name_that_escapes_is_refused(
    plain_registry: LocalRegistry, tmp_path: Path, name: str, where: str
) -> None:
    pushed = push_artifact(plain_registry, "evil/names", "v1", {"ok.txt": b"fine", name: b"gotcha"})
    out = tmp_path / "work" / "out"
    local_dir = out if where == "local_dir" else None
    with pytest.raises(InvalidModelError, match="refusing path"):
        oci_client.pull_model(pushed.reference, cache_dir=tmp_path / "work" / "cache", local_dir=local_dir)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes() == b"gotcha"]
    assert written == [], "the layer with the bad name was written"
    assert not Path("/etc/x").exists()


def outside_target(outside: Path) -> str:
    """A relative path climbing out of any directory into ``outside``."""
    return "../" * 40 + str(outside).lstrip("/")


def bad_entries(outside: Path) -> dict[str, list[Entry]]:
    victim = outside / "victim.txt"
    return {
        "absolute": [file(str(outside / "abs.txt"), b"x")],
        "dotdot": [file(outside_target(outside) + "/dotdot.txt", b"x")],
        "dotdot-inner": [file("a/b/../../../dotdot.txt", b"x")],
        "symlink-absolute": [symlink("link", str(outside)), file("link/through.txt", b"x")],
        "symlink-relative": [symlink("link", outside_target(outside)), file("link/through.txt", b"x")],
        "symlink-parent": [directory("d"), symlink("d/up", "../.."), file("d/up/through.txt", b"x")],
        "write-through-inner-symlink": [
            directory("real"),
            symlink("alias", "real"),
            file("alias/x.txt", b"x"),
        ],
        "hardlink-absolute": [hardlink("hard", str(victim))],
        "hardlink-relative": [hardlink("hard", outside_target(victim))],
        "hardlink-dotdot": [hardlink("hard", "../victim.txt")],
        "chardev": [chardev("dev-null")],
        "blockdev": [blockdev("dev-sda")],
        "fifo": [fifo("pipe")],
    }


BAD_CASES = list(bad_entries(Path("/x")))


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("where", ["cache", "local_dir"])
def test_unsafe_archive_entries_are_refused_and_leave_nothing(
    plain_registry: LocalRegistry, tmp_path: Path, case: str, where: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"precious")
    work = tmp_path / "work"
    entries = [file("before-bad.txt", b"written first"), *bad_entries(outside)[case], file("after.txt", b"b")]
    archive = "tar+gzip" if case in ("absolute", "symlink-relative") else "tar"
    layers = [
        named(b"ok", modelpack_layer("weight", "raw"), "good.bin"),
        named(compress(tar(entries), archive), modelpack_layer("code", archive), "code"),
    ]
    pushed = push_layers(
        plain_registry,
        f"evil/archive-{case}",
        "v1",
        layers,
        config=modelpack_config("evil", layers),
        config_media_type=MODELPACK_CONFIG,
        artifact_type=MODELPACK_ARTIFACT,
    )
    out = work / "out"
    local_dir = out if where == "local_dir" else None
    with pytest.raises(UnsafeArchiveError, match="unsafe archive entry"):
        oci_client.pull_model(pushed.reference, cache_dir=work / "cache", local_dir=local_dir)

    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"], "an entry landed outside"
    assert victim.read_bytes() == b"precious" and victim.stat().st_nlink == 1
    # No entry of the bad layer, whole or half-written, anywhere in the work tree
    # (the snapshot, the local directory, the cache's staging area).
    leftovers = [
        p.relative_to(work).as_posix()
        for p in work.rglob("*")
        if p.name
        in ("before-bad.txt", "after.txt", "through.txt", "hard", "dev-null", "dev-sda", "pipe", "x.txt")
    ]
    assert leftovers == []
    snapshots = work / "cache" / "models" / plain_registry.host / f"evil+archive-{case}" / "snapshots"
    snapshot = snapshots / pushed.digest.replace(":", "-")
    assert not snapshot.exists() or "before-bad.txt" not in tree(snapshot)
    assert not list((work / "cache" / "trees").rglob("*.json")), "a tree was recorded for the bad layer"
    assert not list((work / "cache" / "tmp").iterdir())


@pytest.mark.parametrize("damage", ["not-gzip", "gzip-cut", "tar-cut", "zstd-junk", "no-end-marker"])
def test_a_corrupt_archive_is_an_invalid_model_and_leaves_nothing(
    plain_registry: LocalRegistry, cache: Path, damage: str
) -> None:
    # The blob's digest is right (the registry serves what was pushed); the archive is not.
    whole = tar({"src/a.py": b"x" * 5000, "src/b.py": b"y"})
    data, archive = {
        "not-gzip": (b"not gzip at all", "tar+gzip"),
        "gzip-cut": (compress(whole, "tar+gzip")[:-40], "tar+gzip"),
        "tar-cut": (whole[:3000], "tar"),
        "zstd-junk": (b"\x28\xb5\x2f\xfd" + b"junk" * 10, "tar+zstd"),
        "no-end-marker": (whole[: 512 * 3 + 5120], "tar"),  # both entries whole, no end blocks
    }[damage]
    layers = [named(data, modelpack_layer("code", archive), "src")]
    pushed = push_layers(
        plain_registry,
        f"archives/corrupt-{damage}",
        "v1",
        layers,
        config=modelpack_config("corrupt", layers),
        config_media_type=MODELPACK_CONFIG,
        artifact_type=MODELPACK_ARTIFACT,
    )
    for _ in range(2):  # the same answer again, not a loop of downloads
        with pytest.raises(InvalidModelError, match="corrupt archive"):
            oci_client.pull_model(pushed.reference, cache_dir=cache)
    assert not [p for p in cache.rglob("*.py")]
    assert not list((cache / "trees").rglob("*.json"))
    assert not list((cache / "tmp").iterdir())


def test_a_damaged_snapshot_is_repaired_without_downloading(
    proxy: FaultProxy, mixed: PushedArtifact, cache: Path
) -> None:
    path = oci_client.pull_model(via(proxy, mixed), cache_dir=cache)
    (path / "model-00001-of-00002.safetensors").unlink()
    (path / "sub" / "vocab.txt").unlink()
    (path / "config.json").unlink()
    (path / "config.json").write_bytes(b"edited by hand")
    mark = len(proxy.log)
    assert oci_client.pull_model(via(proxy, mixed), cache_dir=cache) == path
    assert tree(path)["config.json"] == VLLM_FILES["config.json"]
    assert tree(path)["sub/vocab.txt"] == VLLM_FILES["sub/vocab.txt"]
    assert tree(path)["model-00001-of-00002.safetensors"] == SHARD_1
    assert_snapshot_links(path, cache)
    assert [s for s in proxy.log[mark:] if "/blobs/" in s.path] == []


@pytest.mark.parametrize("where", ["cache", "local_dir"])
def test_links_that_stay_inside_are_kept(plain_registry: LocalRegistry, tmp_path: Path, where: str) -> None:
    entries = [
        file("weights/real.bin", b"w"),
        symlink("model.bin", "weights/real.bin"),
        symlink("w", "weights"),
        symlink("weights/self.bin", "../weights/real.bin"),
        hardlink("copy.bin", "weights/real.bin"),
    ]
    layers = [named(tar(entries), modelpack_layer("weight", "tar"), "weights")]
    pushed = push_layers(
        plain_registry,
        "archives/links",
        "v1",
        layers,
        config=modelpack_config("links", layers),
        config_media_type=MODELPACK_CONFIG,
        artifact_type=MODELPACK_ARTIFACT,
    )
    local_dir = tmp_path / "out" if where == "local_dir" else None
    path = oci_client.pull_model(pushed.reference, cache_dir=tmp_path / "cache", local_dir=local_dir)
    assert os.readlink(path / "model.bin") == "weights/real.bin"
    assert os.readlink(path / "weights" / "self.bin") == "../weights/real.bin"
    for name in ("model.bin", "w/real.bin", "weights/self.bin", "copy.bin"):
        assert (path / name).read_bytes() == b"w", name


# -- references -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["a//b", "/a/b", "a/b/", "a//"])
def test_a_reference_with_an_empty_path_component_makes_no_request(
    proxy: FaultProxy, cache: Path, path: str
) -> None:
    with pytest.raises(InvalidReferenceError):
        oci_client.pull_model(f"{proxy.host}/{path}:v1", cache_dir=cache)
    with pytest.raises(InvalidReferenceError):
        oci_client.inspect(f"{proxy.host}/{path}:v1", cache_dir=cache)
    assert proxy.log == []


def test_layer_spec_media_type_is_honoured(plain_registry: LocalRegistry, cache: Path) -> None:
    # push_model with a LayerSpec: ModelPack names from the annotations, an archive kind.
    from oci_testing import push_model

    docs = tar({"docs/a.md": b"a"})
    pushed = push_model(
        plain_registry,
        "models/spec",
        "v1",
        {"model.safetensors": SHARD_1, "docs": LayerSpec(docs, media_type=modelpack_layer("doc", "tar"))},
    )
    path = oci_client.pull_model(pushed.reference, cache_dir=cache)
    assert tree(path) == {"model.safetensors": SHARD_1, "docs/a.md": b"a"}


def test_module_level_pull_takes_client_options(
    tls_registry: LocalRegistry, docker_config: Path, cache: Path
) -> None:
    pushed = push_artifact(tls_registry, "models/private", "v1", {"model.gguf": GGUF})
    assert tls_registry.username and tls_registry.password
    with pytest.raises(TLSError):
        oci_client.Client(retries=1).pull_model(pushed.reference, cache_dir=cache)
    write_config(
        docker_config / "config.json",
        {"auths": {tls_registry.host: {"auth": auth_field(tls_registry.username, "wrong")}}},
    )
    with pytest.raises(AuthenticationError):
        oci_client.Client(ca_file=tls_registry.ca_file).pull_model(pushed.reference, cache_dir=cache)
    write_config(
        docker_config / "config.json",
        {"auths": {tls_registry.host: {"auth": auth_field(tls_registry.username, tls_registry.password)}}},
    )
    ca = tls_registry.ca_file
    path = oci_client.Client(ca_file=ca, connections=1).pull_model(pushed.reference, cache_dir=cache)
    assert tree(path) == {"model.gguf": GGUF}
    # insecure_registries: unverified TLS for that host.
    again = oci_client.Client(insecure_registries=[tls_registry.host]).pull_model(
        pushed.reference, cache_dir=cache.with_name("other")
    )
    assert tree(again) == {"model.gguf": GGUF}
    info = oci_client.Client(ca_file=tls_registry.ca_file).inspect(pushed.reference, cache_dir=cache)
    assert [f.path for f in info.files] == ["model.gguf"]
    with pytest.raises(InvalidArgumentError):
        oci_client.pull_model(pushed.reference, cache_dir=cache, concurrency=0)


def test_unknown_unnamed_layers_are_skipped_and_said_so(
    plain_registry: LocalRegistry, proxy: FaultProxy, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unknown = Layer(b"what is this", "application/vnd.example.unknown")
    layers = [Layer(GGUF, DMR_GGUF), unknown]
    pushed = push_layers(
        plain_registry,
        "models/skips",
        "v1",
        layers,
        config=dmr_config("gguf", layers),
        config_media_type=DMR_CONFIG_V01,
    )
    info = oci_client.inspect(via(proxy, pushed), cache_dir=cache)
    assert [f.path for f in info.files] == ["model.gguf"]
    assert [s["digest"] for s in info.skipped] == [unknown.digest]
    with caplog.at_level("WARNING", logger="oci_client"):
        path = oci_client.pull_model(via(proxy, pushed), cache_dir=cache)
    assert tree(path) == {"model.gguf": GGUF}
    assert not blob_gets(proxy, unknown.digest)
    assert any(unknown.digest in r.getMessage() for r in caplog.records), caplog.text
