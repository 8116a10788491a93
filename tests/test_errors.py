"""The exception tree: every native code maps to its class, and errors
survive pickling with all their fields (they cross worker processes)."""

from __future__ import annotations

import errno
import pickle
import re
from pathlib import Path

import pytest

import oci_client
from oci_client import errors

CODES = {
    "INVALID_REFERENCE": errors.InvalidReferenceError,
    "INVALID_ARGUMENT": errors.InvalidArgumentError,
    "UNAUTHORIZED": errors.AuthenticationError,
    "DENIED": errors.AuthenticationError,
    "CREDENTIALS": errors.AuthenticationError,
    "NOT_FOUND": errors.NotFoundError,
    "TOO_MANY_REQUESTS": errors.RateLimitedError,
    "DIGEST_MISMATCH": errors.DigestMismatchError,
    "REGISTRY": errors.RegistryError,
    "NETWORK": errors.NetworkError,
    "TLS": errors.TLSError,
    "TIMEOUT": errors.OperationTimeoutError,
    "CANCELED": errors.CanceledError,
    "IO": errors.LocalFileError,
    "NO_SPACE": errors.NoSpaceError,
    "INTERNAL": errors.OciError,
}


@pytest.mark.parametrize(("code", "cls"), CODES.items())
def test_every_code_maps_and_pickles(code: str, cls: type[errors.OciError]) -> None:
    exc = errors.error_from_envelope(
        {"code": code, "message": "boom", "status": 418, "registry_code": "TEAPOT"}
    )
    assert type(exc) is cls
    assert (exc.code, exc.status, exc.registry_code, exc.message, str(exc)) == (
        code,
        418,
        "TEAPOT",
        "boom",
        "boom",
    )
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls
    assert (back.code, back.status, back.registry_code, back.message) == (code, 418, "TEAPOT", "boom")


def test_unknown_code_is_a_plain_oci_error() -> None:
    exc = errors.error_from_envelope({"code": "SOMETHING_NEW", "message": "m"})
    assert type(exc) is errors.OciError and exc.code == "SOMETHING_NEW" and exc.status is None


def test_tree() -> None:
    # Builtin bases where Python code expects them (as huggingface_hub's offline miss is a
    # FileNotFoundError), and RegistryError above every "the registry answered no".
    builtin = {
        errors.NotCachedError: FileNotFoundError,
        errors.LocalFileError: OSError,
        errors.NoSpaceError: OSError,
        errors.NetworkError: ConnectionError,
        errors.TLSError: ConnectionError,
        errors.OperationTimeoutError: TimeoutError,
    }
    for cls, base in builtin.items():
        assert issubclass(cls, base), f"{cls.__name__} is not a {base.__name__}"
    for cls in (
        errors.AuthenticationError,
        errors.NotFoundError,
        errors.NotCachedError,
        errors.RateLimitedError,
    ):
        assert issubclass(cls, errors.RegistryError)
    # What no answer came for is not a registry error; an answer is not a connection error.
    for cls in (errors.NetworkError, errors.LocalFileError, errors.CanceledError, errors.DigestMismatchError):
        assert not issubclass(cls, errors.RegistryError)
    assert not issubclass(errors.RegistryError, OSError)
    # The older parents stay: existing except clauses keep working.
    assert issubclass(errors.NotCachedError, errors.NotFoundError)
    assert issubclass(errors.InvalidReferenceError, ValueError)
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.TLSError, errors.NetworkError)
    assert issubclass(errors.OperationTimeoutError, errors.NetworkError)
    assert issubclass(errors.ForkedProcessError, errors.LibraryError)
    assert issubclass(errors.NoSpaceError, errors.LocalFileError)
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, errors.OciError)
            assert getattr(oci_client, name) is obj, f"{name} is not exported from oci_client"


def test_every_native_code_has_its_class() -> None:
    """The codes the Go side declares (go/oci/errors.go) are exactly those mapped here."""
    source = (Path(__file__).resolve().parents[1] / "go" / "oci" / "errors.go").read_text()
    declared = set(re.findall(r'^\s*Code\w+\s+Code = "([A-Z_]+)"', source, re.MULTILINE))
    assert "NO_SPACE" in declared and "IO" in declared
    assert declared == set(errors._BY_CODE)


def test_repr_shows_fields() -> None:
    exc = errors.NotFoundError("gone", status=404, registry_code="BLOB_UNKNOWN")
    assert repr(exc) == "NotFoundError('gone', code='NOT_FOUND', status=404, registry_code='BLOB_UNKNOWN')"


CONTEXT = {
    "reference": "reg.example/org/m:v1",
    "digest": "sha256:" + "b" * 64,
    "url": "https://reg.example/v2/",
}


@pytest.mark.parametrize("name", [n for n in errors.__all__ if isinstance(getattr(errors, n), type)])
def test_every_class_pickles_with_its_context(name: str) -> None:
    cls = getattr(errors, name)
    exc = cls("boom", status=404, registry_code="X", details={"files": ["a"]}, **CONTEXT)
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls and str(back) == "boom" and back.args == ("boom",)
    fields = ("message", "code", "status", "registry_code", "details", "reference", "digest", "url")
    assert [getattr(back, f) for f in fields] == [getattr(exc, f) for f in fields]
    if isinstance(exc, OSError):
        assert back.errno == exc.errno and back.strerror is None


def test_context_absent_is_none() -> None:
    exc = errors.error_from_envelope({"code": "NOT_FOUND", "message": "m"})
    assert (exc.reference, exc.digest, exc.url) == (None, None, None)


def test_envelope_context() -> None:
    exc = errors.error_from_envelope({"code": "NOT_CACHED", "message": "m", **CONTEXT})
    assert isinstance(exc, FileNotFoundError) and exc.errno == errno.ENOENT
    assert (exc.reference, exc.digest, exc.url) == tuple(CONTEXT.values())
    assert repr(exc) == (
        f"NotCachedError('m', code='NOT_CACHED', reference={CONTEXT['reference']!r}, "
        f"digest={CONTEXT['digest']!r}, url={CONTEXT['url']!r})"
    )


def test_errno_where_it_means_something() -> None:
    assert errors.NoSpaceError("full").errno == errno.ENOSPC
    assert errors.OperationTimeoutError("late").errno == errno.ETIMEDOUT
    assert errors.LocalFileError("io").errno is None
    # str() stays the message: OSError would print "[Errno N] ..." given (errno, strerror).
    assert str(errors.NoSpaceError("full")) == "full"


def test_old_pickles_still_load() -> None:
    # The reduce tuple before the context fields existed: five arguments after the class.
    exc = errors._rebuild(errors.NotFoundError, "gone", "NOT_FOUND", 404, "BLOB_UNKNOWN", {})
    assert exc.status == 404 and exc.reference is None
