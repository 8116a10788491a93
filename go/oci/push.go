package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/oci-client/liboci/transfer"
)

// PushBlob is one blob to upload: a file (Path) or bytes (Data). Its digest
// and size are known before the upload starts: the registry is asked
// whether it has the blob, or can mount it, before a byte is sent.
type PushBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Path   string `json:"path,omitempty"`
	Data   []byte `json:"data,omitempty"`
	// Label names the blob in progress reports (default: the file name).
	Label string `json:"label,omitempty"`
	// MountFrom lists repositories of the same registry known to hold
	// this blob, tried before PushOptions.MountFrom.
	MountFrom []string `json:"mount_from,omitempty"`
}

// How a blob reached the registry.
const (
	PushedUploaded = "uploaded"
	PushedExists   = "exists"  // the repository had it: nothing sent
	PushedMounted  = "mounted" // linked from another repository of the registry
)

// PushedBlob reports one blob of PushBlobs.
type PushedBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	How    string `json:"how"`
	// MountedFrom is the repository a mounted blob came from.
	MountedFrom string `json:"mounted_from,omitempty"`
	// Sent counts the bytes put on the wire, resends included.
	Sent int64 `json:"bytes_sent"`
}

// PushOptions tunes PushBlobs.
type PushOptions struct {
	// Concurrency is how many blobs upload at once (<= 0: DefaultConcurrency).
	Concurrency int
	// MountFrom lists repositories of the same registry that may hold the
	// blobs; each missing blob is offered a cross-repository mount from
	// them, in order, before it is uploaded. Default: none.
	MountFrom []string
}

// PushBlobs uploads the blobs to repo ("host/name"), skipping those the
// repository already has and mounting those another listed repository
// has. Files are streamed from disk, so memory stays flat whatever their
// size. A stream that breaks is resumed from the offset the registry
// reports it kept (where it keeps partial uploads), else restarted, within
// the client's retry budget. The first failure cancels the others.
func (c *Client) PushBlobs(ctx context.Context, repo string, blobs []PushBlob, o PushOptions) ([]PushedBlob, error) {
	r, err := c.parseRepository(repo)
	if err != nil {
		return nil, err
	}
	jobs := make([]*pushJob, len(blobs))
	for i, b := range blobs {
		d, err := parseDigest(b.Digest)
		if err != nil {
			return nil, err
		}
		if b.Size < 0 || (b.Path == "" && int64(len(b.Data)) != b.Size) {
			return nil, newError(CodeInvalidArgument, "blob %s: size %d does not match its data", b.Digest, b.Size)
		}
		if b.Path != "" {
			if b.Path, err = filepath.Abs(b.Path); err != nil {
				return nil, &Error{Code: CodeInvalidArgument, Err: fmt.Errorf("blob %s: %w", b.Digest, err)}
			}
		}
		label := b.Label
		if label == "" {
			label = filepath.Base(b.Path)
		}
		jobs[i] = &pushJob{PushBlob: b, d: d, label: label}
	}
	// Mounts work within one registry only, and each source needs pull
	// access in the token.
	sources := map[string]name.Repository{}
	candidates := func(repos []string) []name.Repository {
		var out []name.Repository
		for _, m := range repos {
			mr, err := name.NewRepository(m, name.WithDefaultRegistry(r.RegistryStr()))
			if err != nil || mr.RegistryStr() != r.RegistryStr() || mr.RepositoryStr() == r.RepositoryStr() {
				continue
			}
			sources[mr.RepositoryStr()] = mr
			out = append(out, mr)
		}
		return out
	}
	for _, j := range jobs {
		j.mounts = candidates(append(append([]string(nil), j.MountFrom...), o.MountFrom...))
		j.mounts = j.mounts[:min(len(j.mounts), maxMountSources)]
	}
	var scoped []name.Repository
	for _, mr := range sources {
		scoped = append(scoped, mr)
	}
	slices.SortFunc(scoped, func(a, b name.Repository) int { return strings.Compare(a.RepositoryStr(), b.RepositoryStr()) })
	s, err := c.openPush(ctx, r, scoped)
	if err != nil {
		return nil, AsError(err)
	}
	up := &uploader{c: c, s: s, http: &http.Client{Transport: s.rt}}
	prog := transfer.ProgressFrom(ctx)
	for _, j := range jobs {
		j.prog = prog.Blob(j.label)
		j.prog.AddTotal(j.Size, 1)
	}
	// Largest first: the long uploads start at once, the small ones fill in.
	order := make([]*pushJob, len(jobs))
	copy(order, jobs)
	slices.SortStableFunc(order, func(a, b *pushJob) int { return int(min(max(b.Size-a.Size, -1), 1)) })
	concurrency := o.Concurrency
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	err = runAll(ctx, len(order), concurrency, nil, func(ctx context.Context, i int) error {
		j := order[i]
		res, err := up.push(ctx, j)
		if err != nil {
			return AsError(fmt.Errorf("pushing blob %s (%s) to %s: %w", j.d.str, j.label, r, s.refused(err)))
		}
		j.prog.BlobDone()
		j.result = res
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]PushedBlob, len(jobs))
	for i, j := range jobs {
		out[i] = j.result
	}
	return out, nil
}

// PushManifest puts raw (of mediaType) at ref, a tag or a digest; a digest
// reference must be raw's own digest.
func (c *Client) PushManifest(ctx context.Context, ref string, raw []byte, mediaType string) (*Manifest, error) {
	r, err := c.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if d, ok := r.(name.Digest); ok && d.DigestStr() != digest {
		return nil, newError(CodeDigestMismatch, "manifest for %s has digest %s", ref, digest)
	}
	s, err := c.openPush(ctx, r.Context(), nil)
	if err != nil {
		return nil, AsError(err)
	}
	up := &uploader{c: c, s: s, http: &http.Client{Transport: s.rt}}
	u := fmt.Sprintf("%s://%s/v2/%s/manifests/%s", r.Context().Scheme(), r.Context().RegistryStr(), r.Context().RepositoryStr(), r.Identifier())
	resp, err := up.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(raw))
		if err == nil {
			req.Header.Set("Content-Type", mediaType)
		}
		return req, err
	}, http.StatusCreated, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return nil, AsError(fmt.Errorf("pushing manifest %s: %w", r, s.refused(err)))
	}
	resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != digest {
		return nil, newError(CodeDigestMismatch, "pushing manifest %s: the registry stored %s, not %s", r, got, digest)
	}
	return &Manifest{Reference: r.Name(), Digest: digest, MediaType: mediaType, Size: int64(len(raw)), Raw: raw}, nil
}

// parseRepository parses "host/name" (a tag or digest on it is ignored).
func (c *Client) parseRepository(repo string) (name.Repository, error) {
	r, err := c.ParseReference(repo)
	if err != nil {
		return name.Repository{}, err
	}
	return r.Context(), nil
}

// openPush opens repo for pushing, with pull access to the repositories
// blobs may be mounted from (a token must name every scope it covers).
func (c *Client) openPush(ctx context.Context, repo name.Repository, mounts []name.Repository) (*session, error) {
	scopes := []string{repo.Scope(transport.PushScope)}
	for _, m := range mounts {
		scopes = append(scopes, m.Scope(transport.PullScope))
	}
	return c.openScoped(ctx, repo, scopes)
}

type pushJob struct {
	PushBlob
	mounts []name.Repository
	d      blobDigest
	label  string
	prog   *transfer.Progress
	result PushedBlob
}

// joinScopes is the cache key part of a scope list.
func joinScopes(scopes []string) string { return strings.Join(scopes, " ") }
