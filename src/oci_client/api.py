"""Module-level shortcuts: ``oci_client.pull_model(ref)`` and friends, each
on a fresh :class:`OciGoClient` made from ``timeout`` and ``client_options``
(``ca_file``, ``insecure_registries``, ``connections``, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .client import Durability, ModelFormat, OciGoClient, PathArg, Patterns, ProgressCallback
from .models import CacheInfo, CacheVerified, ModelInfo, PushedModel, Removed

__all__ = ["cache_list", "cache_prune", "cache_remove", "cache_verify", "inspect", "pull_model", "push_model"]


def pull_model(
    reference: str,
    *,
    cache_dir: PathArg | None = None,
    local_dir: PathArg | None = None,
    allow_patterns: Patterns = None,
    ignore_patterns: Patterns = None,
    offline: bool | None = None,
    platform: str | None = None,
    artifact_type: str | None = None,
    concurrency: int | None = None,
    durability: Durability = "background",
    verify: bool | None = None,
    progress: ProgressCallback | None = None,
    timeout: float | None = None,
    **client_options: Any,
) -> Path:
    """Pull a model into the cache (or ``local_dir``) and return its
    directory; see :meth:`OciGoClient.pull_model`."""
    return OciGoClient(timeout=timeout, **client_options).pull_model(
        reference,
        cache_dir=cache_dir,
        local_dir=local_dir,
        allow_patterns=allow_patterns,
        ignore_patterns=ignore_patterns,
        offline=offline,
        platform=platform,
        artifact_type=artifact_type,
        concurrency=concurrency,
        durability=durability,
        verify=verify,
        progress=progress,
    )


def push_model(
    directory: PathArg,
    reference: str,
    *,
    format: ModelFormat = "modelpack",
    cache_dir: PathArg | None = None,
    concurrency: int | None = None,
    mount_from: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    follow_symlinks: bool = False,
    timeout: float | None = None,
    **client_options: Any,
) -> PushedModel:
    """Publish a model directory at ``reference``; see :meth:`OciGoClient.push_model`."""
    return OciGoClient(timeout=timeout, **client_options).push_model(
        directory,
        reference,
        format=format,
        cache_dir=cache_dir,
        concurrency=concurrency,
        mount_from=mount_from,
        progress=progress,
        follow_symlinks=follow_symlinks,
    )


def inspect(
    reference: str,
    *,
    cache_dir: PathArg | None = None,
    offline: bool | None = None,
    platform: str | None = None,
    artifact_type: str | None = None,
    timeout: float | None = None,
    **client_options: Any,
) -> ModelInfo:
    """Describe a model without pulling its files; see :meth:`OciGoClient.inspect`."""
    return OciGoClient(timeout=timeout, **client_options).inspect(
        reference, cache_dir=cache_dir, offline=offline, platform=platform, artifact_type=artifact_type
    )


def cache_list(*, cache_dir: PathArg | None = None) -> CacheInfo:
    """The models in the cache; see :meth:`OciGoClient.cache_list`."""
    return OciGoClient().cache_list(cache_dir=cache_dir)


def cache_remove(reference: str, *, cache_dir: PathArg | None = None) -> Removed:
    """Remove a tag or snapshot from the cache; see :meth:`OciGoClient.cache_remove`."""
    return OciGoClient().cache_remove(reference, cache_dir=cache_dir)


def cache_prune(*, cache_dir: PathArg | None = None, min_age: float = 3600.0) -> Removed:
    """Delete what no snapshot uses; see :meth:`OciGoClient.cache_prune`."""
    return OciGoClient().cache_prune(cache_dir=cache_dir, min_age=min_age)


def cache_verify(
    refs: Sequence[str] | None = None,
    *,
    cache_dir: PathArg | None = None,
    repair: bool = True,
    offline: bool | None = None,
    concurrency: int | None = None,
    progress: ProgressCallback | None = None,
    timeout: float | None = None,
    **client_options: Any,
) -> CacheVerified:
    """Re-hash cached blobs and repair wrong ones; see :meth:`OciGoClient.cache_verify`."""
    return OciGoClient(timeout=timeout, **client_options).cache_verify(
        refs, cache_dir=cache_dir, repair=repair, offline=offline, concurrency=concurrency, progress=progress
    )
