package oci

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/events"
	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/mirrors"
	"github.com/oci-client/liboci/transfer"
)

// DefaultConcurrency is how many blobs PullBlobs fetches at once.
const DefaultConcurrency = 4

// BlobRequest names one blob to fetch and where to put it.
type BlobRequest struct {
	Digest string `json:"digest"`
	Path   string `json:"path"`
	// Size is the descriptor's size; <= 0 means unknown. When known, a
	// longer or shorter body fails before the digest check.
	Size int64 `json:"size"`
	// Label names the blob in progress reports (default: the file name).
	Label string `json:"label,omitempty"`
	// Committed, when set, runs as soon as the blob is verified and in place
	// at path, before PullBlobs goes on with the others: a cache records the
	// blob as trusted then, for other processes, not once every blob is in.
	// Its error fails the blob.
	Committed func(path string) error `json:"-"`
	// Policy, when set, is how the destination's owner keeps it (a cache's
	// blob: leased, synced later; see transfer.Policy). Nil: a file the
	// download keeps on its own, written with O_DIRECT unless the client
	// says otherwise (WithDirectIO).
	Policy *transfer.Policy `json:"-"`
}

// Blob describes a verified blob written to Path.
type Blob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Path   string `json:"path"`
	// Fetched is the bytes received from the registry for it by this call:
	// less than Size when an earlier call's partial data was resumed.
	Fetched int64 `json:"fetched"`
}

// PullBlob streams the blob with digest from ref's repository to dest,
// hashing as it writes. The data goes to dest.incomplete and is renamed
// over dest only once size and digest check out, so dest is either what
// it was or the complete, verified blob. A failed or cancelled pull keeps
// the partial data, and the next pull of the same digest to the same dest
// continues from it.
func (c *Client) PullBlob(ctx context.Context, ref string, b BlobRequest) (*Blob, error) {
	out, err := c.PullBlobs(ctx, ref, []BlobRequest{b}, 1)
	if err != nil {
		return nil, err
	}
	return &out[0], nil
}

