package pushmodel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/oci-client/liboci/cache"
)

// hashFirstBelow: files smaller than this are hashed before the push
// starts (milliseconds), so the registry's answer for them tells a cold
// push from a re-push before the large files are read (see oci.PushBlobs).
const hashFirstBelow = 32 << 20

// firstDigests gives each file the digest known without reading it (from
// the cache of digests, or a cache blob's name) and hashes the small ones;
// the others are left "" for the push to hash.
func firstDigests(ctx context.Context, c cache.PushDigests, files []file) ([]cache.FileDigest, error) {
	out := make([]cache.FileDigest, len(files))
	var small []file
	var at []int
	for i, f := range files {
		abs, err := filepath.Abs(f.abs)
		if err != nil {
			return nil, err
		}
		id := cache.Identity(abs, f.info)
		if e, trusted := c.Lookup(id); trusted {
			out[i] = e
		} else if f.named != "" {
			id.Digest, id.RecordedNS = f.named, time.Now().UnixNano()
			out[i] = id
			c.Put(id)
		} else if f.size < hashFirstBelow {
			small, at = append(small, f), append(at, i)
		}
	}
	hashed, err := digestFiles(ctx, c, small)
	if err != nil {
		return nil, err
	}
	for k, e := range hashed {
		out[at[k]] = e
		c.Put(e)
	}
	return out, nil
}

// digestFiles gives each file its digest, from the cache or by hashing,
// hashing several files at once (one core each).
func digestFiles(ctx context.Context, c cache.PushDigests, files []file) ([]cache.FileDigest, error) {
	out := make([]cache.FileDigest, len(files))
	order := make([]int, len(files))
	for i := range order {
		order[i] = i
	}
	// Largest first, so that one big shard does not start last.
	slices.SortStableFunc(order, func(a, b int) int { return int(min(max(files[b].size-files[a].size, -1), 1)) })
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				e, err := digestFile(ctx, c, files[i])
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				out[i] = e
			}
		}()
	}
	for _, i := range order {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, ctx.Err()
}

func digestFile(ctx context.Context, c cache.PushDigests, f file) (cache.FileDigest, error) {
	abs, err := filepath.Abs(f.abs)
	if err != nil {
		return cache.FileDigest{}, err
	}
	id := cache.Identity(abs, f.info)
	if known, trusted := c.Lookup(id); trusted {
		return known, nil
	}
	fh, err := os.Open(f.abs)
	if err != nil {
		return cache.FileDigest{}, err
	}
	defer fh.Close()
	h := sha256.New()
	// 1 MiB reads: a multi-GB shard in thousands of syscalls, not millions.
	n, err := io.CopyBuffer(h, &ctxReader{ctx: ctx, r: fh}, make([]byte, 1<<20))
	if err != nil {
		return cache.FileDigest{}, err
	}
	after, err := fh.Stat()
	if err != nil {
		return cache.FileDigest{}, err
	}
	if n != f.size || !cache.Identity(abs, after).Same(id) {
		return cache.FileDigest{}, &changedError{path: f.rel}
	}
	id.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	id.RecordedNS = time.Now().UnixNano()
	return id, nil
}

// changedError: a file changed while it was read.
type changedError struct{ path string }

func (e *changedError) Error() string {
	return e.path + " changed while it was being read: publish a directory that is not being written"
}

// ctxReader stops a long hash when the call is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
