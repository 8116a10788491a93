package pullmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/internal/events"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/transfer"
)

// A want is one blob a pull needs at path. Processes that want the same
// blob take turns through its lease: one downloads, the others wait and
// then find it present, so each blob crosses the network once per
// machine (or per shared file system).
type want struct {
	digest string
	size   int64
	label  string // the file's name in progress reports
	path   string // where the download goes
	lock   string // the lease file
	// present says whether the work is done (by anyone): the blob is in
	// place and trusted, or an archive is already unpacked.
	present func(ctx context.Context) (bool, error)
	// done runs on a blob this pull downloaded, as soon as it is in place
	// (from PullBlobs' goroutines: it must be safe to run concurrently).
	done func(path string) error
	// policy is how the destination's owner keeps it: the cache's for a
	// blob of the cache, the local directory's for a file there.
	policy transfer.Policy
}

// pollInterval is how often a pull waiting on others' leases looks again.
const pollInterval = cache.WaitPoll

var errLeaseLost = errors.New("the lease was broken by another process: this one stalled for longer than the lease")

// ensure makes every want present, downloading those whose leases it gets
// and waiting for the others' holders (or for their leases to go stale).
//
// Each want found present (cached, or finished by another process) is
// reported to the call's progress as soon as it is seen, as the blobs this
// pull downloads are: a loader in every process reads each shard once it
// is verified, whichever process fetched it.
func (p *puller) ensure(ctx context.Context, wants []want) error {
	prog := transfer.ProgressFrom(ctx)
	fetched := map[string]int{}
	waited := map[string]time.Time{} // wants first seen busy, and when
	reported := map[string]bool{}    // wants told of as found
	// found reports w verified in place without this pull fetching it: to
	// the progress, and once as a file_found event.
	found := func(w want, how string) {
		prog.Found(w.label, w.path)
		if reported[w.path] {
			return
		}
		reported[w.path] = true
		ev := abi.FileFound{Path: w.path, Label: w.label, Digest: w.digest, How: how}
		if since, ok := waited[w.path]; ok {
			ev.How = "other_process"
			events.Log(ctx, "pull", "another process fetched the blob", ev, "blob", w.digest, "waited", time.Since(since).Round(time.Millisecond))
			delete(waited, w.path)
			return
		}
		events.Emit(ctx, ev)
	}
	for {
		var mine, others []want
		var leases []*cache.Lease
		waiting := 0
		for _, w := range wants {
			l, busy, err := p.claim(ctx, w)
			if err == nil && l != nil && fetched[w.path] >= 2 {
				// Downloaded and verified, yet not there: something
				// (a prune, a person) keeps removing it.
				l.Release()
				err = wrap(oci.CodeIO, fmt.Errorf("%s was downloaded twice and is still not in place at %s", w.digest, w.path))
			}
			if err != nil {
				for _, l := range leases {
					l.Release()
				}
				return err
			}
			switch {
			case busy:
				waiting++
				others = append(others, w)
				if _, ok := waited[w.path]; !ok {
					waited[w.path] = time.Now()
					cache.LogHeld(ctx, w.lock)
				}
			case l != nil:
				fetched[w.path]++
				mine = append(mine, w)
				leases = append(leases, l)
			default:
				if fetched[w.path] == 0 {
					found(w, p.foundHow())
				} else {
					prog.Found(w.label, w.path)
				}
			}
		}
		if len(mine) > 0 {
			err := p.fetchWatching(ctx, mine, leases, others, found)
			if err != nil && !errors.Is(err, errLeaseLost) {
				return err
			}
			if err != nil {
				events.Log(ctx, "pull", "another process broke this pull's lease (it stalled too long): looking again",
					abi.LeaseBroken{Why: "this pull stalled for longer than the lease", Ours: true})
			}
			continue
		}
		if waiting == 0 {
			return nil
		}
		if err := transfer.Sleep(ctx, pollInterval); err != nil {
			return oci.AsError(err)
		}
	}
}

// fetchWatching fetches mine while watching the wants other processes are
// fetching: each is reported once it is there, not when this pull's own
// downloads end, which would hold a loader in this process back until the
// slowest of them (a tensor-parallel rank fetching the last shard).
func (p *puller) fetchWatching(ctx context.Context, mine []want, leases []*cache.Lease, others []want, found func(want, string)) error {
	if len(others) == 0 {
		return p.fetch(ctx, mine, leases)
	}
	done := make(chan error, 1)
	go func() { done <- p.fetch(ctx, mine, leases) }()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			others = slices.DeleteFunc(others, func(w want) bool {
				ok, err := w.present(ctx)
				if err == nil && ok {
					found(w, "other_process")
				}
				return err == nil && ok
			})
		}
	}
}

