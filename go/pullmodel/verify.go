package pullmodel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/oci"
)

// Options.Verify: a pull that hashes what it serves. By default a blob
// whose state says it is durable, or verified during this boot, is served
// without a read (package cache); a byte the disk changed since is served
// too. With Verify every such blob is hashed first, once per pull, and a
// wrong one is moved to quarantine/ the way cache verify moves it (kept for
// whoever looks into the disk, never served again); the pull then fetches
// it as it fetches any blob it lacks, or offline names it as not cached.

// rehash is blobOK under Options.Verify for the blob at path (fi), which
// exists.
func (p *puller) rehash(ctx context.Context, d string, size int64, path string, fi os.FileInfo) (bool, error) {
	p.mu.Lock()
	done := p.rehashed[d]
	p.mu.Unlock()
	if done {
		return true, nil
	}
	trust := cache.TrustOf(path)
	ok := size <= 0 || fi.Size() == size
	if ok {
		var err error
		ok, err = cache.FileMatches(ctx, path, d)
		switch {
		case ctx.Err() != nil:
			return false, oci.AsError(ctx.Err())
		case errors.Is(err, fs.ErrNotExist):
			return false, nil // removed meanwhile (a prune): fetched as any missing blob
		case err != nil:
			return false, wrap(oci.CodeIO, err)
		}
	}
	if !ok {
		if _, err := p.quarantine(ctx, d, fi); err != nil {
			if ctx.Err() != nil {
				return false, oci.AsError(ctx.Err())
			}
			return false, wrap(oci.CodeIO, fmt.Errorf("moving the wrong blob %s aside: %w", d, err))
		}
		return false, nil
	}
	p.hashed(d)
	return true, wrap(oci.CodeIO, p.keep(path, trust))
}

// hashed records that this pull hashed blob d (re-hashed it, or verified
// it as it arrived): the later looks it takes at d need not read it again.
func (p *puller) hashed(d string) {
	p.mu.Lock()
	p.rehashed[d] = true
	p.mu.Unlock()
}

// quarantine moves wrong blob d aside, with its lease: taken here, unless
// this call already holds it (claim's second look).
func (p *puller) quarantine(ctx context.Context, d string, fi os.FileInfo) (string, error) {
	if held, _ := ctx.Value(heldLeaseKey{}).(string); held == p.cache.LockPath(d) {
		return p.cache.QuarantineHeld(d, fi)
	}
	return p.cache.Quarantine(ctx, d, fi)
}

type heldLeaseKey struct{}

// holding marks ctx as inside the lease at lock.
func holding(ctx context.Context, lock string) context.Context {
	return context.WithValue(ctx, heldLeaseKey{}, lock)
}
