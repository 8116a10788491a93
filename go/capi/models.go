package capi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/export"
	"github.com/oci-client/liboci/extract"
	"github.com/oci-client/liboci/layout"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/pullmodel"
)

// cacheRoot is cache_dir, else the default the environment gives.
func cacheRoot(c abi.Cache, e abi.Environ) (string, error) {
	if c.CacheDir != "" {
		return c.CacheDir, nil
	}
	root, err := cache.DefaultRoot(e.Env)
	if err != nil {
		return "", &oci.Error{Code: oci.CodeInvalidArgument, Err: err}
	}
	return root, nil
}

func openCache(c abi.Cache, e abi.Environ) (*cache.Cache, error) {
	root, err := cacheRoot(c, e)
	if err != nil {
		return nil, err
	}
	ch, err := cache.Open(root)
	if err != nil {
		return nil, &oci.Error{Code: oci.CodeIO, Err: err}
	}
	return ch, nil
}

func envTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// offlineFrom is what the request says, else what env says.
func offlineFrom(o *bool, e abi.Environ) bool {
	if o != nil {
		return *o
	}
	return envTrue(e.Env["OCI_CLIENT_OFFLINE"]) || envTrue(e.Env["HF_HUB_OFFLINE"])
}

// selectOptions are the options InspectModel and PullModel share.
func selectOptions(s abi.Selection, c abi.Cache, e abi.Environ) (pullmodel.Options, error) {
	o := pullmodel.Options{
		Select:  model.Selector{Platform: s.Platform, ArtifactType: s.ArtifactType},
		Offline: offlineFrom(s.Offline, e),
		Verify:  envTrue(e.Env["OCI_CLIENT_VERIFY"]),
	}
	var err error
	o.CacheDir, err = cacheRoot(c, e)
	return o, err
}

func pullOptions(r abi.PullModelRequest) (pullmodel.Options, error) {
	o, err := selectOptions(r.Selection, r.Cache, r.Environ)
	if err != nil {
		return o, err
	}
	o.LocalDir = r.LocalDir
	o.Allow, o.Ignore, o.AllowNoMatch = r.AllowPatterns, r.IgnorePatterns, r.AllowNoMatch
	o.Concurrency, o.Lease = r.Concurrency, time.Duration(r.LeaseMS)*time.Millisecond
	o.DirectIO = r.DirectIO != nil && *r.DirectIO
	o.Limits = extract.Limits{MaxEntries: r.MaxEntries, MaxEntrySize: r.MaxEntrySize, MaxTotalSize: r.MaxTotalSize}
	if r.Verify != nil {
		o.Verify = *r.Verify
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
	return o, nil
}

// PullModel is the body of the PullModel export.
func PullModel(ctx context.Context, input []byte) []byte {
	return Call(ctx, "PullModel", input, func(ctx context.Context, r abi.PullModelRequest) (*abi.PullModelResult, error) {
		o, err := pullOptions(r)
		if err != nil {
			return nil, err
		}
		c, err := newClient(r.Environ, r.Network, &r.Transfer)
		if err != nil {
			return nil, err
		}
		res, err := pullmodel.Pull(ctx, c, r.Reference, o)
		if err != nil {
			return nil, err
		}
		res.Reference = layout.Display(res.Reference) // as the caller named it
		w := wirePull(res)
		return &w, nil
	})
}

// ExportModel is the body of the ExportModel export.
func ExportModel(ctx context.Context, input []byte) []byte {
	return Call(ctx, "ExportModel", input, func(ctx context.Context, r abi.ExportModelRequest) (*abi.ExportModelResult, error) {
		if r.LayoutDir == "" {
			return nil, oci.Coded(oci.CodeInvalidArgument, errors.New("layout_dir is required"))
		}
		c, err := newClient(r.Environ, r.Network, &r.Transfer)
		if err != nil {
			return nil, err
		}
		res, err := export.Model(ctx, c, r.Reference, r.LayoutDir, export.Options{Tag: r.Tag, Concurrency: r.Concurrency})
		if err != nil {
			return nil, err
		}
		w := wireExport(res)
		return &w, nil
	})
}

// InspectModel is the body of the InspectModel export.
func InspectModel(ctx context.Context, input []byte) []byte {
	return Call(ctx, "InspectModel", input, func(ctx context.Context, r abi.InspectModelRequest) (*abi.InspectModelResult, error) {
		o, err := selectOptions(r.Selection, r.Cache, r.Environ)
		if err != nil {
			return nil, err
		}
		c, err := newClient(r.Environ, r.Network, nil)
		if err != nil {
			return nil, err
		}
		i, err := pullmodel.Inspect(ctx, c, r.Reference, o)
		if err != nil {
			return nil, err
		}
		i.Reference = layout.Display(i.Reference)
		w := wireInspection(i)
		return &w, nil
	})
}

// CacheList is the body of the CacheList export.
func CacheList(ctx context.Context, input []byte) []byte {
	return Call(ctx, "CacheList", input, func(ctx context.Context, r abi.CacheListRequest) (*abi.CacheListResult, error) {
		c, err := openCache(r.Cache, r.Environ)
		if err != nil {
			return nil, err
		}
		l, err := c.List()
		if err != nil {
			return nil, &oci.Error{Code: oci.CodeIO, Err: err}
		}
		w := wireListing(l)
		return &w, nil
	})
}

// CacheRemove is the body of the CacheRemove export: "reference" names a
// tag (removed, and its snapshot when no other tag points there) or a
// digest (its snapshot and the tags pointing to it).
func CacheRemove(ctx context.Context, input []byte) []byte {
	return Call(ctx, "CacheRemove", input, func(ctx context.Context, r abi.CacheRemoveRequest) (*abi.RemovedResult, error) {
		client, err := newClient(r.Environ, abi.Network{}, nil)
		if err != nil {
			return nil, err
		}
		ref, err := client.ParseReference(r.Reference)
		if err != nil {
			return nil, err
		}
		c, err := openCache(r.Cache, r.Environ)
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
		w := wireRemoved(rm)
		return &w, nil
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

// DefaultPruneAge is how old unused content must be before prune deletes it.
const DefaultPruneAge = time.Hour

// CachePrune is the body of the CachePrune export.
func CachePrune(ctx context.Context, input []byte) []byte {
	return Call(ctx, "CachePrune", input, func(ctx context.Context, r abi.CachePruneRequest) (*abi.RemovedResult, error) {
		c, err := openCache(r.Cache, r.Environ)
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
		w := wireRemoved(rm)
		return &w, nil
	})
}

// WaitDurable is the body of the CacheSync export: it makes every blob
// pulled so far by this process durable now, without waiting out the
// background delay, and says how many it made durable, how many are left
// and how long that took.
func WaitDurable(ctx context.Context, input []byte) []byte {
	return Call(ctx, "CacheSync", input, func(ctx context.Context, r abi.CacheSyncRequest) (abi.CacheSyncResult, error) {
		if r.WaitMS < 0 {
			return abi.CacheSyncResult{}, &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("wait_ms must not be negative, got %d", r.WaitMS)}
		}
		bounded := ctx
		if r.WaitMS > 0 {
			var cancel context.CancelFunc
			bounded, cancel = context.WithTimeout(ctx, time.Duration(r.WaitMS)*time.Millisecond)
			defer cancel()
		}
		done := cache.FlushAll(bounded)
		if ctx.Err() != nil {
			return abi.CacheSyncResult{}, oci.AsError(ctx.Err())
		}
		return wireFlushed(done), nil
	})
}
