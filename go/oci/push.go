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

	"github.com/oci-client/liboci/mirrors"
)

// PushBlob is one blob to upload: a file (Path) or bytes (Data). A blob
// whose Digest is known before the upload starts is first offered to the
// registry (does it have it, can it mount it); a file whose Digest is ""
// is hashed by Hash, while it uploads where that pays (see PushBlobs).
type PushBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Path   string `json:"path,omitempty"`
	Data   []byte `json:"data,omitempty"`
	// Hash computes the digest of a file blob given without one (it may
	// also check that the file did not change while it was read).
	Hash func(context.Context) (string, error) `json:"-"`
	// Label names the blob in progress reports (default: the file name).
	Label string `json:"label,omitempty"`
	// MountFrom lists repositories of the same registry known to hold
	// this blob, tried before PushOptions.Holders and MountFrom.
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
	// ContinuedAt is where an upload an earlier call left unfinished was
	// continued: the bytes the registry had kept of it (0: none).
	ContinuedAt int64 `json:"continued_at,omitempty"`
}

// UploadSessions remembers unfinished uploads across calls and processes
// (package cache's Uploads is one), keyed by repository ("host/name") and
// digest.
type UploadSessions interface {
	Load(repo, digest string) (location string)
	Save(repo, digest, location string)
	Forget(repo, digest string)
}

// PushOptions tunes PushBlobs.
type PushOptions struct {
	// Concurrency is how many blobs upload at once (0: DefaultConcurrency;
	// negative: an error).
	Concurrency int
	// MountFrom lists repositories of the same registry that may hold the
	// blobs; each missing blob is offered a cross-repository mount from
	// them, in order, before it is uploaded. Default: none.
	MountFrom []string
	// Holders names, for a digest, repositories known to hold it (tried
	// before MountFrom); it is asked again for a digest learnt by hashing.
	// Default: none.
	Holders func(digest string) []string
	// Sessions, when set, remembers the session of each upload until it
	// is committed, so that an upload cut by a crash, Ctrl-C or a dropped
	// connection continues in the next call from what the registry kept.
	Sessions UploadSessions
}

