"""Minimal OCI pusher over the distribution HTTP API, for seeding test registries.

Handles the three auth situations of :class:`~oci_testing.registry.LocalRegistry`:
none, HTTP Basic (over TLS with a private CA) and Bearer tokens obtained through the
``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, final

import requests

from .registry import RegistryEndpoint

__all__ = [
    "ANNOTATION_MODEL_FILEPATH",
    "ANNOTATION_TITLE",
    "DEFAULT_ARTIFACT_TYPE",
    "DOCKER_CONFIG_MEDIA_TYPE",
    "DOCKER_LAYER_GZIP_MEDIA_TYPE",
    "DOCKER_MANIFEST_MEDIA_TYPE",
    "MODEL_ARTIFACT_TYPE",
    "MODEL_CONFIG_MEDIA_TYPE",
    "MODEL_DOC_MEDIA_TYPE",
    "MODEL_WEIGHT_CONFIG_MEDIA_TYPE",
    "MODEL_WEIGHT_MEDIA_TYPE",
    "OCI_EMPTY_MEDIA_TYPE",
    "OCI_INDEX_MEDIA_TYPE",
    "OCI_MANIFEST_MEDIA_TYPE",
    "LayerSpec",
    "PushedArtifact",
    "PushedBlob",
    "RegistryClient",
    "RegistryHTTPError",
    "push_artifact",
    "push_blob",
    "push_docker_v2_image",
    "push_image_manifest",
    "push_index",
    "push_manifest",
    "push_model",
    "sha256_digest",
]

OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP_MEDIA_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DEFAULT_ARTIFACT_TYPE = "application/vnd.oci-client.test.artifact.v1"
DEFAULT_LAYER_MEDIA_TYPE = "application/octet-stream"

MODEL_ARTIFACT_TYPE = "application/vnd.cncf.model.manifest.v1+json"
MODEL_CONFIG_MEDIA_TYPE = "application/vnd.cncf.model.config.v1+json"
MODEL_WEIGHT_MEDIA_TYPE = "application/vnd.cncf.model.weight.v1.raw"
MODEL_WEIGHT_CONFIG_MEDIA_TYPE = "application/vnd.cncf.model.weight.config.v1.raw"
MODEL_DOC_MEDIA_TYPE = "application/vnd.cncf.model.doc.v1.raw"

ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_MODEL_FILEPATH = "org.cncf.model.filepath"

ALL_MANIFEST_MEDIA_TYPES = (
    OCI_MANIFEST_MEDIA_TYPE,
    OCI_INDEX_MEDIA_TYPE,
    DOCKER_MANIFEST_MEDIA_TYPE,
    DOCKER_MANIFEST_LIST_MEDIA_TYPE,
)

_CHUNK = 1024 * 1024
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')

BlobData = bytes | os.PathLike[str]


class RegistryHTTPError(RuntimeError):
    """A registry or token server answered with an unexpected status."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} -> HTTP {status}: {body[:500]}")
        self.method = method
        self.url = url
        self.status = status
        self.body = body


@dataclass(frozen=True)
class PushedBlob:
    """A blob in the registry, as an OCI descriptor would describe it."""

    digest: str
    size: int
    media_type: str
    name: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    def descriptor(self) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            desc["annotations"] = dict(self.annotations)
        return desc


@dataclass(frozen=True)
class PushedArtifact:
    """A manifest (image manifest or index) pushed by this module."""

    host: str
    repository: str
    tag: str | None
    digest: str
    media_type: str
    manifest: dict[str, Any]
    manifest_bytes: bytes
    layers: list[PushedBlob]
    config: PushedBlob | None

    @property
    def size(self) -> int:
        return len(self.manifest_bytes)

    @property
    def reference(self) -> str:
        """``host/repo:tag`` (or ``host/repo@digest`` when pushed without a tag)."""
        if self.tag is None:
            return self.digest_reference
        return f"{self.host}/{self.repository}:{self.tag}"

    @property
    def digest_reference(self) -> str:
        return f"{self.host}/{self.repository}@{self.digest}"

    def descriptor(self, platform: Mapping[str, str] | None = None) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if platform is not None:
            desc["platform"] = dict(platform)
        return desc


@dataclass(frozen=True)
class LayerSpec:
    """A file for :func:`push_artifact` with its own media type or extra annotations."""

    data: BlobData
    media_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


