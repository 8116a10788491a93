package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Checking the cache. A pull serves a blob its state file trusts (durable.go)
// without hashing it: it was hashed when it was fetched. A byte that changes
// on the disk afterwards (a bad sector, a stray write) is then served until
// something re-hashes the blob; Check is that something. A wrong blob is
// moved into quarantine/ rather than deleted, so that nothing is lost and
// the evidence stays for whoever looks into the disk; the snapshots' links
// into blobs/ then dangle, and a pull fetches the blob again (or, offline,
// raises NOT_CACHED naming it) instead of serving it.

// What Check found of a blob.
const (
	StatusOK      = "ok"
	StatusCorrupt = "corrupt"
	StatusMissing = "missing"
)

// BlobCheck is what Check found of one blob and what it did about it.
type BlobCheck struct {
	Digest string `json:"digest"`
	// Size is the blob's size on disk, or for a missing one the size its
	// snapshots record.
	Size   int64  `json:"size"`
	Status string `json:"status"`
	// Path is where the blob lives in blobs/; MovedTo where a corrupt one
	// went ("" when it was left in place).
	Path    string `json:"path"`
	MovedTo string `json:"moved_to,omitempty"`
	// Action says what was done, in words ("" for a blob that is fine).
	Action string `json:"action,omitempty"`
	// Fixed is true when the blob is fine now: it was, or it was repaired,
	// or it was moved aside and no cached model uses it.
	Fixed bool `json:"fixed"`
	// Models are the cached snapshots that use the blob, repo@digest.
	Models []string `json:"models,omitempty"`
	// Error is a problem met while checking or repairing it.
	Error string `json:"error,omitempty"`
}

// SnapshotID names one cached snapshot.
type SnapshotID struct {
	Registry, Repository, Manifest string
}

func (s SnapshotID) String() string { return s.Registry + "/" + s.Repository + "@" + s.Manifest }

// ID names the snapshot s.
func (s *Snapshot) ID() SnapshotID { return SnapshotID{s.Registry, s.Repository, s.Manifest} }

// AllSnapshots returns every snapshot record in the cache.
func (c *Cache) AllSnapshots() ([]*Snapshot, error) {
	rds, err := c.repoDirs()
	if err != nil {
		return nil, err
	}
	var out []*Snapshot
	for _, rd := range rds {
		snaps := c.snapshots(rd)
		for _, d := range slices.Sorted(maps.Keys(snaps)) {
			out = append(out, withRepo(snaps[d], rd))
		}
	}
	return out, nil
}

// withRepo fills in where a record lives, which is what names it, whatever
// the record says.
func withRepo(s *Snapshot, rd repoDir) *Snapshot {
	s.Registry, s.Repository = rd.registry, rd.repo
	return s
}

// SnapshotsOf returns the snapshots a reference leads to, resolved the way
// an offline pull resolves it: a tag through refs/<tag> (a tag of an index
// leads to every snapshot of a manifest it names), a digest to its own
// snapshot or, for an index, those of its manifests.
func (c *Cache) SnapshotsOf(registry, repo, tag, digest string) ([]*Snapshot, error) {
	rd := repoDir{registry, repo, c.RepoDir(registry, repo)}
	if tag != "" {
		d, err := c.ReadRef(registry, repo, tag)
		if err != nil || d == "" {
			return nil, err
		}
		digest = d
	}
	snaps := c.snapshots(rd)
	var out []*Snapshot
	for _, d := range slices.Sorted(maps.Keys(snaps)) {
		if c.pointsTo(digest, d) {
			out = append(out, withRepo(snaps[d], rd))
		}
	}
	return out, nil
}

// CheckOptions tune Check.
type CheckOptions struct {
	// All checks every blob in blobs/, not only those of the snapshots given.
	All bool
	// MoveAside moves a corrupt blob into quarantine/ (else it is only
	// reported, and left exactly as it was).
	MoveAside bool
	// Workers is how many blobs are hashed at once (0: 4).
	Workers int
	// Progress hears of the work as it goes (nil: nobody); a
	// *transfer.Progress fits, so that a check is followed as a pull is.
	Progress Progress
}

