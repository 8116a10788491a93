"""Exceptions raised by oci_client.

Every failure of a registry operation raises a subclass of :class:`OciError`; where Python has
a builtin for the same failure, the class is that builtin too, so ``except FileNotFoundError``,
``except OSError``, ``except ConnectionError`` and ``except TimeoutError`` work as they do
around ``open`` or ``socket``::

    OciError
    ├── InvalidReferenceError      (also ValueError) the reference does not parse
    ├── InvalidArgumentError       (also ValueError) a bad digest, path or option
    │   └── NoMatchingFilesError   the patterns select no file of the model (.files lists them)
    ├── RegistryError              the registry answered no (.status, .registry_code)
    │   ├── AuthenticationError    401/403, unreadable credentials, failing helper
    │   ├── NotFoundError          404: repository, manifest or blob
    │   │   └── NotCachedError     (also FileNotFoundError) offline, and the cache lacks it
    │   └── RateLimitedError       429 Too Many Requests
    ├── DigestMismatchError        the content is not what was asked for
    ├── NetworkError               (also ConnectionError) refused, reset, DNS, truncated body
    │   ├── TLSError               certificate untrusted, plain HTTP or a redirect refused
    │   └── OperationTimeoutError  (also TimeoutError) the call's timeout expired
    ├── CanceledError              the call was cancelled
    ├── LocalFileError             (also OSError) the destination could not be written
    │   └── NoSpaceError           (errno ENOSPC) its file system (or quota) is full
    ├── InvalidModelError          not a model, or a malformed manifest or archive
    ├── UnsafeArchiveError         an archive layer would write outside its target, or exceeds a limit
    └── LibraryError               the native library cannot be loaded or used
        └── ForkedProcessError     called in a child forked after the library started

Transport failures (:class:`NetworkError`: no answer came) are apart from status failures
(:class:`RegistryError`: an answer came, and it was no), as in httpx. Two members of
``RegistryError`` can happen without asking the registry, and were there before this tree had
that parent: :class:`NotCachedError` (an offline miss, ``.status`` None; catch it before
``RegistryError`` to tell it apart) and an :class:`AuthenticationError` for unreadable
credentials (``.code`` ``CREDENTIALS``).

Each carries ``.code`` (the native error code), ``.status`` (the HTTP status, when the
registry answered), ``.registry_code`` (the registry's own code, e.g. ``MANIFEST_UNKNOWN``),
``.details`` (what the library says beyond the message, a dict, empty for most), and where
known ``.reference`` (the model reference), ``.digest`` (the blob or manifest) and ``.url``
(the request that failed, with credentials and signed query parameters masked); None when not
known. Messages never contain credentials. Every class pickles, so errors cross process
boundaries (vLLM's workers) intact.
"""

from __future__ import annotations

import errno
from typing import Any

__all__ = [
    "AuthenticationError",
    "CanceledError",
    "DigestMismatchError",
    "ForkedProcessError",
    "InvalidArgumentError",
    "InvalidModelError",
    "InvalidReferenceError",
    "LibraryError",
    "LocalFileError",
    "NetworkError",
    "NoMatchingFilesError",
    "NoSpaceError",
    "NotCachedError",
    "NotFoundError",
    "OciError",
    "OperationTimeoutError",
    "RateLimitedError",
    "RegistryError",
    "TLSError",
    "UnsafeArchiveError",
    "error_from_envelope",
]


class OciError(Exception):
    """Base class of every error this package raises."""

    default_code = "INTERNAL"
    # The errno a class means, for those that are also an OSError: code that checks
    # ``e.errno == errno.ENOSPC`` after ``except OSError`` then works as with ``open``.
    default_errno: int | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        registry_code: str | None = None,
        details: dict[str, Any] | None = None,
        reference: str | None = None,
        digest: str | None = None,
        url: str | None = None,
    ) -> None:
        # One argument only: OSError reads two as (errno, strerror) and changes str().
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.status = status
        self.registry_code = registry_code
        self.details: dict[str, Any] = dict(details or {})
        self.reference = reference
        self.digest = digest
        self.url = url
        if isinstance(self, OSError) and self.default_errno is not None:
            # Through setattr: an assignment here makes mypy lose errno's type in the
            # subclasses that mix OciError with OSError.
            setattr(self, "errno", self.default_errno)  # noqa: B010

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's default reduce passes only args, losing the keywords; OSError's would
        # call the class with args alone as well.
        return (
            _rebuild,
            (
                type(self),
                self.message,
                self.code,
                self.status,
                self.registry_code,
                self.details,
                self.reference,
                self.digest,
                self.url,
            ),
        )

    def __repr__(self) -> str:
        fields = ("status", "registry_code", "reference", "digest", "url")
        extra = "".join(f", {k}={v!r}" for k in fields if (v := getattr(self, k, None)) is not None)
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}{extra})"


def _rebuild(
    cls: type[OciError],
    message: str,
    code: str | None,
    status: int | None,
    registry_code: str | None,
    details: dict[str, Any] | None = None,
    reference: str | None = None,
    digest: str | None = None,
    url: str | None = None,
) -> OciError:
    # Trailing defaults: pickles made before a field existed still load.
    return cls(
        message,
        code=code,
        status=status,
        registry_code=registry_code,
        details=details,
        reference=reference,
        digest=digest,
        url=url,
    )


class InvalidReferenceError(OciError, ValueError):
    """The image reference does not parse."""

    default_code = "INVALID_REFERENCE"


class InvalidArgumentError(OciError, ValueError):
    """A digest, path or option is malformed."""

    default_code = "INVALID_ARGUMENT"


