package capi

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/extract"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/pullmodel"
)

// CacheRequest names the cache (cache_dir, else $OCI_CLIENT_CACHE from
// env, else $HOME/.cache/oci-client).
type CacheRequest struct {
	Common
	CacheDir string `json:"cache_dir"`
}

// root is cache_dir, else the default the environment gives.
func (r CacheRequest) root() (string, error) {
	if r.CacheDir != "" {
		return r.CacheDir, nil
	}
	root, err := cache.DefaultRoot(r.Env)
	if err != nil {
		return "", &oci.Error{Code: oci.CodeInvalidArgument, Err: err}
	}
	return root, nil
}

func (r CacheRequest) open() (*cache.Cache, error) {
	root, err := r.root()
	if err != nil {
		return nil, err
	}
	c, err := cache.Open(root, 0)
	if err != nil {
		return nil, &oci.Error{Code: oci.CodeIO, Err: err}
	}
	return c, nil
}

// ModelRequest is PullModel's and InspectModel's input.
type ModelRequest struct {
	CacheRequest
	LocalDir       string   `json:"local_dir"`
	AllowPatterns  []string `json:"allow_patterns"`
	IgnorePatterns []string `json:"ignore_patterns"`
	// AllowNoMatch: patterns that select no file give an empty directory,
	// not NO_MATCH (vLLM's small-file pull).
	AllowNoMatch bool `json:"allow_no_match"`
	// Offline nil: on when OCI_CLIENT_OFFLINE or HF_HUB_OFFLINE is set to
	// 1, true, yes or on in env.
	Offline      *bool  `json:"offline"`
	Platform     string `json:"platform"`
	ArtifactType string `json:"artifact_type"`
	Concurrency  int    `json:"concurrency"`
	LeaseMS      int64  `json:"lease_ms"`
	// Durability is "background" (the default) or "sync".
	Durability string `json:"durability"`
	// Verify re-hashes every blob served from the cache before serving it
	// (pullmodel.Options.Verify). nil: on when OCI_CLIENT_VERIFY is set to
	// 1, true, yes or on in env.
	Verify *bool `json:"verify"`
	// Archive limits (0: extract's defaults).
	MaxEntries   int   `json:"max_entries"`
	MaxEntrySize int64 `json:"max_entry_size"`
	MaxTotalSize int64 `json:"max_total_size"`
}

func envTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

func (r ModelRequest) options() (pullmodel.Options, error) {
	o := pullmodel.Options{
		LocalDir: r.LocalDir,
		Allow:    r.AllowPatterns, Ignore: r.IgnorePatterns, AllowNoMatch: r.AllowNoMatch,
		Select:      model.Selector{Platform: r.Platform, ArtifactType: r.ArtifactType},
		Concurrency: r.Concurrency, Lease: time.Duration(r.LeaseMS) * time.Millisecond,
		DirectIO: r.DirectIO != nil && *r.DirectIO,
		Limits:   extract.Limits{MaxEntries: r.MaxEntries, MaxEntrySize: r.MaxEntrySize, MaxTotalSize: r.MaxTotalSize},
	}
	if r.Offline != nil {
		o.Offline = *r.Offline
	} else {
		o.Offline = envTrue(r.Env["OCI_CLIENT_OFFLINE"]) || envTrue(r.Env["HF_HUB_OFFLINE"])
	}
	if r.Verify != nil {
		o.Verify = *r.Verify
	} else {
		o.Verify = envTrue(r.Env["OCI_CLIENT_VERIFY"])
	}
	switch r.Durability {
	case "", "background":
	case "sync":
		o.Sync = true
	default:
		return o, &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("durability must be \"background\" or \"sync\", not %q", r.Durability)}
	}
	if r.LeaseMS < 0 || r.Concurrency < 0 {
		return o, &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("lease_ms and concurrency must not be negative")}
	}
	var err error
	o.CacheDir, err = r.root()
	return o, err
}

// modelCall runs fn, a pullmodel front end, with the request's options.
func modelCall[T any](ctx context.Context, input []byte, fn func(context.Context, *oci.Client, string, pullmodel.Options) (T, error)) []byte {
	return Call(ctx, input, func(ctx context.Context, r ModelRequest) (T, error) {
		o, err := r.options()
		if err != nil {
			var zero T
			return zero, err
		}
		return fn(ctx, r.client(), r.Reference, o)
	})
}

