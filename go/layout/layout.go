// Package layout reads OCI image layouts (a directory with oci-layout,
// index.json and blobs/, as skopeo's oci: transport and oras --oci-layout
// write them) as if each were a registry, so that everything a pull does
// (the cache, patterns, archives, verification, local_dir) works on an
// air-gapped site unchanged, with no socket opened.
//
// A reference "oci-layout:/path/to/dir[:tag|@sha256:…]" becomes one on a
// host of its own, HASH.oci-layout.invalid/model (.invalid never resolves),
// whose requests Transport answers from the directory: the manifests by the
// tag index.json gives them (org.opencontainers.image.ref.name) or by
// digest, the blobs by digest, with Range. What it serves is verified like
// anything from a registry.
package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Prefix starts a layout reference.
const Prefix = "oci-layout:"

// hostSuffix ends the host of every layout; Repository is its only repository.
const (
	hostSuffix = ".oci-layout.invalid"
	Repository = "model"
)

// RefNameAnnotation tags a manifest in index.json.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

var (
	mu    sync.Mutex
	roots = map[string]string{} // host -> absolute directory
)

// IsReference reports whether s names a layout.
func IsReference(s string) bool { return strings.HasPrefix(s, Prefix) }

// Resolve turns a layout reference into the registry reference that reads
// it: "oci-layout:/d:v1" -> "HASH.oci-layout.invalid/model:v1". Without a
// tag or digest it is "latest", which a layout of one manifest answers with
// that manifest whatever its name.
func Resolve(s string) (string, error) {
	dir, tag, digest := split(strings.TrimPrefix(s, Prefix))
	if dir == "" {
		return "", fmt.Errorf("%q names no directory: oci-layout:/path/to/dir[:tag|@sha256:…]", s)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(abs, "index.json")); err != nil {
		return "", fmt.Errorf("%s is not an OCI image layout (no index.json): %w", abs, err)
	}
	sum := sha256.Sum256([]byte(abs))
	host := hex.EncodeToString(sum[:8]) + hostSuffix
	mu.Lock()
	roots[host] = abs
	mu.Unlock()
	ref := host + "/" + Repository
	switch {
	case digest != "":
		return ref + "@" + digest, nil
	case tag != "":
		return ref + ":" + tag, nil
	}
	return ref + ":latest", nil
}

var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// split takes "dir[:tag|@digest]" apart. A colon after the last slash
// starts a tag only if what follows is one (a directory may have colons).
func split(s string) (dir, tag, digest string) {
	if i := strings.LastIndex(s, "@"); i >= 0 && strings.HasPrefix(s[i+1:], "sha256:") {
		return s[:i], "", s[i+1:]
	}
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") && tagPattern.MatchString(s[i+1:]) {
		return s[:i], s[i+1:], ""
	}
	return s, "", ""
}

// Display turns a registry reference that reads a layout back into the
// layout reference the caller knows; any other reference is returned as is.
func Display(ref string) string {
	host, rest, ok := strings.Cut(ref, "/")
	if !ok || !strings.HasSuffix(host, hostSuffix) {
		return ref
	}
	mu.Lock()
	dir, known := roots[host]
	mu.Unlock()
	if !known {
		return ref
	}
	rest = strings.TrimPrefix(rest, Repository)
	return Prefix + dir + rest
}

// root is the directory host reads, if it is a layout's.
func root(host string) (string, bool) {
	if !strings.HasSuffix(host, hostSuffix) {
		return "", false
	}
	mu.Lock()
	defer mu.Unlock()
	dir, ok := roots[strings.ToLower(host)]
	return dir, ok
}

// IsHost reports whether host (with or without a port) is a layout's.
func IsHost(host string) bool {
	h, _, _ := strings.Cut(host, ":")
	return strings.HasSuffix(strings.ToLower(h), hostSuffix)
}

// Index is index.json (what a pull needs of it).
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []Descriptor `json:"manifests"`
}

// Descriptor is one entry of index.json.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Platform and the rest pass through unchanged when an export rewrites the index.
	Platform     json.RawMessage `json:"platform,omitempty"`
	ArtifactType string          `json:"artifactType,omitempty"`
}

// ReadIndex reads dir's index.json.
func ReadIndex(dir string) (*Index, error) {
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	var idx Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s/index.json: %w", dir, err)
	}
	return &idx, nil
}

// errNoTag: index.json names no manifest by the tag asked for.
var errNoTag = errors.New("no manifest of that name")

// find is the descriptor index.json gives tag: by its ref.name annotation
// (the tag alone, as skopeo and oras write it, or a whole reference ending
// in ":tag"), or for "latest" in a layout of one manifest, that one.
func (idx *Index) find(tag string) (Descriptor, error) {
	for _, d := range idx.Manifests {
		name := d.Annotations[RefNameAnnotation]
		if name == tag || strings.HasSuffix(name, ":"+tag) {
			return d, nil
		}
	}
	if tag == "latest" && len(idx.Manifests) == 1 {
		return idx.Manifests[0], nil
	}
	return Descriptor{}, errNoTag
}

// blobPath is where dir keeps digest; digest must be checked first.
func blobPath(dir, digest string) string {
	algo, hexpart, _ := strings.Cut(digest, ":")
	return filepath.Join(dir, "blobs", algo, hexpart)
}

// BlobPath is where the layout at dir keeps digest, which must be a sha256
// digest (nothing else may name a file, let alone one outside blobs/).
func BlobPath(dir, digest string) (string, error) {
	if !digestPattern.MatchString(digest) {
		return "", fmt.Errorf("%q is not a sha256 digest", digest)
	}
	return blobPath(dir, digest), nil
}

var digestPattern = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
