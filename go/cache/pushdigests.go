package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The push-digests memory: publishing a directory again should hash
// nothing that did not change. push-digests/<hash>.json holds, for one
// published file (named by the sha256 of its absolute path), its identity
// on disk (size, mtime, inode, device) and its digest. An entry is trusted
// only while the file still has that identity, and only when the digest
// was taken RacyWindow or more after the file's last change. Prune drops
// the entries whose file is gone or has changed: they can never be trusted
// again.

// PushDigestsDir is where, under the cache root, the memory lives.
const PushDigestsDir = "push-digests"

// RacyWindow: a file changed this shortly before it was hashed may have
// changed again within the same mtime tick (git's "racily clean" problem):
// its remembered digest is checked by hashing again.
const RacyWindow = 2 * time.Second

// FileDigest is what is remembered of one file: its identity on disk and
// its digest. Where the blob went is the cache's business (Holders), keyed
// by digest, so that a copy of the file mounts too.
type FileDigest struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	Inode   uint64 `json:"inode"`
	Device  uint64 `json:"device"`
	Digest  string `json:"digest"`
	// RecordedNS is when the digest was taken; one taken within
	// RacyWindow of the mtime is not trusted without hashing again.
	RecordedNS int64 `json:"recorded_ns"`
}

// Identity is the file at abs as fi shows it, without a digest.
func Identity(abs string, fi os.FileInfo) FileDigest {
	e := FileDigest{Path: abs, Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.Inode, e.Device = uint64(st.Ino), uint64(st.Dev) //nolint:unconvert // int32 on darwin
	}
	return e
}

// Same says whether e and o name the same file, unchanged.
func (e FileDigest) Same(o FileDigest) bool {
	return e.Path == o.Path && e.Size == o.Size && e.MtimeNS == o.MtimeNS && e.Inode == o.Inode && e.Device == o.Device
}

// PushDigests remembers file digests keyed by path and checked against
// size, mtime, inode and device. The zero value remembers nothing.
type PushDigests struct{ dir string }

// PushDigests returns the cache's memory of published files' digests.
func (c *Cache) PushDigests() PushDigests {
	return PushDigests{dir: filepath.Join(c.Root, PushDigestsDir)}
}

func (m PushDigests) entryPath(abs string) string {
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(m.dir, hex.EncodeToString(sum[:16])+".json")
}

// Lookup returns what is remembered of the file id names, and whether its
// digest can be trusted without reading the file.
func (m PushDigests) Lookup(id FileDigest) (e FileDigest, trusted bool) {
	if m.dir == "" {
		return FileDigest{}, false
	}
	b, err := os.ReadFile(m.entryPath(id.Path))
	if err != nil || json.Unmarshal(b, &e) != nil || !e.Same(id) || e.Digest == "" {
		return FileDigest{}, false
	}
	return e, e.RecordedNS-e.MtimeNS >= int64(RacyWindow)
}

// Put remembers e (best effort: a memory that cannot be written only
// costs a hash next time).
func (m PushDigests) Put(e FileDigest) {
	if m.dir == "" || os.MkdirAll(m.dir, 0o755) != nil {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(m.dir, ".entry-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), m.entryPath(e.Path)) != nil {
		os.Remove(tmp.Name())
	}
}

// prune removes the entries whose file is gone or changed (Lookup would
// never trust them again), unreadable ones, and staging files a crash left
// behind, when older than cutoff. It returns how many it removed.
func (m PushDigests) prune(cutoff time.Time) int {
	entries, _ := os.ReadDir(m.dir)
	n := 0
	for _, de := range entries {
		p := filepath.Join(m.dir, de.Name())
		fi, err := de.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		if !strings.HasPrefix(de.Name(), ".entry-") && !stale(p) {
			continue
		}
		if os.Remove(p) == nil {
			n++
		}
	}
	return n
}

// stale says whether the entry file at p vouches for nothing any more.
func stale(p string) bool {
	b, err := os.ReadFile(p)
	if err != nil {
		return false // unreadable now: left for the next prune
	}
	var e FileDigest
	if json.Unmarshal(b, &e) != nil || e.Path == "" {
		return true
	}
	fi, err := os.Stat(e.Path)
	if err != nil {
		return os.IsNotExist(err)
	}
	return !Identity(e.Path, fi).Same(e)
}