// PullModel is the body of the PullModel export.
func PullModel(ctx context.Context, input []byte) []byte {
	return modelCall(ctx, input, pullmodel.Pull)
}

// InspectModel is the body of the InspectModel export.
func InspectModel(ctx context.Context, input []byte) []byte {
	return modelCall(ctx, input, pullmodel.Inspect)
}

// CacheList is the body of the CacheList export.
func CacheList(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r CacheRequest) (*cache.Listing, error) {
		c, err := r.open()
		if err != nil {
			return nil, err
		}
		l, err := c.List()
		if err != nil {
			return nil, &oci.Error{Code: oci.CodeIO, Err: err}
		}
		return l, nil
	})
}

// CacheRemove is the body of the CacheRemove export: "reference" names a
// tag (removed, and its snapshot when no other tag points there) or a
// digest (its snapshot and the tags pointing to it).
func CacheRemove(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r CacheRequest) (*cache.Removed, error) {
		ref, err := r.client().ParseReference(r.Reference)
		if err != nil {
			return nil, err
		}
		c, err := r.open()
		if err != nil {
			return nil, err
		}
		registry, repo, tag, digest := cacheKey(ref)
		rm, found, err := c.Remove(registry, repo, tag, digest)
		if err != nil {
			return nil, &oci.Error{Code: oci.CodeIO, Err: err}
		}
		if !found {
			return nil, &oci.Error{Code: oci.CodeNotFound, Err: fmt.Errorf("%s is not in the cache at %s", ref.Name(), c.Root)}
		}
		return rm, nil
	})
}

// cacheKey names a reference as the cache's index does: a tag, or a digest.
func cacheKey(ref name.Reference) (registry, repo, tag, digest string) {
	r := ref.Context()
	if d, ok := ref.(name.Digest); ok {
		return r.RegistryStr(), r.RepositoryStr(), "", d.DigestStr()
	}
	return r.RegistryStr(), r.RepositoryStr(), ref.Identifier(), ""
}

// PruneRequest is CachePrune's input.
type PruneRequest struct {
	CacheRequest
	// MinAgeMS keeps what is younger (a pull running now may not have
	// linked it yet). Negative: the default, an hour.
	MinAgeMS int64 `json:"min_age_ms"`
}

// DefaultPruneAge is how old unused content must be before prune deletes it.
const DefaultPruneAge = time.Hour

// CachePrune is the body of the CachePrune export.
func CachePrune(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r PruneRequest) (*cache.Removed, error) {
		c, err := r.open()
		if err != nil {
			return nil, err
		}
		age := time.Duration(r.MinAgeMS) * time.Millisecond
		if r.MinAgeMS < 0 {
			age = DefaultPruneAge
		}
		rm, err := c.Prune(age)
		if err != nil {
			return nil, &oci.Error{Code: oci.CodeIO, Err: err}
		}
		return rm, nil
	})
}

// SyncRequest is the request of the CacheSync export.
type SyncRequest struct {
	// WaitMS bounds the wait: after it the call returns what it made
	// durable and how many blobs are left, as a success. 0 or absent: no
	// bound. (timeout_ms, as on every call, fails with OPERATION_TIMEOUT
	// instead.)
	WaitMS int64 `json:"wait_ms"`
}

// WaitDurable is the body of the CacheSync export: it makes every blob
// pulled so far by this process durable now, without waiting out the
// background delay, and says how many it made durable, how many are left
// and how long that took.
func WaitDurable(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r SyncRequest) (cache.Flushed, error) {
		if r.WaitMS < 0 {
			return cache.Flushed{}, &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("wait_ms must not be negative, got %d", r.WaitMS)}
		}
		bounded := ctx
		if r.WaitMS > 0 {
			var cancel context.CancelFunc
			bounded, cancel = context.WithTimeout(ctx, time.Duration(r.WaitMS)*time.Millisecond)
			defer cancel()
		}
		done := cache.FlushAll(bounded)
		if ctx.Err() != nil {
			return cache.Flushed{}, oci.AsError(ctx.Err())
		}
		return done, nil
	})
}
