package cache

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// SnapshotInfo describes one cached model manifest.
type SnapshotInfo struct {
	Digest   string    `json:"digest"`
	Tags     []string  `json:"tags"`
	Path     string    `json:"path"`
	Format   string    `json:"format"`
	Files    int       `json:"files"`
	Size     int64     `json:"size"`
	LastUsed time.Time `json:"last_used"`
}

// RepoInfo describes one cached repository.
type RepoInfo struct {
	Registry   string         `json:"registry"`
	Repository string         `json:"repository"`
	Snapshots  []SnapshotInfo `json:"snapshots"`
	Size       int64          `json:"size"`
}

// Listing is what `cache ls` shows.
type Listing struct {
	Root  string     `json:"root"`
	Repos []RepoInfo `json:"repos"`
	// Size is what blobs/ holds on disk, shared content counted once.
	Size int64 `json:"size"`
}

type repoDir struct{ registry, repo, dir string }

func (c *Cache) repoDirs() ([]repoDir, error) {
	regs, err := os.ReadDir(filepath.Join(c.Root, "models"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []repoDir
	for _, reg := range regs {
		repos, err := os.ReadDir(filepath.Join(c.Root, "models", reg.Name()))
		if err != nil {
			continue
		}
		for _, r := range repos {
			out = append(out, repoDir{reg.Name(), strings.ReplaceAll(r.Name(), "+", "/"), filepath.Join(c.Root, "models", reg.Name(), r.Name())})
		}
	}
	return out, nil
}

// snapshots returns a repository's snapshot records by manifest digest.
func (c *Cache) snapshots(rd repoDir) map[string]*Snapshot {
	out := map[string]*Snapshot{}
	names, _ := filepath.Glob(filepath.Join(rd.dir, "snapshots", "*.json"))
	for _, n := range names {
		if s, err := readSnapshotFile(n); err == nil && s != nil {
			out[s.Manifest] = s
		}
	}
	return out
}

// refs returns a repository's tags and the digests they point to.
func (c *Cache) refs(rd repoDir) map[string]string {
	out := map[string]string{}
	entries, _ := os.ReadDir(filepath.Join(rd.dir, "refs"))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			continue
		}
		if d, err := c.ReadRef(rd.registry, rd.repo, e.Name()); err == nil && d != "" {
			out[e.Name()] = d
		}
	}
	return out
}

// List describes everything in the cache.
func (c *Cache) List() (*Listing, error) {
	rds, err := c.repoDirs()
	if err != nil {
		return nil, err
	}
	l := &Listing{Root: c.Root, Repos: []RepoInfo{}}
	for _, rd := range rds {
		snaps := c.snapshots(rd)
		refs := c.refs(rd)
		ri := RepoInfo{Registry: rd.registry, Repository: rd.repo, Snapshots: []SnapshotInfo{}}
		for _, d := range slices.Sorted(maps.Keys(snaps)) {
			s := snaps[d]
			si := SnapshotInfo{Digest: d, Tags: []string{}, Path: c.SnapshotDir(rd.registry, rd.repo, d), Format: s.Format}
			seen := map[string]bool{}
			for _, e := range s.Files {
				if e.Type == "file" {
					si.Files++
					if !seen[e.Digest] {
						seen[e.Digest] = true
						si.Size += e.Size
					}
				}
			}
			for _, tag := range slices.Sorted(maps.Keys(refs)) {
				if c.pointsTo(refs[tag], d) {
					si.Tags = append(si.Tags, tag)
				}
			}
			if fi, err := os.Stat(c.snapshotRecord(rd.registry, rd.repo, d)); err == nil {
				si.LastUsed = fi.ModTime().UTC()
			}
			ri.Size += si.Size
			ri.Snapshots = append(ri.Snapshots, si)
		}
		if len(ri.Snapshots) > 0 {
			l.Repos = append(l.Repos, ri)
		}
	}
	_ = filepath.WalkDir(filepath.Join(c.Root, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && isBlobName(d.Name()) {
			if fi, err := d.Info(); err == nil {
				l.Size += fi.Size()
			}
		}
		return nil
	})
	return l, nil
}

func isBlobName(n string) bool {
	return len(n) == 64 && !strings.Contains(n, ".") || len(n) == 128 && !strings.Contains(n, ".")
}

// Removed reports what Remove or Prune deleted.
type Removed struct {
	Snapshots []string `json:"snapshots"`
	Tags      []string `json:"tags"`
	Blobs     int      `json:"blobs"`
	Bytes     int64    `json:"bytes"`
}

