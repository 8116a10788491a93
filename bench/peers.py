"""One function per pulling tool: each turns a :class:`PullJob` into the :class:`Command` to
measure (argv, environment, and where the layers must end up), or raises :class:`Skipped`."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .model import Model
from .registries import Transport

__all__ = [
    "MODEL_PEERS",
    "PEERS",
    "Command",
    "PullJob",
    "Skipped",
    "base_environment",
    "ensure_crane",
    "tool_versions",
    "write_spec",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GGCR_VERSION = "v0.22.1"


class Skipped(Exception):  # noqa: N818 - reads as the outcome it reports
    """The tool is not installed or cannot be built here."""


@dataclass(frozen=True)
class PullJob:
    """Pull every layer of ``model`` (pushed as ``repository:tag``) into ``out_dir``."""

    transport: Transport
    repository: str
    tag: str
    model: Model
    out_dir: Path
    work_dir: Path  # private scratch space for spec and config files
    bin_dir: Path  # where crane is built

    @property
    def reference(self) -> str:
        return f"{self.transport.host}/{self.repository}:{self.tag}"

    def blob_url(self, digest: str) -> str:
        return f"{self.transport.url}/v2/{self.repository}/blobs/{digest}"


@dataclass(frozen=True)
class Command:
    """What to run, and the files (path -> (digest, size)) a correct pull leaves behind."""

    argv: list[str]
    expected: dict[Path, tuple[str, int]]
    env: dict[str, str] = field(default_factory=dict)  # added to the base environment
    # True: ``expected`` is relative to ``out_dir`` but the files land in the directory the
    # tool prints (the JSON line's "path": pull_model's snapshot inside the cache).
    in_printed_dir: bool = False


def base_environment(job: PullJob) -> dict[str, str]:
    """The environment every tool gets: ours, minus proxies (all traffic is loopback), with
    DOCKER_CONFIG pointing at this transport's credentials only."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["DOCKER_CONFIG"] = str(job.transport.docker_config)
    env.pop("REGISTRY_AUTH_FILE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


# -- where each tool puts the layers ------------------------------------------------------


def by_title(job: PullJob) -> dict[Path, tuple[str, int]]:
    return {job.out_dir / f.name: (f.digest, f.size) for f in job.model.files}


def by_digest(job: PullJob) -> dict[Path, tuple[str, int]]:
    return {job.out_dir / f.digest.split(":", 1)[1]: (f.digest, f.size) for f in job.model.files}


def oci_layout(job: PullJob) -> dict[Path, tuple[str, int]]:
    return {
        job.out_dir / "blobs" / "sha256" / f.digest.split(":", 1)[1]: (f.digest, f.size)
        for f in job.model.files
    }


# -- Python tools ---------------------------------------------------------------------------


def write_spec(job: PullJob, name: str, **extra: object) -> Path:
    t = job.transport
    spec = {
        "reference": job.reference,
        "host": t.host,
        "url": t.url,
        "repository": job.repository,
        "tag": job.tag,
        "tls": t.tls,
        "ca_file": str(t.ca_file) if t.ca_file else None,
        "username": t.username,
        "password": t.password,
        "out_dir": str(job.out_dir),
        **extra,
    }
    path = job.work_dir / f"spec-{name}-{t.name}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    return path


def _python_command(job: PullJob, mode: str) -> list[str]:
    return [sys.executable, "-m", "bench.pullers", mode, str(write_spec(job, mode))]


def oci_client(job: PullJob) -> Command:
    """This library: ``get_manifest`` then ``pull_blobs`` (or ``pull_blob`` per layer)."""
    try:
        from oci_client import _native  # noqa: F401 - only checks the package imports
    except ImportError as exc:
        raise Skipped(f"oci_client does not import: {exc}") from exc
    return Command(_python_command(job, "oci-client"), by_title(job))


def oci_client_buffered(job: PullJob) -> Command:
    """This library with ``direct_io=False``: every write through the page cache, which shows
    what O_DIRECT buys on the machine at hand."""
    oci_client(job)
    return Command(_python_command(job, "oci-client-buffered"), by_title(job))


def _oci_client_model(job: PullJob, mode: str) -> Command:
    oci_client(job)
    return Command(_python_command(job, mode), by_title(job), in_printed_dir=True)


def oci_client_model(job: PullJob) -> Command:
    """``oci_client.pull_model`` with its defaults into ``out_dir`` as the cache: a snapshot of
    links to verified blobs, written through the page cache, fsynced in the background."""
    return _oci_client_model(job, "oci-client-model")


def oci_client_model_sync(job: PullJob) -> Command:
    """``pull_model(..., durability="sync")``: fsynced before it returns."""
    return _oci_client_model(job, "oci-client-model-sync")


def oci_client_model_direct(job: PullJob) -> Command:
    """``pull_model`` with ``direct_io=True`` and ``durability="sync"``: O_DIRECT writes, as
    ``pull_blobs`` does."""
    return _oci_client_model(job, "oci-client-model-direct")


def oras_py(job: PullJob) -> Command:
    """oras-py's ``OrasClient.pull`` (streams to disk, no digest check)."""
    try:
        import oras.client  # noqa: F401
    except ImportError as exc:
        raise Skipped("oras (oras-py) is not installed") from exc
    return Command(_python_command(job, "oras-py"), by_title(job))


def requests_sha256(job: PullJob) -> Command:
    """``requests`` streaming, 8 MiB chunks, sha256 compared after each layer."""
    try:
        import requests  # noqa: F401
    except ImportError as exc:
        raise Skipped("requests is not installed") from exc
    return Command(_python_command(job, "requests"), by_title(job))


# -- command-line tools --------------------------------------------------------------------


def _which(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise Skipped(f"{tool} not found on PATH")
    return path


def _curl(job: PullJob, *options: str, then_sync: bool = False) -> Command:
    curl = _which("curl")
    t = job.transport
    config = job.work_dir / f"curlrc-{t.name}"
    lines = []
    if t.tls:
        # A config file keeps the password out of the process list.
        lines += [f'cacert = "{t.ca_file}"', f'user = "{t.username}:{t.password}"']
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    expected = by_digest(job)
    steps = [
        shlex.join([curl, "-q", "-sSf", "-K", str(config), *options, "-o", str(path), job.blob_url(digest)])
        for path, (digest, _) in expected.items()
    ]
    if then_sync:
        steps.append("sync")
    script = "set -e\nmkdir -p " + shlex.quote(str(job.out_dir)) + "\n" + "\n".join(steps) + "\n"
    return Command(["sh", "-c", script], expected)


def curl(job: PullJob) -> Command:
    """The baseline: one ``curl -sf -o FILE URL`` per layer, one after another, no check."""
    return _curl(job)


def curl_sync(job: PullJob) -> Command:
    """curl, then ``sync`` inside the timing: the data on disk, as oci-client leaves it
    (which fsyncs every file); the fair comparison for durability."""
    return _curl(job, then_sync=True)


def curl_http1(job: PullJob) -> Command:
    """curl forced to HTTP/1.1 (over TLS curl negotiates HTTP/2 by default)."""
    if not job.transport.tls:
        raise Skipped("plain HTTP is HTTP/1.1 already: same as curl")
    return _curl(job, "--http1.1")


def _ggcr_version() -> str:
    """The go-containerregistry version the library is built with (from go/go.mod)."""
    try:
        text = (REPO_ROOT / "go" / "go.mod").read_text()
    except OSError:
        return DEFAULT_GGCR_VERSION
    match = re.search(r"github\.com/google/go-containerregistry\s+(v\S+)", text)
    return match.group(1) if match else DEFAULT_GGCR_VERSION


@functools.cache
def _build_crane(bin_dir: Path) -> tuple[Path | None, str]:
    version = _ggcr_version()
    crane = bin_dir / "crane"
    if crane.is_file():
        probe = subprocess.run(
            [str(crane), "version"], capture_output=True, text=True, timeout=30, check=False
        )
        if probe.stdout.strip() == version:
            return crane, ""
    go = shutil.which("go")
    if go is None:
        return None, "go not found, cannot build crane"
    bin_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOBIN=str(bin_dir), GOFLAGS="-mod=mod")
    try:
        built = subprocess.run(
            [go, "install", f"github.com/google/go-containerregistry/cmd/crane@{version}"],
            env=env,
            cwd=bin_dir,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, "go install crane timed out"
    if built.returncode != 0 or not crane.is_file():
        tail = (built.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"go install crane@{version} failed: {tail[:200]}"
    return crane, ""


def ensure_crane(bin_dir: Path) -> Path:
    """crane at the library's go-containerregistry version, built once into ``bin_dir``."""
    crane, reason = _build_crane(bin_dir)
    if crane is None:
        raise Skipped(reason)
    return crane


def crane(job: PullJob) -> Command:
    """``crane pull --format=oci REF DIR``: go-containerregistry itself, writing an OCI
    layout (layers in parallel, each verified)."""
    binary = ensure_crane(job.bin_dir)
    t = job.transport
    argv = [str(binary), "pull", "--format=oci"]
    env = {}
    if t.tls:
        env["SSL_CERT_FILE"] = str(t.ca_file)
    else:
        argv.append("--insecure")
    argv += [job.reference, str(job.out_dir)]
    return Command(argv, oci_layout(job), env)


def skopeo(job: PullJob) -> Command:
    """``skopeo copy docker://REF oci:DIR`` (containers/image; verifies digests)."""
    binary = _which("skopeo")
    t = job.transport
    argv = [binary, "--insecure-policy", "copy", "--quiet"]
    if t.tls:
        argv += [f"--src-cert-dir={t.cert_dir}", f"--src-authfile={t.auth_file}"]
    else:
        argv += ["--src-tls-verify=false", "--src-no-creds"]
    argv += [f"docker://{job.reference}", f"oci:{job.out_dir}"]
    return Command(argv, oci_layout(job))


PEERS: dict[str, Callable[[PullJob], Command]] = {
    "oci-client": oci_client,
    "oci-client-buffered": oci_client_buffered,
    "curl": curl,
    "curl+sync": curl_sync,
    "curl-http1.1": curl_http1,
    "crane": crane,
    "oras-py": oras_py,
    "skopeo": skopeo,
    "requests+sha256": requests_sha256,
}
"""Tool name -> command builder, in table order; ``curl`` is the baseline."""

MODEL_PEERS: dict[str, Callable[[PullJob], Command]] = {
    "oci-client": oci_client_model,
    "oci-client-sync": oci_client_model_sync,
    "oci-client-direct": oci_client_model_direct,
    "crane": crane,
    "skopeo": skopeo,
    "oras-py": oras_py,
    "curl": curl,
}
"""The rows of ``bench.models``: the library's ``pull_model`` three ways, then the peers."""


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def tool_versions(bin_dir: Path) -> dict[str, str]:
    """Versions of whatever is installed, for the results file."""
    versions: dict[str, str] = {"python": sys.version.split()[0]}
    for tool, argv in (("curl", ["curl", "--version"]), ("skopeo", ["skopeo", "--version"])):
        if shutil.which(tool):
            versions[tool] = _first_line(argv)
    crane_path = bin_dir / "crane"
    if crane_path.is_file():
        versions["crane"] = _first_line([str(crane_path), "version"])
    for module in ("oras", "requests"):
        with contextlib.suppress(ImportError, AttributeError):
            versions[module] = __import__(module).__version__
    git = shutil.which("git")
    if git:
        rev = _first_line([git, "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
        dirty = _first_line([git, "-C", str(REPO_ROOT), "status", "--porcelain", "--", "go", "src"])
        versions["oci-client"] = rev + ("+dirty" if dirty not in ("", "?") else "")
    versions["go-containerregistry"] = _ggcr_version()
    return versions
