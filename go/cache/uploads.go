package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// UploadTTL is how long an unfinished upload is worth continuing:
// distribution purges upload sessions a week old (its default), and
// other registries sooner, which the registry's answer tells anyway.
const UploadTTL = 7 * 24 * time.Hour

// uploadRecord is one unfinished upload: where the registry keeps it.
type uploadRecord struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Location   string `json:"location"`
	SavedNS    int64  `json:"saved_ns"`
}

// Uploads remembers the upload sessions of pushes that did not finish, so
// the next push of the same blob to the same repository, from any process,
// continues from what the registry kept instead of sending it all again.
// It satisfies oci.UploadSessions.
type Uploads struct{ dir string }

// Uploads returns the cache's record of unfinished uploads.
func (c *Cache) Uploads() *Uploads { return &Uploads{dir: filepath.Join(c.Root, "uploads")} }

func (u *Uploads) path(repo, digest string) string {
	sum := sha256.Sum256([]byte(repo + "@" + digest))
	return filepath.Join(u.dir, hex.EncodeToString(sum[:16])+".json")
}

// Load returns the session location saved for digest's upload to repo, ""
// when there is none or it is too old to be kept by the registry.
func (u *Uploads) Load(repo, digest string) string {
	b, err := os.ReadFile(u.path(repo, digest))
	if err != nil {
		return ""
	}
	var r uploadRecord
	if json.Unmarshal(b, &r) != nil || r.Repository != repo || r.Digest != digest ||
		time.Since(time.Unix(0, r.SavedNS)) > UploadTTL {
		return ""
	}
	return r.Location
}

// Save records the session location of digest's upload to repo. The
// directory is private to the user: some registries sign the location's
// query.
func (u *Uploads) Save(repo, digest, location string) {
	if os.MkdirAll(u.dir, 0o700) != nil {
		return
	}
	if b, err := json.Marshal(uploadRecord{Repository: repo, Digest: digest, Location: location, SavedNS: time.Now().UnixNano()}); err == nil {
		_ = writeFileAtomic(u.path(repo, digest), b) // best effort: a lost record costs a resend
	}
}

// Forget drops the record once the blob is committed (or the session gone).
func (u *Uploads) Forget(repo, digest string) { os.Remove(u.path(repo, digest)) }

// prune removes records older than UploadTTL, and staging files a crash
// left behind.
func (u *Uploads) prune() {
	entries, _ := os.ReadDir(u.dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > UploadTTL {
			os.Remove(filepath.Join(u.dir, e.Name()))
		}
	}
}
