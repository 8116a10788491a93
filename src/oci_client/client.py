"""The public client: :class:`Client` (``OciGoClient`` is the same class, by its first name)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

from . import _native
from .errors import (
    AuthenticationError,
    InvalidArgumentError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    RegistryError,
)
from .models import (
    CacheInfo,
    CacheVerified,
    ExportedModel,
    Manifest,
    ModelInfo,
    PulledModel,
    PushedModel,
    Removed,
    log_skipped,
    patterns,
)
from .progress import EventCallback, TransferProgress

__all__ = [
    "AuthInfo",
    "BlobInfo",
    "BlobSpec",
    "Client",
    "Durability",
    "Manifest",
    "ModelFormat",
    "OciGoClient",
    "ProgressCallback",
]

#: ``"background"``: a pull returns once its data is verified and in place,
#: and fsyncs follow off the critical path (an entry not known durable is
#: re-verified after a crash or reboot before it is served). ``"sync"``:
#: fsynced before the pull returns.
Durability = Literal["background", "sync"]

#: What :meth:`Client.push_model` writes: CNCF ModelPack or Docker Model Runner's v0.2 layout.
ModelFormat = Literal["modelpack", "docker"]

PathArg: TypeAlias = "str | os.PathLike[str]"
Patterns: TypeAlias = "str | list[str] | tuple[str, ...] | None"

#: Called with ``(bytes_done, bytes_total)`` a few times a second, on the
#: calling thread; values never decrease and the last call has
#: ``bytes_done == bytes_total``. ``bytes_total`` is 0 while unknown.
ProgressCallback = Callable[[int, int], None]

#: One blob for :meth:`Client.pull_blobs`: ``(digest, path)`` or
#: ``(digest, path, size)``.
BlobSpec: TypeAlias = "tuple[str, str | os.PathLike[str]] | tuple[str, str | os.PathLike[str], int | None]"


@dataclass(frozen=True)
class BlobInfo:
    """A blob verified and written to ``path``."""

    digest: str
    size: int
    path: Path


@dataclass(frozen=True)
class AuthInfo:
    """What a successful authentication check used (never the secret)."""

    registry: str
    repository: str
    anonymous: bool
    source: str | None
    digest: str


def check_positive_int(name: str, value: object) -> None:
    """Raise InvalidArgumentError unless ``value`` is None or an int of at least 1 (a bool is
    not a count)."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")


def _abspath(path: PathArg | None) -> str:
    """An absolute path for the library, "" for none (its default)."""
    return os.path.abspath(os.fspath(path)) if path is not None else ""


def _reference(reference: object) -> str:
    if not isinstance(reference, str):
        raise InvalidArgumentError(f"reference must be a str, got {type(reference).__name__}")
    return reference


class _Progress:
    """Turns the library's counters into monotonic (done, total) calls."""

    def __init__(self, callback: ProgressCallback) -> None:
        self.callback = callback
        self.done = 0
        self.total = 0

    def update(self, done: int, total: int) -> None:
        done, total = max(done, self.done), max(total, self.total)
        if (done, total) != (self.done, self.total):
            self.done, self.total = done, total
            self.callback(done, total)

    def poll(self, snapshot: dict[str, Any]) -> None:
        self.update(int(snapshot["bytes_done"]), int(snapshot["bytes_total"]))

    def finish(self, size: int) -> None:
        self.update(size, size)


def _mirrors(mirrors: Mapping[str, Iterable[str] | str] | None) -> dict[str, list[str]] | None:
    """``mirrors=`` as the request carries it: registry to a list of URLs."""
    if mirrors is None:
        return None
    if not isinstance(mirrors, Mapping):
        raise InvalidArgumentError("mirrors must map registries to lists of mirror URLs")
    out: dict[str, list[str]] = {}
    for registry, urls in mirrors.items():
        if not isinstance(registry, str) or not registry:
            raise InvalidArgumentError(f"mirrors: {registry!r} is not a registry name")
        listed = [urls] if isinstance(urls, str) else list(urls)
        if not all(isinstance(u, str) and u for u in listed):
            raise InvalidArgumentError(f"mirrors[{registry!r}] must be mirror URLs, got {urls!r}")
        out[registry] = listed
    return out


