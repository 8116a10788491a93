"""The plugin against vLLM's own loader API (vllm 0.33.0 here, on the CPU): the entry point,
get_model_loader, EngineArgs resolving an oci:// model to its snapshot, download_model and
load_weights filling a real torch module with exactly the published tensors (and refusing
a model with a shard withheld), shards handed over while later ones download, and a model
pulled through the plugin path giving transformers the same logits as the original."""

from __future__ import annotations

import contextlib
import importlib.metadata
import itertools
import logging
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from faultproxy import FaultProxy, Rule
from safetensors.torch import load_file
from tinymodel import build_model, logits
from vllm.config.load import LoadConfig
from vllm.engine.arg_utils import EngineArgs
from vllm.model_executor.model_loader import get_model_loader

import oci_client
from oci_client.server import Registry

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True, scope="module")
def plugins() -> None:
    """What every vLLM process does first, so each test also runs alone (-k)."""
    from vllm.plugins import load_general_plugins

    load_general_plugins()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def pushed(registry: Registry, model_dir: Path) -> str:
    ref = f"{registry.host}/vllm/tiny:v1"
    oci_client.push_model(model_dir, ref)
    return ref


def tensors(model_dir: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for shard in sorted(model_dir.glob("*.safetensors")):
        out |= load_file(str(shard))
    return out


class Flat(torch.nn.Module):
    """A real module with one parameter per checkpoint tensor, loaded the vLLM way."""

    def __init__(self, shapes: dict[str, torch.Size]) -> None:
        super().__init__()
        self.params = torch.nn.ParameterDict(
            {k.replace(".", "__"): torch.nn.Parameter(torch.zeros(s)) for k, s in shapes.items()}
        )
        self.order: list[str] = []

    def load_weights(self, weights: Any) -> set[str]:
        loaded = set()
        for name, tensor in weights:
            key = name.replace(".", "__")
            self.params[key].data.copy_(tensor)
            self.order.append(name)
            loaded.add(f"params.{key}")
        return loaded


def assert_holds(module: Flat, expected: dict[str, torch.Tensor]) -> None:
    """Every checkpoint tensor is in the module, exactly."""
    for name, tensor in expected.items():
        assert torch.equal(module.params[name.replace(".", "__")].data, tensor), name


def loader_for(ref: str, cache: Path, **extra: Any) -> Any:
    from oci_client.vllm import REFERENCE_KEY

    return get_model_loader(
        LoadConfig(
            load_format="oci",
            download_dir=str(cache),
            model_loader_extra_config={REFERENCE_KEY: ref, **extra},
        )
    )


def test_the_entry_point_registers_the_loader() -> None:
    points = importlib.metadata.entry_points(group="vllm.general_plugins")
    assert [p.value for p in points if p.name == "oci"] == ["oci_client.vllm:register"]
    from vllm.plugins import load_general_plugins

    load_general_plugins()
    from oci_client.vllm import OciModelLoader, register

    register()  # idempotent: a second call changes nothing
    assert type(get_model_loader(LoadConfig(load_format="oci"))) is OciModelLoader
    assert getattr(EngineArgs, "_oci_client_patched", False)


def test_engine_args_resolve_an_oci_model_to_its_snapshot(pushed: str, cache: Path) -> None:
    args = EngineArgs(model=f"oci://{pushed}", load_format="oci", download_dir=str(cache))
    config = args.create_model_config()
    snapshot = Path(config.model)
    assert snapshot.is_relative_to(cache) and (snapshot / "config.json").is_file()
    assert not list(snapshot.glob("*.safetensors"))  # only the small files before loading
    assert Path(config.tokenizer) == snapshot and (snapshot / "tokenizer.json").is_file()
    assert config.hf_config.model_type == "llama"
    assert args.served_model_name == f"oci://{pushed}"
    reference = args.model_loader_extra_config["oci_reference"]
    assert reference.startswith(pushed.rsplit(":", 1)[0] + "@sha256:")

    bare = EngineArgs(model=pushed, load_format="oci", download_dir=str(cache))
    assert Path(bare.create_model_config().model) == snapshot
    other = EngineArgs(model=str(snapshot), download_dir=str(cache))  # a local path: left alone
    assert other.create_model_config().model == str(snapshot)


def test_download_and_load_weights_fill_a_real_module(pushed: str, model_dir: Path, cache: Path) -> None:
    expected = tensors(model_dir)
    loader = loader_for(pushed, cache)
    config = SimpleNamespace(model=f"oci://{pushed}", quantization=None)
    loader.download_model(config)
    module = Flat({k: v.shape for k, v in expected.items()})
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("vllm.oci_client")  # at INFO, as vLLM sets its loggers up
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        loader.load_weights(module, config)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    # The line vLLM's own loader logs, which the engine benchmark reads.
    assert any(r.getMessage().startswith("Loading weights took ") for r in records), records
    assert sorted(module.order) == sorted(expected)
    assert_holds(module, expected)


def test_the_weights_come_through_the_mirror_the_machine_configures(
    pushed: str, model_dir: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node's containerd hosts.toml names a mirror of the registry: the loader, which takes
    no mirror setting of its own, fetches every shard from it and loads exactly the published
    tensors. (A mirror's wrong bytes are tests/test_mirrors.py's.)"""
    registry_host = pushed.split("/", 1)[0]
    with FaultProxy(f"http://{registry_host}") as mirror:
        d = tmp_path / "certs.d" / (registry_host.replace(":", "_") + "_")
        d.mkdir(parents=True)
        (d / "hosts.toml").write_text(
            f'server = "http://{registry_host}"\n[host."http://{mirror.host}"]\n  capabilities = ["pull"]\n'
        )
        monkeypatch.setenv("OCI_CLIENT_CERTS_DIR", str(tmp_path / "certs.d"))
        info = oci_client.inspect(pushed, cache_dir=tmp_path / "inspect")
        shards = [f for f in info.files if f.path.endswith(".safetensors")]
        expected = tensors(model_dir)
        loader = loader_for(pushed, cache)
        config = SimpleNamespace(model=f"oci://{pushed}", quantization=None)
        loader.download_model(config)
        module = Flat({k: v.shape for k, v in expected.items()})
        loader.load_weights(module, config)
        asked = [r.path for r in mirror.log if r.method == "GET" and "/blobs/" in r.path]
    assert_holds(module, expected)
    assert all(any(s.digest in p for p in asked) for s in shards), asked
    assert all("ns=" in p for p in asked), asked


def test_a_withheld_shard_fails_the_weights_check(
    registry: Registry, model_dir: Path, tmp_path: Path, cache: Path
) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(model_dir, partial)
    shards = sorted(partial.glob("*.safetensors"))
    shards[-1].unlink()
    ref = f"{registry.host}/vllm/partial:v1"
    oci_client.push_model(partial, ref)
    module = Flat({k: v.shape for k, v in tensors(model_dir).items()})
    with pytest.raises(ValueError, match="not initialized from checkpoint"):
        loader_for(ref, cache).load_weights(module, SimpleNamespace(model=ref, quantization=None))


def test_shards_are_read_while_later_ones_download(registry: Registry, model_dir: Path, cache: Path) -> None:
    ref = f"{registry.host}/vllm/slow:v1"
    pushed = oci_client.push_model(model_dir, ref)
    shards = [b for b in pushed.blobs if b.path and b.path.endswith(".safetensors")]
    last = max(shards, key=lambda b: b.path or "")
    rate = 100_000  # bytes per second for the last shard; the others come at loopback speed
    with FaultProxy(registry.url) as proxy:
        proxy.add(Rule(path=last.digest, method="GET", throttle=rate))
        via = f"{proxy.host}/vllm/slow:v1"
        started = time.monotonic()
        with shard_log() as lines:
            seen = [(name, time.monotonic() - started) for name, _ in loader_for(via, cache).weights(via)]
    # The first shards were read while the last was still on the wire (it needs size/rate).
    assert seen[0][1] < 0.75 * last.size / rate
    assert sorted(n for n, _ in seen) == sorted(tensors(model_dir))
    assert seen[-1][1] >= last.size / rate * 0.9  # and the last one only once it had arrived
    # At DEBUG the loader says where the time went: one line per shard, in shard order.
    timings = [
        re.fullmatch(r"shard (\d+)/(\d+) (\S+): verified at (\S+) s, loading from (\S+) s to (\S+) s", x)
        for x in lines
    ]
    assert all(timings), lines
    assert [(int(m[1]), int(m[2]), m[3]) for m in timings] == [
        (i, len(shards), p) for i, p in enumerate(sorted(b.path or "" for b in shards), 1)
    ]
    for m in timings:
        assert float(m[4]) <= float(m[5]) + 0.01 and float(m[5]) <= float(m[6])
    assert float(timings[0][5]) < 0.75 * last.size / rate  # the first loading, the last on the wire
    assert float(timings[-1][4]) >= 0.9 * last.size / rate  # the last verified once it had arrived


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("shard "):
            self.lines.append(record.getMessage())


@contextlib.contextmanager
def shard_log() -> Iterator[list[str]]:
    """The loader's DEBUG lines about its shards (vLLM's loggers do not propagate to root)."""
    handler, log = _Lines(), logging.getLogger("vllm.oci_client")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def test_the_loader_leaves_torch_threads_alone_where_vllm_forbids_setting_them(
    pushed: str, model_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    # What vLLM's CPU worker does after binding its threads (it logs a warning per call).
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    names = [name for name, _ in loader_for(pushed, cache).weights(pushed)]
    assert sorted(names) == sorted(tensors(model_dir))
    assert calls == []


RATE = 1_000_000  # bytes per second per shard: slow enough for the order of the requests to show


def shard_requests(
    registry: Registry, model_dir: Path, cache: Path, name: str, **extra: Any
) -> list[tuple[float, float]]:
    """For each shard in shard order: when the loader's pull first asked for it (seconds from
    the first request) and how long it takes to send at RATE."""
    ref = f"{registry.host}/vllm/{name}:v1"
    pushed = oci_client.push_model(model_dir, ref)
    shards = sorted(
        (b for b in pushed.blobs if b.path and b.path.endswith(".safetensors")), key=lambda b: b.path or ""
    )
    with FaultProxy(registry.url) as proxy:
        for shard in shards:
            proxy.add(Rule(path=shard.digest, method="GET", throttle=RATE))
        via = f"{proxy.host}/vllm/{name}:v1"
        names = [name for name, _ in loader_for(via, cache, **extra).weights(via)]
        asked = [min(r.at for r in proxy.log if r.method == "GET" and s.digest in r.path) for s in shards]
    assert sorted(names) == sorted(tensors(model_dir))
    return [(t - asked[0], s.size / RATE) for t, s in zip(asked, shards, strict=True)]


@pytest.mark.parametrize("how", ["concurrency=1", "big shards, by default"])
def test_the_shards_are_fetched_one_after_another(
    how: str, registry: Registry, model_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import oci_client.vllm

    if how == "concurrency=1":
        shards = shard_requests(registry, model_dir, cache, "in-order", concurrency=1)
    else:
        monkeypatch.setattr(oci_client.vllm, "SHARD_ORDER_MIN", 1)  # every shard counts as big
        shards = shard_requests(registry, model_dir, cache, "in-order-default")
    # Each shard is asked for only once the one before it has arrived.
    for (before, took), (after, _) in itertools.pairwise(shards):
        assert after - before >= 0.5 * took


def test_small_shards_are_fetched_four_at_once_by_default(
    registry: Registry, model_dir: Path, cache: Path
) -> None:
    shards = shard_requests(registry, model_dir, cache, "four-at-once")
    quickest = min(took for _, took in shards[:4])
    assert max(at for at, _ in shards[:4]) < 0.25 * quickest  # the first four together
    assert shards[4][0] >= 0.5 * quickest  # the fifth once one of them is done


def test_hf_hub_offline_serves_an_oci_model_from_the_cache(
    registry: Registry, model_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    oci_client.push_model(model_dir, f"{registry.host}/vllm/offline:v1")
    expected = tensors(model_dir)
    with FaultProxy(registry.url) as proxy:
        via = f"{proxy.host}/vllm/offline:v1"
        config = SimpleNamespace(model=f"oci://{via}", quantization=None)
        loader_for(via, cache).download_model(config)  # online: the model into the cache
        online = len(proxy.log)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        args = EngineArgs(model=f"oci://{via}", load_format="oci", download_dir=str(cache))
        snapshot = Path(args.create_model_config().model)
        module = Flat({k: v.shape for k, v in expected.items()})
        loader_for(via, cache).load_weights(module, config)
        assert len(proxy.log) == online  # nothing more reached the registry
    assert snapshot.is_relative_to(cache) and (snapshot / "config.json").is_file()
    assert_holds(module, expected)
    # A model the cache does not hold: a clear, typed error naming it, no network.
    absent = f"oci://{registry.host}/vllm/absent:v1"
    args = EngineArgs(model=absent, load_format="oci", download_dir=str(cache))
    with pytest.raises(oci_client.NotCachedError, match="vllm/absent"):
        args.create_model_config()


def test_the_loader_rehashes_each_shard_it_serves_and_never_loads_a_wrong_one(
    registry: Registry, model_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    oci_client.push_model(model_dir, f"{registry.host}/vllm/verify:v1")
    expected = tensors(model_dir)
    shapes = {k: v.shape for k, v in expected.items()}
    with FaultProxy(registry.url) as proxy:
        via = f"{proxy.host}/vllm/verify:v1"
        config = SimpleNamespace(model=f"oci://{via}", quantization=None)
        loader_for(via, cache).download_model(config)
        oci_client.OciGoClient().wait_durable()
        files = oci_client.inspect(via, cache_dir=cache).files
        shard = [f for f in files if f.path.endswith(".safetensors")][-1]
        blob = cache / "blobs" / "sha256" / shard.digest.split(":", 1)[1]
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF  # in a tensor: the header is at the start
        blob.write_bytes(bytes(data))

        # Not verified, the cache serves what its state vouches for: a wrong weight.
        module = Flat(shapes)
        loader_for(via, cache, verify=False).load_weights(module, config)
        with pytest.raises(AssertionError):
            assert_holds(module, expected)
        # Verified (the loader's default) and offline: a typed error naming the blob, before
        # that shard is read.
        monkeypatch.setenv("OCI_CLIENT_OFFLINE", "1")
        module = Flat(shapes)
        with pytest.raises(oci_client.NotCachedError, match=shard.digest):
            loader_for(via, cache).load_weights(module, config)
        assert not blob.exists() and len(list((cache / "quarantine").iterdir())) == 1
        # Online: fetched again, and every weight right.
        monkeypatch.delenv("OCI_CLIENT_OFFLINE")
        mark = len(proxy.log)
        loader_for(via, cache, verify=True).load_weights(module, config)
        gets = [s.path for s in proxy.log[mark:] if s.method == "GET" and "/blobs/" in s.path]
        assert gets and all(shard.digest in g for g in gets), gets
    assert_holds(module, expected)
    with pytest.raises(ValueError, match="verify must be true or false"):
        loader_for(via, cache, verify="yes")


@pytest.mark.parametrize("bad", [0, -1, "4", True, 1.5])
def test_a_bad_concurrency_is_refused(bad: Any, cache: Path) -> None:
    with pytest.raises(ValueError, match="concurrency must be a positive int"):
        loader_for("127.0.0.1:1/x:v1", cache, concurrency=bad)


def test_transformers_gets_the_same_logits_from_the_pulled_model(
    pushed: str, model_dir: Path, cache: Path
) -> None:
    args = EngineArgs(model=f"oci://{pushed}", load_format="oci", download_dir=str(cache))
    snapshot = Path(args.create_model_config().model)
    loader_for(args.model_loader_extra_config["oci_reference"], cache).download_model(
        SimpleNamespace(model=str(snapshot), quantization=None)
    )
    assert torch.equal(logits(snapshot), logits(model_dir))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_load_after_the_parent_resolved_the_model(
    method: str, pushed: str, model_dir: Path, cache: Path
) -> None:
    # A fresh interpreter plays vLLM's parent: it resolves the model, must not have started
    # a Go runtime doing so, then starts two workers by fork or spawn that load the weights.
    done = subprocess.run(
        [sys.executable, str(HERE / "workers.py"), f"oci://{pushed}", str(cache), str(model_dir), method],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "workers: ok ok"


def test_both_workers_load_early_shards_while_the_last_downloads(
    registry: Registry, model_dir: Path, cache: Path
) -> None:
    # Tensor-parallel ranks share the cache: one fetches each shard, the other waits for it
    # and must still get every shard as soon as it is verified, not after the whole pull.
    ref = f"{registry.host}/vllm/ranks:v1"
    pushed = oci_client.push_model(model_dir, ref)
    shards = [b for b in pushed.blobs if b.path and b.path.endswith(".safetensors")]
    last = max(shards, key=lambda b: b.path or "")
    rate = 16_000  # bytes per second for the last shard: 10 s on the wire, the workers' start-up is 1-3 s
    with FaultProxy(registry.url) as proxy:
        proxy.add(Rule(path=last.digest, method="GET", throttle=rate))
        via = f"oci://{proxy.host}/vllm/ranks:v1"
        done = subprocess.run(
            [sys.executable, str(HERE / "workers.py"), via, str(cache), str(model_dir), "spawn"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        gets = [s for s in proxy.log if s.method == "GET" and last.digest in s.path]
    assert done.returncode == 0, done.stderr[-3000:]
    *_, times, verdict = done.stdout.strip().splitlines()
    assert verdict == "workers: ok ok"
    assert len(gets) == 1, "the last shard was fetched more than once"
    arrived = gets[0].at - time.monotonic() + time.time() + last.size / rate  # wall clock, roughly
    first = [float(t) for t in times.removeprefix("times:").split()][::2]
    for i, t in enumerate(first):
        assert t < arrived - 0.3 * last.size / rate, f"worker {i} began loading as the last shard arrived"


def test_engine_args_find_the_small_files_inside_a_kit_init_code_layer(
    registry: Registry, model_dir: Path, cache: Path
) -> None:
    # `kit init` packs the weights as the model layer and everything else of the directory
    # into one code layer at "."; the configs, tokenizer and chat template are in there.
    from modelfixtures import KIT_CONFIG, Layer, kit_layer, kitfile, push_layers, tar

    small = {
        p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file() and p.suffix != ".safetensors"
    }
    small["chat_template.jinja"] = b"{% for m in messages %}{{ m.content }}{% endfor %}"
    shards = {p.name: p.read_bytes() for p in model_dir.glob("*.safetensors")}
    weights, code = Layer(tar(shards), kit_layer("model")), Layer(tar(small), kit_layer("code"))
    config = kitfile(
        {"path": next(iter(shards)), "digest": weights.digest}, code=[{"path": ".", "digest": code.digest}]
    )
    pushed = push_layers(
        registry, "vllm/kit", "v1", [weights, code], config=config, config_media_type=KIT_CONFIG
    )

    args = EngineArgs(model=f"oci://{registry.host}/vllm/kit:v1", load_format="oci", download_dir=str(cache))
    config_ = args.create_model_config()
    snapshot = Path(config_.model)
    got = {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()}
    assert got == set(small), "the small-file pull missed files packed in the code layer"
    assert (snapshot / "chat_template.jinja").read_bytes() == small["chat_template.jinja"]
    assert Path(config_.tokenizer) == snapshot and config_.hf_config.model_type == "llama"
    assert pushed.digest in args.model_loader_extra_config["oci_reference"]
