package abi

// PullManifestRequest is PullManifest's input.
type PullManifestRequest struct {
	Control
	Environ
	Network
	Reference string `json:"reference"`
}

// PullBlobRequest is PullBlob's input.
type PullBlobRequest struct {
	Control
	Environ
	Network
	Transfer
	Reference string `json:"reference"`
	Blob
}

// PullBlobsRequest is PullBlobs' input.
type PullBlobsRequest struct {
	Control
	Environ
	Network
	Transfer
	Reference string `json:"reference"`
	Blobs     []Blob `json:"blobs"`
	// Concurrency is how many blobs are fetched at once (0: the default).
	Concurrency int `json:"concurrency,omitempty"`
}

// TestAuthenticationRequest is TestAuthentication's input.
type TestAuthenticationRequest struct {
	Control
	Environ
	Network
	Reference string `json:"reference"`
}

// Selection picks a model out of an index and says whether to go online.
type Selection struct {
	// Offline nil: on when OCI_CLIENT_OFFLINE or HF_HUB_OFFLINE is set to
	// 1, true, yes or on in env.
	Offline      *bool  `json:"offline,omitempty"`
	Platform     string `json:"platform,omitempty"`
	ArtifactType string `json:"artifact_type,omitempty"`
}

// PullModelRequest is PullModel's input.
type PullModelRequest struct {
	Control
	Environ
	Network
	Transfer
	Cache
	Selection
	Reference      string   `json:"reference"`
	LocalDir       string   `json:"local_dir,omitempty"`
	AllowPatterns  []string `json:"allow_patterns,omitempty"`
	IgnorePatterns []string `json:"ignore_patterns,omitempty"`
	// AllowNoMatch: patterns that select no file give an empty directory,
	// not NO_MATCH (vLLM's small-file pull).
	AllowNoMatch bool  `json:"allow_no_match,omitempty"`
	Concurrency  int   `json:"concurrency,omitempty"`
	LeaseMS      int64 `json:"lease_ms,omitempty"`
	// Durability is "background" (the default) or "sync".
	Durability string `json:"durability,omitempty"`
	// Verify re-hashes every blob served from the cache before serving it.
	// nil: on when OCI_CLIENT_VERIFY is set to 1, true, yes or on in env.
	Verify *bool `json:"verify,omitempty"`
	// Archive limits (0: the defaults).
	MaxEntries   int   `json:"max_entries,omitempty"`
	MaxEntrySize int64 `json:"max_entry_size,omitempty"`
	MaxTotalSize int64 `json:"max_total_size,omitempty"`
}

// ExportModelRequest is ExportModel's input: what Reference names goes
// into the OCI image layout at LayoutDir, named by Tag in its index.json
// (default: the reference's tag).
type ExportModelRequest struct {
	Control
	Environ
	Network
	Transfer
	Reference string `json:"reference"`
	LayoutDir string `json:"layout_dir"`
	Tag       string `json:"tag,omitempty"`
	// Concurrency is how many blobs are fetched at once (0: the default).
	Concurrency int `json:"concurrency,omitempty"`
}

// InspectModelRequest is InspectModel's input.
type InspectModelRequest struct {
	Control
	Environ
	Network
	Cache
	Selection
	Reference string `json:"reference"`
}

// CacheListRequest is CacheList's input.
type CacheListRequest struct {
	Control
	Environ
	Cache
}

// CacheRemoveRequest is CacheRemove's input: Reference names a tag
// (removed, and its snapshot when no other tag points there) or a digest
// (its snapshot and the tags pointing to it).
type CacheRemoveRequest struct {
	Control
	Environ
	Cache
	Reference string `json:"reference"`
}

// CachePruneRequest is CachePrune's input.
type CachePruneRequest struct {
	Control
	Environ
	Cache
	// MinAgeMS keeps what is younger (a pull running now may not have
	// linked it yet). Negative: the default, an hour.
	MinAgeMS int64 `json:"min_age_ms"`
}

// CacheSyncRequest is CacheSync's input.
type CacheSyncRequest struct {
	Control
	// WaitMS bounds the wait: after it the call returns what it made
	// durable and how many blobs are left, as a success. 0 or absent: no
	// bound. (timeout_ms fails with OPERATION_TIMEOUT instead.)
	WaitMS int64 `json:"wait_ms,omitempty"`
}

// CacheVerifyRequest is CacheVerify's input. Network and Transfer serve
// the pulls that repair.
type CacheVerifyRequest struct {
	Control
	Environ
	Network
	Transfer
	Cache
	// References restricts the check to the blobs of these cached models
	// (tags or digests); none: every blob in the cache.
	References []string `json:"references,omitempty"`
	// Repair false reports only: nothing is moved or fetched (nil: true).
	Repair *bool `json:"repair,omitempty"`
	// Offline moves a wrong blob aside but fetches nothing (nil: on when
	// OCI_CLIENT_OFFLINE or HF_HUB_OFFLINE is set, as for pulls).
	Offline     *bool `json:"offline,omitempty"`
	Concurrency int   `json:"concurrency,omitempty"`
}

// PushModelRequest is PushModel's input: Reference is where to publish,
// and the cache keeps the digests of published files.
type PushModelRequest struct {
	Control
	Environ
	Network
	Cache
	Reference string `json:"reference"`
	Directory string `json:"directory"`
	// Format is "modelpack" (default) or "docker".
	Format      string   `json:"format,omitempty"`
	Concurrency int      `json:"concurrency,omitempty"`
	MountFrom   []string `json:"mount_from,omitempty"`
	// NoDigestCache hashes every file and remembers nothing.
	NoDigestCache bool `json:"no_digest_cache,omitempty"`
	// FollowSymlinks follows every symlink in Directory, not only those
	// into it or into the blobs of a cache.
	FollowSymlinks bool `json:"follow_symlinks,omitempty"`
}

// CancelOperationRequest names the call to cancel by its operation_id.
// Cancelling an id whose call has not started yet cancels that call when
// it starts.
type CancelOperationRequest struct {
	Control
	ID string `json:"id"`
}

// OperationProgressRequest names the call whose progress to read. WaitMS
// > 0 makes the read wait (up to that many milliseconds, at most 1000)
// until more than BlobsAfter blobs are done or the call ends.
type OperationProgressRequest struct {
	Control
	ID         string `json:"id"`
	WaitMS     int64  `json:"wait_ms,omitempty"`
	BlobsAfter int64  `json:"blobs_after,omitempty"`
}

// RuntimeStatsRequest is RuntimeStats's input. Stacks asks for every
// goroutine's stack too: what a leak check reports when the count did not
// come back.
type RuntimeStatsRequest struct {
	Control
	Stacks bool `json:"stacks,omitempty"`
}
