package capi

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/pullmodel"
	"github.com/oci-client/liboci/transfer"
)

// verifyRequest is CacheVerify's request with the methods it runs on.
type verifyRequest struct{ abi.CacheVerifyRequest }

func (r verifyRequest) client() (*oci.Client, error) {
	return newClient(r.Environ, r.Network, &r.Transfer)
}

// VerifyResult is what CacheVerify found and did (abi.CacheVerifyResult
// once converted).
type VerifyResult struct {
	cache.Checked
	// Problems counts the blobs still wrong when the call returns.
	Problems int `json:"problems"`
	// Repaired lists the snapshots pulled again, repo@digest.
	Repaired []string `json:"repaired"`
}

// CacheVerify is the body of the CacheVerify export: it re-hashes cached
// blobs, moves wrong ones aside and, unless offline or told not to repair,
// pulls the snapshots that use them again (which fetches just what is not
// in place any more, through the same path as any pull).
func CacheVerify(ctx context.Context, input []byte) []byte {
	return Call(ctx, "CacheVerify", input, func(ctx context.Context, req abi.CacheVerifyRequest) (*abi.CacheVerifyResult, error) {
		r := verifyRequest{req}
		repair := r.Repair == nil || *r.Repair
		offline := offlineFrom(r.Offline, r.Environ)
		if r.Concurrency < 0 {
			return nil, &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("concurrency must not be negative, got %d", r.Concurrency)}
		}
		c, err := openCache(r.Cache, r.Environ)
		if err != nil {
			return nil, err
		}
		snaps, err := r.snapshots(c)
		if err != nil {
			return nil, err
		}
		// The hashing is followed as a pull is (OperationProgress); the
		// pulls that repair come after it and add to the same counters.
		checked, err := c.Check(ctx, snaps, cache.CheckOptions{
			All: len(r.References) == 0, MoveAside: repair, Workers: r.Concurrency,
			Progress: transfer.ProgressFrom(ctx),
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, oci.AsError(ctx.Err())
			}
			return nil, &oci.Error{Code: oci.CodeIO, Err: err}
		}
		out := &VerifyResult{Checked: *checked, Repaired: []string{}}
		switch {
		case !repair:
		case offline:
			for i := range out.Blobs {
				if b := &out.Blobs[i]; !b.Fixed && len(b.Models) > 0 {
					b.Action = join(b.Action, "not fetched (offline)")
				}
			}
		default:
			if err := r.refetch(ctx, c, snaps, out); err != nil {
				return nil, err
			}
		}
		for _, b := range out.Blobs {
			if !b.Fixed {
				out.Problems++
			}
		}
		w := wireChecked(&out.Checked, out.Problems, out.Repaired)
		return &w, nil
	})
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// snapshots are those the references lead to, or all of them.
func (r verifyRequest) snapshots(c *cache.Cache) ([]*cache.Snapshot, error) {
	if len(r.References) == 0 {
		all, err := c.AllSnapshots()
		if err != nil {
			return nil, &oci.Error{Code: oci.CodeIO, Err: err}
		}
		return all, nil
	}
	client, err := r.client()
	if err != nil {
		return nil, err
	}
	seen := map[cache.SnapshotID]bool{}
	var out []*cache.Snapshot
	for _, s := range r.References {
		ref, err := client.ParseReference(s)
		if err != nil {
			return nil, err
		}
		found, err := c.SnapshotsOf(cacheKey(ref))
		if err != nil {
			return nil, &oci.Error{Code: oci.CodeIO, Err: err}
		}
		if len(found) == 0 {
			return nil, &oci.Error{Code: oci.CodeNotFound, Err: fmt.Errorf("%s is not in the cache at %s", ref.Name(), c.Root)}
		}
		for _, f := range found {
			if !seen[f.ID()] {
				seen[f.ID()] = true
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// refetch pulls again, by digest, each snapshot that uses a blob still
// wrong, selecting the files it held before; the pull fetches only what is
// not in place and trusted. A blob is fixed when every such pull succeeded.
func (r verifyRequest) refetch(ctx context.Context, c *cache.Cache, snaps []*cache.Snapshot, out *VerifyResult) error {
	byID := map[string]*cache.Snapshot{}
	for _, s := range snaps {
		byID[s.ID().String()] = s
	}
	need := map[string]bool{}
	for _, b := range out.Blobs {
		if !b.Fixed {
			for _, m := range b.Models {
				need[m] = true
			}
		}
	}
	failed := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(need)) {
		if err := r.pullAgain(ctx, c, byID[id]); err != nil {
			if ctx.Err() != nil {
				return oci.AsError(ctx.Err())
			}
			failed[id] = err.Error()
			continue
		}
		out.Repaired = append(out.Repaired, id)
	}
	for i := range out.Blobs {
		b := &out.Blobs[i]
		if b.Fixed || len(b.Models) == 0 {
			continue
		}
		var errs []string
		for _, m := range b.Models {
			if e, ok := failed[m]; ok {
				errs = append(errs, m+": "+e)
			}
		}
		if len(errs) > 0 {
			b.Action = join(b.Action, "fetching it again failed")
			b.Error = join(b.Error, strings.Join(errs, "; "))
			continue
		}
		b.Action, b.Fixed = join(b.Action, "fetched again"), true
	}
	return nil
}

// pullAgain pulls snapshot s again, the files it held and no others.
func (r verifyRequest) pullAgain(ctx context.Context, c *cache.Cache, s *cache.Snapshot) error {
	if s == nil {
		return nil
	}
	ref := s.ID().String()
	o := pullmodel.Options{CacheDir: c.Root, Concurrency: r.Concurrency, DirectIO: r.DirectIO != nil && *r.DirectIO}
	// Inspect fetches the config again if it was the wrong blob.
	client, err := r.client()
	if err != nil {
		return err
	}
	info, err := pullmodel.Inspect(ctx, client, ref, o)
	if err != nil {
		return err
	}
	m := info.Model
	if m == nil {
		return fmt.Errorf("inspecting %s gave no model", ref)
	}
	for _, f := range m.Files {
		if s.HasLayer(f.Digest) {
			o.Allow = append(o.Allow, globQuote(f.Path))
		}
	}
	// The entries some patterns picked out of an archive, each by its path.
	for _, pth := range slices.Sorted(maps.Keys(s.Files)) {
		if e := s.Files[pth]; e.Type == "file" && slices.Contains(s.Partial, e.Layer) && !s.HasLayer(e.Layer) {
			o.Allow = append(o.Allow, globQuote(pth))
		}
	}
	if len(o.Allow) == 0 {
		return nil
	}
	_, err = pullmodel.Pull(ctx, client, ref, o)
	return err
}

// globQuote makes a path a pattern that matches only itself.
func globQuote(p string) string {
	return strings.NewReplacer("*", "[*]", "?", "[?]", "[", "[[]").Replace(p)
}
