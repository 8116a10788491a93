"""The C ABI of liboci, generated from go/abi by `cd go && go run ./cmd/abigen`; do not edit."""

from __future__ import annotations

#: What the AbiVersion export of a library of this contract returns.
ABI_VERSION = 2

#: The exports that take a JSON request and return an envelope.
EXPORTS = (
    "PullManifest",
    "PullBlob",
    "PullBlobs",
    "PullModel",
    "InspectModel",
    "CacheList",
    "CacheRemove",
    "CachePrune",
    "CacheSync",
    "CacheVerify",
    "PushModel",
    "ExportModel",
    "TestAuthentication",
    "CancelOperation",
    "OperationProgress",
    "RuntimeStats",
)

#: Every symbol the library exports.
SYMBOLS = (
    *EXPORTS,
    "AbiVersion",
    "FreeString",
)

#: The keys each export's request takes; Go refuses any other.
REQUEST_FIELDS: dict[str, frozenset[str]] = {
    "PullManifest": frozenset(
        {
            "ca_file",
            "env",
            "events",
            "insecure_registries",
            "log_level",
            "operation_id",
            "proxy",
            "reference",
            "retries",
            "timeout_ms",
            "user_agent",
        }
    ),
    "PullBlob": frozenset(
        {
            "ca_file",
            "chunk_size",
            "connections",
            "digest",
            "direct_io",
            "env",
            "events",
            "insecure_registries",
            "label",
            "log_level",
            "operation_id",
            "path",
            "proxy",
            "read_timeout_ms",
            "reference",
            "retries",
            "size",
            "timeout_ms",
            "user_agent",
        }
    ),
    "PullBlobs": frozenset(
        {
            "blobs",
            "ca_file",
            "chunk_size",
            "concurrency",
            "connections",
            "direct_io",
            "env",
            "events",
            "insecure_registries",
            "log_level",
            "operation_id",
            "proxy",
            "read_timeout_ms",
            "reference",
            "retries",
            "timeout_ms",
            "user_agent",
        }
    ),
    "PullModel": frozenset(
        {
            "allow_no_match",
            "allow_patterns",
            "artifact_type",
            "ca_file",
            "cache_dir",
            "chunk_size",
            "concurrency",
            "connections",
            "direct_io",
            "durability",
            "env",
            "events",
            "ignore_patterns",
            "insecure_registries",
            "lease_ms",
            "local_dir",
            "log_level",
            "max_entries",
            "max_entry_size",
            "max_total_size",
            "offline",
            "operation_id",
            "platform",
            "proxy",
            "read_timeout_ms",
            "reference",
            "retries",
            "timeout_ms",
            "user_agent",
            "verify",
        }
    ),
    "InspectModel": frozenset(
        {
            "artifact_type",
            "ca_file",
            "cache_dir",
            "env",
            "events",
            "insecure_registries",
            "log_level",
            "offline",
            "operation_id",
            "platform",
            "proxy",
            "reference",
            "retries",
            "timeout_ms",
            "user_agent",
        }
    ),
    "CacheList": frozenset(
        {
            "cache_dir",
            "env",
            "events",
            "log_level",
            "operation_id",
            "timeout_ms",
        }
    ),
    "CacheRemove": frozenset(
        {
            "cache_dir",
            "env",
            "events",
            "log_level",
            "operation_id",
            "reference",
            "timeout_ms",
        }
    ),
    "CachePrune": frozenset(
        {
            "cache_dir",
            "env",
            "events",
            "log_level",
            "min_age_ms",
            "operation_id",
            "timeout_ms",
        }
    ),
    "CacheSync": frozenset(
        {
            "events",
            "log_level",
            "operation_id",
            "timeout_ms",
            "wait_ms",
        }
    ),
    "CacheVerify": frozenset(
        {
            "ca_file",
            "cache_dir",
            "chunk_size",
            "concurrency",
            "connections",
            "direct_io",
            "env",
            "events",
            "insecure_registries",
            "log_level",
            "offline",
            "operation_id",
            "proxy",
            "read_timeout_ms",
            "references",
            "repair",
            "retries",
            "timeout_ms",
            "user_agent",
        }
    ),
    "PushModel": frozenset(
        {
            "ca_file",
            "cache_dir",
            "concurrency",
            "directory",
            "env",
            "events",
            "follow_symlinks",
            "format",
            "insecure_registries",
            "log_level",
            "mount_from",
            "no_digest_cache",
            "operation_id",
            "proxy",
            "reference",
            "retries",
            "timeout_ms",
            "user_agent",
        }
    ),
    "ExportModel": frozenset(
        {
            "ca_file",
            "chunk_size",
            "concurrency",
            "connections",
            "direct_io",
            "env",
            "events",
            "insecure_registries",
            "layout_dir",
            "log_level",
            "operation_id",
            "proxy",
            "read_timeout_ms",
            "reference",
            "retries",
            "tag",
            "timeout_ms",
            "user_agent",
        }
    ),
    "TestAuthentication": frozenset(
        {
            "ca_file",
            "env",
            "events",
            "insecure_registries",
            "log_level",
            "operation_id",
            "proxy",
            "reference",
            "retries",
            "timeout_ms",
            "user_agent",
        }
    ),
    "CancelOperation": frozenset(
        {
            "events",
            "id",
            "log_level",
            "operation_id",
            "timeout_ms",
        }
    ),
    "OperationProgress": frozenset(
        {
            "blobs_after",
            "events",
            "id",
            "log_level",
            "operation_id",
            "timeout_ms",
            "wait_ms",
        }
    ),
    "RuntimeStats": frozenset(
        {
            "events",
            "log_level",
            "operation_id",
            "stacks",
            "timeout_ms",
        }
    ),
}
