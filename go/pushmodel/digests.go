package pushmodel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"
)

// digestCacheDir is where, under the cache root, digests of published
// files are remembered.
const digestCacheDir = "push-digests"

// racyWindow: a file changed this shortly before it was hashed may have
// changed again within the same mtime tick (git's "racily clean" problem):
// its remembered digest is checked by hashing again.
const racyWindow = 2 * time.Second

// hashFirstBelow: files smaller than this are hashed before the push
// starts (milliseconds), so the registry's answer for them tells a cold
// push from a re-push before the large files are read (see oci.PushBlobs).
const hashFirstBelow = 32 << 20

// digestEntry is what is remembered of one file: its identity on disk and
// its digest. Where the blob went is the cache's business (cache.Holders),
// keyed by digest, so that a copy of the file mounts too.
type digestEntry struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	Inode   uint64 `json:"inode"`
	Device  uint64 `json:"device"`
	Digest  string `json:"digest"`
	// RecordedNS is when the digest was taken; one taken within
	// racyWindow of the mtime is not trusted without hashing again.
	RecordedNS int64 `json:"recorded_ns"`
}

// digestCache remembers file digests keyed by path and checked against
// size, mtime, inode and device, so that publishing an unchanged
// directory again hashes nothing. A file that changed in any of those is
// hashed again. The zero value (no root) remembers nothing.
type digestCache struct{ root string }

func (c digestCache) entryPath(abs string) string {
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(c.root, hex.EncodeToString(sum[:16])+".json")
}

func identity(abs string, fi os.FileInfo) digestEntry {
	e := digestEntry{Path: abs, Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.Inode, e.Device = uint64(st.Ino), uint64(st.Dev) //nolint:unconvert // int32 on darwin
	}
	return e
}

func (e digestEntry) same(o digestEntry) bool {
	return e.Path == o.Path && e.Size == o.Size && e.MtimeNS == o.MtimeNS && e.Inode == o.Inode && e.Device == o.Device
}

// lookup returns what is remembered of the file id names, and whether its
// digest can be trusted without reading the file.
func (c digestCache) lookup(id digestEntry) (e digestEntry, trusted bool) {
	if c.root == "" {
		return digestEntry{}, false
	}
	b, err := os.ReadFile(c.entryPath(id.Path))
	if err != nil || json.Unmarshal(b, &e) != nil || !e.same(id) || e.Digest == "" {
		return digestEntry{}, false
	}
	return e, e.RecordedNS-e.MtimeNS >= int64(racyWindow)
}

// put writes e (best effort: a cache that cannot be written only costs
// a hash next time).
func (c digestCache) put(e digestEntry) {
	if c.root == "" || os.MkdirAll(c.root, 0o755) != nil {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(c.root, ".entry-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), c.entryPath(e.Path)) != nil {
		os.Remove(tmp.Name())
	}
}

// firstDigests gives each file the digest known without reading it (from
// the cache of digests, or a cache blob's name) and hashes the small ones;
// the others are left "" for the push to hash.
func firstDigests(ctx context.Context, c digestCache, files []file) ([]digestEntry, error) {
	out := make([]digestEntry, len(files))
	var small []file
	var at []int
	for i, f := range files {
		abs, err := filepath.Abs(f.abs)
		if err != nil {
			return nil, err
		}
		id := identity(abs, f.info)
		if e, trusted := c.lookup(id); trusted {
			out[i] = e
		} else if f.named != "" {
			id.Digest, id.RecordedNS = f.named, time.Now().UnixNano()
			out[i] = id
			c.put(id)
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
		c.put(e)
	}
	return out, nil
}

// digestFiles gives each file its digest, from the cache or by hashing,
// hashing several files at once (one core each).
func digestFiles(ctx context.Context, c digestCache, files []file) ([]digestEntry, error) {
	out := make([]digestEntry, len(files))
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

func digestFile(ctx context.Context, c digestCache, f file) (digestEntry, error) {
	abs, err := filepath.Abs(f.abs)
	if err != nil {
		return digestEntry{}, err
	}
	id := identity(abs, f.info)
	if known, trusted := c.lookup(id); trusted {
		return known, nil
	}
	fh, err := os.Open(f.abs)
	if err != nil {
		return digestEntry{}, err
	}
	defer fh.Close()
	h := sha256.New()
	// 1 MiB reads: a multi-GB shard in thousands of syscalls, not millions.
	n, err := io.CopyBuffer(h, &ctxReader{ctx: ctx, r: fh}, make([]byte, 1<<20))
	if err != nil {
		return digestEntry{}, err
	}
	after, err := fh.Stat()
	if err != nil {
		return digestEntry{}, err
	}
	if n != f.size || !identity(abs, after).same(id) {
		return digestEntry{}, &changedError{path: f.rel}
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