// foundHow is how a file_found event says where this pull found a file:
// in its local_dir, or in the cache.
func (p *puller) foundHow() string {
	if p.o.LocalDir != "" {
		return "local"
	}
	return "cache"
}

// claim looks at one want: done (no lease, not busy), another holder's
// (busy), or this pull's to fetch (its lease).
func (p *puller) claim(ctx context.Context, w want) (l *cache.Lease, busy bool, err error) {
	if ok, err := w.present(ctx); err != nil || ok {
		return nil, false, err
	}
	l, got, err := p.cache.Locker.TryLock(ctx, w.lock)
	if err != nil {
		return nil, false, wrap(oci.CodeIO, fmt.Errorf("taking the lease %s: %w", w.lock, err))
	}
	if !got {
		return nil, true, nil
	}
	// It may have been finished between the look and the lease.
	if ok, err := w.present(holding(ctx, w.lock)); err != nil || ok {
		l.Release()
		return nil, false, err
	}
	return l, false, nil
}

// fetch downloads the wants whose leases it holds, in one PullBlobs call
// (one connection budget), and gives the leases back.
func (p *puller) fetch(ctx context.Context, mine []want, leases []*cache.Lease) error {
	defer func() {
		for _, l := range leases {
			l.Release()
		}
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	for _, l := range leases {
		go func() {
			select {
			case <-l.Lost():
				cancel(errLeaseLost)
			case <-ctx.Done():
			}
		}()
	}
	reqs := make([]oci.BlobRequest, len(mine))
	for i, w := range mine {
		// Recorded as each lands, not when all have: another process
		// waiting on this lease then trusts it at once instead of
		// re-hashing it (vLLM's other ranks load each shard as it is in).
		reqs[i] = oci.BlobRequest{Digest: w.digest, Path: w.path, Size: w.size, Label: w.label, Committed: w.done, Policy: &w.policy}
	}
	blobs, err := p.client.PullBlobs(ctx, p.ref.String(), reqs, p.o.Concurrency)
	if errors.Is(context.Cause(ctx), errLeaseLost) {
		return errLeaseLost
	}
	if err != nil {
		return err
	}
	for _, b := range blobs {
		p.stats.blobs++
		// What crossed the wire, not the blob's size: a resumed blob
		// costs only its rest.
		p.stats.bytes += b.Fetched
	}
	return nil
}

// withLease runs fn holding the lease at lock, waiting for it.
func (p *puller) withLease(ctx context.Context, lock string, fn func() error) error {
	l, err := p.cache.Locker.Wait(ctx, lock)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return oci.AsError(err)
		}
		return wrap(oci.CodeIO, err)
	}
	defer l.Release()
	return fn()
}

// blobOK says whether the cache holds blob d (of size, when > 0) with
// content it may serve (cache.Present says which); with Options.Verify
// every blob is re-hashed first, once per pull (rehash).
func (p *puller) blobOK(ctx context.Context, d string, size int64) (bool, error) {
	if p.o.Verify {
		return p.rehash(ctx, d, size)
	}
	ok, err := p.cache.Present(ctx, d, size)
	return ok, storeError(ctx, err)
}

// storeError codes an error of the cache store: the call's end as such,
// anything else as IO.
func storeError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return oci.AsError(ctx.Err())
	}
	return wrap(oci.CodeIO, err)
}

// committed records blob d, which this pull verified into the cache (so
// Verify does not hash it again).
func (p *puller) committed(d string) error {
	p.hashed(d)
	return p.cache.Commit(d)
}

// blobWant is a want for blob d in the cache, called label.
func (p *puller) blobWant(d string, size int64, label string) want {
	return want{
		digest:  d,
		size:    size,
		label:   label,
		path:    p.cache.Incoming(d),
		lock:    p.cache.BlobLease(d),
		present: func(ctx context.Context) (bool, error) { return p.blobOK(ctx, d, size) },
		done:    func(string) error { return p.committed(d) },
		policy:  p.cache.WritePolicy(),
	}
}