def sha256_digest(data: BlobData) -> tuple[str, int]:
    """``("sha256:…", size)`` of bytes or of a file (streamed)."""
    h = hashlib.sha256()
    if isinstance(data, bytes):
        h.update(data)
        return f"sha256:{h.hexdigest()}", len(data)
    size = 0
    with open(data, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return f"sha256:{h.hexdigest()}", size


@final
class RegistryClient:
    """A ``requests`` session that authenticates to one registry like a Docker client.

    Requests are retried once after a 401: with Basic credentials, or with a Bearer token
    fetched from the challenge's realm (cached per scope). Environment proxies and
    ``.netrc`` are ignored so tests see only what they configure.
    """

    def __init__(self, registry: RegistryEndpoint, *, timeout: float = 300.0) -> None:
        self.registry = registry
        self.base_url = registry.url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(registry.ca_file) if registry.ca_file is not None else True
        self._use_basic = False
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def host(self) -> str:
        return self.base_url.split("://", 1)[-1]

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        body: BlobData | None = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send *method* to *path* (relative to the registry, or an absolute URL).

        *scope* (``repository:NAME:ACTIONS``) names the token to use if the registry asks
        for one. A file *body* is streamed and reopened if the request must be retried.
        Returns the response whatever its status."""
        url = path if "://" in path else f"{self.base_url}{path}"
        response = self._send(method, url, scope, headers, body, params, stream)
        if response.status_code != 401:
            return response
        if not self._authenticate(response.headers.get("WWW-Authenticate", ""), scope):
            return response
        response.close()
        return self._send(method, url, scope, headers, body, params, stream)

    def check(self, response: requests.Response, *expected: int) -> requests.Response:
        """Raise :class:`RegistryHTTPError` unless the status is one of *expected*."""
        if response.status_code not in expected:
            text = response.text
            response.close()
            raise RegistryHTTPError(response.request.method or "?", response.url, response.status_code, text)
        return response

    def get_manifest(
        self,
        repository: str,
        reference: str,
        accept: Sequence[str] = ALL_MANIFEST_MEDIA_TYPES,
    ) -> requests.Response:
        """GET a manifest (raises on non-200); ``.content`` is the raw manifest."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": ", ".join(accept)},
        )
        return self.check(response, 200)

    def get_blob(self, repository: str, digest: str) -> bytes:
        """GET a whole blob (raises on non-200)."""
        response = self.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scope=f"repository:{repository}:pull",
        )
        return self.check(response, 200).content

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self.request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            scope=f"repository:{repository}:pull",
        )
        return self.check(response, 200, 404).status_code == 200

    def _send(
        self,
        method: str,
        url: str,
        scope: str,
        headers: Mapping[str, str] | None,
        body: BlobData | None,
        params: Mapping[str, str] | None,
        stream: bool,
    ) -> requests.Response:
        all_headers = dict(headers or {})
        token = self._tokens.get(scope)
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        auth = self._basic_auth() if self._use_basic and token is None else None
        if body is None or isinstance(body, bytes):
            return self.session.request(
                method,
                url,
                headers=all_headers,
                data=body,
                params=params,
                auth=auth,
                stream=stream,
                timeout=self.timeout,
            )
        with open(body, "rb") as f:
            # requests streams file objects and takes Content-Length from fstat.
            return self.session.request(
                method,
                url,
                headers=all_headers,
                data=f,
                params=params,
                auth=auth,
                stream=stream,
                timeout=self.timeout,
            )

    def _basic_auth(self) -> tuple[str, str] | None:
        user, password = self.registry.username, self.registry.password
        return (user, password) if user is not None and password is not None else None

    def _authenticate(self, challenge: str, scope: str) -> bool:
        scheme, _, rest = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(rest))
        if scheme.lower() == "basic":
            self._use_basic = True
            return self._basic_auth() is not None
        if scheme.lower() != "bearer" or "realm" not in params:
            return False
        query = {"scope": params.get("scope") or scope}
        if "service" in params:
            query["service"] = params["service"]
        response = self.session.get(
            params["realm"], params=query, auth=self._basic_auth(), timeout=self.timeout
        )
        self.check(response, 200)
        body = response.json()
        self._tokens[scope] = body.get("token") or body["access_token"]
        return True


@contextmanager
def _client(registry: RegistryEndpoint | RegistryClient) -> Iterator[RegistryClient]:
    if isinstance(registry, RegistryClient):
        yield registry
        return
    with RegistryClient(registry) as client:
        yield client