// PushBlobs uploads the blobs to repo ("host/name"), skipping those the
// repository already has and mounting those another known repository has.
// Files are streamed from disk, so memory stays flat whatever their size.
// A stream that breaks is continued from the offset the registry reports
// it kept (where it keeps partial uploads), else restarted, within the
// client's retry budget, and across calls through o.Sessions. The first
// failure cancels the others.
//
// A file blob without a digest is hashed first when this push looks like
// a re-push (some blob of known digest is already in the repository, or
// known to be in another one): then nothing the registry has is sent.
// Otherwise it uploads while another reader hashes it ahead of the upload;
// once the digest is known, a blob the registry turns out to have is
// stopped and skipped or mounted, so a cold push reads and sends each file
// in one pass and loses no dedup, at the price of the bytes sent before
// the hash finished.
func (c *Client) PushBlobs(ctx context.Context, repo string, blobs []PushBlob, o PushOptions) ([]PushedBlob, error) {
	if o.Concurrency < 0 {
		return nil, invalid("concurrency must not be negative (0: the default, %d), got %d", DefaultConcurrency, o.Concurrency)
	}
	r, err := c.parseRepository(repo)
	if err != nil {
		return nil, err
	}
	if err := checkMountFrom(r, o.MountFrom); err != nil {
		return nil, err
	}
	for _, b := range blobs {
		if err := checkMountFrom(r, b.MountFrom); err != nil {
			return nil, err
		}
	}
	ctx = mirrors.Origin(ctx, c.mirrorSettings()) // certs.d TLS; pushes never go to mirrors
	jobs := make([]*pushJob, len(blobs))
	for i, b := range blobs {
		var d blobDigest
		switch {
		case b.Digest == "" && (b.Path == "" || b.Hash == nil):
			return nil, newError(CodeInvalidArgument, "blob %d: no digest, and no file to hash", i)
		case b.Digest != "":
			if d, err = parseDigest(b.Digest); err != nil {
				return nil, err
			}
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
	m := mountPlanner{target: r, o: o}
	// Mounts work within one registry only, and each source needs pull
	// access in the token.
	for _, j := range jobs {
		if j.d.str != "" {
			j.mounts = m.sources(j)
		}
	}
	s, err := c.openPush(ctx, r, m.scoped(jobs))
	if err != nil {
		return nil, About(err, r.Name(), "")
	}
	up := &uploader{c: c, s: s, http: &http.Client{Transport: s.rt}, sessions: o.Sessions, mounts: m}
	prog := transfer.ProgressFrom(ctx)
	for _, j := range jobs {
		j.prog = prog.Blob(j.label)
		j.prog.AddTotal(j.Size, 1)
	}
	concurrency := o.Concurrency
	if concurrency == 0 {
		concurrency = DefaultConcurrency
	}
	known := slices.DeleteFunc(slices.Clone(jobs), func(j *pushJob) bool { return j.d.str == "" })
	err = runAll(ctx, len(known), concurrency, nil, func(ctx context.Context, i int) error {
		var err error
		known[i].exists, err = up.exists(ctx, known[i].d.str)
		return err
	})
	if err != nil {
		return nil, About(fmt.Errorf("pushing to %s: %w", r, s.refused(err)), r.Name(), "")
	}
	repush := slices.ContainsFunc(known, func(j *pushJob) bool { return j.exists || len(j.mounts) > 0 })
	// Largest first: the long uploads start at once, the small ones fill in.
	order := slices.Clone(jobs)
	slices.SortStableFunc(order, func(a, b *pushJob) int { return int(min(max(b.Size-a.Size, -1), 1)) })
	err = runAll(ctx, len(order), concurrency, nil, func(ctx context.Context, i int) error {
		j := order[i]
		j.result = PushedBlob{Digest: j.d.str, Size: j.Size}
		var err error
		if j.d.str == "" && !repush {
			err = up.pushHashing(ctx, j)
		} else {
			err = up.push(ctx, j)
		}
		if err != nil {
			what := j.d.str
			if what == "" {
				what = "of " + j.Path
			}
			return About(fmt.Errorf("pushing blob %s (%s) to %s: %w", what, j.label, r, s.refused(err)), r.Name(), j.d.str)
		}
		j.result.Digest = j.d.str
		j.prog.BlobDone()
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

// checkMountFrom refuses repositories a caller named to mount from that
// cannot be: a registry mounts only blobs it holds, so one on another
// registry (127.0.0.1 for 127.0.0.1:5000 too) would be skipped without a
// word. Holders the cache knows are filtered quietly instead (sources).
func checkMountFrom(target name.Repository, repos []string) error {
	for _, s := range repos {
		if _, err := mountSource(target, s); err != nil {
			return err
		}
	}
	return nil
}

// mountSource reads s as a repository of target's registry (a path alone
// is one); anything else is INVALID_ARGUMENT.
func mountSource(target name.Repository, s string) (name.Repository, error) {
	mr, err := name.NewRepository(s, name.WithDefaultRegistry(target.RegistryStr()))
	if err != nil {
		return mr, &Error{Code: CodeInvalidArgument, Err: fmt.Errorf("mount_from %q: %w", s, err)}
	}
	if mr.RegistryStr() != target.RegistryStr() {
		return mr, newError(CodeInvalidArgument, "mount_from %q is on %s, and the push goes to %s: a registry mounts only blobs it holds (name a repository of %s, or just its path)",
			s, mr.RegistryStr(), target.RegistryStr(), target.RegistryStr())
	}
	return mr, nil
}

// mountPlanner decides which repositories a blob may be mounted from.
type mountPlanner struct {
	target name.Repository
	o      PushOptions
}

// sources lists the repositories of the target's registry that may hold
// j's blob: its own list, the holders known for its digest, then the
// call's, at most maxMountSources of them.
func (m mountPlanner) sources(j *pushJob) []name.Repository {
	repos := append([]string(nil), j.MountFrom...)
	if m.o.Holders != nil {
		repos = append(repos, m.o.Holders(j.d.str)...)
	}
	repos = append(repos, m.o.MountFrom...)
	var out []name.Repository
	for _, s := range repos {
		mr, err := mountSource(m.target, s)
		if err != nil || mr.RepositoryStr() == m.target.RepositoryStr() ||
			slices.ContainsFunc(out, func(o name.Repository) bool { return o.RepositoryStr() == mr.RepositoryStr() }) {
			continue
		}
		out = append(out, mr)
		if len(out) == maxMountSources {
			break
		}
	}
	return out
}

// scoped lists every mount source of the jobs once, in a stable order.
func (m mountPlanner) scoped(jobs []*pushJob) []name.Repository {
	seen := map[string]name.Repository{}
	for _, j := range jobs {
		for _, mr := range j.mounts {
			seen[mr.RepositoryStr()] = mr
		}
	}
	out := make([]name.Repository, 0, len(seen))
	for _, mr := range seen {
		out = append(out, mr)
	}
	slices.SortFunc(out, func(a, b name.Repository) int { return strings.Compare(a.RepositoryStr(), b.RepositoryStr()) })
	return out
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
	ctx = mirrors.Origin(ctx, c.mirrorSettings())
	s, err := c.openPush(ctx, r.Context(), nil)
	if err != nil {
		return nil, About(err, r.Name(), refDigest(r))
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
		return nil, About(fmt.Errorf("pushing manifest %s: %w", r, s.refused(err)), r.Name(), digest)
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
	exists bool // the repository has the blob already
	result PushedBlob
	// counted is what progress shows of the upload.
	counted int64
}

// joinScopes is the cache key part of a scope list.
func joinScopes(scopes []string) string { return strings.Join(scopes, " ") }
