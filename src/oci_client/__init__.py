"""oci_client: pull ML models and other OCI artifacts from container
registries, through a Go library built on go-containerregistry."""

from .api import cache_list, cache_prune, cache_remove, inspect, pull_model
from .client import AuthInfo, BlobInfo, Durability, Manifest, OciGoClient
from .errors import (
    AuthenticationError,
    CanceledError,
    DigestMismatchError,
    ForkedProcessError,
    InvalidArgumentError,
    InvalidModelError,
    InvalidReferenceError,
    LibraryError,
    LocalFileError,
    NetworkError,
    NotCachedError,
    NotFoundError,
    OciError,
    OperationTimeoutError,
    RateLimitedError,
    RegistryError,
    TLSError,
    UnsafeArchiveError,
)
from .models import CachedModel, CachedSnapshot, CacheInfo, ModelFile, ModelInfo, Removed

__version__ = "0.1.0"

__all__ = [
    "AuthInfo",
    "AuthenticationError",
    "BlobInfo",
    "CacheInfo",
    "CachedModel",
    "CachedSnapshot",
    "CanceledError",
    "DigestMismatchError",
    "Durability",
    "ForkedProcessError",
    "InvalidArgumentError",
    "InvalidModelError",
    "InvalidReferenceError",
    "LibraryError",
    "LocalFileError",
    "Manifest",
    "ModelFile",
    "ModelInfo",
    "NetworkError",
    "NotCachedError",
    "NotFoundError",
    "OciError",
    "OciGoClient",
    "OperationTimeoutError",
    "RateLimitedError",
    "RegistryError",
    "Removed",
    "TLSError",
    "UnsafeArchiveError",
    "__version__",
    "cache_list",
    "cache_prune",
    "cache_remove",
    "inspect",
    "pull_model",
]