class Client:
    """Pulls manifests and blobs from OCI registries through the Go library.

    Credentials come from where ``docker login`` and ``podman login`` put
    them (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``, with
    ``credsStore``/``credHelpers``; ``$REGISTRY_AUTH_FILE``;
    ``$XDG_RUNTIME_DIR/containers/auth.json``), read afresh on every call
    from the current ``os.environ``.

    Keyword options:
        lib_path: the native library to load (default ``$OCI_CLIENT_LIB``,
            else the copy inside this package). Loaded once per process.
        ca_file: PEM file of extra trusted certificate authorities.
        insecure_registries: ``host`` or ``host:port`` entries that may use
            plain HTTP and unverified TLS. Loopback hosts may always use
            plain HTTP; every other host needs verified TLS.
        proxy: the proxy of every request (``http://host:3128``; https and
            socks5 too, credentials in the URL, never shown in messages), in
            place of ``HTTPS_PROXY``/``HTTP_PROXY``; ``NO_PROXY`` still
            applies, and loopback hosts are reached directly. Default: those
            variables, read on every call.
        timeout: seconds a whole call may take (default: no limit). On
            expiry the call raises OperationTimeoutError and keeps any
            partial download for the next call.
        user_agent: the User-Agent header (default ``oci-client/VERSION``).
        retries: tries per request (408, 429, 5xx, connection errors;
            Retry-After honoured up to a minute), and resume attempts
            without progress per broken blob stream (default 5).
        connections: ranged streams for one large blob (default 4; 1
            turns chunking off). Each also keeps the request for its next
            chunk open ahead, so up to twice as many requests (and
            connections) are open. ``pull_blobs`` spreads this budget over
            the blobs it fetches together and, once all have started, lends
            the connections of finished blobs to those still running.
            Left at the default, a pull whose connections each bring less
            than 100 MB/s (a registry behind a CDN or far away, which holds
            each stream to a rate) doubles the budget while doing so raises
            the rate by a quarter, up to 16, and takes back the first
            doubling that does not pay; a number given is kept as is.
        chunk_size: bytes per ranged request (default 8 MiB). Chunks that
            arrive ahead of the verified prefix wait in memory, so one blob
            holds up to ``connections * chunk_size`` bytes.
        read_timeout: seconds without a byte before a stream counts as
            broken and is resumed (default 60).
        direct_io: write downloads of 4 MiB and more with O_DIRECT,
            bypassing the page cache (Linux, on ext4, XFS, btrfs and F2FS;
            other file systems, tmpfs and NFS among them, get buffered
            writes). Default None: O_DIRECT for ``pull_blob(s)``, where a
            multi-GB pull then neither evicts the page cache nor queues
            gigabytes of dirty pages, and the fsync before each file is
            renamed into place is cheap; through the page cache for
            ``pull_model``, whose loader reads the files right after (see
            docs/design/cache-format.md, "Durability without the wait"). True or False forces it.
        mirrors: ``{"docker.io": ["https://mirror.example"], "*": [...]}``: mirror URLs tried
            in order before each registry (an empty list: none for it). Default
            ``$OCI_CLIENT_MIRRORS``, else containerd's ``hosts.toml`` and containers'
            ``registries.conf`` (docs/guides/mirrors.md). Every byte from a mirror is checked
            against the digest the registry named.
        certs_dir: a ``certs.d`` directory (``hosts.toml``, ``ca.crt``, ``client.cert``,
            ``client.key`` per registry) searched before ``/etc/containerd/certs.d``,
            ``/etc/docker/certs.d`` and ``/etc/containers/certs.d``. Default
            ``$OCI_CLIENT_CERTS_DIR``.

    Instances hold only settings and are safe to share between threads;
    calls release the GIL, so threads pull in parallel.
    """

    def __init__(
        self,
        *,
        lib_path: str | os.PathLike[str] | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        insecure_registries: Iterable[str] = (),
        proxy: str | None = None,
        timeout: float | None = None,
        user_agent: str | None = None,
        retries: int | None = None,
        connections: int | None = None,
        chunk_size: int | None = None,
        read_timeout: float | None = None,
        direct_io: bool | None = None,
        mirrors: Mapping[str, Iterable[str] | str] | None = None,
        certs_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(insecure_registries, str):
            raise InvalidArgumentError("insecure_registries must be a list of hosts, not a string")
        if proxy is not None and not isinstance(proxy, str):
            raise InvalidArgumentError(f"proxy must be a URL string, got {type(proxy).__name__}")
        self.proxy = proxy
        if timeout is not None and not timeout > 0:
            raise InvalidArgumentError(f"timeout must be a positive number of seconds, got {timeout!r}")
        for name, value in (("retries", retries), ("connections", connections), ("chunk_size", chunk_size)):
            check_positive_int(name, value)
        if read_timeout is not None and not read_timeout > 0:
            raise InvalidArgumentError(
                f"read_timeout must be a positive number of seconds, not {read_timeout!r}"
            )
        self.retries = retries
        self.connections = connections
        self.chunk_size = chunk_size
        self.read_timeout = read_timeout
        if direct_io is not None and not isinstance(direct_io, bool):
            raise InvalidArgumentError(f"direct_io must be a bool or None, got {direct_io!r}")
        self.direct_io = direct_io
        self._lib_path = lib_path
        self.ca_file = os.path.abspath(os.fspath(ca_file)) if ca_file is not None else None
        self.insecure_registries = tuple(insecure_registries)
        self.timeout = timeout
        self.user_agent = user_agent
        self.mirrors = _mirrors(mirrors)
        self.certs_dir = os.path.abspath(os.fspath(certs_dir)) if certs_dir is not None else None

    def __repr__(self) -> str:
        return (
            f"Client(ca_file={self.ca_file!r}, "
            f"insecure_registries={list(self.insecure_registries)!r}, timeout={self.timeout!r})"
        )

    # Each export takes exactly its own fields (go/abi; Go refuses any other
    # key), so requests are built from the pieces each export takes.

    def _base(self) -> dict[str, Any]:
        """What every request may carry: the caller's environment (the Go runtime froze its own
        copy at load, so os.environ changes take effect only this way) and the call's timeout.
        """
        req: dict[str, Any] = {"env": dict(os.environ)}
        if self.timeout is not None:
            req["timeout_ms"] = max(1, int(self.timeout * 1000))
        return req

    def _request(self, reference: str, *, transfer: bool = False, **extra: Any) -> dict[str, Any]:
        """A request of an export that reaches the registry for ``reference``."""
        return self._network_request(transfer=transfer, reference=_reference(reference), **extra)

    def _network_request(self, *, transfer: bool, **extra: Any) -> dict[str, Any]:
        """A request of an export that reaches a registry; ``transfer`` adds the blob download
        settings, for the exports that download blobs."""
        req = self._base()
        req.update(
            ca_file=self.ca_file or "",
            insecure_registries=list(self.insecure_registries),
            proxy=self.proxy or "",
            user_agent=self.user_agent or "",
        )
        if self.retries is not None:
            req["retries"] = self.retries
        if self.mirrors is not None:
            req["mirrors"] = self.mirrors
        if self.certs_dir is not None:
            req["certs_dir"] = self.certs_dir
        if transfer:
            if self.read_timeout is not None:
                req["read_timeout_ms"] = max(1, int(self.read_timeout * 1000))
            if self.direct_io is not None:
                req["direct_io"] = self.direct_io
            for key in ("connections", "chunk_size"):
                if getattr(self, key) is not None:
                    req[key] = getattr(self, key)
        req.update(extra)
        return req

    def _call(self, export: str, request: dict[str, Any], progress: _Progress | None = None) -> Any:
        return _native.call(
            export,
            request,
            lib_path=self._lib_path,
            on_progress=progress.poll if progress is not None else None,
        )

    def get_manifest(self, reference: str) -> Manifest:
        """Fetch the manifest or index that ``reference`` names, with its digest.

        Returns:
            The :class:`Manifest`: its bytes exactly as served, digest, media type, size.

        Raises:
            NotFoundError, AuthenticationError, RateLimitedError: the registry answered no.
            InvalidReferenceError: ``reference`` is not a reference.
        """
        r = self._call("PullManifest", self._request(reference))
        return Manifest(
            reference=r["reference"],
            digest=r["digest"],
            media_type=r["media_type"],
            size=int(r["size"]),
            raw=base64.b64decode(r["raw"]),
        )

    def pull_manifest(self, reference: str) -> dict[str, Any]:
        """Fetch and parse the manifest or index that ``reference`` names: :meth:`get_manifest`,
        parsed."""
        return self.get_manifest(reference).json()

    def pull_blob(
        self,
        reference: str,
        digest: str,
        path: str | os.PathLike[str],
        *,
        size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> BlobInfo:
        """Download blob ``digest`` of ``reference``'s repository to ``path``.

        The data is verified (digest, and ``size`` when given) while it
        streams into ``path + ".incomplete"``, which replaces ``path`` only
        once verified; parent directories are created. A broken connection
        is resumed where it broke; a failed, timed-out or interrupted pull
        leaves ``path`` as it was and keeps the partial data, which the next
        pull of the same digest to the same path continues from. Large blobs
        are fetched over several ranged connections.

        Args:
            reference: any reference of the repository (its tag or digest is not used).
            digest: the blob's ``sha256:...``.
            path: where to put it.
            size: its size, checked too when given.
            progress: called with ``(bytes_done, bytes_total)``.

        Returns:
            The :class:`BlobInfo`.

        Raises:
            DigestMismatchError: the registry sent other bytes (``path`` untouched).
            LocalFileError: ``path`` could not be written; NoSpaceError when the disk is full.
            NotFoundError, AuthenticationError, RateLimitedError: the registry answered no.
        """
        return self.pull_blobs(reference, [(digest, path, size)], concurrency=1, progress=progress)[0]

    def pull_blobs(
        self,
        reference: str,
        blobs: Iterable[BlobSpec],
        *,
        concurrency: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[BlobInfo]:
        """Download several blobs of ``reference``'s repository, ``concurrency``
        at a time (default 4), each as :meth:`pull_blob` does. ``progress``
        sees the bytes of all of them together. The first failure cancels
        the rest (keeping their partial data) and is raised. Each blob in
        flight holds about 8 MiB of buffers (two 4 MiB pieces), a chunked
        one up to ``connections * chunk_size`` more.

        Args:
            reference: any reference of the repository.
            blobs: ``(digest, path)`` or ``(digest, path, size)`` each.
            concurrency: blobs fetched at once.
            progress: called with ``(bytes_done, bytes_total)`` of all of them.

        Returns:
            A :class:`BlobInfo` per blob, in order.

        Raises:
            What :meth:`pull_blob` raises, for the first blob that failed.
        """
        specs = [self._blob_spec(b) for b in blobs]
        check_positive_int("concurrency", concurrency)
        reporter = _Progress(progress) if progress is not None else None
        r = self._call(
            "PullBlobs",
            self._request(reference, transfer=True, blobs=specs, concurrency=concurrency or 0),
            reporter,
        )
        infos = [BlobInfo(digest=b["digest"], size=int(b["size"]), path=Path(b["path"])) for b in r["blobs"]]
        if reporter is not None:
            reporter.finish(sum(i.size for i in infos))
        return infos

    @staticmethod
    def _blob_spec(spec: Sequence[Any]) -> dict[str, Any]:
        if isinstance(spec, (str, bytes)) or len(spec) not in (2, 3):
            raise InvalidArgumentError(f"a blob is (digest, path) or (digest, path, size), got {spec!r}")
        digest, path = spec[0], spec[1]
        size = spec[2] if len(spec) == 3 else None
        if not isinstance(digest, str):
            raise InvalidArgumentError(f"digest must be a str, got {type(digest).__name__}")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise InvalidArgumentError(f"size must be a non-negative int, got {size!r}")
        return {"digest": digest, "path": os.path.abspath(os.fspath(path)), "size": size or 0}

    def check_authentication(self, reference: str) -> AuthInfo:
        """Check against the registry that the current credentials can pull
        ``reference``.

        Returns:
            The :class:`AuthInfo`: what was used (never the secret).

        Raises:
            AuthenticationError: the credentials (or their absence) are refused.
            NotFoundError, RateLimitedError, NetworkError: as for any call.
        """
        r = self._call("TestAuthentication", self._request(reference))
        return AuthInfo(
            registry=r["registry"],
            repository=r["repository"],
            anonymous=bool(r["anonymous"]),
            source=r["source"] or None,
            digest=r["digest"],
        )

    def test_authentication(self, reference: str) -> str | None:
        """:meth:`check_authentication`, answering instead of raising.

        Returns:
            None when ``reference`` can be pulled with the current credentials,
            else a readable reason.

        Raises:
            InvalidReferenceError, InvalidArgumentError: bad input still raises.
        """
        try:
            self.check_authentication(reference)
        except (
            AuthenticationError,
            NotFoundError,
            RateLimitedError,
            RegistryError,
            NetworkError,
        ) as exc:
            return f"{exc.code}: {exc.message}"
        return None

    # -- models and the cache -------------------------------------------------

    def _model_request(
        self,
        reference: str,
        cache_dir: PathArg | None,
        offline: bool | None,
        platform: str | None,
        artifact_type: str | None,
        *,
        transfer: bool = False,
        **extra: Any,
    ) -> dict[str, Any]:
        if offline is not None and not isinstance(offline, bool):
            raise InvalidArgumentError(f"offline must be a bool or None, got {offline!r}")
        req = self._request(
            reference,
            transfer=transfer,
            cache_dir=_abspath(cache_dir),
            platform=platform or "",
            artifact_type=artifact_type or "",
            **extra,
        )
        if offline is not None:
            req["offline"] = offline
        return req

    def pull(
        self,
        reference: str,
        *,
        cache_dir: PathArg | None = None,
        local_dir: PathArg | None = None,
        allow_patterns: Patterns = None,
        ignore_patterns: Patterns = None,
        allow_empty: bool = False,
        offline: bool | None = None,
        platform: str | None = None,
        artifact_type: str | None = None,
        concurrency: int | None = None,
        durability: Durability = "background",
        verify: bool | None = None,
        progress: ProgressCallback | None = None,
        on_event: EventCallback | None = None,
    ) -> PulledModel:
        """Pull the model ``reference`` names into a directory that transformers
        and vLLM load as a model path, and say what was done.

        Formats: Docker Model Runner, CNCF ModelPack (and its older ``cnai``
        names), KitOps ModelKits, ORAS-style artifacts with titled layers; from
        an index, the one model manifest in it, or the one ``platform`` or
        ``artifact_type`` picks. Files are named by ``org.cncf.model.filepath``,
        else ``org.opencontainers.image.title``, else
        ``model-0000i-of-0000N.ext`` in manifest (shard) order; archive layers
        are unpacked, refusing anything that would land outside the directory.

        By default the files go into the shared cache and the result is a
        snapshot directory of links into it; processes pulling the same model
        at once fetch each blob once, a repeat pull by tag costs one manifest
        request, and a digest reference none. A blob the cache holds is served
        without a read when its state says it was fsynced, or hashed during
        this boot (it was hashed when it was fetched).

        Args:
            reference: ``registry/repository:tag`` or ``...@sha256:...``.
            cache_dir: the cache (default ``$OCI_CLIENT_CACHE``, else
                ``~/.cache/oci-client``).
            local_dir: put real files here instead of a snapshot (copied from
                the cache when it has them; fsynced before the call returns).
            allow_patterns, ignore_patterns: globs on the file path, as
                huggingface_hub's ``snapshot_download`` takes them, applied
                inside archive layers too.
            allow_empty: patterns that select no file give an empty directory
                instead of raising :class:`NoMatchingFilesError`.
            offline: serve from the cache without touching the network
                (default ``$OCI_CLIENT_OFFLINE`` or ``$HF_HUB_OFFLINE``).
            platform: ``"linux/amd64"``: the manifest of an index to take.
            artifact_type: the artifact type of the manifest of an index to take.
            concurrency: blobs fetched at once (default 4).
            durability: ``"background"`` (fsyncs after the call returns) or
                ``"sync"`` (before); see :data:`Durability`.
            verify: hash every blob served from the cache first (default
                ``$OCI_CLIENT_VERIFY``); a wrong one is moved into ``quarantine/``
                as :meth:`cache_verify` moves it and fetched again.
            progress: called with ``(bytes_done, bytes_total)`` of what this
                call downloads.
            on_event: called with each :class:`TransferProgress` while the
                pull runs, at once when a file is verified.

        Returns:
            A :class:`PulledModel`: the directory, the pinned reference, the
            manifest digest, the files placed and the bytes fetched.

        Raises:
            NoMatchingFilesError: the patterns select no file (it lists the model's).
            NotCachedError: offline, and the cache lacks what is asked (a
                ``FileNotFoundError``).
            NotFoundError, AuthenticationError, RateLimitedError: the registry
                answered no (each a :class:`RegistryError`).
            InvalidArgumentError: a bad argument, before anything is fetched.
        """
        check_positive_int("concurrency", concurrency)
        if durability not in ("background", "sync"):
            raise InvalidArgumentError(f"durability must be 'background' or 'sync', got {durability!r}")
        for name, value in (("verify", verify), ("allow_empty", allow_empty)):
            if value is not None and not isinstance(value, bool):
                # A truthy string must not quietly stand for a choice that is then not made.
                raise InvalidArgumentError(f"{name} must be a bool, got {value!r}")
        req = self._model_request(
            reference,
            cache_dir,
            offline,
            platform,
            artifact_type,
            transfer=True,
            local_dir=_abspath(local_dir),
            allow_patterns=patterns("allow_patterns", allow_patterns),
            ignore_patterns=patterns("ignore_patterns", ignore_patterns),
            concurrency=concurrency or 0,
            durability=durability,
            allow_no_match=allow_empty,
        )
        if verify is not None:
            req["verify"] = verify
        r = self._watched("PullModel", req, progress, on_event, "bytes_downloaded")
        log_skipped(reference, r["model"])
        return PulledModel.from_result(r)

    def pull_model(
        self,
        reference: str,
        *,
        cache_dir: PathArg | None = None,
        local_dir: PathArg | None = None,
        allow_patterns: Patterns = None,
        ignore_patterns: Patterns = None,
        allow_empty: bool = False,
        offline: bool | None = None,
        platform: str | None = None,
        artifact_type: str | None = None,
        concurrency: int | None = None,
        durability: Durability = "background",
        verify: bool | None = None,
        progress: ProgressCallback | None = None,
        on_event: EventCallback | None = None,
    ) -> Path:
        """:meth:`pull`, returning just the model directory, as huggingface_hub's
        ``snapshot_download`` returns its path. The arguments and errors are
        :meth:`pull`'s."""
        return self.pull(
            reference,
            cache_dir=cache_dir,
            local_dir=local_dir,
            allow_patterns=allow_patterns,
            ignore_patterns=ignore_patterns,
            allow_empty=allow_empty,
            offline=offline,
            platform=platform,
            artifact_type=artifact_type,
            concurrency=concurrency,
            durability=durability,
            verify=verify,
            progress=progress,
            on_event=on_event,
        ).path

    def _watched(
        self,
        export: str,
        req: dict[str, Any],
        progress: ProgressCallback | None,
        on_event: EventCallback | None,
        moved_key: str,
    ) -> dict[str, Any]:
        """Call export, feeding its progress counters to ``progress`` and
        ``on_event``; the last progress call has done == total."""
        reporter = _Progress(progress) if progress is not None else None

        def poll(snapshot: dict[str, Any]) -> None:
            if reporter is not None:
                reporter.poll(snapshot)
            if on_event is not None:
                on_event(TransferProgress.from_snapshot(snapshot))

        watching = reporter is not None or on_event is not None
        r: dict[str, Any] = _native.call(
            export,
            req,
            lib_path=self._lib_path,
            on_progress=poll if watching else None,
            # Each verified file heard of at once, for a caller that starts work on it.
            wake_on_blob=on_event is not None,
            on_event=on_event,
        )
        if reporter is not None:
            # The counters' total where they gave one: a pull's bytes_downloaded leaves out what
            # an earlier call left on disk and counts retried bytes again, so it is no blob size.
            reporter.finish(reporter.total or int(r[moved_key]))
        return r

    # -- publishing -----------------------------------------------------------

    def push_model(
        self,
        directory: PathArg,
        reference: str,
        *,
        format: ModelFormat = "modelpack",
        cache_dir: PathArg | None = None,
        concurrency: int | None = None,
        mount_from: Sequence[str] | None = None,
        progress: ProgressCallback | None = None,
        on_event: EventCallback | None = None,
        follow_symlinks: bool = False,
    ) -> PushedModel:
        """Publish the model in ``directory`` (safetensors or GGUF shards,
        ``config.json``, tokenizer files, chat template, license, README,
        sub-directories) at ``reference`` and return the manifest pushed.

        ``format`` is ``"modelpack"`` (CNCF ModelPack: ``application/vnd.cncf.model.*``
        layers and a config with the format, parameter count and precision read
        from the safetensors headers) or ``"docker"`` (Docker Model Runner's
        v0.2 layout). Either way every file is one raw layer named by
        ``org.cncf.model.filepath``: weights are never re-packed or
        compressed, and ``pull_model`` gives back the same files byte for
        byte. Hidden files and directories (``.git``, ``.cache``) and
        ``*.incomplete`` files are left out.

        A symlink to a file is followed when it resolves inside ``directory``
        or into the blobs of a cache (this one's, or a huggingface_hub
        cache's ``models--*/blobs/``), so cache snapshots publish. Any other
        (a stray link to a key would publish the key), and any dangling link,
        raises :class:`InvalidArgumentError` naming the link and its target
        before anything is sent; ``follow_symlinks=True`` follows every link.

        Files stream from disk (memory stays flat), several at once
        (``concurrency``, default 4); blobs the repository has are skipped,
        blobs pushed before to another repository of the registry (or in
        ``mount_from``) are mounted; a broken upload resumes where the
        registry kept its data, else restarts, also in a later call. Digests
        are remembered in the cache, so publishing an unchanged directory
        again hashes nothing.

        Args:
            directory: the model directory.
            reference: where to publish, ``registry/repository:tag``.
            format: ``"modelpack"`` or ``"docker"``.
            cache_dir: the cache that remembers digests, upload sessions and
                where blobs are (default ``$OCI_CLIENT_CACHE``, else
                ``~/.cache/oci-client``).
            concurrency: files uploaded at once (default 4).
            mount_from: repositories of the same registry to mount blobs from.
            progress: called with ``(bytes_done, bytes_total)``.
            on_event: called with each :class:`TransferProgress` while the push runs.
            follow_symlinks: follow every symlink, wherever it points.

        Returns:
            The :class:`PushedModel`: its ``reference`` is ``repo@digest``, and
            each blob says how it got there.

        Raises:
            InvalidArgumentError: a bad argument, a symlink out of the
                directory, or nothing to publish; nothing was sent.
            LocalFileError: a file of the directory could not be read.
            AuthenticationError, NotFoundError, RateLimitedError: the registry
                answered no (each a :class:`RegistryError`).
        """
        if format not in ("modelpack", "docker"):
            raise InvalidArgumentError(f"format must be 'modelpack' or 'docker', got {format!r}")
        check_positive_int("concurrency", concurrency)
        if isinstance(mount_from, str):
            raise InvalidArgumentError("mount_from must be a list of repositories, not a string")
        if not isinstance(follow_symlinks, bool):
            # A truthy string must not quietly lift the symlink check.
            raise InvalidArgumentError(f"follow_symlinks must be a bool, got {follow_symlinks!r}")
        req = self._request(
            reference,
            directory=_abspath(directory),
            format=format,
            cache_dir=_abspath(cache_dir),
            concurrency=concurrency or 0,
            mount_from=list(mount_from or ()),
            follow_symlinks=follow_symlinks,
        )
        return PushedModel.from_result(self._watched("PushModel", req, progress, on_event, "bytes_sent"))

    def export_model(
        self,
        reference: str,
        layout_dir: PathArg,
        *,
        tag: str | None = None,
        concurrency: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> ExportedModel:
        """Write the model ``reference`` names into an OCI image layout, for a site with no
        registry: :meth:`pull` reads it back as ``oci-layout:DIR:TAG``, and so do skopeo's
        ``oci:`` transport and ``oras --oci-layout``.

        The manifest (an index with every manifest it lists), configs and layers stream
        through the transfer engine straight into ``DIR/blobs/sha256/``, each verified; a blob
        the layout already holds is hashed and kept when it is right. ``index.json`` is
        replaced last, so the layout never names what it does not hold; other models in the
        same layout stay.

        Args:
            reference: the model in a registry.
            layout_dir: the layout's directory (created if needed).
            tag: its name in ``index.json`` (default: the reference's tag; none for a digest).
            concurrency: blobs fetched at once (default 4).
            progress: called with ``(bytes_done, bytes_total)``.

        Returns:
            The :class:`ExportedModel`.

        Raises:
            InvalidArgumentError: ``reference`` is a layout already, or ``tag`` is no tag.
            NotFoundError, AuthenticationError, RateLimitedError: the registry answered no.
            DigestMismatchError: the registry sent other bytes (nothing named in the layout).
        """
        check_positive_int("concurrency", concurrency)
        if tag is not None and not isinstance(tag, str):
            raise InvalidArgumentError(f"tag must be a str, got {type(tag).__name__}")
        req = self._request(
            reference,
            transfer=True,
            layout_dir=_abspath(layout_dir),
            tag=tag or "",
            concurrency=concurrency or 0,
        )
        return ExportedModel.from_result(
            self._watched("ExportModel", req, progress, None, "bytes_downloaded")
        )

    def inspect(
        self,
        reference: str,
        *,
        cache_dir: PathArg | None = None,
        offline: bool | None = None,
        platform: str | None = None,
        artifact_type: str | None = None,
    ) -> ModelInfo:
        """The model ``reference`` names (format, files with sizes and digests,
        total size, config) without pulling its files. What it fetches (the
        manifest and config) goes into the cache, so it also works offline
        for a model pulled before.

        Args:
            reference: ``registry/repository:tag`` or ``...@sha256:...``.
            cache_dir, offline, platform, artifact_type: as for :meth:`pull`.

        Returns:
            The :class:`ModelInfo`.

        Raises:
            NotCachedError: offline, and the cache has not the manifest.
            InvalidModelError: the manifest is no model this library reads.
            NotFoundError, AuthenticationError, RateLimitedError: the registry answered no.
        """
        req = self._model_request(reference, cache_dir, offline, platform, artifact_type)
        return ModelInfo.from_result(self._call("InspectModel", req))

    def _cache_request(self, cache_dir: PathArg | None, **extra: Any) -> dict[str, Any]:
        """A request of the cache exports, which reach no registry."""
        return {**self._base(), "cache_dir": _abspath(cache_dir), **extra}

    def cache_list(self, *, cache_dir: PathArg | None = None) -> CacheInfo:
        """The models in the cache: repositories, snapshots, tags, sizes, last use.

        Args:
            cache_dir: the cache (default ``$OCI_CLIENT_CACHE``, else ``~/.cache/oci-client``).

        Returns:
            The :class:`CacheInfo`; an empty one for a cache that does not exist.
        """
        return CacheInfo.from_result(self._call("CacheList", self._cache_request(cache_dir)))

    def cache_remove(self, reference: str, *, cache_dir: PathArg | None = None) -> Removed:
        """Remove a tag (and its snapshot when no other tag points to it) or,
        for ``repo@digest``, a snapshot and its tags; then the blobs only
        they used.

        Args:
            reference: a tag or ``repo@digest`` as the cache lists it.
            cache_dir: the cache.

        Returns:
            What was removed, as :class:`Removed`.

        Raises:
            NotFoundError: the cache has no such entry.
        """
        return Removed.from_result(
            self._call("CacheRemove", self._cache_request(cache_dir, reference=_reference(reference)))
        )

    def cache_prune(self, *, cache_dir: PathArg | None = None, min_age: float = 3600.0) -> Removed:
        """Delete blobs, unpacked trees, manifests and partial downloads that no
        snapshot or tag uses, and expired upload records.

        Args:
            cache_dir: the cache.
            min_age: seconds an unused entry must be old before it goes (a pull
                running now may not have linked what it fetched yet).

        Returns:
            What was removed, as :class:`Removed`.

        Raises:
            InvalidArgumentError: a negative ``min_age``.
        """
        if not min_age >= 0:
            raise InvalidArgumentError(f"min_age must be a non-negative number of seconds, got {min_age!r}")
        req = self._cache_request(cache_dir, min_age_ms=int(min_age * 1000))
        return Removed.from_result(self._call("CachePrune", req))

    def cache_verify(
        self,
        refs: Sequence[str] | None = None,
        *,
        cache_dir: PathArg | None = None,
        repair: bool = True,
        offline: bool | None = None,
        concurrency: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> CacheVerified:
        """Re-hash cached blobs: every blob in the cache, or with ``refs``
        (tags or ``repo@digest``, resolved through the cache as an offline pull
        resolves them) those of these models. A pull trusts a blob that was
        hashed when it was fetched; this finds what changed on the disk since.

        A wrong blob is moved into ``quarantine/`` in the cache (kept, never
        served again) and the models that use it are pulled again, which
        fetches just what is missing. ``offline`` (default: from
        ``OCI_CLIENT_OFFLINE``/``HF_HUB_OFFLINE``) moves it aside but fetches
        nothing; ``repair=False`` only reports. A blob that checks out is
        recorded durable. ``concurrency`` blobs are hashed at once (default 4).
        ``progress`` gets ``(bytes_done, bytes_total)`` of the hashing, then of
        the repairing pulls, which add what they fetch to the total.

        Args:
            refs: the models to check (default: every blob in the cache).
            cache_dir: the cache.
            repair: move wrong blobs aside and fetch them again.
            offline: fetch nothing (default from the environment, as :meth:`pull`).
            concurrency: blobs hashed at once.
            progress: called with ``(bytes_done, bytes_total)``.

        Returns:
            The :class:`CacheVerified`: every blob looked at, and what was done.

        Raises:
            NotFoundError: a reference is not in the cache.
        """
        if isinstance(refs, str):
            raise InvalidArgumentError("refs must be a list of references, not a string")
        if not isinstance(repair, bool):
            raise InvalidArgumentError(f"repair must be a bool, got {repair!r}")
        check_positive_int("concurrency", concurrency)
        req = self._network_request(
            transfer=True,
            cache_dir=_abspath(cache_dir),
            references=list(refs or ()),
            repair=repair,
            offline=offline,
            concurrency=concurrency or 0,
        )
        return CacheVerified.from_result(self._watched("CacheVerify", req, progress, None, "bytes_hashed"))

    def wait_durable(self) -> None:
        """Block until every blob this process pulled into the cache is on disk."""
        self._call("CacheSync", {})


OciGoClient = Client
"""The first name of :class:`Client`, kept for code written against it."""