// PullBlobs fetches several blobs of ref's repository, concurrency at a
// time (0: DefaultConcurrency; negative: an error). The first failure cancels the others
// (their partial data is kept) and is returned.
func (c *Client) PullBlobs(ctx context.Context, ref string, blobs []BlobRequest, concurrency int) ([]Blob, error) {
	if concurrency < 0 {
		return nil, invalid("concurrency must not be negative (0: the default, %d), got %d", DefaultConcurrency, concurrency)
	}
	if concurrency == 0 {
		concurrency = DefaultConcurrency
	}
	r, err := c.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	jobs := make([]blobJob, len(blobs))
	seen := map[string]bool{}
	for i, b := range blobs {
		d, err := parseDigest(b.Digest)
		if err != nil {
			return nil, err
		}
		dest, err := checkDestination(b.Path)
		if err != nil {
			return nil, err
		}
		if seen[dest] {
			return nil, newError(CodeInvalidArgument, "destination %q appears twice", dest)
		}
		seen[dest] = true
		label := b.Label
		if label == "" {
			label = filepath.Base(dest)
		}
		pol := transfer.Policy{Buffered: !c.directIO}
		if b.Policy != nil {
			pol = *b.Policy
		}
		jobs[i] = blobJob{d: d, dest: transfer.Destination{Path: dest, Policy: pol}, size: b.Size, label: label, committed: b.Committed}
	}
	if err := checkSpace(jobs); err != nil {
		return nil, err
	}
	_, pinned := r.(name.Digest)
	ctx = mirrors.Begin(ctx, c.mirrorSettings(), pinned)
	s, err := c.open(ctx, r.Context())
	if err != nil {
		return nil, About(err, r.Name(), "")
	}
	prog := transfer.ProgressFrom(ctx)
	tuning := c.transfer.Connections <= 0 // a number the caller chose is used as is
	if prog == nil && tuning {
		prog = &transfer.Progress{} // the tuner reads the bytes received
	}
	for i := range jobs {
		jobs[i].prog = prog.Blob(jobs[i].label)
		jobs[i].prog.AddTotal(max(jobs[i].size, 0), 1)
	}
	// Spread the connection budget over the blobs that run together: a
	// model's shards get a stream each, a lone large blob gets them all,
	// and the last blobs running borrow what finished ones leave.
	together := min(concurrency, len(jobs))
	connections := max(1, c.connections()/together)
	lender := newBudget(connections, together, max(connections, c.connections()), len(jobs))
	if tuning {
		var waits *transfer.Waits
		ctx, waits = transfer.WithWaits(ctx)
		defer tune(ctx, lender, prog, waits, connections*together, TuneMax*c.connections())()
	}
	out := make([]Blob, len(jobs))
	err = runAll(ctx, len(jobs), concurrency, func(int) { lender.start() }, func(ctx context.Context, i int) error {
		defer lender.finish()
		j := jobs[i]
		got, err := c.download(ctx, s, j, connections, lender)
		if err == nil && j.committed != nil {
			if err = j.committed(j.dest.Path); err != nil {
				err = Coded(CodeIO, err)
			}
		}
		if err != nil {
			return About(fmt.Errorf("pulling blob %s from %s: %w", j.d.str, r.Context(), s.refused(err)), r.Name(), j.d.str)
		}
		out[i] = Blob{Digest: j.d.str, Size: got.Size, Path: j.dest.Path, Fetched: got.Fetched}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type blobJob struct {
	d         blobDigest
	dest      transfer.Destination
	size      int64
	label     string
	prog      *transfer.Progress
	committed func(string) error
}

func (c *Client) connections() int {
	if c.transfer.Connections > 0 {
		return c.transfer.Connections
	}
	return transfer.DefaultConnections
}

func (c *Client) download(ctx context.Context, s *session, j blobJob, connections int, lender transfer.Lender) (transfer.Result, error) {
	opts := c.transfer
	opts.Size = j.size
	opts.Connections = connections
	opts.Lender = lender
	client := &http.Client{Transport: s.rt}
	if j.prog != nil {
		ctx = transfer.WithProgress(ctx, j.prog)
	}
	var fetched int64
	for tries := 0; ; tries++ {
		res, err := transfer.Download(ctx, client, blobURL(s.repo, j.d), transfer.Digest{String: j.d.str, Hex: j.d.hex, New: j.d.newHash}, j.dest, opts)
		fetched += res.Fetched
		res.Fetched = fetched
		var mm *transfer.MismatchError
		// Wrong bytes from a mirror: it is skipped from now on, and the
		// blob comes again from the next host.
		if errors.As(err, &mm) && tries < 8 && mirrors.Distrust(ctx, j.d.str, mm.Msg) {
			continue
		}
		mirrors.Forget(ctx, j.d.str)
		return res, err
	}
}

func blobURL(repo name.Repository, d blobDigest) string {
	return fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), d.str)
}

func checkDestination(dest string) (string, error) {
	if dest == "" {
		return "", newError(CodeInvalidArgument, "destination path is empty")
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return "", &Error{Code: CodeInvalidArgument, Err: fmt.Errorf("destination %q: %w", dest, err)}
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return "", newError(CodeInvalidArgument, "destination %q is a directory", dest)
	}
	return abs, nil
}

// tune resizes the budget as the tuner decides, every TuneTick, until the
// function it returns is called.
func tune(ctx context.Context, b *budget, prog *transfer.Progress, waits *transfer.Waits, start, most int) (stop func()) {
	t := newTuner(start, most)
	if t.phase == tuneDone {
		return func() {}
	}
	log := logs.From(ctx, "oci")
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(TuneTick)
		defer tick.Stop()
		var seen int64
		for t.phase != tuneDone {
			select {
			case <-done:
				return
			case at := <-tick.C:
				if waits.Since(&seen) {
					t.restart()
					log.Debug("connection tuning measures again: the registry asked to wait", "connections", t.cur)
					continue
				}
				n := t.observe(at, prog.BytesDone())
				if n != 0 {
					b.resize(n)
				}
				logTune(ctx, log, t, n)
			}
		}
	}()
	return func() { close(done) }
}

// logTune says what the tuner did on a tick that changed something: the
// rate it measured (all connections together) is why. A change is also a
// connections_changed event.
func logTune(ctx context.Context, log *slog.Logger, t *tuner, n int) {
	if n == 0 && t.phase != tuneDone {
		return // most ticks: nothing to say, nothing formatted
	}
	rate := fmt.Sprintf("%.1f MB/s", t.rate/1e6)
	changed := abi.ConnectionsChanged{Before: t.cur - n, After: t.cur, RateBps: int64(t.rate)}
	switch {
	case n > 0:
		changed.Why = "slow_connections"
		events.Log(ctx, "oci", "adding connections: each brings little", changed, "added", n, "connections", t.cur, "rate", rate)
	case n < 0:
		changed.Why = "no_gain"
		events.Log(ctx, "oci", "taking connections back: they did not pay", changed, "removed", -n, "connections", t.cur, "rate", rate, "before", fmt.Sprintf("%.1f MB/s", t.base/1e6))
	case t.phase == tuneDone:
		log.Debug("connection tuning done", "connections", t.cur, "rate", rate)
	}
}
