"""The C ABI of liboci, generated from go/abi by `cd go && go run ./cmd/abigen`; do not edit."""

from __future__ import annotations

#: What the AbiVersion export of a library of this contract returns.
ABI_VERSION = 1

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
            "certs_dir",
            "env",
            "insecure_registries",
            "log_level",
            "mirrors",
            "operation_id",
            "reference",
            "retries",
            "timeout_ms",
            "user_agent",
        }
    ),
    "PullBlob": frozenset(
        {
            "ca_file",
            "certs_dir",
            "chunk_size",
            "connections",
            "digest",
            "direct_io",
            "env",
            "insecure_registries",
            "label",
            "log_level",
            "mirrors",
            "operation_id",
            "path",
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
            "certs_dir",
            "chunk_size",
            "concurrency",
            "connections",
            "direct_io",
            "env",
            "insecure_registries",
            "log_level",
            "mirrors",
            "operation_id",
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
            "certs_dir",
            "chunk_size",
            "concurrency",
            "connections",
            "direct_io",
            "durability",
            "env",
            "ignore_patterns",
            "insecure_registries",
            "lease_ms",
            "local_dir",
            "log_level",
            "max_entries",
            "max_entry_size",
            "max_total_size",
            "mirrors",
            "offline",
            "operation_id",
            "platform",
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
            "certs_dir",
            "env",
            "insecure_registries",
            "log_level",
            "mirrors",
            "offline",
            "operation_id",
            "platform",
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
            "log_level",
            "operation_id",
            "timeout_ms",
        }
    ),
    "CacheRemove": frozenset(
        {
            "cache_dir",
            "env",
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
            "log_level",
            "min_age_ms",
            "operation_id",
            "timeout_ms",
        }
    ),
    "CacheSync": frozenset(
        {
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
            "certs_dir",
            "chunk_size",
            "concurrency",
            "connections",
            "direct_io",
            "env",
            "insecure_registries",
            "log_level",
            "mirrors",
            "offline",
            "operation_id",
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
            "certs_dir",
            "concurrency",
            "directory",
            "env",
            "follow_symlinks",
            "format",
            "insecure_registries",
            "log_level",
            "mirrors",
            "mount_from",
            "no_digest_cache",
            "operation_id",
            "reference",
            "retries",
            "timeout_ms",
            "user_agent",
        }
    ),
    "TestAuthentication": frozenset(
        {
            "ca_file",
            "certs_dir",
            "env",
            "insecure_registries",
            "log_level",
            "mirrors",
            "operation_id",
            "reference",
            "retries",
            "timeout_ms",
            "user_agent",
        }
    ),
    "CancelOperation": frozenset(
        {
            "id",
            "log_level",
            "operation_id",
            "timeout_ms",
        }
    ),
    "OperationProgress": frozenset(
        {
            "blobs_after",
            "id",
            "log_level",
            "operation_id",
            "timeout_ms",
            "wait_ms",
        }
    ),
    "RuntimeStats": frozenset(
        {
            "log_level",
            "operation_id",
            "stacks",
            "timeout_ms",
        }
    ),
}
