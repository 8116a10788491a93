package pushmodel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/oci-client/liboci/cache"
)

// linkRule decides which symlinks a push follows. A link in a model
// directory to a file elsewhere (a key, /etc/passwd) would otherwise be
// published to the registry; only the places a model directory
// legitimately links into are trusted: the directory itself, and the blobs
// of a cache, whose snapshots are directories of links.
type linkRule struct {
	root       string // the model directory, resolved
	cacheBlobs string // <cache root>/blobs, resolved; "" when there is none
	followAll  bool
}

// newLinkRule resolves root and cache (either may be reached through
// symlinks, as /tmp is on macOS) so that they compare with resolved
// targets. A cache that does not exist yet has no blobs to trust.
func newLinkRule(root, cache string, followAll bool) (linkRule, error) {
	r := linkRule{followAll: followAll}
	var err error
	if r.root, err = resolve(root); err != nil {
		return linkRule{}, err
	}
	if cache != "" {
		if blobs, err := resolve(filepath.Join(cache, "blobs")); err == nil {
			r.cacheBlobs = blobs
		}
	}
	return r, nil
}

func resolve(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// allows reports whether a link resolving to target (absolute, free of
// symlinks) may be followed.
func (r linkRule) allows(target string) bool {
	return r.followAll || within(r.root, target) ||
		(r.cacheBlobs != "" && within(r.cacheBlobs, target)) || huggingFaceBlob(target)
}

// cacheDigest is the digest a target in the cache's blobs is named by
// ("" elsewhere): a snapshot of the cache publishes without hashing, the
// name having been checked when the blob was written (and the registry
// checks it again at the upload's commit).
func (r linkRule) cacheDigest(target string) string {
	if r.cacheBlobs == "" || filepath.Dir(filepath.Dir(target)) != r.cacheBlobs {
		return ""
	}
	d := filepath.Base(filepath.Dir(target)) + ":" + filepath.Base(target)
	if alg, _, err := cache.SplitDigest(d); err != nil || alg != "sha256" {
		return ""
	}
	return d
}

// within reports whether p is dir or lies under it; both are resolved, so
// a lexical comparison cannot be fooled by links or "..".
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && filepath.IsLocal(rel)
}

// huggingFaceBlob reports whether p is a blob of a huggingface_hub cache,
// <cache>/models--<org>--<name>/blobs/<etag> (datasets-- and spaces-- the
// same), which the files of its snapshots/<revision>/ link to. The
// repository folder is required, not just a directory named blobs, so
// that an unrelated blobs directory is not trusted.
func huggingFaceBlob(p string) bool {
	blobs := filepath.Dir(p)
	if filepath.Base(blobs) != "blobs" || filepath.Base(p) == "blobs" {
		return false
	}
	repo := filepath.Base(filepath.Dir(blobs))
	for _, kind := range []string{"models--", "datasets--", "spaces--"} {
		if len(repo) > len(kind) && strings.HasPrefix(repo, kind) {
			return true
		}
	}
	return false
}

// maxNamedLinks bounds the refused links an error lists.
const maxNamedLinks = 10

// followLink resolves the symlink at abs (rel names it in errors) and
// returns its target, or refused set when the rule does not allow it, so
// that the caller can name every refused link at once.
func (r linkRule) followLink(abs, rel string) (target string, refused bool, err error) {
	target, err = filepath.EvalSymlinks(abs)
	if err != nil {
		text, _ := os.Readlink(abs)
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, fmt.Errorf("%s is a symlink to %s, which does not exist", rel, text)
		}
		return "", false, fmt.Errorf("%s is a symlink to %s, which cannot be resolved: %w", rel, text, err)
	}
	return target, !r.allows(target), nil
}

// refusedLinks is the error for links that lead out of the directory.
func refusedLinks(links []string) error {
	more := ""
	if len(links) > maxNamedLinks {
		more = fmt.Sprintf(" (and %d more)", len(links)-maxNamedLinks)
		links = links[:maxNamedLinks]
	}
	return fmt.Errorf("refusing to publish %s%s: a symlink is followed only within the directory "+
		"or into the blobs of a cache (this one's, or huggingface_hub's), so that a stray link cannot publish "+
		"a file from elsewhere; follow_symlinks=True (--follow-symlinks) publishes them anyway",
		strings.Join(links, ", "), more)
}