def _with_query(url: str, name: str, value: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query.append((name, value))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _upload(client: RegistryClient, repository: str, data: BlobData) -> tuple[str, int]:
    digest, size = sha256_digest(data)
    # One scope for the whole upload, so token auth needs a single token.
    scope = f"repository:{repository}:pull,push"
    exists = client.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope=scope)
    if client.check(exists, 200, 404).status_code == 200:
        return digest, size
    started = client.check(client.request("POST", f"/v2/{repository}/blobs/uploads/", scope=scope), 202)
    location = urllib.parse.urljoin(client.base_url + "/", started.headers["Location"])
    # One PUT carrying the whole body: bytes are sent as is, files are streamed from disk.
    client.check(
        client.request(
            "PUT",
            _with_query(location, "digest", digest),
            scope=scope,
            headers={"Content-Type": "application/octet-stream"},
            body=data,
        ),
        201,
    )
    return digest, size


def push_blob(registry: RegistryEndpoint | RegistryClient, repository: str, data: BlobData) -> str:
    """Upload bytes or a file (streamed, never read into memory) unless the blob is already
    there; returns its digest."""
    with _client(registry) as client:
        return _upload(client, repository, data)[0]


def push_manifest(
    registry: RegistryEndpoint | RegistryClient,
    repository: str,
    reference: str,
    manifest_bytes: bytes,
    media_type: str,
) -> str:
    """PUT a manifest under a tag or digest; returns its digest (checked against the
    registry's ``Docker-Content-Digest``)."""
    digest = sha256_digest(manifest_bytes)[0]
    with _client(registry) as client:
        response = client.check(
            client.request(
                "PUT",
                f"/v2/{repository}/manifests/{reference}",
                scope=f"repository:{repository}:pull,push",
                headers={"Content-Type": media_type},
                body=manifest_bytes,
            ),
            201,
        )
    reported = response.headers.get("Docker-Content-Digest")
    if reported is not None and reported != digest:
        raise RuntimeError(f"registry stored manifest as {reported}, expected {digest}")
    return digest


