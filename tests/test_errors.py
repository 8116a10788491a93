"""The exception tree: every native code maps to its class, and errors
survive pickling with all their fields (they cross worker processes)."""

from __future__ import annotations

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
