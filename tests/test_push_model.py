"""push_model against a real registry: round trips in both formats (GGUF and nested
tokenizer directories included), peers reading what we pushed, blob skipping and
cross-repository mounting counted at the registry, an interrupted push retried without
re-sending finished blobs, a broken upload resumed, credentials, and the command."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from credentials import auth_field, write_config
from faultproxy import FaultProxy, Rule
from modelfixtures import tree
from oci_testing import LocalRegistry

import oci_client
from oci_client import AuthenticationError, InvalidArgumentError, PushedModel


def safetensors(rows: int, cols: int, dtype: str = "BF16") -> bytes:
    width = {"BF16": 2, "F16": 2, "F32": 4}[dtype]
    header = json.dumps(
        {"w": {"dtype": dtype, "shape": [rows, cols], "data_offsets": [0, rows * cols * width]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + os.urandom(rows * cols * width)


def model_files(shard_rows: int = 256) -> dict[str, bytes]:
    return {
        "model-00001-of-00002.safetensors": safetensors(shard_rows, 512),
        "model-00002-of-00002.safetensors": safetensors(shard_rows // 2, 512),
        "model.safetensors.index.json": b'{"weight_map": {}}',
        "config.json": json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}).encode(),
        "generation_config.json": b"{}",
        "tokenizer/tokenizer.json": b'{"version": "1.0"}',
        "tokenizer/sub/merges.txt": b"a b\n",
        "chat_template.jinja": b"{% for m in messages %}{{ m.content }}{% endfor %}",
        "LICENSE": b"Apache-2.0\n",
        "README.md": b"# tiny\n",
        "gguf/model-Q4_K_M.gguf": b"GGUF" + os.urandom(20_000),
    }


def write_dir(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.fixture
def model_dir(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    files = model_files()
    root = write_dir(tmp_path / "model", files)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root, files


def uploads(proxy: FaultProxy) -> list[str]:
    return [s.path for s in proxy.log if s.method == "PATCH"]


@pytest.mark.parametrize("fmt", ["modelpack", "docker"])
def test_round_trip_byte_for_byte(
    fmt: str, model_dir: tuple[Path, dict[str, bytes]], plain_registry: LocalRegistry, cache: Path
) -> None:
    root, files = model_dir
    ref = f"{plain_registry.host}/push/{fmt}:v1"
    pushed = oci_client.push_model(root, ref, format=fmt, cache_dir=cache)
    assert isinstance(pushed, PushedModel) and isinstance(pushed, oci_client.Manifest)
    assert pushed.reference == f"{plain_registry.host}/push/{fmt}@{pushed.digest}"
    assert pushed.digest == "sha256:" + hashlib.sha256(pushed.raw).hexdigest()
    assert pushed.files == len(files) and pushed.uploaded == len(files) + 1  # and the config
    manifest = pushed.json()
    names = [layer["annotations"]["org.cncf.model.filepath"] for layer in manifest["layers"]]
    shards = [n for n in names if n.endswith(".safetensors")]
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert names.index(shards[1]) < names.index("config.json")  # weights first, in shard order
    assert all("tar" not in layer["mediaType"] for layer in manifest["layers"])

    path = oci_client.pull_model(ref, cache_dir=cache)
    assert tree(path) == files
    info = oci_client.inspect(ref, cache_dir=cache)
    assert info.format == fmt
    if fmt == "modelpack":
        assert manifest["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
        # 256*512 + 128*512 parameters, all BF16
        assert info.config is not None
        assert info.config["config"] == {
            "architecture": "transformer",
            "format": "safetensors",
            "paramSize": "196.6K",
            "precision": "bfloat16",
        }
        assert info.config["descriptor"]["family"] == "llama"
        kinds = {f.path: f.media_type for f in info.files}
        assert kinds["gguf/model-Q4_K_M.gguf"] == "application/vnd.cncf.model.weight.v1.raw"
        assert kinds["tokenizer/tokenizer.json"] == "application/vnd.cncf.model.weight.config.v1.raw"
        assert kinds["README.md"] == "application/vnd.cncf.model.doc.v1.raw"
    else:
        assert manifest["config"]["mediaType"] == "application/vnd.docker.ai.model.config.v0.2+json"
        kinds = {f.path: f.media_type for f in info.files}
        assert kinds["model-00001-of-00002.safetensors"] == "application/vnd.docker.ai.safetensors"
        assert kinds["gguf/model-Q4_K_M.gguf"] == "application/vnd.docker.ai.gguf.v3"
        assert kinds["LICENSE"] == "application/vnd.docker.ai.license"
        assert kinds["chat_template.jinja"] == "application/vnd.docker.ai.chat.template.jinja"


def test_repush_skips_every_blob_and_other_repos_mount(
    model_dir: tuple[Path, dict[str, bytes]], plain_registry: LocalRegistry, cache: Path
) -> None:
    root, files = model_dir
    with FaultProxy(plain_registry.url) as proxy:
        first = oci_client.push_model(root, f"{proxy.host}/mount/a:v1", cache_dir=cache)
        assert len(uploads(proxy)) == len(files) + 1
        proxy.log.clear()

        again = oci_client.push_model(root, f"{proxy.host}/mount/a:v1", cache_dir=cache)
        assert again.digest == first.digest
        assert (again.uploaded, again.skipped, again.bytes_sent) == (0, len(files) + 1, 0)
        assert uploads(proxy) == []
        proxy.log.clear()

        other = oci_client.push_model(root, f"{proxy.host}/mount/b:v1", cache_dir=cache)
        assert len(uploads(proxy)) == 1  # the config, which names the repository
        mounts = [s.path for s in proxy.log if s.method == "POST" and "mount=" in s.path]
        assert len(mounts) == len(files)
        assert other.mounted == len(files) and other.uploaded == 1
        assert {b.mounted_from for b in other.blobs if b.how == "mounted"} == {"mount/a"}
    assert tree(oci_client.pull_model(f"{plain_registry.host}/mount/b:v1", cache_dir=cache)) == files


def test_interrupted_push_is_retried_without_resending_finished_blobs(
    model_dir: tuple[Path, dict[str, bytes]], plain_registry: LocalRegistry, cache: Path
) -> None:
    root, files = model_dir
    with FaultProxy(plain_registry.url) as proxy:
        proxy.add(Rule(path="/manifests/", method="PUT", status=503))
        with pytest.raises(oci_client.RegistryError):
            oci_client.Client(retries=2).push_model(root, f"{proxy.host}/retry/m:v1", cache_dir=cache)
        sent_first = proxy.request_bytes
        assert sent_first >= sum(len(d) for d in files.values())
        proxy.rules.clear()
        proxy.log.clear()
        proxy.request_bytes = 0
        pushed = oci_client.push_model(root, f"{proxy.host}/retry/m:v1", cache_dir=cache)
        assert uploads(proxy) == [] and pushed.uploaded == 0
        assert proxy.request_bytes == len(pushed.raw)  # only the manifest crossed again
    assert tree(oci_client.pull_model(f"{plain_registry.host}/retry/m:v1", cache_dir=cache)) == files


def push_through_a_cut(
    registry_url: str, tmp_path: Path, cache: Path
) -> tuple[FaultProxy, PushedModel, bytes]:
    """Push one 8 MiB shard through a proxy that cuts its first upload at 5 MiB."""
    shard = os.urandom(8 << 20)
    root = write_dir(tmp_path / "m", {"model.safetensors": shard})
    with FaultProxy(registry_url) as proxy:
        proxy.add(Rule(path="/blobs/uploads/", method="PATCH", drop_request_at=5 << 20, times=1))
        pushed = oci_client.push_model(root, f"{proxy.host}/resume/m:v1", cache_dir=cache)
    assert proxy.rules[0].hits == 1
    blob = next(b for b in pushed.blobs if b.path == "model.safetensors")
    assert blob.how == "uploaded" and blob.bytes_sent >= len(shard)
    return proxy, pushed, shard


def test_broken_upload_is_continued_or_restarted(
    tmp_path: Path, plain_registry: LocalRegistry, cache: Path
) -> None:
    # Debian's distribution 2.8 forgets an upload whose PATCH broke: the push starts it again.
    proxy, _, shard = push_through_a_cut(plain_registry.url, tmp_path, cache)
    assert len(shard) <= proxy.request_bytes < 2 * len(shard)
    assert tree(oci_client.pull_model(f"{plain_registry.host}/resume/m:v1", cache_dir=cache)) == {
        "model.safetensors": shard
    }


def test_broken_upload_resumes_on_the_built_in_registry(tmp_path: Path, cache: Path) -> None:
    # distribution 3 keeps what a broken PATCH delivered and says so: the push sends the rest.
    from oci_client.server import Registry

    with Registry(tmp_path / "registry") as registry:
        proxy, _, shard = push_through_a_cut(registry.url, tmp_path, cache)
        # Nothing the registry stored is sent again (the rest is the config and the manifest).
        assert proxy.request_bytes < len(shard) + (64 << 10)
        statuses = [s.method for s in proxy.log if "/blobs/uploads/" in s.path]
        assert "GET" in statuses  # asked what the registry kept
        assert tree(oci_client.pull_model(f"{registry.host}/resume/m:v1", cache_dir=cache)) == {
            "model.safetensors": shard
        }


def test_wrong_credentials_fail_without_the_secret(
    model_dir: tuple[Path, dict[str, bytes]], tls_registry: LocalRegistry, docker_config: Path, cache: Path
) -> None:
    root, _ = model_dir
    secret = "wrong-Pa55word-xyz"
    write_config(
        docker_config / "config.json",
        {"auths": {tls_registry.host: {"auth": auth_field(str(tls_registry.username), secret)}}},
    )
    with pytest.raises(AuthenticationError) as info:
        oci_client.Client(ca_file=tls_registry.ca_file).push_model(
            root, f"{tls_registry.host}/auth/m:v1", cache_dir=cache
        )
    text = f"{info.value} {info.value!r} {info.value.message}"
    assert secret not in text and auth_field(str(tls_registry.username), secret) not in text


def test_push_over_tls_with_basic_auth(
    model_dir: tuple[Path, dict[str, bytes]], tls_registry: LocalRegistry, docker_config: Path, cache: Path
) -> None:
    root, files = model_dir
    user, password = str(tls_registry.username), str(tls_registry.password)
    write_config(
        docker_config / "config.json", {"auths": {tls_registry.host: {"auth": auth_field(user, password)}}}
    )
    ref = f"{tls_registry.host}/tls/m:v1"
    pushed = oci_client.Client(ca_file=tls_registry.ca_file).push_model(root, ref, cache_dir=cache)
    assert pushed.uploaded == len(files) + 1
    path = oci_client.Client(ca_file=tls_registry.ca_file).pull_model(ref, cache_dir=cache)
    assert tree(path) == files


def test_push_with_token_auth(
    model_dir: tuple[Path, dict[str, bytes]], token_registry: LocalRegistry, docker_config: Path, cache: Path
) -> None:
    root, files = model_dir
    write_config(
        docker_config / "config.json",
        {
            "auths": {
                token_registry.host: {
                    "auth": auth_field(str(token_registry.username), str(token_registry.password))
                }
            }
        },
    )
    ref = f"{token_registry.host}/tok/m:v1"
    oci_client.push_model(root, ref, cache_dir=cache)
    oci_client.push_model(root, f"{token_registry.host}/tok/other:v1", cache_dir=cache)  # mounts
    assert tree(oci_client.pull_model(f"{token_registry.host}/tok/other:v1", cache_dir=cache)) == files


def test_bad_input_is_refused_before_any_request(tmp_path: Path, plain_registry: LocalRegistry) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidArgumentError, match="no files"):
        oci_client.push_model(empty, f"{plain_registry.host}/bad/m:v1")
    with pytest.raises(InvalidArgumentError, match=r"not a directory|no such file"):
        oci_client.push_model(tmp_path / "missing", f"{plain_registry.host}/bad/m:v1")
    with pytest.raises(InvalidArgumentError, match="format"):
        oci_client.push_model(empty, f"{plain_registry.host}/bad/m:v1", format="tar")  # type: ignore[arg-type]
    with pytest.raises(oci_client.InvalidReferenceError):
        oci_client.push_model(empty, f"{plain_registry.host}/bad//m:v1")


def test_oras_py_reads_what_we_pushed(
    model_dir: tuple[Path, dict[str, bytes]],
    plain_registry: LocalRegistry,
    cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import oras.client

    root, files = model_dir
    ref = f"{plain_registry.host}/peers/oras:v1"
    oci_client.push_model(root, ref, cache_dir=cache)
    out = tmp_path / "oras-out"
    out.mkdir()
    monkeypatch.chdir(out)
    oras.client.OrasClient(hostname=plain_registry.host, insecure=True).pull(target=ref, outdir=str(out))
    assert tree(out) == files


def test_skopeo_copies_what_we_pushed(
    model_dir: tuple[Path, dict[str, bytes]], plain_registry: LocalRegistry, cache: Path, tmp_path: Path
) -> None:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        if os.environ.get("CI") == "true":
            pytest.fail("skopeo is missing in CI")
        pytest.skip("skopeo is not installed")
    root, files = model_dir
    ref = f"{plain_registry.host}/peers/skopeo:v1"
    pushed = oci_client.push_model(root, ref, cache_dir=cache)
    layout = tmp_path / "layout"
    subprocess.run(
        [skopeo, "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:v1"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == pushed.digest
    for layer in pushed.json()["layers"]:
        blob = layout / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]
        assert blob.read_bytes() == files[layer["annotations"]["org.cncf.model.filepath"]]


def test_cli_push(
    model_dir: tuple[Path, dict[str, bytes]], plain_registry: LocalRegistry, cache: Path
) -> None:
    root, files = model_dir
    ref = f"{plain_registry.host}/cli/m:v1"
    run = subprocess.run(
        [sys.executable, "-m", "oci_client", "push", str(root), ref, "--cache-dir", str(cache), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    digest_ref = run.stdout.strip()
    assert digest_ref.startswith(f"{plain_registry.host}/cli/m@sha256:")
    assert f"{len(files)} files" in run.stderr
    assert tree(oci_client.pull_model(digest_ref, cache_dir=cache)) == files

    bad = subprocess.run(
        [sys.executable, "-m", "oci_client", "push", str(root / "nope"), ref],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_crane_reads_what_we_pushed(
    model_dir: tuple[Path, dict[str, bytes]], plain_registry: LocalRegistry, cache: Path
) -> None:
    from bench.peers import Skipped, ensure_crane

    try:
        crane = str(ensure_crane(Path(__file__).resolve().parent.parent / "build" / "tools"))
    except Skipped as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"crane unavailable in CI: {exc}")
        pytest.skip(str(exc))
    root, files = model_dir
    ref = f"{plain_registry.host}/peers/crane:v1"
    pushed = oci_client.push_model(root, ref, format="docker", cache_dir=cache)

    def crane_out(*args: str) -> bytes:
        return subprocess.run(
            [crane, *args, "--insecure"], check=True, capture_output=True, timeout=60
        ).stdout

    assert crane_out("digest", ref).decode().strip() == pushed.digest
    manifest = json.loads(crane_out("manifest", ref))
    for layer in manifest["layers"]:
        data = crane_out("blob", f"{plain_registry.host}/peers/crane@{layer['digest']}")
        assert data == files[layer["annotations"]["org.cncf.model.filepath"]]


def test_cache_prune_drops_remembered_digests_of_gone_or_changed_files(
    model_dir: tuple[Path, dict[str, bytes]], plain_registry: LocalRegistry, cache: Path
) -> None:
    """push-digests/ is the cache's: prune drops what can never be trusted again, keeps the rest."""
    root, files = model_dir
    oci_client.push_model(root, f"{plain_registry.host}/prune/m:v1", cache_dir=cache)
    memory = cache / "push-digests"
    assert len(list(memory.glob("*.json"))) == len(files)

    (root / "README.md").unlink()
    (root / "LICENSE").write_bytes(b"MIT, now\n")
    oci_client.cache_prune(cache_dir=cache, min_age=3600)
    assert len(list(memory.glob("*.json"))) == len(files)  # too young to go

    oci_client.cache_prune(cache_dir=cache, min_age=0)
    left = {json.loads(p.read_text())["path"] for p in memory.glob("*.json")}
    assert left == {str(root / rel) for rel in files if rel not in ("README.md", "LICENSE")}

    # A push again works from what is left: only the changed file and the config go up.
    again = oci_client.push_model(root, f"{plain_registry.host}/prune/m:v2", cache_dir=cache)
    assert again.uploaded == 2  # the changed LICENSE and the config
