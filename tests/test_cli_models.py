"""``oci-client pull``, ``inspect`` and ``cache``, run as a user would: what
goes to stdout (the model directory, alone), what goes to stderr, and the
exit codes of errors (1, one ``error:`` line, no traceback) and of usage
mistakes (2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from credentials import auth_field, write_config
from modelfixtures import (
    DMR_CONFIG_V02,
    DMR_LICENSE,
    DMR_SAFETENSORS,
    DMR_VLLM_CONFIG_TAR,
    MODELPACK_ARTIFACT,
    MODELPACK_CONFIG,
    Layer,
    dmr_config,
    file,
    modelpack_config,
    modelpack_layer,
    named,
    push_index_of,
    push_layers,
    symlink,
    tar,
    this_boot,
    tree,
)
from oci_testing import LocalRegistry, PushedArtifact, push_artifact, push_model

from oci_client import OciGoClient

pytestmark = pytest.mark.usefixtures("docker_config")

SHARD = os.urandom(64 * 1024)
VLLM = {"config.json": b'{"model_type": "llama"}', "tokenizer.json": b"{}"}
ALL = {"model.safetensors": SHARD, **VLLM, "LICENSE": b"MIT\n"}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oci_client", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def assert_error(r: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit code 1, nothing on stdout, one ``error:`` line on stderr (returned)."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def model(plain_registry: LocalRegistry) -> PushedArtifact:
    layers = [
        Layer(SHARD, DMR_SAFETENSORS),
        Layer(tar(VLLM), DMR_VLLM_CONFIG_TAR),
        Layer(b"MIT\n", DMR_LICENSE),
    ]
    return push_layers(
        plain_registry,
        "cli/model",
        "v1",
        layers,
        config=dmr_config("safetensors", layers),
        config_media_type=DMR_CONFIG_V02,
    )


def test_pull_prints_only_the_model_directory(model: PushedArtifact, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    r = run("pull", model.reference, "--cache-dir", str(cache), "-q")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    path = Path(lines[0])
    assert path.is_relative_to(cache)
    assert tree(path) == ALL
    assert "downloaded" in r.stderr and "%|" not in r.stderr
    again = run("pull", model.reference, "--cache-dir", str(cache))
    assert again.returncode == 0, again.stderr
    assert again.stdout == r.stdout
    assert "from the cache" in again.stderr


def test_pull_through_the_installed_command(model: PushedArtifact, tmp_path: Path) -> None:
    command = shutil.which("oci-client", path=str(Path(sys.executable).parent))
    assert command is not None, "the oci-client entry point is not installed"
    cache = tmp_path / "cache"
    r = subprocess.run(
        [command, "pull", model.reference, "--cache-dir", str(cache), "--insecure", model.host],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert tree(Path(r.stdout.strip())) == ALL


def test_pull_cache_from_the_environment_and_the_default(
    model: PushedArtifact, tmp_path: Path, docker_config: Path
) -> None:
    env = {**os.environ, "OCI_CLIENT_CACHE": str(tmp_path / "from-env")}
    r = run("pull", model.reference, env=env)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).is_relative_to(tmp_path / "from-env")
    env.pop("OCI_CLIENT_CACHE")
    r = run("pull", model.reference, env=env)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).is_relative_to(Path(os.environ["HOME"]) / ".cache" / "oci-client")


def test_pull_into_a_directory_with_include_and_exclude(model: PushedArtifact, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run(
        "pull",
        model.reference,
        "-o",
        str(out),
        "--include",
        "*.safetensors",
        "--include",
        "vllm-config.tar",
        "--include",
        "LICENSE",
        "--exclude",
        "LICENSE",
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(out)]
    assert tree(out) == {"model.safetensors": SHARD, **VLLM}
    assert not any(p.is_symlink() for p in out.rglob("*"))


def states(cache: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in (cache / "blobs" / "sha256").glob("*.state")]


def test_pull_sync_makes_every_blob_durable(model: PushedArtifact, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    r = run("pull", model.reference, "--cache-dir", str(cache), "--sync")
    assert r.returncode == 0, r.stderr
    assert len(states(cache)) >= 4  # the weights, the license, the config, the vLLM files
    assert all(s == {"durable": True} for s in states(cache)), states(cache)


def test_pull_without_sync_leaves_blobs_trusted_for_this_boot(model: PushedArtifact, tmp_path: Path) -> None:
    # With the flush at exit turned off (tests/test_durable_exit.py has it on), the command
    # exits without waiting for the fsyncs; a later pull makes them durable.
    cache = tmp_path / "cache"
    r = run(
        "pull",
        model.reference,
        "--cache-dir",
        str(cache),
        env={**os.environ, "OCI_CLIENT_EXIT_SYNC_TIMEOUT": "0"},
    )
    assert r.returncode == 0, r.stderr
    assert len(states(cache)) >= 4
    assert all(s == {"boot": this_boot(), "durable": False} for s in states(cache)), states(cache)
    client = OciGoClient()
    client.pull_model(model.reference, cache_dir=cache)
    client.wait_durable()
    assert all(s == {"durable": True} for s in states(cache)), states(cache)


def test_pull_platform_and_artifact_type(plain_registry: LocalRegistry, tmp_path: Path) -> None:
    amd = push_artifact(plain_registry, "cli/multi", None, {"model.gguf": b"amd"})
    arm = push_artifact(plain_registry, "cli/multi", None, {"model.gguf": b"arm"})
    other = push_artifact(
        plain_registry, "cli/multi", None, {"notes.txt": b"n"}, artifact_type="application/x-n"
    )
    index = push_index_of(
        plain_registry,
        "cli/multi",
        "v1",
        [
            (amd, {"platform": {"os": "linux", "architecture": "amd64"}, "artifactType": "application/x-m"}),
            (arm, {"platform": {"os": "linux", "architecture": "arm64"}, "artifactType": "application/x-m"}),
            (
                other,
                {"platform": {"os": "linux", "architecture": "arm64"}, "artifactType": "application/x-n"},
            ),
        ],
    )
    cache = ["--cache-dir", str(tmp_path / "cache")]
    r = run("pull", index.reference, "--platform", "linux/amd64", *cache)
    assert r.returncode == 0, r.stderr
    assert tree(Path(r.stdout.strip())) == {"model.gguf": b"amd"}
    r = run(
        "pull", index.reference, "--platform", "linux/arm64", "--artifact-type", "application/x-m", *cache
    )
    assert r.returncode == 0, r.stderr
    assert tree(Path(r.stdout.strip())) == {"model.gguf": b"arm"}
    assert_error(run("pull", index.reference, "--platform", "linux/arm64", *cache), "INVALID_ARGUMENT")


def test_pull_offline(model: PushedArtifact, tmp_path: Path) -> None:
    cache = ["--cache-dir", str(tmp_path / "cache")]
    missing = run("pull", model.reference, "--offline", *cache)
    assert_error(missing, "NOT_CACHED", "cli/model")
    pulled = run("pull", model.reference, *cache)
    assert pulled.returncode == 0, pulled.stderr
    offline = run("pull", model.reference, "--offline", *cache)
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout == pulled.stdout
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    assert_error(run("pull", f"{model.host}/cli/other:v1", *cache, env=env), "NOT_CACHED", "cli/other")


def test_errors_are_one_line(plain_registry: LocalRegistry, tmp_path: Path) -> None:
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert_error(run("pull", f"{plain_registry.host}/cli/a//b:v1", *cache), "INVALID_REFERENCE")
    assert_error(run("pull", "UPPER/Case:v1", *cache))
    assert_error(run("pull", f"{plain_registry.host}/cli/absent:v1", *cache), "NOT_FOUND")
    evil = [file("ok.txt", b"ok"), symlink("link", "/etc"), file("link/passwd", b"x")]
    layers = [named(tar(evil), modelpack_layer("code", "tar"), "src")]
    bad = push_layers(
        plain_registry,
        "cli/evil",
        "v1",
        layers,
        config=modelpack_config("evil", layers),
        config_media_type=MODELPACK_CONFIG,
        artifact_type=MODELPACK_ARTIFACT,
    )
    assert_error(run("pull", bad.reference, *cache), "UNSAFE_ARCHIVE")
    escape = push_model(plain_registry, "cli/escape", "v1", {"../escape.txt": b"x"})
    assert_error(run("pull", escape.reference, "-o", str(tmp_path / "out"), *cache), "INVALID_MODEL")
    assert not (tmp_path / "escape.txt").exists()


def test_a_failed_login_is_one_line_without_the_secret(
    tls_registry: LocalRegistry, docker_config: Path, tmp_path: Path
) -> None:
    pushed = push_artifact(tls_registry, "cli/private", "v1", {"w.bin": b"secret weights"})
    assert tls_registry.username is not None
    wrong = "not-the-password-1234"
    write_config(
        docker_config / "config.json",
        {"auths": {tls_registry.host: {"auth": auth_field(tls_registry.username, wrong)}}},
    )
    args = ["--cache-dir", str(tmp_path / "cache"), "--ca-file", str(tls_registry.ca_file)]
    line = assert_error(run("pull", pushed.reference, *args), "UNAUTHORIZED")
    assert wrong not in line and auth_field(tls_registry.username, wrong) not in line
    assert_error(run("inspect", pushed.reference, *args), "UNAUTHORIZED")
    # With the right password the same command works.
    write_config(
        docker_config / "config.json",
        {
            "auths": {
                tls_registry.host: {"auth": auth_field(tls_registry.username, tls_registry.password or "")}
            }
        },
    )
    ok = run("pull", pushed.reference, *args)
    assert ok.returncode == 0, ok.stderr
    assert tree(Path(ok.stdout.strip())) == {"w.bin": b"secret weights"}


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for args in (
        ["pull"],
        ["pull", "x/y:z", "--bogus"],
        ["inspect"],
        ["cache"],
        ["cache", "rm"],
        ["cache", "prune", "--min-age", "soon"],
        ["cache", "frobnicate"],
    ):
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr and "usage:" in r.stderr


def test_inspect_text_and_json(model: PushedArtifact, tmp_path: Path) -> None:
    cache = ["--cache-dir", str(tmp_path / "cache")]
    r = run("inspect", model.reference, "--json", *cache)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["format"] == "docker"
    assert info["digest"] == model.digest
    assert info["manifest_digest"] == model.digest
    assert info["config_media_type"] == DMR_CONFIG_V02
    assert [(f["path"], f["size"], f["digest"]) for f in info["files"]] == [
        ("model.safetensors", len(SHARD), model.layers[0].digest),
        ("vllm-config.tar", model.layers[1].size, model.layers[1].digest),
        ("LICENSE", 4, model.layers[2].digest),
    ]
    assert info["total_size"] == sum(layer.size for layer in model.layers)
    assert info["config"]["config"]["format"] == "safetensors"
    text = run("inspect", model.reference, *cache)
    assert text.returncode == 0, text.stderr
    assert "docker" in text.stdout
    assert f"config    {DMR_CONFIG_V02}" in text.stdout.splitlines()
    for name in ("model.safetensors", "vllm-config.tar", "LICENSE", model.layers[0].digest):
        assert name in text.stdout
    # It fetched no layer, so offline it still describes the model but has no files to pull.
    assert run("inspect", model.reference, "--offline", *cache).returncode == 0
    assert_error(run("pull", model.reference, "--offline", *cache), "NOT_CACHED")


def test_cache_ls_rm_prune(model: PushedArtifact, tmp_path: Path) -> None:
    cache = ["--cache-dir", str(tmp_path / "cache")]
    empty = run("cache", "ls", *cache)
    assert empty.returncode == 0, empty.stderr
    assert model.repository not in empty.stdout
    pulled = run("pull", model.reference, *cache)
    assert pulled.returncode == 0, pulled.stderr
    ls = run("cache", "ls", *cache)
    assert ls.returncode == 0, ls.stderr
    (row,) = [line for line in ls.stdout.splitlines() if f"{model.host}/{model.repository}" in line]
    assert "v1" in row.split() and model.digest[:19] in row
    assert str(tmp_path / "cache") in ls.stderr

    rm = run("cache", "rm", model.reference, *cache)
    assert rm.returncode == 0, rm.stderr
    assert "removed" in rm.stdout
    assert not Path(pulled.stdout.strip()).exists()
    assert f"{model.host}/{model.repository}" not in run("cache", "ls", *cache).stdout
    assert_error(run("cache", "rm", model.reference, *cache), "NOT_FOUND")

    stray = tmp_path / "cache" / "blobs" / "sha256" / ("e" * 64)
    stray.write_bytes(b"unused")
    kept = run("cache", "prune", *cache)
    assert kept.returncode == 0, kept.stderr
    assert stray.exists(), "a fresh blob was pruned with the default --min-age"
    pruned = run("cache", "prune", "--min-age", "0", *cache)
    assert pruned.returncode == 0, pruned.stderr
    assert "pruned" in pruned.stdout
    assert not stray.exists()