class NoMatchingFilesError(InvalidArgumentError):
    """``allow_patterns`` and ``ignore_patterns`` select no file of the model. Patterns
    reach inside archive layers, so ``.files`` lists every file the model has, the entries
    of its archives included where they are known (an archive is read only once fetched);
    the message names the first of them. ``.patterns`` and ``.ignore_patterns`` are the
    patterns given."""

    default_code = "NO_MATCH"

    @property
    def patterns(self) -> list[str]:
        return list(self.details.get("allow_patterns") or [])

    @property
    def ignore_patterns(self) -> list[str]:
        return list(self.details.get("ignore_patterns") or [])

    @property
    def files(self) -> list[str]:
        return list(self.details.get("files") or [])


class RegistryError(OciError):
    """The registry answered no: the parent of :class:`AuthenticationError`,
    :class:`NotFoundError` and :class:`RateLimitedError`, and itself raised for any other
    error answer (5xx after the retries, 400, ...). ``.status`` and ``.registry_code`` say
    what it answered."""

    default_code = "REGISTRY"


class AuthenticationError(RegistryError):
    """Credentials are missing, wrong or insufficient, or could not be read."""

    default_code = "UNAUTHORIZED"


class NotFoundError(RegistryError):
    """The repository, manifest or blob does not exist (or is hidden)."""

    default_code = "NOT_FOUND"


class NotCachedError(NotFoundError, FileNotFoundError):
    """Offline (``offline=True``, ``OCI_CLIENT_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``),
    and the cache does not hold what was asked for; the message names it. A
    :class:`NotFoundError` as before, and a :class:`FileNotFoundError` (errno ENOENT) as
    huggingface_hub's offline miss is, so ``except FileNotFoundError`` catches it."""

    default_code = "NOT_CACHED"
    default_errno = errno.ENOENT


class RateLimitedError(RegistryError):
    """The registry answered 429 Too Many Requests."""

    default_code = "TOO_MANY_REQUESTS"


class DigestMismatchError(OciError):
    """Received content does not match its digest or size."""

    default_code = "DIGEST_MISMATCH"


class NetworkError(OciError, ConnectionError):
    """The registry could not be reached, or the connection broke: no answer came (an
    answer that says no is a :class:`RegistryError`). Also a :class:`ConnectionError`."""

    default_code = "NETWORK"


class TLSError(NetworkError):
    """TLS verification failed, plain HTTP to a non-local host was refused, or a redirect was
    refused (from HTTPS down to HTTP, or into a private network from a registry outside it)."""

    default_code = "TLS"


class OperationTimeoutError(NetworkError, TimeoutError):
    """The call's timeout expired. Also a :class:`TimeoutError`."""

    default_code = "TIMEOUT"
    default_errno = errno.ETIMEDOUT


class CanceledError(OciError):
    """The call was cancelled before it finished."""

    default_code = "CANCELED"


class LocalFileError(OciError, OSError):
    """The destination could not be created or written. Also an :class:`OSError`."""

    default_code = "IO"


class NoSpaceError(LocalFileError):
    """The destination's file system (or the user's quota) is full. Raised before any
    download when the bytes still to fetch exceed what the file system has free (the
    message says how much each needs), or when a write fails for lack of space. Partial
    data is kept: free space and pull again to continue it. Its ``errno`` is ENOSPC."""

    default_code = "NO_SPACE"
    default_errno = errno.ENOSPC


class InvalidModelError(OciError):
    """The artifact is not a model, or its manifest or an archive layer is malformed."""

    default_code = "INVALID_MODEL"


class UnsafeArchiveError(OciError):
    """An archive layer has an entry that would land outside the target (an
    absolute path, ``..``, a link pointing out, a device or FIFO), or exceeds
    an entry-count or size limit. Nothing of it is left behind."""

    default_code = "UNSAFE_ARCHIVE"


class LibraryError(OciError):
    """The native library could not be found, loaded or used."""

    default_code = "LIBRARY"


class ForkedProcessError(LibraryError):
    """The library was used in a child forked after it had started."""

    default_code = "FORKED"


_BY_CODE: dict[str, type[OciError]] = {
    "INVALID_REFERENCE": InvalidReferenceError,
    "INVALID_ARGUMENT": InvalidArgumentError,
    "NO_MATCH": NoMatchingFilesError,
    "UNAUTHORIZED": AuthenticationError,
    "DENIED": AuthenticationError,
    "CREDENTIALS": AuthenticationError,
    "NOT_FOUND": NotFoundError,
    "TOO_MANY_REQUESTS": RateLimitedError,
    "DIGEST_MISMATCH": DigestMismatchError,
    "REGISTRY": RegistryError,
    "NETWORK": NetworkError,
    "TLS": TLSError,
    "TIMEOUT": OperationTimeoutError,
    "CANCELED": CanceledError,
    "IO": LocalFileError,
    "NO_SPACE": NoSpaceError,
    "NOT_CACHED": NotCachedError,
    "INVALID_MODEL": InvalidModelError,
    "UNSAFE_ARCHIVE": UnsafeArchiveError,
    "INTERNAL": OciError,
}


def error_from_envelope(error: dict[str, Any]) -> OciError:
    """Build the exception for the ``error`` member of a native envelope."""
    code = str(error.get("code") or "INTERNAL")
    cls = _BY_CODE.get(code, OciError)
    status = error.get("status")
    registry_code = error.get("registry_code")
    details = error.get("details")

    def text(key: str) -> str | None:
        value = error.get(key)
        return str(value) if value else None

    return cls(
        str(error.get("message") or code),
        code=code,
        status=int(status) if status else None,
        registry_code=str(registry_code) if registry_code else None,
        details=details if isinstance(details, dict) else None,
        reference=text("reference"),
        digest=text("digest"),
        url=text("url"),
    )