// Remove deletes a tag (tag != ""), or a manifest's snapshot and every tag
// pointing to it (digest != ""). A snapshot no tag points to any more goes
// too, and so do the blobs only it used. found is false when nothing matched.
func (c *Cache) Remove(registry, repo, tag, digest string) (rm *Removed, found bool, err error) {
	rd := repoDir{registry, repo, c.RepoDir(registry, repo)}
	refs := c.refs(rd)
	snaps := c.snapshots(rd)
	rm = &Removed{Snapshots: []string{}, Tags: []string{}}
	if tag != "" {
		d, ok := refs[tag]
		if !ok {
			return rm, false, nil
		}
		if err := os.Remove(c.refPath(registry, repo, tag)); err != nil {
			return rm, true, err
		}
		rm.Tags = append(rm.Tags, tag)
		delete(refs, tag)
		for _, other := range refs {
			if other == d {
				return rm, true, nil // still tagged: keep the snapshot
			}
		}
		// A tag of an index names the snapshot of the manifest chosen from it.
		digest = d
		for _, s := range slices.Sorted(maps.Keys(snaps)) {
			if s != d && c.pointsTo(d, s) {
				digest = s
			}
		}
	} else {
		_, hasSnap := snaps[digest]
		tagged := false
		for t, d := range refs {
			if c.pointsTo(d, digest) {
				tagged = true
				os.Remove(c.refPath(registry, repo, t))
				rm.Tags = append(rm.Tags, t)
			}
		}
		if !hasSnap && !tagged {
			return rm, false, nil
		}
	}
	sort.Strings(rm.Tags)
	s := snaps[digest]
	if s == nil {
		return rm, true, nil
	}
	if err := os.RemoveAll(c.SnapshotDir(registry, repo, digest)); err != nil {
		return rm, true, err
	}
	if err := os.Remove(c.snapshotRecord(registry, repo, digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rm, true, err
	}
	rm.Snapshots = append(rm.Snapshots, digest)
	// The blobs only that snapshot used.
	used, err := c.referenced()
	if err != nil {
		return rm, true, err
	}
	for _, d := range snapshotDigests(s) {
		if !used[d] {
			c.removeContent(d, rm)
		}
	}
	return rm, true, nil
}

// pointsTo says whether a tag's digest leads to snapshot d: it is d, or
// an index that names d.
func (c *Cache) pointsTo(ref, d string) bool {
	if ref == d {
		return true
	}
	if _, raw, ok, _ := c.GetManifest(ref); ok {
		for _, child := range childDigests(raw) {
			if child == d {
				return true
			}
		}
	}
	return false
}

// snapshotDigests lists every blob, tree and manifest a snapshot uses.
func snapshotDigests(s *Snapshot) []string {
	out := []string{s.Manifest}
	if s.Config != "" {
		out = append(out, s.Config)
	}
	out = append(out, s.Layers...)
	out = append(out, s.Partial...) // their trees
	for _, e := range s.Files {
		if e.Digest != "" {
			out = append(out, e.Digest)
		}
	}
	return out
}

// referenced is every digest a snapshot or a tag still uses.
func (c *Cache) referenced() (map[string]bool, error) {
	rds, err := c.repoDirs()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, rd := range rds {
		for _, s := range c.snapshots(rd) {
			for _, d := range snapshotDigests(s) {
				used[d] = true
			}
		}
		for _, d := range c.refs(rd) {
			used[d] = true
			// An index's children are chosen at pull time; keep what it names.
			if _, raw, ok, _ := c.GetManifest(d); ok {
				for _, child := range childDigests(raw) {
					used[child] = true
				}
			}
		}
	}
	return used, nil
}

// removeContent deletes whatever the cache holds under digest d.
func (c *Cache) removeContent(d string, rm *Removed) {
	if _, _, err := SplitDigest(d); err != nil {
		return
	}
	for _, p := range []string{c.BlobPath(d), c.digestPath("trees", d, ".json"), c.digestPath("manifests", d, ".json")} {
		if fi, err := os.Stat(p); err == nil {
			if os.Remove(p) == nil {
				rm.Blobs++
				rm.Bytes += fi.Size()
			}
		}
	}
	os.Remove(statePath(c.BlobPath(d)))
	// Where the registry holds it is only worth knowing while the cache
	// has the blob to publish: a removed model leaves nothing behind.
	os.Remove(c.holdersPath(d))
}

// Prune deletes what no snapshot or tag uses: blobs, trees, manifests,
// partial downloads and staging directories, when older than minAge (a
// pull running now may not have linked what it fetched yet) and not under
// a lease; and the records that can no longer serve: upload sessions past
// UploadTTL, push-digests entries whose file is gone or changed.
func (c *Cache) Prune(minAge time.Duration) (*Removed, error) {
	used, err := c.referenced()
	if err != nil {
		return nil, err
	}
	rm := &Removed{Snapshots: []string{}, Tags: []string{}}
	cutoff := time.Now().Add(-minAge)
	for _, dir := range []string{"blobs", "trees", "manifests"} {
		algs, _ := os.ReadDir(filepath.Join(c.Root, dir))
		for _, alg := range algs {
			entries, _ := os.ReadDir(filepath.Join(c.Root, dir, alg.Name()))
			for _, e := range entries {
				base, _, _ := strings.Cut(e.Name(), ".")
				d := alg.Name() + ":" + base
				if _, _, err := SplitDigest(d); err != nil || used[d] {
					continue
				}
				if _, err := os.Stat(c.LockPath(d)); err == nil {
					continue // being fetched
				}
				p := filepath.Join(c.Root, dir, alg.Name(), e.Name())
				fi, err := os.Lstat(p)
				if err != nil || fi.ModTime().After(cutoff) {
					continue
				}
				if os.Remove(p) == nil && !strings.HasSuffix(e.Name(), ".state") && !strings.HasSuffix(e.Name(), ".incomplete.json") {
					rm.Blobs++
					rm.Bytes += fi.Size()
				}
			}
		}
	}
	c.Uploads().prune()
	c.PushDigests().prune(cutoff)
	tmps, _ := os.ReadDir(filepath.Join(c.Root, "tmp"))
	for _, t := range tmps {
		if fi, err := t.Info(); err == nil && fi.ModTime().Before(cutoff) {
			os.RemoveAll(filepath.Join(c.Root, "tmp", t.Name()))
		}
	}
	return rm, nil
}
