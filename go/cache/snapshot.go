package cache

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Entry is one thing in a model directory.
type Entry struct {
	Type   string `json:"type"` // "file", "dir" or "symlink"
	Digest string `json:"digest,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Mode   uint32 `json:"mode,omitempty"`
	Target string `json:"target,omitempty"` // symlinks from archives
	// Layer is the layer the entry came from.
	Layer string `json:"layer,omitempty"`
}

// Snapshot records what a snapshot directory holds. Layers lists the
// layers fully in place, so a pull with other patterns knows what is
// still to fetch; Partial the archive layers of which only the entries
// some patterns selected are (Files says which).
type Snapshot struct {
	Registry   string           `json:"registry"`
	Repository string           `json:"repository"`
	Manifest   string           `json:"manifest"`
	Format     string           `json:"format"`
	Config     string           `json:"config,omitempty"`
	Layers     []string         `json:"layers"`
	Partial    []string         `json:"partial,omitempty"`
	Files      map[string]Entry `json:"files"`
}

// HasLayer says whether layer d is fully in the snapshot.
func (s *Snapshot) HasLayer(d string) bool {
	for _, l := range s.Layers {
		if l == d {
			return true
		}
	}
	return false
}

func (c *Cache) snapshotRecord(registry, repo, d string) string {
	return c.SnapshotDir(registry, repo, d) + ".json"
}

// ReadSnapshot returns the record of manifest d's snapshot, nil if none.
func (c *Cache) ReadSnapshot(registry, repo, d string) (*Snapshot, error) {
	return readSnapshotFile(c.snapshotRecord(registry, repo, d))
}

func readSnapshotFile(p string) (*Snapshot, error) {
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Snapshot
	if json.Unmarshal(data, &s) != nil {
		return nil, nil // damaged: rebuilt by the next pull
	}
	if s.Files == nil {
		s.Files = map[string]Entry{}
	}
	return &s, nil
}

// WriteSnapshot replaces the record (callers hold the snapshot's lease
// and merge into what was there).
func (c *Cache) WriteSnapshot(s *Snapshot) error {
	p := c.snapshotRecord(s.Registry, s.Repository, s.Manifest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return writeFileAtomic(p, data)
}

// Touch records a use of the snapshot (what `cache ls` shows as last use).
func (c *Cache) Touch(registry, repo, d string) {
	p := c.snapshotRecord(registry, repo, d)
	now := time.Now()
	_ = os.Chtimes(p, now, now)
}

// TreeEntry is one entry an archive layer unpacked to, relative to where
// it was unpacked.
type TreeEntry struct {
	Path string `json:"path"`
	Entry
}

// ReadTree returns what archive layer d unpacked to, nil if unknown.
func (c *Cache) ReadTree(d string) ([]TreeEntry, error) {
	if _, _, err := SplitDigest(d); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(c.digestPath("trees", d, ".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var t []TreeEntry
	if json.Unmarshal(data, &t) != nil {
		return nil, nil
	}
	return t, nil
}

// WriteTree records what archive layer d unpacked to.
func (c *Cache) WriteTree(d string, t []TreeEntry) error {
	p := c.digestPath("trees", d, ".json")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return writeFileAtomic(p, data)
}
