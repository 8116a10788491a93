"""The C example of docs/reference/c-abi.md builds against liboci and runs: it checks the ABI
version, pulls a model from the built-in registry with PullModel and lists the cache with
CacheList, freeing each envelope with FreeString. Outside CI a missing C compiler or registry
program skips; in CI (CI=true) it fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import oci_client
from oci_client._abi import ABI_VERSION
from oci_client._native import default_library_path
from oci_client.server import Registry, RegistryServerError, find_registry_binary

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "reference" / "c-example.c"
DOC = ROOT / "docs" / "reference" / "c-abi.md"


def _need(what: str, ok: bool) -> None:
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} unavailable")


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    _need("a C compiler (gcc)", cc is not None)
    lib = default_library_path()
    _need(f"the built library {lib} (./build.sh shared)", lib.is_file())
    out = tmp_path / "c-example"
    # -Wall -Werror: the example is documentation, and must compile cleanly.
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
    link = [f"-L{lib.parent}", "-loci", f"-Wl,-rpath,{lib.parent}"]
    subprocess.run([str(cc), *flags, str(EXAMPLE), "-o", str(out), *link], check=True)
    return out


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    try:
        find_registry_binary()
    except RegistryServerError as exc:
        _need(f"the registry program ({exc})", False)
    with Registry(tmp_path / "registry") as r:
        yield r


def test_the_doc_shows_the_example() -> None:
    assert f"```c\n{EXAMPLE.read_text(encoding='utf-8')}```" in DOC.read_text(encoding="utf-8")


def test_c_example_pulls_and_lists(binary: Path, registry: Registry, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    files = {"config.json": b'{"model_type": "tiny"}', "model.safetensors": os.urandom(64 * 1024 + 5)}
    for name, data in files.items():
        (model / name).write_bytes(data)
    ref = f"{registry.host}/c/model:v1"
    oci_client.push_model(model, ref, cache_dir=tmp_path / "push-cache")

    cache = tmp_path / "cache"
    run = subprocess.run(
        [str(binary), str(cache), ref], capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin"}
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"abi_version {ABI_VERSION}"
    calls = dict(line.split(" ", 1) for line in lines[1:])
    pulled = json.loads(calls["PullModel"])
    assert pulled["ok"] is True and pulled["abi_version"] == ABI_VERSION
    path = Path(pulled["result"]["path"])
    assert path.is_relative_to(cache)
    assert {name: (path / name).read_bytes() for name in files} == files
    listed = json.loads(calls["CacheList"])
    assert listed["ok"] is True
    assert "c/model" in json.dumps(listed["result"])


def test_c_example_reports_a_failed_call(binary: Path, tmp_path: Path) -> None:
    # Nothing listens on port 9 of 127.0.0.1: the pull fails, the envelope says why, exit 1.
    run = subprocess.run(
        [str(binary), str(tmp_path / "cache"), "127.0.0.1:9/none/model:v1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    calls = dict(line.split(" ", 1) for line in run.stdout.splitlines()[1:])
    error = json.loads(calls["PullModel"])
    assert error["ok"] is False and error["error"]["code"]
    assert json.loads(calls["CacheList"])["ok"] is True


def test_c_example_links_the_static_archive(tmp_path: Path) -> None:
    """Against build/native/liboci.a, with liboci.h forced in: the example's declarations agree
    with the header cgo writes (./build.sh archive; test.sh builds it before pytest)."""
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    _need("a C compiler (gcc)", cc is not None)
    archive, header = ROOT / "build" / "native" / "liboci.a", ROOT / "build" / "native" / "liboci.h"
    _need("build/native/liboci.a and liboci.h (./build.sh archive)", archive.is_file() and header.is_file())
    out = tmp_path / "c-example-static"
    flags = ["-std=c99", "-Wall", "-Werror", "-include", str(header)]
    subprocess.run(
        [str(cc), *flags, str(EXAMPLE), str(archive), "-lpthread", "-lresolv", "-o", str(out)], check=True
    )
    run = subprocess.run([str(out), str(tmp_path / "cache")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[0] == f"abi_version {ABI_VERSION}"
    assert json.loads(run.stdout.splitlines()[1].split(" ", 1)[1])["ok"] is True
