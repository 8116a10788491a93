package capi

import (
	"context"

	"github.com/oci-client/liboci/pushmodel"
)

// PushRequest is PushModel's input: Reference is where to publish, and
// the cache root (cache_dir, $OCI_CLIENT_CACHE, ~/.cache/oci-client)
// keeps the digests of published files.
type PushRequest struct {
	CacheRequest
	Directory string `json:"directory"`
	// Format is "modelpack" (default) or "docker".
	Format      string   `json:"format"`
	Concurrency int      `json:"concurrency"`
	MountFrom   []string `json:"mount_from"`
	// NoDigestCache hashes every file and remembers nothing.
	NoDigestCache bool `json:"no_digest_cache"`
	// FollowSymlinks follows every symlink in Directory, not only those
	// into it or into the blobs of a cache (see pushmodel.Options).
	FollowSymlinks bool `json:"follow_symlinks"`
}

// PushModel is the body of the PushModel export.
func PushModel(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r PushRequest) (*pushmodel.Result, error) {
		o := pushmodel.Options{Format: r.Format, Concurrency: r.Concurrency, MountFrom: r.MountFrom, FollowSymlinks: r.FollowSymlinks}
		root, err := r.root()
		if err != nil && !r.NoDigestCache {
			return nil, err
		}
		// The cache's snapshots publish whether or not digests are remembered.
		o.SnapshotCache = root
		if !r.NoDigestCache {
			o.CacheDir = root
		}
		return pushmodel.Push(ctx, r.client(), r.Directory, r.Reference, o)
	})
}