// Progress is what Check reports to: the bytes and blobs it will hash
// (once, before the first), each chunk hashed, each blob done.
type Progress interface {
	AddTotal(bytes, blobs int64)
	AddBytes(n int64)
	BlobDone()
}

type noProgress struct{}

func (noProgress) AddTotal(int64, int64) {}
func (noProgress) AddBytes(int64)        {}
func (noProgress) BlobDone()             {}

// Checked is what Check did.
type Checked struct {
	Root string `json:"root"`
	// Checked counts the blobs looked at (missing ones included).
	Checked     int         `json:"checked"`
	BytesHashed int64       `json:"bytes_hashed"`
	Blobs       []BlobCheck `json:"blobs"`
}

type expected struct {
	size     int64 // 0: unknown
	required bool  // a file of a snapshot: its absence is a problem
	users    map[SnapshotID]bool
}

// Check re-hashes the blobs of snaps (with All, every blob of the cache,
// and snaps should be every snapshot so that each blob's users are known).
// A blob that checks out is recorded durable (re-hashed, then fsynced, as
// a pull does with a blob its state does not vouch for).
func (c *Cache) Check(ctx context.Context, snaps []*Snapshot, o CheckOptions) (*Checked, error) {
	want := map[string]*expected{}
	add := func(d string, size int64, required bool, id SnapshotID) {
		if _, _, err := SplitDigest(d); err != nil {
			return
		}
		e := want[d]
		if e == nil {
			e = &expected{users: map[SnapshotID]bool{}}
			want[d] = e
		}
		if size > 0 {
			e.size = size
		}
		e.required = e.required || required
		e.users[id] = true
	}
	for _, s := range snaps {
		id := s.ID()
		for _, e := range s.Files {
			if e.Type == "file" {
				add(e.Digest, e.Size, true, id)
			}
		}
		// A config over 4 MiB is never cached, and an archive layer's blob
		// is deleted once unpacked: these are checked only where present.
		if s.Config != "" {
			add(s.Config, 0, false, id)
		}
		for _, l := range slices.Concat(s.Layers, s.Partial) {
			add(l, 0, false, id)
		}
	}
	digests := map[string]bool{}
	for d := range want {
		digests[d] = true
	}
	if o.All {
		found, err := c.blobDigests()
		if err != nil {
			return nil, err
		}
		for _, d := range found {
			digests[d] = true
		}
	}
	order := slices.Sorted(maps.Keys(digests))
	prog := o.Progress
	if prog == nil {
		prog = noProgress{}
	}
	// Announced before the first byte, so a bar has its end from the start:
	// what is there now (a blob that vanishes meanwhile leaves it short).
	var total int64
	for _, d := range order {
		if fi, err := os.Stat(c.BlobPath(d)); err == nil {
			total += fi.Size()
		}
	}
	prog.AddTotal(total, int64(len(order)))
	results := make([]*BlobCheck, len(order))
	var hashed int64
	var mu sync.Mutex
	workers := o.Workers
	if workers <= 0 {
		workers = 4
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, max(len(order), 1)) {
		wg.Go(func() {
			for i := range next {
				e := want[order[i]]
				if e == nil {
					e = &expected{}
				}
				r, n := c.checkBlob(ctx, order[i], e, o.MoveAside, prog.AddBytes)
				prog.BlobDone()
				mu.Lock()
				hashed += n
				mu.Unlock()
				results[i] = r
			}
		})
	}
feed:
	for i := range order {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := &Checked{Root: c.Root, BytesHashed: hashed, Blobs: []BlobCheck{}}
	for _, r := range results {
		if r != nil {
			out.Checked++
			out.Blobs = append(out.Blobs, *r)
		}
	}
	return out, nil
}

// blobDigests lists the digests of the complete blobs in blobs/.
func (c *Cache) blobDigests() ([]string, error) {
	algs, err := os.ReadDir(filepath.Join(c.Root, "blobs"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, alg := range algs {
		entries, err := os.ReadDir(filepath.Join(c.Root, "blobs", alg.Name()))
		if err != nil {
			continue
		}
		for _, e := range entries {
			d := alg.Name() + ":" + e.Name()
			if e.Type().IsRegular() && isBlobName(e.Name()) {
				if _, _, err := SplitDigest(d); err == nil {
					out = append(out, d)
				}
			}
		}
	}
	return out, nil
}

// checkBlob checks one blob; nil when it is absent and nothing needs it.
func (c *Cache) checkBlob(ctx context.Context, d string, e *expected, moveAside bool, hashed func(int64)) (*BlobCheck, int64) {
	path := c.BlobPath(d)
	r := &BlobCheck{Digest: d, Size: e.size, Path: path}
	for id := range e.users {
		r.Models = append(r.Models, id.String())
	}
	slices.Sort(r.Models)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !e.required {
			return nil, 0
		}
		r.Status = StatusMissing
		return r, 0
	}
	if err != nil {
		r.Status, r.Error = StatusMissing, err.Error()
		return r, 0
	}
	r.Size = fi.Size()
	ok, n := true, int64(0)
	if e.size > 0 && fi.Size() != e.size {
		ok = false // cut short or grown: no need to hash it to know
	} else {
		ok, n, err = hashFile(ctx, path, d, hashed)
		if err != nil {
			if ctx.Err() != nil {
				return nil, n
			}
			r.Status, r.Error = StatusMissing, err.Error()
			return r, n
		}
	}
	if ok {
		r.Status, r.Fixed = StatusOK, true
		if TrustOf(path) != Durable {
			if err := MakeDurable(path); err != nil {
				r.Error = fmt.Sprintf("recording it verified: %v", err)
			}
		}
		return r, n
	}
	r.Status = StatusCorrupt
	if !moveAside {
		r.Action = "left in place"
		return r, n
	}
	moved, err := c.Quarantine(ctx, d, fi)
	switch {
	case err != nil:
		r.Error = fmt.Sprintf("moving it aside: %v", err)
	case moved == "":
		r.Action = "already replaced or removed by another process"
	default:
		r.MovedTo, r.Action = moved, "moved aside"
	}
	// A blob nothing uses is dealt with once nothing can serve it.
	r.Fixed = err == nil && len(e.users) == 0
	return r, n
}

// QuarantineDir holds the blobs Check found corrupt.
const QuarantineDir = "quarantine"

// Quarantine moves blob d, found wrong as it was when seen (checked), to
// quarantine/<alg>-<hex>.<time> and drops its state, holding the blob's
// lease so that no pull of this cache fetches it meanwhile. It returns ""
// when the blob was replaced or removed since it was checked (a pull that
// re-hashed it, say): that is left alone.
func (c *Cache) Quarantine(ctx context.Context, d string, checked os.FileInfo) (string, error) {
	l, err := c.Locker.Wait(ctx, c.LockPath(d))
	if err != nil {
		return "", err
	}
	defer l.Release()
	return c.QuarantineHeld(d, checked)
}

// QuarantineHeld is Quarantine for a caller that holds the blob's lease
// already (waiting for it would wait for itself).
func (c *Cache) QuarantineHeld(d string, checked os.FileInfo) (string, error) {
	path := c.BlobPath(d)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if checked != nil && (!os.SameFile(fi, checked) || fi.Size() != checked.Size() || !fi.ModTime().Equal(checked.ModTime())) {
		return "", nil
	}
	alg, hx, _ := SplitDigest(d)
	dir := filepath.Join(c.Root, QuarantineDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, alg+"-"+hx+"."+time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	// Without its blob the state vouches for nothing; a blob fetched again
	// gets a fresh one.
	if err := os.Remove(statePath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return dst, err
	}
	return dst, nil
}
