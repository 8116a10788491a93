"""Mirrors (issue 25): pulls through a real distribution pull-through cache named in
containerd's hosts.toml, in front of a token-auth origin, by several node processes with
caches of their own; then the mirror down, corrupting a blob, and refusing a tag."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from credentials import auth_field, write_config
from faultproxy import FaultProxy, Rule, Seen
from oci_testing import (
    LocalRegistry,
    PushedArtifact,
    RegistryTarget,
    TokenServer,
    push_artifact,
    push_model,
)

from oci_client import Client, InvalidArgumentError, TLSError
from oci_client.server import Registry, RegistryServerError

FILES = {
    "config.json": b'{"architectures": ["LlamaForCausalLM"]}',
    "model-00001-of-00002.safetensors": os.urandom(3 << 20),
    "model-00002-of-00002.safetensors": os.urandom(2 << 20),
    "tokenizer.json": b'{"model": {"type": "BPE"}}' * 100,
}
REPO = "org/model"


@dataclass
class World:
    origin: LocalRegistry
    counter: FaultProxy  # in front of the origin: what the origin served
    cache: LocalRegistry | Registry  # a distribution pull-through cache of the origin
    front: FaultProxy  # in front of the cache: faults, headers seen
    pushed: PushedArtifact
    certs: Path

    @property
    def ref(self) -> str:
        return f"{self.counter.host}/{REPO}:v1"

    def hosts_toml(self, capabilities: str = '["pull"]', mirror: str | None = None) -> None:
        d = self.certs / (self.counter.host.replace(":", "_") + "_")
        d.mkdir(parents=True, exist_ok=True)
        (d / "hosts.toml").write_text(
            textwrap.dedent(f"""\
            server = "http://{self.counter.host}"

            [host."http://{mirror or self.front.host}"]
              capabilities = {capabilities}
              header = {{ X-Dragonfly-Registry = "http://{self.counter.host}" }}
            """)
        )

    def origin_blob_gets(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.counter.log:
            if s.method == "GET" and "/blobs/sha256:" in s.path and s.status in (200, 206):
                d = s.path.rsplit("/", 1)[-1]
                counts[d] = counts.get(d, 0) + 1
        return counts

    def layer_digests(self) -> set[str]:
        blobs = list(self.pushed.layers)
        if self.pushed.config is not None:
            blobs.append(self.pushed.config)
        return {b.digest for b in blobs}


@pytest.fixture(params=["distribution3"])
def world(
    request: pytest.FixtureRequest,
    registry_factory: Callable[..., LocalRegistry],
    docker_config: Path,
    tmp_path: Path,
) -> Iterator[World]:
    # The counter stands in front of the origin and of its token server, on one host:port:
    # distribution 3 takes a token realm only on its upstream's own host (or domain).
    counter = FaultProxy("http://127.0.0.1:9")
    tokens = TokenServer({"tester": secrets.token_urlsafe(12)}, realm_base=f"http://{counter.host}")
    tokens.start()
    origin = registry_factory("token", token_server=tokens)
    counter.upstream_port = origin.port or 0
    counter.routes["/token"] = f"http://127.0.0.1:{tokens.port}"
    with counter, contextlib.ExitStack() as stack:
        stack.callback(tokens.stop)
        pushed = push_model(origin.target(), REPO, "v1", FILES)
        cache: LocalRegistry | Registry
        if request.param == "distribution2.8":
            upstream = RegistryTarget(f"http://{counter.host}", None, origin.username, origin.password)
            cache = registry_factory("proxy", upstream=upstream)
        else:
            cache = Registry(
                tmp_path / "cache-root",
                proxy=f"http://{counter.host}",
                proxy_username=origin.username,
                proxy_password=origin.password,
                log_level=os.environ.get("DBG_LEVEL"),
            ).start()
            stack.callback(cache.stop)
        with FaultProxy(cache.url) as front:
            assert origin.username is not None and origin.password is not None
            write_config(
                docker_config / "config.json",
                {"auths": {counter.host: {"auth": auth_field(origin.username, origin.password)}}},
            )
            w = World(origin, counter, cache, front, pushed, tmp_path / "certs.d")
            w.hosts_toml()
            yield w


def check_files(path: Path) -> None:
    for name, data in FILES.items():
        got = (path / name).read_bytes()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), name


NODE = """
import json, sys
from oci_client import Client, InvalidArgumentError, TLSError
from oci_client.server import Registry
ref, certs, cache = sys.argv[1:4]
pulled = Client(certs_dir=certs).pull(ref, cache_dir=cache)
print(json.dumps({"path": str(pulled.path), "blobs": pulled.blobs_downloaded}))
"""


def run_nodes(world: World, tmp_path: Path, n: int, first: int = 0) -> list[Path]:
    """n node processes, each with a cache of its own (node<first>…), pull the model at once:
    even ones with ``Client(certs_dir=…)``, odd ones with ``oci-client pull`` and
    ``OCI_CLIENT_CERTS_DIR``."""
    procs = []
    for i in range(first, first + n):
        cache = str(tmp_path / f"node{i}")
        if i % 2 == 0:
            argv = [sys.executable, "-c", NODE, world.ref, str(world.certs), cache]
        else:
            argv = [sys.executable, "-m", "oci_client", "pull", "-q", "--cache-dir", cache, world.ref]
        env = {**os.environ, "OCI_CLIENT_CERTS_DIR": str(world.certs)}
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env))
    paths = []
    for i, p in enumerate(procs, start=first):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        text = out.decode().strip()
        paths.append(Path(json.loads(text)["path"] if i % 2 == 0 else text.splitlines()[-1]))
    return paths


def blob_paths(log: list[Seen]) -> list[str]:
    return [s.path for s in log if s.method == "GET" and "/blobs/sha256:" in s.path]


def check_cache(cache: Path) -> None:
    """No wrong byte anywhere: every blob in the cache is the blob its name says, and no
    partial download of wrong data is left behind."""
    blobs = cache / "blobs" / "sha256"
    for f in blobs.iterdir():
        if f.name.endswith((".json", ".state")):
            continue
        assert not f.name.endswith(".incomplete"), f"partial data left: {f}"
        assert hashlib.sha256(f.read_bytes()).hexdigest() == f.name, f


def check_mirror_requests(world: World) -> None:
    """What reached the mirror: no origin token, ns= naming the origin, the configured header."""
    assert world.front.log
    ns = "ns=" + world.counter.host.replace(":", "%3A")
    for s in world.front.log:
        headers = {k.lower(): v for k, v in s.headers.items()}
        assert "authorization" not in headers, s
        assert s.path.endswith(ns) or ("?" + ns + "&") in s.path or ("&" + ns) in s.path, s
        assert headers.get("x-dragonfly-registry") == f"http://{world.counter.host}"


def test_nodes_pull_through_cache_origin_serves_each_blob_once(world: World, tmp_path: Path) -> None:
    # The first node fills the cache; the others then pull at once. (Distribution's cache
    # does not merge concurrent misses: two nodes asking for a blob it is still fetching
    # make it fetch the blob twice, see docs/guides/mirrors.md.)
    paths = run_nodes(world, tmp_path, 1, first=0) + run_nodes(world, tmp_path, 3, first=1)
    for i, p in enumerate(paths):
        check_files(p)
        check_cache(tmp_path / f"node{i}")
    counts = world.origin_blob_gets()
    assert set(counts) == world.layer_digests()
    assert all(c == 1 for c in counts.values()), counts
    # Every node got every blob from the mirror, none from the origin.
    assert len(blob_paths(world.front.log)) == 4 * len(world.layer_digests())
    check_mirror_requests(world)
    # The tag was resolved at the origin (hosts.toml gives the mirror "pull" only).
    assert not [s for s in world.front.log if "/manifests/v1" in s.path]


def _pull(world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture, **kw: object) -> Path:
    caplog.set_level(logging.INFO, logger="oci_client")
    client = Client(certs_dir=world.certs, **kw)  # type: ignore[arg-type]
    path = client.pull_model(world.ref, cache_dir=tmp_path / "cache")
    check_files(path)
    check_cache(tmp_path / "cache")
    return path


def mirror_records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "oci_client.mirrors" and text in r.getMessage()]


def test_mirror_down_falls_back_to_origin(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    world.hosts_toml(mirror=closed)
    _pull(world, tmp_path, caplog)
    assert world.origin_blob_gets() == {d: 1 for d in world.layer_digests()}
    assert len(mirror_records(caplog, "mirror failed")) == 1, caplog.text


def test_mirror_corrupting_a_blob(world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    big = max(world.pushed.layers, key=lambda b: b.size)
    world.front.add(Rule(path=f"/blobs/{big.digest}", method="GET", flip_byte_at=12345))
    _pull(world, tmp_path, caplog)
    assert len(mirror_records(caplog, "sent wrong bytes")) == 1, caplog.text
    # Fetched again from the origin, which the mirror had asked for it first.
    counts = world.origin_blob_gets()
    assert counts[big.digest] == 2, counts
    # The mirror is skipped for the rest of the pull: what was still to come, came from the origin.
    assert set(counts) == world.layer_digests()


def test_mirror_404_for_a_tag_it_may_not_resolve(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world.front.add(Rule(path="/manifests/v1", status=404))
    _pull(world, tmp_path, caplog)
    assert not [s for s in world.front.log if "/manifests/" in s.path]  # never asked
    assert [s for s in world.counter.log if s.path.startswith(f"/v2/{REPO}/manifests/v1")]
    assert len(blob_paths(world.front.log)) == len(world.layer_digests())  # blobs: the mirror
    assert not mirror_records(caplog, "mirror")


def test_mirror_404_for_a_tag_it_may_resolve(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world.hosts_toml(capabilities='["pull", "resolve"]')
    world.front.add(Rule(path="/manifests/v1", status=404))
    _pull(world, tmp_path, caplog)
    assert [s for s in world.front.log if "/manifests/v1" in s.path]
    assert [s for s in world.counter.log if s.path.startswith(f"/v2/{REPO}/manifests/v1")]
    assert len(mirror_records(caplog, "does not have it")) == 1, caplog.text
    assert len(blob_paths(world.front.log)) == len(world.layer_digests())


def test_mirror_5xx_logged_once_per_pull(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world.front.add(Rule(path="/blobs/", status=503))
    _pull(world, tmp_path, caplog)
    assert len(mirror_records(caplog, "mirror failed")) == 1, caplog.text
    assert len(blob_paths(world.front.log)) == 1  # then skipped for the rest of the pull


def test_mirrors_option_and_env(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.rmtree(world.certs)
    _pull(world, tmp_path / "a", caplog, mirrors={world.counter.host: [f"http://{world.front.host}"]})
    assert len(blob_paths(world.front.log)) == len(world.layer_digests())
    world.front.forget()
    monkeypatch.setenv("OCI_CLIENT_MIRRORS", f"{world.counter.host}=http://{world.front.host}")
    _pull(world, tmp_path / "b", caplog)
    assert len(blob_paths(world.front.log)) == len(world.layer_digests())
    assert [s for s in world.front.log if "/manifests/v1" in s.path]  # the simple case resolves tags
    world.front.forget()
    # An empty list turns a registry's mirrors off.
    _pull(world, tmp_path / "c", caplog, mirrors={world.counter.host: []})
    assert not world.front.log


def test_registries_conf(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.rmtree(world.certs)
    conf = tmp_path / "registries.conf"
    conf.write_text(
        textwrap.dedent(f"""        [[registry]]
        prefix = "{world.counter.host}/org"
        location = "{world.counter.host}/org"

        [[registry.mirror]]
        location = "{world.front.host}/org"
        insecure = true
        pull-from-mirror = "digest-only"
        """)
    )
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    _pull(world, tmp_path, caplog)
    assert len(blob_paths(world.front.log)) == len(world.layer_digests())
    assert not [s for s in world.front.log if "/manifests/v1" in s.path]


def test_registries_conf_drop_ins_and_blocked(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """registries.conf.d drop-ins count as containers reads them, and a registry they block
    is refused before any request, as podman would refuse it."""
    shutil.rmtree(world.certs)
    conf = tmp_path / "registries.conf"
    conf.write_text("")  # the main file says nothing
    dropins = tmp_path / "xdg" / "containers" / "registries.conf.d"
    dropins.mkdir(parents=True)
    (dropins / "50-mirror.conf").write_text(
        f'[[registry]]\nlocation = "{world.counter.host}"\n[[registry.mirror]]\n'
        f'location = "{world.front.host}"\ninsecure = true\npull-from-mirror = "digest-only"\n'
    )
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    _pull(world, tmp_path / "a", caplog)
    assert len(blob_paths(world.front.log)) == len(world.layer_digests())
    block = f'[[registry]]\nlocation = "{world.counter.host}"\nblocked = true\n'
    (dropins / "90-block.conf").write_text(block)
    world.counter.forget()
    world.front.forget()
    with pytest.raises(InvalidArgumentError, match=r"blocked by .*90-block\.conf"):
        Client().pull_model(world.ref, cache_dir=tmp_path / "b")
    assert not world.counter.log and not world.front.log


def test_inspect_and_pull_blob_through_mirror(world: World, tmp_path: Path) -> None:
    client = Client(certs_dir=world.certs)
    info = client.inspect(world.ref, cache_dir=tmp_path / "cache")
    assert {f.path for f in info.files} == set(FILES)
    big = max(world.pushed.layers, key=lambda b: b.size)
    client.pull_blob(world.ref, big.digest, tmp_path / "blob", size=big.size)
    assert hashlib.sha256((tmp_path / "blob").read_bytes()).hexdigest() == big.digest.split(":")[1]
    assert f"/blobs/{big.digest}" in " ".join(blob_paths(world.front.log))
    assert world.origin_blob_gets()[big.digest] == 1  # to the cache


def test_mirror_breaking_mid_blob_resumes_from_origin(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = max(world.pushed.layers, key=lambda b: b.size)
    world.front.add(Rule(path=f"/blobs/{big.digest}", method="GET", truncate_at=1 << 20))
    _pull(world, tmp_path, caplog)
    assert len(mirror_records(caplog, "mirror failed")) == 1, caplog.text
    # What the mirror sent was kept: the origin was asked for the rest only.
    resumed = [
        s for s in world.counter.log if s.path.endswith(f"/blobs/{big.digest}") and s.range is not None
    ]
    assert resumed, [(s.path, s.range) for s in world.counter.log]
    assert all(not s.range.startswith("bytes=0-") for s in resumed if s.range), resumed


def test_origin_down_mirror_serves(world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The registry unreachable: a cache that holds the model serves the tag and the blobs."""
    world.hosts_toml(capabilities='["pull", "resolve"]')
    _pull(world, tmp_path / "warm", caplog)
    assert [s for s in world.front.log if "/manifests/v1" in s.path]  # the cache resolved the tag
    world.counter.__exit__(None, None, None)  # the origin's address now refuses connections
    world.front.forget()
    # A fresh process: this one keeps the login it made while the origin was up.
    cache = tmp_path / "down"
    p = subprocess.run(
        [sys.executable, "-m", "oci_client", "pull", "-q", "--cache-dir", str(cache), world.ref],
        capture_output=True,
        text=True,
        env={**os.environ, "OCI_CLIENT_CERTS_DIR": str(world.certs)},
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("registry unreachable") == 1, p.stderr
    check_files(Path(p.stdout.strip().splitlines()[-1]))
    check_cache(cache)
    assert len(blob_paths(world.front.log)) == len(world.layer_digests())


def write_certs_d(certs: Path, reg: LocalRegistry, layout: str) -> Path:
    """A certs.d directory for reg's CA (and client certificate, where it has one), in
    docker's layout (ca.crt, client.cert, client.key in host:port) or containerd's
    (hosts.toml in host_port_)."""
    assert reg.ca_file is not None
    if layout == "docker":
        d = certs / reg.host
        d.mkdir(parents=True)
        shutil.copy(reg.ca_file, d / "ca.crt")
        if reg.client_cert and reg.client_key:
            shutil.copy(reg.client_cert, d / "client.cert")
            shutil.copy(reg.client_key, d / "client.key")
        return certs
    d = certs / (reg.host.replace(":", "_") + "_")
    d.mkdir(parents=True)
    toml = f'server = "https://{reg.host}"\nca = "{reg.ca_file}"\n'
    if reg.client_cert and reg.client_key:
        toml += f'client = [["{reg.client_cert}", "{reg.client_key}"]]\n'
    (d / "hosts.toml").write_text(toml)
    return certs


@pytest.mark.parametrize("layout", ["docker", "hosts.toml"])
def test_certs_dir_ca_for_the_registry(
    tls_registry: LocalRegistry, docker_config: Path, tmp_path: Path, layout: str
) -> None:
    """Item 4's certs.d part: the registry's own CA from its certs.d directory, as docker
    (ca.crt in host:port) or containerd (hosts.toml's ca, in host_port_) reads it."""
    assert tls_registry.ca_file is not None and tls_registry.username and tls_registry.password
    pushed = push_artifact(tls_registry, "certsd/model", "v1", {"w.bin": b"certs.d " * 1000})
    write_config(
        docker_config / "config.json",
        {"auths": {tls_registry.host: {"auth": auth_field(tls_registry.username, tls_registry.password)}}},
    )
    ref = f"{tls_registry.host}/certsd/model:v1"
    with pytest.raises(TLSError):
        Client().get_manifest(ref)
    certs = write_certs_d(tmp_path / "certs.d", tls_registry, layout)
    client = Client(certs_dir=certs)
    assert client.get_manifest(ref).digest == pushed.digest
    client.pull_blob(ref, pushed.layers[0].digest, tmp_path / "w", size=pushed.layers[0].size)
    assert (tmp_path / "w").read_bytes() == b"certs.d " * 1000


@pytest.mark.parametrize("layout", ["docker", "hosts.toml"])
def test_certs_dir_client_certificate(
    registry_factory: Callable[..., LocalRegistry], tmp_path: Path, layout: str
) -> None:
    """Item 4's mutual TLS: a registry that asks for a client certificate (distribution's
    ``http.tls.clientcas``) gets the one certs.d names, for a push and a pull; with its CA
    but no certificate the handshake fails as a TLSError."""
    reg = registry_factory("mtls")
    assert reg.ca_file and reg.client_cert and reg.client_key
    certs = write_certs_d(tmp_path / "certs.d", reg, layout)
    model = tmp_path / "model"
    model.mkdir()
    for name, data in FILES.items():
        (model / name).write_bytes(data)
    ref = f"{reg.host}/mtls/model:v1"
    client = Client(certs_dir=certs)
    client.push_model(model, ref, cache_dir=tmp_path / "push-cache")
    with pytest.raises(TLSError, match="client certificate"):
        Client(ca_file=reg.ca_file).get_manifest(ref)
    check_files(client.pull_model(ref, cache_dir=tmp_path / "cache"))
    check_cache(tmp_path / "cache")


def test_mirrors_argument_checked() -> None:
    with pytest.raises(InvalidArgumentError):
        Client(mirrors="docker.io=https://m")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        Client(mirrors={"docker.io": [1]})  # type: ignore[list-item]
    assert Client(mirrors={"docker.io": "https://m"}).mirrors == {"docker.io": ["https://m"]}


# -- oci-client serve --proxy: the built-in cache fetches through the mirrors -------------


@pytest.fixture
def site(world: World, tmp_path: Path) -> Iterator[Registry]:
    """A second built-in pull-through cache of the origin (what ``oci-client serve --proxy``
    runs), whose certs.d directory names the first cache as the origin's mirror: a site cache
    in front of a regional one. Clients pull from it with no mirror configuration of their own."""
    with Registry(
        tmp_path / "site-root",
        proxy=f"http://{world.counter.host}",
        proxy_username=world.origin.username,
        proxy_password=world.origin.password,
        certs_dir=world.certs,
    ) as r:
        yield r


def site_pull(site: Registry, cache: Path) -> Path:
    path = Client().pull_model(f"{site.host}/{REPO}:v1", cache_dir=cache)
    check_files(path)
    check_cache(cache)
    return path


def site_blobs(site: Registry) -> dict[str, bytes]:
    """The blobs the site cache stored, by digest."""
    blobs = site.root / "docker" / "registry" / "v2" / "blobs" / "sha256"
    return {"sha256:" + f.parent.name: f.read_bytes() for f in blobs.glob("*/*/data")}


def test_serve_proxy_fetches_through_mirror(world: World, site: Registry, tmp_path: Path) -> None:
    site_pull(site, tmp_path / "a")
    # The regional cache asked the origin once per blob; the site cache never did.
    assert world.origin_blob_gets() == {d: 1 for d in world.layer_digests()}
    assert {p.rsplit("/", 1)[-1].split("?")[0] for p in blob_paths(world.front.log)} == world.layer_digests()
    check_mirror_requests(world)
    # A second client is served from the site cache's own storage.
    world.front.forget()
    site_pull(site, tmp_path / "b")
    assert not blob_paths(world.front.log)


def test_serve_proxy_mirror_corrupting_a_blob(world: World, site: Registry, tmp_path: Path) -> None:
    big = max(world.pushed.layers, key=lambda b: b.size)
    world.front.add(Rule(path=f"/blobs/{big.digest}", method="GET", flip_byte_at=12345))
    site_pull(site, tmp_path / "a")
    assert "sent wrong bytes" in site.log_tail(), site.log_tail()
    # The site cache fetched the blob again from the origin, and stored only right bytes.
    assert world.origin_blob_gets()[big.digest] == 2
    stored = site_blobs(site)
    assert big.digest in stored
    for d, data in stored.items():
        assert "sha256:" + hashlib.sha256(data).hexdigest() == d


def test_serve_proxy_mirror_down(world: World, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    with Registry(
        tmp_path / "site-root",
        proxy=f"http://{world.counter.host}",
        proxy_username=world.origin.username,
        proxy_password=world.origin.password,
        mirrors={world.counter.host: [f"http://{closed}"]},
    ) as site:
        site_pull(site, tmp_path / "a")
        assert world.origin_blob_gets() == {d: 1 for d in world.layer_digests()}
        assert site.log_tail().count("mirror failed") == 1, site.log_tail()


def test_serve_mirrors_need_a_proxy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="without a proxy"):
        Registry(tmp_path, certs_dir=tmp_path)
    with pytest.raises(ValueError, match="not a mirror URL"):
        Registry(tmp_path, proxy="http://127.0.0.1:9", mirrors={"127.0.0.1:9": ["a,b"]})
    # What only the registry program can judge fails its start, with its reason.
    with pytest.raises(RegistryServerError, match="scheme is not http or https"):
        Registry(tmp_path, proxy="http://127.0.0.1:9", mirrors={"127.0.0.1:9": ["ftp://m"]}).start()
