// Package cache is the on-disk model cache shared by every process of a
// machine (and by machines sharing a network file system):
//
//	<root>/                               cache_dir=, else $OCI_CLIENT_CACHE, else ~/.cache/oci-client
//	  blobs/sha256/<hex>                  verified content: raw layers, configs, files unpacked from archives
//	  blobs/sha256/<hex>.state            whether it is known durable (see durable.go)
//	  blobs/sha256/<hex>.incomplete[.json] a download in progress or interrupted: the next pull continues it
//	  manifests/sha256/<hex>.json         manifests and indexes as served, with their media type
//	  trees/sha256/<hex>.json             what an archive layer unpacked to (paths -> blobs)
//	  models/<registry>/<repo>/refs/<tag>          the manifest digest the tag pointed to at the last pull
//	  models/<registry>/<repo>/snapshots/<alg>-<hex>/       the model directory: symlinks into blobs/
//	  models/<registry>/<repo>/snapshots/<alg>-<hex>.json   what it holds
//	  holders/sha256/<hex>                repositories seen holding the blob (pulled from, pushed to): mount sources
//	  uploads/<hash>.json                 upload sessions of pushes that did not finish, continued by the next
//	  push-digests/<hash>.json            digests of published files, by path and identity (pushdigests.go);
//	                                      prune drops those whose file is gone or changed
//	  locks/                              leases of blobs and snapshots being written
//	  tmp/                                staging for archives being unpacked
//
// In <repo>, "/" is written "+", which repository names cannot contain.
// Everything is written to a temporary name and renamed, so a reader (or a
// crash) never meets half a file under a final name.
package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Cache is a cache rooted at a directory (see store.go for what it
// decides).
type Cache struct {
	Root   string
	Locker *Locker
	sync   bool // WithSync
	direct bool // WithDirectIO
}

// EnvCacheDir names the cache root when no cache_dir is given.
const EnvCacheDir = "OCI_CLIENT_CACHE"

// DefaultRoot is $OCI_CLIENT_CACHE, else $HOME/.cache/oci-client, read from env.
func DefaultRoot(env map[string]string) (string, error) {
	if d := env[EnvCacheDir]; d != "" {
		return filepath.Abs(d)
	}
	if h := env["HOME"]; h != "" {
		return filepath.Join(h, ".cache", "oci-client"), nil
	}
	return "", errors.New("no cache directory: set OCI_CLIENT_CACHE or HOME, or pass cache_dir")
}

const cachedirTag = "Signature: 8a477f597d28d172789f06886806bc55\n# This directory is the oci-client model cache.\n"

// Open prepares the cache at root (creating it), with the options given;
// an option that cannot apply is an error.
func Open(root string, opts ...Option) (*Cache, error) {
	set := defaults()
	for _, o := range opts {
		if err := o(&set); err != nil {
			return nil, err
		}
	}
	if root == "" {
		return nil, errors.New("no cache directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"blobs", "manifests", "trees", "models", "locks", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating the cache at %s: %w", abs, err)
		}
	}
	tag := filepath.Join(abs, "CACHEDIR.TAG")
	if _, err := os.Stat(tag); errors.Is(err, fs.ErrNotExist) {
		_ = writeFileAtomic(tag, []byte(cachedirTag))
	}
	return &Cache{Root: abs, Locker: NewLocker(set.lease), sync: set.sync, direct: set.direct}, nil
}

var hexRe = map[string]*regexp.Regexp{
	"sha256": regexp.MustCompile(`^[a-f0-9]{64}$`),
	"sha512": regexp.MustCompile(`^[a-f0-9]{128}$`),
}

// SplitDigest checks d ("sha256:<hex>") before it becomes part of a path.
func SplitDigest(d string) (alg, hex string, err error) {
	alg, hex, ok := strings.Cut(d, ":")
	if re := hexRe[alg]; !ok || re == nil || !re.MatchString(hex) {
		return "", "", fmt.Errorf("invalid digest %q", d)
	}
	return alg, hex, nil
}

func (c *Cache) digestPath(dir, d, suffix string) string {
	alg, hex, err := SplitDigest(d)
	if err != nil {
		panic(err) // callers check digests first; never build a path from a bad one
	}
	return filepath.Join(c.Root, dir, alg, hex+suffix)
}

// BlobPath is where the blob with digest d lives.
func (c *Cache) BlobPath(d string) string { return c.digestPath("blobs", d, "") }

// LockPath is the lease of work on key (a digest, or a snapshot name).
func (c *Cache) LockPath(key string) string {
	return filepath.Join(c.Root, "locks", strings.NewReplacer(":", "-", "/", "+").Replace(key)+".lock")
}

// TmpDir makes a fresh staging directory inside the cache.
func (c *Cache) TmpDir() (string, error) {
	return os.MkdirTemp(filepath.Join(c.Root, "tmp"), "unpack-")
}

// RepoDir is the directory of one repository's refs and snapshots.
func (c *Cache) RepoDir(registry, repo string) string {
	return filepath.Join(c.Root, "models", registry, strings.ReplaceAll(repo, "/", "+"))
}

func snapshotName(d string) string { return strings.Replace(d, ":", "-", 1) }

// SnapshotDir is the model directory of manifest d.
func (c *Cache) SnapshotDir(registry, repo, d string) string {
	return filepath.Join(c.RepoDir(registry, repo), "snapshots", snapshotName(d))
}

func (c *Cache) refPath(registry, repo, tag string) string {
	return filepath.Join(c.RepoDir(registry, repo), "refs", tag)
}

// ReadRef returns the manifest digest tag pointed to at the last pull, "" if none.
func (c *Cache) ReadRef(registry, repo, tag string) (string, error) {
	b, err := os.ReadFile(c.refPath(registry, repo, tag))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	d := strings.TrimSpace(string(b))
	if _, _, err := SplitDigest(d); err != nil {
		return "", nil // unreadable: as if absent
	}
	return d, nil
}

// WriteRef records that tag points to manifest d.
func (c *Cache) WriteRef(registry, repo, tag, d string) error {
	p := c.refPath(registry, repo, tag)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(p, []byte(d+"\n"))
}

type storedManifest struct {
	MediaType string `json:"media_type"`
	Raw       []byte `json:"raw"`
}

// PutManifest stores a manifest or index under its digest.
func (c *Cache) PutManifest(d, mediaType string, raw []byte) error {
	if _, _, err := SplitDigest(d); err != nil {
		return err
	}
	p := c.digestPath("manifests", d, ".json")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	data, _ := json.Marshal(storedManifest{MediaType: mediaType, Raw: raw})
	return writeFileAtomic(p, data)
}

// GetManifest returns a stored manifest, checked against its digest (it is
// small, so it is always re-hashed); ok is false when none is stored.
func (c *Cache) GetManifest(d string) (mediaType string, raw []byte, ok bool, err error) {
	if _, _, err := SplitDigest(d); err != nil {
		return "", nil, false, err
	}
	data, err := os.ReadFile(c.digestPath("manifests", d, ".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, err
	}
	var m storedManifest
	if json.Unmarshal(data, &m) != nil || !Matches(d, m.Raw) {
		return "", nil, false, nil // damaged: as if absent, fetched again
	}
	return m.MediaType, m.Raw, true, nil
}
