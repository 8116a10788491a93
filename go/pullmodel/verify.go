package pullmodel

import (
	"context"
)

// Options.Verify: a pull that hashes what it serves. By default a blob
// whose state says it is durable, or verified during this boot, is served
// without a read (package cache); a byte the disk changed since is served
// too. With Verify every such blob is hashed first, once per pull, and a
// wrong one is moved to quarantine/ the way cache verify moves it (kept for
// whoever looks into the disk, never served again); the pull then fetches
// it as it fetches any blob it lacks, or offline names it as not cached.

// rehash is blobOK under Options.Verify: blob d is hashed once per pull
// (cache.Rehash), with the blob's lease when this call does not hold it
// already (claim's second look).
func (p *puller) rehash(ctx context.Context, d string, size int64) (bool, error) {
	p.mu.Lock()
	done := p.rehashed[d]
	p.mu.Unlock()
	if done {
		return p.cache.Has(d), nil // hashed once in this pull: present is enough
	}
	held, _ := ctx.Value(heldLeaseKey{}).(string)
	ok, err := p.cache.Rehash(ctx, d, size, held == p.cache.BlobLease(d))
	if err != nil || !ok {
		return false, storeError(ctx, err)
	}
	p.hashed(d)
	return true, nil
}

// hashed records that this pull hashed blob d (re-hashed it, or verified
// it as it arrived): the later looks it takes at d need not read it again.
func (p *puller) hashed(d string) {
	p.mu.Lock()
	p.rehashed[d] = true
	p.mu.Unlock()
}

type heldLeaseKey struct{}

// holding marks ctx as inside the lease at lock.
func holding(ctx context.Context, lock string) context.Context {
	return context.WithValue(ctx, heldLeaseKey{}, lock)
}
