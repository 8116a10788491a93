package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/oci-client/liboci/transfer"
)

// The cache as a content store. Its callers name blobs by digest; what a
// blob in blobs/ may be trusted for, how one enters (state, durability),
// who may write one (leases) and what is removed when, are decided here:
//
//	Present(d, size)      is blob d here, with content the cache may serve?
//	Rehash(d, size, held) hash blob d now, whatever its state; move a wrong one aside
//	BlobLease(d)          the lease a writer of blob d holds (Locker: TryLock, Wait)
//	Incoming(d)           where the download of blob d is written, to be renamed in place
//	Commit(d)             blob d was just verified into place: record it trusted
//	Adopt(src, d)         move a file known to hash to d into the cache as blob d
//	WritePolicy()         how downloads into the cache are kept (transfer.Policy)
//	PushDigests()         the memory of published files' digests (pushdigests.go)
//	Prune(minAge)         garbage collection (admin.go)
//
// Blob paths stay readable (BlobPath): snapshots are symlinks into blobs/,
// and a local directory copies from there.

// Option is a setting of Open. An option that cannot apply is an error.
type Option func(*settings) error

type settings struct {
	lease  time.Duration
	sync   bool
	direct bool
}

// defaults are the settings of a cache opened with no options.
func defaults() settings { return settings{lease: DefaultLease} }

// WithLease sets how long another process's lease is honoured without a
// heartbeat (default DefaultLease). Zero keeps the default.
func WithLease(d time.Duration) Option {
	return func(s *settings) error {
		if d < 0 {
			return fmt.Errorf("a lease of %s: it must not be negative", d)
		}
		if d > 0 {
			s.lease = d
		}
		return nil
	}
}

// WithSync makes Commit fsync each blob before it returns (a pull that is
// on disk when it returns). Default: blobs are made durable in the
// background, off the pull's path (durable.go).
func WithSync(sync bool) Option {
	return func(s *settings) error { s.sync = sync; return nil }
}

// WithDirectIO writes downloads into the cache with O_DIRECT where the
// file system allows it. Default: through the page cache, where the loader
// that reads the model next finds it.
func WithDirectIO(direct bool) Option {
	return func(s *settings) error { s.direct = direct; return nil }
}

// syncer makes blobs durable after pulls return: one per process, so that
// a library call returns while its fsyncs go on, and FlushAll (the exit
// hook) reaches them all.
var syncer = NewSyncer()

// WaitDurable blocks until every blob committed so far in this process is
// durable (tests, and callers about to power off).
func WaitDurable() { syncer.Wait() }

// Present says whether the cache holds blob d (of size, when > 0) with
// content it may serve: known durable, or verified during this boot.
// Anything else is re-hashed first, and removed when it proves wrong; a
// blob of the wrong size is removed whatever its state says. A blob found
// good joins the background fsyncs (or is made durable now). A ctx that
// ends is returned as ctx.Err().
func (c *Cache) Present(ctx context.Context, d string, size int64) (bool, error) {
	path, fi, found, err := c.lookup(d)
	if err != nil || !found {
		return false, err
	}
	if size > 0 && fi.Size() != size {
		// Cut short or grown since it was verified, whatever its state says.
		RemoveBlob(path)
		return false, nil
	}
	trust := TrustOf(path)
	if trust == Unverified {
		ok, err := FileMatches(ctx, path, d)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, err
		}
		if !ok {
			RemoveBlob(path)
			return false, nil
		}
	}
	return true, c.keep(path, trust)
}

// Trusted says whether blob d is here with a state that vouches for it,
// without reading it (Present without the re-hash).
func (c *Cache) Trusted(d string) bool {
	path, _, found, err := c.lookup(d)
	return err == nil && found && TrustOf(path) != Unverified
}

// lookup is blob d's file and what stat says of it; found is false when
// there is none.
func (c *Cache) lookup(d string) (path string, fi fs.FileInfo, found bool, err error) {
	if _, _, err := SplitDigest(d); err != nil {
		return "", nil, false, err
	}
	path = c.BlobPath(d)
	fi, err = os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil, false, nil
	}
	return path, fi, err == nil, err
}

