// Package pullmodel turns a model reference into a directory that
// transformers and vLLM load as a model path: it resolves the reference,
// picks the model manifest, fetches the layers the patterns select into
// the shared cache (package cache) with the transfer engine, unpacks
// archive layers safely (package extract) and links everything into a
// snapshot directory. With LocalDir the files are real files there instead.
package pullmodel

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/extract"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
)

// Options tune one pull; zero values take the defaults noted.
type Options struct {
	// CacheDir is the cache root (required; the front ends resolve
	// $OCI_CLIENT_CACHE and ~/.cache/oci-client).
	CacheDir string
	// LocalDir, when set, receives real files instead of a snapshot.
	LocalDir string
	// Allow and Ignore select files by path (fnmatch globs, as
	// huggingface_hub's snapshot_download): a file is fetched when it
	// matches some Allow pattern (any, when Allow is empty) and no Ignore
	// pattern. An archive layer is selected whole by its own path; an
	// archive with no name of its own, or one a pattern reaches inside, is
	// fetched and only the entries the patterns select are placed (see
	// model.Filter). Patterns that select no file fail with CodeNoMatch.
	Allow, Ignore []string
	// AllowNoMatch makes patterns that select no file give an empty
	// directory instead (vLLM's small-file pull of a GGUF-only model).
	AllowNoMatch bool
	// Offline serves from the cache without touching the network.
	Offline bool
	// Select picks a manifest out of an index.
	Select model.Selector
	// Concurrency is how many blobs are fetched at once (0: oci's default).
	Concurrency int
	// Lease is how long another process's lease is honoured without a
	// heartbeat (0: cache.DefaultLease).
	Lease time.Duration
	// Sync makes blobs durable (fsync) before the pull returns. Default:
	// after, in the background; see package cache.
	Sync bool
	// DirectIO writes downloads with O_DIRECT where the file system allows
	// it. Default: through the page cache, where the loader that reads the
	// model next finds it.
	DirectIO bool
	// Limits cap what archive layers may unpack (zero: extract's defaults).
	Limits extract.Limits
	// Verify re-hashes every blob served from the cache, even one its
	// state trusts (durable, or verified this boot), before it is served;
	// a wrong one is moved to quarantine/ as cache verify does and fetched
	// again (offline: NOT_CACHED). Default: trusted blobs are served as
	// they are (package cache says why).
	Verify bool
}

// Result describes a pulled model.
type Result struct {
	// Path is the model directory.
	Path string `json:"path"`
	// Reference is the repository and the model manifest's digest.
	Reference string       `json:"reference"`
	Digest    string       `json:"digest"`
	Model     *model.Model `json:"model"`
	// Files are the selected paths, in manifest order: files and whole
	// archives by their paths, and the files picked out of archives.
	Files []string `json:"files"`
	// Downloaded counts the blobs this call fetched itself and the bytes
	// it received for them (0 for a cache hit): a blob resumed from an
	// earlier call's partial data counts only what was left of it.
	BlobsDownloaded int   `json:"blobs_downloaded"`
	BytesDownloaded int64 `json:"bytes_downloaded"`
}

// Pull fetches the model that ref names; see the package comment.
func Pull(ctx context.Context, c *oci.Client, ref string, o Options) (*Result, error) {
	p, res, err := start(ctx, c, ref, o)
	if err != nil {
		return nil, err
	}
	files, err := model.Filter(res.model.Files, o.Allow, o.Ignore)
	if err != nil {
		return nil, wrap(oci.CodeInvalidArgument, err)
	}
	out := &Result{Reference: p.repo.Digest(res.digest).String(), Digest: res.digest, Model: res.model}
	if len(files) == 0 {
		// Nothing to fetch that could change that.
		if err := p.checkSelected(res, nil); err != nil {
			return nil, err
		}
	}
	if o.LocalDir != "" {
		out.Path, out.Files, err = p.intoLocalDir(ctx, res, files)
	} else {
		out.Path, out.Files, err = p.intoSnapshot(ctx, res, files)
	}
	if err != nil {
		return nil, err
	}
	out.BlobsDownloaded, out.BytesDownloaded = p.downloaded()
	p.noteHolders(res)
	return out, nil
}

// puller is one Pull's state.
type puller struct {
	client *oci.Client
	ref    name.Reference
	repo   name.Repository
	cache  *cache.Cache
	o      Options

	stats struct {
		blobs int
		bytes int64
	}

	// rehashed holds the blobs Verify has hashed in this pull, so that the
	// several looks a pull takes at one blob hash it once.
	mu       sync.Mutex
	rehashed map[string]bool
}

// WaitDurable blocks until every blob pulled so far in this process is
// durable (tests, and callers about to power off); see cache.WaitDurable.
func WaitDurable() { cache.WaitDurable() }

// start makes the puller and resolves the reference.
func start(ctx context.Context, c *oci.Client, ref string, o Options) (*puller, *resolved, error) {
	p, err := newPuller(ctx, c, ref, o)
	if err != nil {
		return nil, nil, err
	}
	res, err := p.resolve(ctx)
	if err != nil {
		return nil, nil, err
	}
	return p, res, nil
}

func newPuller(ctx context.Context, c *oci.Client, ref string, o Options) (*puller, error) {
	r, err := c.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if err := o.check(); err != nil {
		return nil, wrap(oci.CodeInvalidArgument, err)
	}
	ch, err := cache.Open(o.CacheDir, cache.WithLease(o.Lease), cache.WithSync(o.Sync), cache.WithDirectIO(o.DirectIO))
	if err != nil {
		return nil, wrap(oci.CodeIO, err)
	}
	return &puller{client: c, ref: r, repo: r.Context(), cache: ch, o: o, rehashed: map[string]bool{}}, nil
}

// check says why o cannot apply. Zero values are the defaults, which the
// packages below decide (cache.Open, oci.PullBlobs, extract).
func (o Options) check() error {
	switch {
	case o.CacheDir == "":
		return fmt.Errorf("no cache directory")
	case o.Concurrency < 0:
		return fmt.Errorf("concurrency must not be negative (0: the default), got %d", o.Concurrency)
	case o.Lease < 0:
		return fmt.Errorf("the lease must not be negative (0: the default), got %s", o.Lease)
	}
	return nil
}

func (p *puller) downloaded() (int, int64) { return p.stats.blobs, p.stats.bytes }
