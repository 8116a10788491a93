// Package export writes what a reference names into an OCI image layout,
// for a site with no registry: the manifest (an index with every manifest
// it lists), their configs and layers, index.json naming it by its tag, and
// the oci-layout file, as skopeo's oci: transport and oras --oci-layout read
// them. Blobs come through the transfer engine (verified, resumable, several
// at once) straight into blobs/sha256/; a blob the layout already holds is
// hashed and kept when it is right. index.json is replaced atomically, last,
// so a layout never names what it does not hold.
package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/oci-client/liboci/layout"
	"github.com/oci-client/liboci/oci"
)

// Result is what an export wrote.
type Result struct {
	// Layout is the layout's directory; Reference the layout reference that
	// reads the model back (oci-layout:DIR:TAG, or @DIGEST without a tag).
	Layout    string `json:"layout"`
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	Tag       string `json:"tag,omitempty"`
	// Blobs counts every blob of the model in the layout (manifests
	// included); BlobsDownloaded and BytesDownloaded what this call fetched.
	Blobs           int   `json:"blobs"`
	BlobsDownloaded int   `json:"blobs_downloaded"`
	BytesDownloaded int64 `json:"bytes_downloaded"`
}

// Options: Tag names the model in index.json (default: the reference's
// tag; none for a digest reference); Concurrency is how many blobs are
// fetched at once (0: the client's default).
type Options struct {
	Tag         string
	Concurrency int
}

// descriptor is what a manifest says of one of its parts.
type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// manifestParts is what an export reads of a manifest or an index.
type manifestParts struct {
	MediaType string       `json:"mediaType"`
	Config    *descriptor  `json:"config"`
	Layers    []descriptor `json:"layers"`
	Manifests []descriptor `json:"manifests"`
	Blobs     []descriptor `json:"blobs"` // an artifact manifest's
}

// Model exports what ref names into the layout at dir (created if needed).
func Model(ctx context.Context, c *oci.Client, ref, dir string, o Options) (*Result, error) {
	if layout.IsReference(ref) {
		return nil, oci.Coded(oci.CodeInvalidArgument, errors.New("the reference is an OCI layout already: export reads from a registry"))
	}
	r, err := c.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	tag := o.Tag
	if t, ok := r.(name.Tag); ok && tag == "" {
		tag = t.TagStr()
	}
	if tag != "" && strings.ContainsAny(tag, "/@ \t\n") {
		return nil, oci.Coded(oci.CodeInvalidArgument, fmt.Errorf("tag %q is no tag", tag))
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, oci.Coded(oci.CodeInvalidArgument, err)
	}
	top, err := c.PullManifest(ctx, ref)
	if err != nil {
		return nil, err
	}
	repo := r.Context().String()
	manifests := map[string][]byte{top.Digest: top.Raw}
	var blobs []descriptor
	parts, err := parse(top.Raw)
	if err != nil {
		return nil, err
	}
	for _, child := range parts.Manifests {
		m, err := c.PullManifest(ctx, repo+"@"+child.Digest) // verified against the digest
		if err != nil {
			return nil, err
		}
		manifests[m.Digest] = m.Raw
		p, err := parse(m.Raw)
		if err != nil {
			return nil, err
		}
		blobs = append(blobs, p.blobs()...)
	}
	blobs = append(blobs, parts.blobs()...)

	blobDir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return nil, oci.Coded(oci.CodeIO, err)
	}
	res := &Result{Layout: dir, Digest: top.Digest, MediaType: top.MediaType, Tag: tag}
	var missing []oci.BlobRequest
	seen := map[string]bool{}
	for _, b := range blobs {
		if seen[b.Digest] {
			continue
		}
		seen[b.Digest] = true
		path, err := blobPath(dir, b.Digest)
		if err != nil {
			return nil, err
		}
		if ok, err := holds(path, b); err != nil {
			return nil, err
		} else if !ok {
			missing = append(missing, oci.BlobRequest{Digest: b.Digest, Path: path, Size: b.Size})
		}
	}
	if len(missing) > 0 {
		got, err := c.PullBlobs(ctx, ref, missing, o.Concurrency)
		if err != nil {
			return nil, err
		}
		for _, b := range got {
			res.BlobsDownloaded++
			res.BytesDownloaded += b.Size
		}
	}
	for digest, raw := range manifests {
		path, err := blobPath(dir, digest)
		if err != nil {
			return nil, err
		}
		if err := writeAtomic(path, raw); err != nil {
			return nil, err
		}
	}
	res.Blobs = len(seen) + len(manifests)
	if err := writeAtomic(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return nil, err
	}
	if err := addToIndex(dir, layout.Descriptor{MediaType: top.MediaType, Digest: top.Digest, Size: int64(len(top.Raw))}, tag); err != nil {
		return nil, err
	}
	res.Reference = layout.Prefix + dir + "@" + top.Digest
	if tag != "" {
		res.Reference = layout.Prefix + dir + ":" + tag
	}
	return res, nil
}

func parse(raw []byte) (*manifestParts, error) {
	var p manifestParts
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, oci.Coded(oci.CodeInvalidModel, fmt.Errorf("reading the manifest: %w", err))
	}
	return &p, nil
}

func (p *manifestParts) blobs() []descriptor {
	var out []descriptor
	if p.Config != nil && p.Config.Digest != "" {
		out = append(out, *p.Config)
	}
	out = append(out, p.Layers...)
	return append(out, p.Blobs...)
}

// blobPath is where the layout at dir keeps digest.
func blobPath(dir, digest string) (string, error) {
	p, err := layout.BlobPath(dir, digest)
	if err != nil {
		return "", oci.Coded(oci.CodeInvalidModel, err)
	}
	return p, nil
}

// holds reports whether path is b, hashing it; a wrong file is removed.
func holds(path string, b descriptor) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, oci.Coded(oci.CodeIO, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return false, oci.Coded(oci.CodeIO, err)
	}
	if n == b.Size && "sha256:"+hex.EncodeToString(h.Sum(nil)) == b.Digest {
		return true, nil
	}
	return false, os.Remove(path)
}

// addToIndex names d by tag in dir's index.json, replacing what had that
// name; without a tag it adds d unless it is there.
func addToIndex(dir string, d layout.Descriptor, tag string) error {
	idx, err := layout.ReadIndex(dir)
	if errors.Is(err, os.ErrNotExist) {
		idx, err = &layout.Index{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}, nil
	}
	if err != nil {
		return oci.Coded(oci.CodeInvalidArgument, fmt.Errorf("%s holds an index.json that is no OCI index: %w", dir, err))
	}
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		name := m.Annotations[layout.RefNameAnnotation]
		if (tag != "" && name == tag) || (tag == "" && name == "" && m.Digest == d.Digest) {
			continue
		}
		kept = append(kept, m)
	}
	if tag != "" {
		d.Annotations = map[string]string{layout.RefNameAnnotation: tag}
	}
	idx.Manifests = append(kept, d)
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, "index.json"), b)
}

// writeAtomic replaces path with data: a reader sees the old file or the new.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return oci.Coded(oci.CodeIO, err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return oci.Coded(oci.CodeIO, err)
	}
	return nil
}