// Rehash hashes blob d (of size, when > 0) whatever its state says: a good
// one is kept as Present keeps it, a wrong one is moved to quarantine/ (as
// Check moves it) and reported absent. held says the caller holds the
// blob's lease already. A blob removed meanwhile is absent, not an error.
func (c *Cache) Rehash(ctx context.Context, d string, size int64, held bool) (bool, error) {
	path, fi, found, err := c.lookup(d)
	if err != nil || !found {
		return false, err
	}
	trust := TrustOf(path)
	ok := size <= 0 || fi.Size() == size
	if ok {
		ok, err = FileMatches(ctx, path, d)
		switch {
		case ctx.Err() != nil:
			return false, ctx.Err()
		case errors.Is(err, fs.ErrNotExist):
			return false, nil // removed meanwhile (a prune): fetched as any missing blob
		case err != nil:
			return false, err
		}
	}
	if !ok {
		if held {
			_, err = c.QuarantineHeld(d, fi)
		} else {
			_, err = c.Quarantine(ctx, d, fi)
		}
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, fmt.Errorf("moving the wrong blob %s aside: %w", d, err)
		}
		return false, nil
	}
	return true, c.keep(path, trust)
}

// keep records a blob found good, whose state said trust: a durable one
// stays as it is, one verified this boot joins the background fsyncs (or
// is synced now, WithSync), one just re-hashed for want of a state is made
// durable.
func (c *Cache) keep(path string, trust Trust) error {
	switch {
	case trust == Durable:
		return nil
	case trust == ThisBoot && !c.sync:
		syncer.Add(path)
		return nil
	}
	return MakeDurable(path)
}

// Commit records blob d, just verified into place, as trusted: made
// durable now (WithSync), else marked verified this boot and queued for
// the background fsync. It runs as each blob lands: another process
// waiting on the blob's lease then trusts it at once instead of
// re-hashing it.
func (c *Cache) Commit(d string) error {
	if _, _, err := SplitDigest(d); err != nil {
		return err
	}
	path := c.BlobPath(d)
	if c.sync {
		return MakeDurable(path)
	}
	if err := MarkVerified(path); err != nil {
		return err
	}
	syncer.Add(path)
	return nil
}

// Adopt moves the file at src, which the caller verified hashes to d,
// into the cache as blob d and commits it; a copy the cache trusts
// already is kept instead (src is then left where it is).
func (c *Cache) Adopt(src, d string) error {
	if _, _, err := SplitDigest(d); err != nil {
		return err
	}
	dst := c.BlobPath(d)
	if _, err := os.Stat(dst); err == nil && TrustOf(dst) != Unverified {
		return nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(src, 0o644); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	return c.Commit(d)
}

// Staging makes a temporary file for blob d beside where it will live,
// under a name of its own (a download of d under way writes Incoming(d)
// under the blob's lease), for Adopt.
func (c *Cache) Staging(d string) (*os.File, error) {
	if _, _, err := SplitDigest(d); err != nil {
		return nil, err
	}
	dst := c.BlobPath(d)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	return os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".clone-*")
}

// Has says whether anything is at blob d's place, trusted or not.
func (c *Cache) Has(d string) bool {
	if _, _, err := SplitDigest(d); err != nil {
		return false
	}
	_, err := os.Lstat(c.BlobPath(d))
	return !errors.Is(err, fs.ErrNotExist)
}

// RemoveDigest deletes blob d and its state.
func (c *Cache) RemoveDigest(d string) {
	if _, _, err := SplitDigest(d); err == nil {
		RemoveBlob(c.BlobPath(d))
	}
}

// WritePolicy is how a download into the cache is kept: under the blob's
// lease (BlobLease), which keeps other writers away also where flock does
// nothing, and made durable by the cache (Commit), off the download's path
// unless WithSync.
func (c *Cache) WritePolicy() transfer.Policy {
	return transfer.Policy{Leased: true, DeferSync: !c.sync, Buffered: !c.direct}
}

// Incoming is where the download of blob d is written: the blob's own
// place, which the download reaches only by renaming a verified file
// there (its partial data waits beside it, as <hex>.incomplete).
func (c *Cache) Incoming(d string) string { return c.BlobPath(d) }

// BlobLease is the lease file of work on blob d (Locker.TryLock, Wait).
func (c *Cache) BlobLease(d string) string { return c.LockPath(d) }
