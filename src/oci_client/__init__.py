"""oci_client: pull ML models and other OCI artifacts from container
registries, through a Go library built on go-containerregistry."""

from .client import AuthInfo, BlobInfo, Manifest, OciGoClient
from .errors import (
    AuthenticationError,
    CanceledError,
    DigestMismatchError,
    ForkedProcessError,
    InvalidArgumentError,
    InvalidReferenceError,
    LibraryError,
    LocalFileError,
    NetworkError,
    NotFoundError,
    OciError,
    OperationTimeoutError,
    RateLimitedError,
    RegistryError,
    TLSError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthInfo",
    "AuthenticationError",
    "BlobInfo",
    "CanceledError",
    "DigestMismatchError",
    "ForkedProcessError",
    "InvalidArgumentError",
    "InvalidReferenceError",
    "LibraryError",
    "LocalFileError",
    "Manifest",
    "NetworkError",
    "NotFoundError",
    "OciError",
    "OciGoClient",
    "OperationTimeoutError",
    "RateLimitedError",
    "RegistryError",
    "TLSError",
    "__version__",
]
