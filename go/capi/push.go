package capi

import (
	"context"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/pushmodel"
)

// PushModel is the body of the PushModel export: the cache root keeps the
// digests of published files.
func PushModel(ctx context.Context, input []byte) []byte {
	return Call(ctx, "PushModel", input, func(ctx context.Context, r abi.PushModelRequest) (*abi.PushModelResult, error) {
		o := pushmodel.Options{Format: r.Format, Concurrency: r.Concurrency, MountFrom: r.MountFrom, FollowSymlinks: r.FollowSymlinks}
		root, err := cacheRoot(r.Cache, r.Environ)
		if err != nil && !r.NoDigestCache {
			return nil, err
		}
		// The cache's snapshots publish whether or not digests are remembered.
		o.SnapshotCache = root
		if !r.NoDigestCache {
			o.CacheDir = root
		}
		c, err := newClient(r.Environ, r.Network, nil)
		if err != nil {
			return nil, err
		}
		res, err := pushmodel.Push(ctx, c, r.Directory, r.Reference, o)
		if err != nil {
			return nil, err
		}
		w := wirePush(res)
		return &w, nil
	})
}