def _encode(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def push_image_manifest(
    client: RegistryClient,
    repository: str,
    tag: str | None,
    *,
    layers: Sequence[tuple[str | None, BlobData, str, Mapping[str, str]]],
    config: bytes | Callable[[list[PushedBlob]], bytes],
    config_media_type: str,
    manifest_media_type: str,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> PushedArtifact:
    """Upload each ``(name, data, media type, annotations)`` layer and the config
    (bytes, or built from the pushed layers), then PUT the manifest naming them."""
    pushed_layers = []
    for name, data, media_type, layer_annotations in layers:
        digest, size = _upload(client, repository, data)
        pushed_layers.append(PushedBlob(digest, size, media_type, name, dict(layer_annotations)))
    # Built after the layers so a config can refer to their digests (e.g. diff ids).
    config_bytes = config(pushed_layers) if callable(config) else config
    config_digest, config_size = _upload(client, repository, config_bytes)
    pushed_config = PushedBlob(config_digest, config_size, config_media_type)

    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": manifest_media_type}
    if artifact_type is not None:
        manifest["artifactType"] = artifact_type
    manifest["config"] = pushed_config.descriptor()
    manifest["layers"] = [layer.descriptor() for layer in pushed_layers]
    if annotations:
        manifest["annotations"] = dict(annotations)
    manifest_bytes = _encode(manifest)
    digest = push_manifest(
        client,
        repository,
        tag or sha256_digest(manifest_bytes)[0],
        manifest_bytes,
        manifest_media_type,
    )
    return PushedArtifact(
        host=client.host,
        repository=repository,
        tag=tag,
        digest=digest,
        media_type=manifest_media_type,
        manifest=manifest,
        manifest_bytes=manifest_bytes,
        layers=pushed_layers,
        config=pushed_config,
    )


def _layers(
    files: Mapping[str, BlobData | LayerSpec], media_type: str, name_keys: Sequence[str]
) -> list[tuple[str, BlobData, str, dict[str, str]]]:
    """One layer per file: its media type (unless the LayerSpec names one) and its name under
    each of *name_keys*, then the LayerSpec's own annotations."""
    layers = []
    for name, value in files.items():
        spec = value if isinstance(value, LayerSpec) else LayerSpec(value)
        layer_annotations = {**dict.fromkeys(name_keys, name), **spec.annotations}
        layers.append((name, spec.data, spec.media_type or media_type, layer_annotations))
    return layers


def push_artifact(
    registry: RegistryEndpoint | RegistryClient,
    repository: str,
    tag: str | None,
    files: Mapping[str, BlobData | LayerSpec],
    *,
    artifact_type: str | None = DEFAULT_ARTIFACT_TYPE,
    config: bytes = b"{}",
    config_media_type: str = OCI_EMPTY_MEDIA_TYPE,
    layer_media_type: str = DEFAULT_LAYER_MEDIA_TYPE,
    annotations: Mapping[str, str] | None = None,
) -> PushedArtifact:
    """Push an OCI image manifest with one layer per file, each annotated with
    ``org.opencontainers.image.title`` = its name (``tag=None`` pushes by digest only)."""
    layers = _layers(files, layer_media_type, (ANNOTATION_TITLE,))
    with _client(registry) as client:
        return push_image_manifest(
            client,
            repository,
            tag,
            layers=layers,
            config=config,
            config_media_type=config_media_type,
            manifest_media_type=OCI_MANIFEST_MEDIA_TYPE,
            artifact_type=artifact_type,
            annotations=annotations,
        )


def push_model(
    registry: RegistryEndpoint | RegistryClient,
    repository: str,
    tag: str | None,
    files: Mapping[str, BlobData | LayerSpec],
    *,
    config: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> PushedArtifact:
    """Push a CNCF ModelPack artifact: every file a ``weight.v1.raw`` layer (override per
    file with :class:`LayerSpec`) carrying ``org.cncf.model.filepath`` and the OCI title.
    *config* defaults to a minimal ModelPack config listing the layers as ``diffIds``."""
    layers = _layers(files, MODEL_WEIGHT_MEDIA_TYPE, (ANNOTATION_MODEL_FILEPATH, ANNOTATION_TITLE))

    def model_config(pushed: list[PushedBlob]) -> bytes:
        if config is not None:
            return _encode(config)
        return _encode(
            {
                "descriptor": {"name": repository.rsplit("/", 1)[-1]},
                # Raw (uncompressed) layers: the diff id is the layer digest.
                "modelfs": {
                    "type": "layers",
                    "diffIds": [layer.digest for layer in pushed],
                },
                "config": {},
            }
        )

    with _client(registry) as client:
        return push_image_manifest(
            client,
            repository,
            tag,
            layers=layers,
            config=model_config,
            config_media_type=MODEL_CONFIG_MEDIA_TYPE,
            manifest_media_type=OCI_MANIFEST_MEDIA_TYPE,
            artifact_type=MODEL_ARTIFACT_TYPE,
            annotations=annotations,
        )


def _tar_gz(files: Mapping[str, bytes]) -> tuple[bytes, str]:
    """A reproducible gzipped tar of *files* and the digest of the uncompressed tar."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), sha256_digest(tar_bytes)[0]


def push_docker_v2_image(
    registry: RegistryEndpoint | RegistryClient,
    repository: str,
    tag: str | None,
    files: Mapping[str, bytes] | None = None,
    *,
    architecture: str = "amd64",
    os_name: str = "linux",
) -> PushedArtifact:
    """Push a Docker schema 2 image: a container config and one gzipped tar layer holding
    *files* (default: one small text file)."""
    layer, diff_id = _tar_gz(files if files is not None else {"hello.txt": b"hello\n"})
    image_config = _encode(
        {
            "architecture": architecture,
            "os": os_name,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    )
    with _client(registry) as client:
        return push_image_manifest(
            client,
            repository,
            tag,
            layers=[(None, layer, DOCKER_LAYER_GZIP_MEDIA_TYPE, {})],
            config=image_config,
            config_media_type=DOCKER_CONFIG_MEDIA_TYPE,
            manifest_media_type=DOCKER_MANIFEST_MEDIA_TYPE,
        )


def push_index(
    registry: RegistryEndpoint | RegistryClient,
    repository: str,
    tag: str | None,
    manifests: Sequence[PushedArtifact],
    *,
    platforms: Sequence[Mapping[str, str] | None] | None = None,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> PushedArtifact:
    """Push an OCI image index over *manifests* (already in *repository*: distribution
    refuses indexes naming manifests it does not have). ``platforms[i]`` describes
    ``manifests[i]``, e.g. ``{"architecture": "amd64", "os": "linux"}``."""
    if platforms is not None and len(platforms) != len(manifests):
        raise ValueError("platforms must have one entry per manifest")
    entries = [m.descriptor(platforms[i] if platforms is not None else None) for i, m in enumerate(manifests)]
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX_MEDIA_TYPE}
    if artifact_type is not None:
        index["artifactType"] = artifact_type
    index["manifests"] = entries
    if annotations:
        index["annotations"] = dict(annotations)
    index_bytes = _encode(index)
    with _client(registry) as client:
        reference = tag or sha256_digest(index_bytes)[0]
        digest = push_manifest(client, repository, reference, index_bytes, OCI_INDEX_MEDIA_TYPE)
        host = client.host
    return PushedArtifact(
        host=host,
        repository=repository,
        tag=tag,
        digest=digest,
        media_type=OCI_INDEX_MEDIA_TYPE,
        manifest=index,
        manifest_bytes=index_bytes,
        layers=[],
        config=None,
    )
