// Package transfer downloads one content-addressed blob to a file: verified
// while it streams, resumed after broken connections (within a call, with
// closed Range requests) and across calls (from the partial file kept beside
// the destination), and split over several ranged connections when large.
package transfer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/events"
	"github.com/oci-client/liboci/internal/logs"
)

// Digest is the content address being fetched.
type Digest struct {
	String string // "sha256:…"
	Hex    string
	New    func() hash.Hash
}

// DefaultConnections is the connection budget for one blob.
const DefaultConnections = 4

// Options tune one download; zero values take the defaults noted.
type Options struct {
	// Size is the expected size (<= 0: unknown until the registry says).
	Size int64
	// Connections is how many ranged streams may fetch one large blob at
	// once; each also keeps the request for its next chunk open ahead, so
	// up to twice as many requests are open. Default DefaultConnections; 1
	// disables chunking.
	Connections int
	// ChunkSize is the span of one ranged request. Default 8 MiB. Chunks
	// that arrive ahead of the hashed prefix wait in memory, so a chunked
	// download holds up to Connections x ChunkSize of data.
	ChunkSize int64
	// MinChunked is the smallest blob fetched in chunks. Default 2 chunks.
	MinChunked int64
	// ReadTimeout declares a stream dead after this long without a byte.
	// Default 60 s.
	ReadTimeout time.Duration
	// Resumes bounds consecutive resume attempts that bring no new bytes;
	// the count starts again whenever bytes arrive. Default 5.
	Resumes int
	// Retry paces resume attempts.
	Retry RetryPolicy
	// Lender, when set, lends the download connections that downloads
	// running beside it have finished with, while at least MinChunked is
	// left: a stream becomes ranged chunks (where the registry said it
	// honours ranges) and a chunked download adds connections. Nil: the
	// download keeps the Connections it started with.
	Lender Lender
}

// Destination is the file a download writes, and its owner's policy for
// it: the caller decides, the download follows.
type Destination struct {
	// Path is the blob's final place. The data waits beside it
	// (IncompletePath) until it is verified and renamed over Path.
	Path string
	Policy
}

// Policy is how a destination's owner keeps the file. The zero Policy is
// a file nobody else keeps (File): the download locks its partial file,
// writes blobs of DirectMin or more with O_DIRECT where that works, and
// makes the blob durable before it returns.
type Policy struct {
	// Leased: the owner holds a lease on the destination that keeps other
	// writers away (package cache's, which also holds where flock does
	// nothing, as on NFS or Lustre); the partial file is not flocked.
	Leased bool
	// DeferSync: the owner makes the blob durable later, off the
	// download's path (package cache does). The verified blob is renamed
	// into place without fsync, and no write-back is started while it is
	// written. Otherwise write-back starts as data lands and data and
	// directory are synced, so the blob is on disk when Download returns.
	DeferSync bool
	// Buffered writes through the page cache even where O_DIRECT works.
	Buffered bool
}

// File is a destination file that the download keeps on its own.
func File(path string) Destination { return Destination{Path: path} }

// Lender shares a connection budget among downloads that run together.
type Lender interface {
	// Borrow grants more connections to a download that has `have`,
	// without waiting: 0 when none is free.
	Borrow(have int) int
	// Return gives back connections Borrow granted.
	Return(n int)
	// Retire says whether a download should close one connection it
	// borrowed now (the budget shrank); if so, that one counts as given back.
	Retire() bool
}

// DirectMin is the smallest blob written with O_DIRECT.
const DirectMin = 4 << 20

// Check says why o cannot apply: a negative number where only 0 (the
// default) or more means something.
func (o Options) Check() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"connections", int64(o.Connections)},
		{"chunk size", o.ChunkSize},
		{"minimum chunked size", o.MinChunked},
		{"read timeout", int64(o.ReadTimeout)},
		{"resumes", int64(o.Resumes)},
		{"retry attempts", int64(o.Retry.Attempts)},
	} {
		if f.v < 0 {
			return fmt.Errorf("the transfer's %s must not be negative (0: the default), got %d", f.name, f.v)
		}
	}
	return nil
}

// withDefaults fills what o leaves zero: the one place transfer's
// defaults are decided.
func (o Options) withDefaults() Options {
	if o.Connections <= 0 {
		o.Connections = DefaultConnections
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 8 << 20
	}
	if o.MinChunked <= 0 {
		o.MinChunked = 2 * o.ChunkSize
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 60 * time.Second
	}
	if o.Resumes <= 0 {
		o.Resumes = 5
	}
	if o.Retry.Attempts == 0 {
		o.Retry = DefaultRetryPolicy
	}
	return o
}

// MismatchError says the content is not the blob that was asked for.
type MismatchError struct{ Msg string }

func (e *MismatchError) Error() string { return e.Msg }

// ErrStalled ends a stream that sent nothing for ReadTimeout.
var ErrStalled = errors.New("stream stalled")

// Result is what one Download call did.
type Result struct {
	// Size is the blob's size; after a failure, the bytes of it kept.
	Size int64
	// Fetched is the body bytes this call received from the network, not
	// what an earlier call left on disk: what the pull cost. Bytes that a
	// retry receives again, or that are fetched over when kept data proves
	// bad, crossed the wire each time and count each time.
	Fetched int64
}

// Download fetches the blob at url into dest. dest becomes the verified
// blob or stays as it was; on failure the partial data is kept beside it
// for the next call, unless the data itself proved wrong.
func Download(ctx context.Context, client *http.Client, url string, d Digest, to Destination, o Options) (Result, error) {
	start := time.Now()
	dest := to.Path
	j := &job{client: client, src: &source{registry: url}, d: d, dest: dest, pol: to.Policy, o: o.withDefaults(), prog: ProgressFrom(ctx), size: -1}
	if o.Size > 0 {
		j.size = o.Size
	}
	j.pool = newPieces(int(min(pieceSize, j.o.ChunkSize)))
	defer j.close()
	if err := j.resume(ctx); err != nil {
		return Result{}, err
	}
	for fresh := j.valid == 0; ; fresh = true {
		err := j.fetch(ctx)
		j.giveBack()
		var mm *MismatchError
		if err != nil && !errors.As(err, &mm) {
			j.saveReceived()
		}
		if serr := j.drain(); err == nil {
			err = serr
		}
		if errors.As(err, &mm) {
			j.discard() // the registry sent the wrong thing: nothing to resume
			return j.result(), err
		}
		if err != nil {
			j.keep()
			return j.result(), err
		}
		if got := hex.EncodeToString(j.h.Sum(nil)); got != d.Hex {
			if !fresh {
				// The data kept from an earlier run was bad: start over once.
				j.restart()
				continue
			}
			j.discard()
			return j.result(), &MismatchError{Msg: fmt.Sprintf("content has digest %s:%s, want %s", strings.SplitN(d.String, ":", 2)[0], got, d.String)}
		}
		if err := commit(j.f, dest, !j.pol.DeferSync); err != nil {
			j.keep()
			return j.result(), err
		}
		j.f.Close()
		j.f = nil
		j.prog.BlobAt(dest)
		r := j.result()
		events.Emit(ctx, abi.BlobDone{Digest: d.String, Size: r.Size, Fetched: r.Fetched, ElapsedMS: time.Since(start).Milliseconds()})
		events.Emit(ctx, abi.FileVerified{Path: dest, Digest: d.String, Size: r.Size})
		return r, nil
	}
}

func (j *job) result() Result { return Result{Size: j.valid, Fetched: j.fetched.Load()} }

type job struct {
	client *http.Client
	src    *source
	d      Digest
	dest   string
	pol    Policy
	o      Options
	prog   *Progress
	pool   *pieces

	f     *os.File  // the locked partial file, once there is one
	size  int64     // -1 while unknown
	valid int64     // bytes [0, valid) are hashed and written (or queued to be)
	h     hash.Hash // hash of those bytes
	out   *sink     // writes the hashed bytes, in order; nil between fetches
	cur   *piece    // stream mode: bytes received after valid, not yet hashed

	fetched atomic.Int64 // body bytes read from the network (chunks run in parallel)

	lent   atomic.Int64 // connections borrowed from o.Lender, not yet given back
	narrow bool         // the registry ignored a range: one stream from now on
	// head is a widened stream, positioned at valid: chunked reads its
	// first span from it rather than dropping what is already on the way.
	head   *http.Response
	headWd *watchdog
}

// borrow asks the lender for connections beyond the `have` in use.
func (j *job) borrow(have int) int {
	if j.o.Lender == nil {
		return 0
	}
	n := j.o.Lender.Borrow(have)
	j.lent.Add(int64(n))
	return n
}

// retire says whether one connection borrowed for this blob should close
// (the lender wants it back); never one of the blob's own.
func (j *job) retire() bool {
	if j.o.Lender == nil {
		return false
	}
	for {
		n := j.lent.Load()
		if n <= 0 {
			return false
		}
		if j.lent.CompareAndSwap(n, n-1) {
			break
		}
	}
	if j.o.Lender.Retire() {
		return true
	}
	j.lent.Add(1)
	return false
}

// giveBack returns what was borrowed once a fetch no longer needs it, so
// others can use it while this blob is checked and committed.
func (j *job) giveBack() {
	if n := j.lent.Swap(0); n > 0 {
		j.o.Lender.Return(int(n))
	}
}

// errWiden ends a stream that gives way to chunks over lent connections.
var errWiden = errors.New("stream widened into chunks")

// widen says whether a stream at a piece boundary should give way to
// ranged chunks, and takes the connections for them: only where the
// registry said it honours ranges and enough is left to split.
func (j *job) widen(resp *http.Response) bool {
	if j.o.Lender == nil || j.narrow || j.size < 0 || j.size-j.valid < j.o.MinChunked {
		return false
	}
	if resp.StatusCode != http.StatusPartialContent && resp.Header.Get("Accept-Ranges") != "bytes" {
		return false
	}
	return j.borrow(j.o.Connections) > 0
}

// resume adopts a partial file left by an earlier call for the same blob.
func (j *job) resume(ctx context.Context) error {
	j.h = j.d.New()
	f, err := openLocked(ctx, IncompletePath(j.dest), false, !j.pol.Leased)
	if err != nil || f == nil {
		return err
	}
	j.f = f
	m, ok := loadMeta(j.dest)
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	valid := fi.Size()
	if m.Valid >= 0 {
		valid = min(valid, m.Valid)
	}
	size := j.size
	if size < 0 && m.Size > 0 {
		// The caller does not know the size, an earlier call learned it:
		// resume with a closed range (some registries refuse open ones).
		size = m.Size
	}
	if !ok || m.Digest != j.d.String || (j.size > 0 && m.Size > 0 && m.Size != j.size) || (size >= 0 && valid > size) {
		// Someone else's data, or nothing trustworthy: start at 0, and
		// leave none of it behind to end up past the blob's last byte.
		return f.Truncate(0)
	}
	if err := hashPrefix(f, j.h, valid); err != nil {
		return err
	}
	if j.size < 0 && size >= 0 {
		j.size = size
		j.prog.AddTotal(size, 0)
	}
	j.valid = valid
	j.prog.AddBytes(valid)
	return nil
}

// open creates (or re-uses) the locked partial file, records its metadata
// and starts the sink at valid. Data is only ever written in order, so
// the whole file is always a good prefix (Valid -1).
func (j *job) open(ctx context.Context) error {
	if j.f == nil {
		if err := os.MkdirAll(filepath.Dir(j.dest), 0o755); err != nil {
			return err
		}
		f, err := openLocked(ctx, IncompletePath(j.dest), true, !j.pol.Leased)
		if err != nil {
			return err
		}
		j.f = f
		// resume found no partial, so whatever this is (left by another
		// pull while we waited for the lock) is not ours to trust. Only a
		// file that has data is truncated: on ext4 truncating to 0 marks
		// the file for auto_da_alloc, which makes its close write the whole
		// blob out in our thread (a 2 GiB pull stalled for a second on a
		// 300 MB/s disk).
		if st, err := f.Stat(); err != nil {
			return err
		} else if st.Size() > 0 {
			if err := f.Truncate(0); err != nil {
				return err
			}
		}
	}
	if j.out == nil {
		if err := saveMeta(j.dest, partialMeta{Digest: j.d.String, Size: j.size, Valid: -1}); err != nil {
			return err
		}
		direct := !j.pol.Buffered && (j.size < 0 || j.size >= DirectMin)
		// Write-back as data lands makes the fsync before the rename cheap.
		// Without that fsync (DeferSync: the owner syncs later, off the
		// critical path) it would only be work in the pull's own threads
		// that crane and curl never do: 0.15-0.25 CPU-s of a 2 GiB pull here,
		// and on a 300 MB/s disk stalls in ext4's block allocator.
		j.out = newSink(j.f, j.valid, j.pool, direct, !j.pol.DeferSync)
	}
	return nil
}

// emit hashes a piece that starts at valid and hands it to the sink.
func (j *job) emit(ctx context.Context, p *piece) error {
	if p.n == 0 {
		j.pool.put(p)
		return nil
	}
	// The sink owns the buffer once it takes it, so hash first; valid moves
	// only once the sink has taken it: a piece refused (the call is ending)
	// must not count, or keep would extend the file over bytes never
	// written. The hash is then ahead of valid, but a failed call never
	// uses it again: the next one re-hashes the file.
	n := int64(p.n)
	j.h.Write(p.data())
	if err := j.out.put(ctx, p); err != nil {
		return err
	}
	j.valid += n
	return nil
}

// saveReceived writes what a failed stream received past valid, so the
// next call need not fetch it again. (In chunked mode what waits in memory
// is lost: at most the window.)
func (j *job) saveReceived() {
	if j.cur == nil || j.out == nil || j.cur.n == 0 || j.cur.off != j.valid {
		return
	}
	p := j.cur
	j.cur = nil
	_ = j.emit(context.Background(), p)
}

// drain waits for the sink. After a failed write the hash is ahead of the
// file, so valid falls back to what is on disk; the caller gives up then,
// and the next call re-hashes from the file.
func (j *job) drain() error {
	if j.cur != nil {
		j.pool.put(j.cur)
		j.cur = nil
	}
	if j.out == nil {
		return nil
	}
	written, err := j.out.close()
	j.out = nil
	if err != nil {
		j.valid = written
	}
	return err
}

// restart forgets everything: the registry will send the blob from byte 0.
func (j *job) restart() {
	j.prog.AddBytes(-j.received())
	_ = j.drain()
	j.valid = 0
	j.h = j.d.New()
	if j.f != nil {
		_ = j.f.Truncate(0)
	}
}

// keep leaves the good prefix on disk for the next call.
func (j *job) keep() {
	if j.f == nil {
		return
	}
	_ = j.f.Truncate(j.valid)
	_ = saveMeta(j.dest, partialMeta{Digest: j.d.String, Size: j.size, Valid: -1})
}

func (j *job) discard() {
	removePartial(j.dest)
}

func (j *job) close() {
	release(j.head, j.headWd)
	_ = j.drain()
	if j.f != nil {
		j.f.Close()
	}
}

func (j *job) fetch(ctx context.Context) error {
	if j.size >= 0 && j.valid == j.size {
		return nil
	}
	var err error
	if !j.narrow && j.o.Connections > 1 && j.size >= j.o.MinChunked && j.size-j.valid >= j.o.MinChunked {
		err = j.chunked(ctx)
	} else if err = j.stream(ctx); errors.Is(err, errWiden) {
		err = j.chunked(ctx)
	}
	// Either way into chunked: a later span can still get the whole blob back
	// (one node behind a balancer ignoring Range).
	if errors.Is(err, errNoRanges) && !j.narrow && ctx.Err() == nil {
		// It said it honours ranges, then did not: one stream after all.
		j.narrow = true
		events.Log(ctx, "transfer", "registry stopped honouring range requests: the rest comes over one stream",
			abi.RangeRefused{Digest: j.d.String, Fallback: "rest_one_stream", At: j.received()},
			"blob", j.d.String, "at", j.received())
		return j.stream(ctx)
	}
	return err
}

// request sends a GET for [from, to] (to < 0: to the end), with a watchdog
// that cancels it when no byte arrives for ReadTimeout. The returned
// stop function must be called when the body is done. It goes where the
// download's source says, and back to the registry once when a learned URL
// has expired.
func (j *job) request(ctx context.Context, from, to int64) (*http.Response, *watchdog, error) {
	u, learned := j.src.url()
	resp, wd, err := j.get(ctx, u, from, to)
	if err != nil && learned && ctx.Err() == nil && j.src.failed(u, err) {
		j.log(ctx).Info("redirected URL refused (expired?): asking the registry again",
			"blob", j.d.String, "url", logs.RawURL(u), "reason", Reason(err), "reusing", j.src.reusing())
		u = j.src.registry
		resp, wd, err = j.get(ctx, u, from, to)
	}
	if err != nil {
		return nil, nil, err
	}
	j.src.answered(u, resp.Request.URL.String())
	return resp, wd, nil
}

func (j *job) get(ctx context.Context, url string, from, to int64) (*http.Response, *watchdog, error) {
	wd := newWatchdog(ctx, j.o.ReadTimeout)
	req, err := http.NewRequestWithContext(wd.ctx, http.MethodGet, url, nil)
	if err != nil {
		wd.stop()
		return nil, nil, err
	}
	if from > 0 || to >= 0 {
		// A closed range where the size is known: some registries answer
		// an open-ended one with 416. http.Client re-sends it on redirects.
		rng := fmt.Sprintf("bytes=%d-", from)
		if to >= 0 {
			rng += strconv.FormatInt(to, 10)
		}
		req.Header.Set("Range", rng)
	}
	resp, err := j.client.Do(req)
	if err != nil {
		wd.stop()
		return nil, nil, wd.explain(err)
	}
	if err := transport.CheckError(resp, http.StatusOK, http.StatusPartialContent); err != nil {
		release(resp, wd)
		return nil, nil, err
	}
	return resp, wd, nil
}

// startOf checks a response to a request for bytes from `from` and says
// where its body starts: from for a matching 206, 0 for a 200 (the server
// ignored the range). It also learns or checks the total size.
func (j *job) startOf(resp *http.Response, from int64) (int64, error) {
	total := int64(-1)
	start := int64(0)
	if resp.StatusCode == http.StatusPartialContent {
		s, t, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || s != from {
			return 0, fmt.Errorf("registry answered a range request for byte %d with Content-Range %q", from, resp.Header.Get("Content-Range"))
		}
		start, total = s, t
	} else if resp.ContentLength >= 0 {
		total = resp.ContentLength
	}
	if total >= 0 {
		if j.size >= 0 && total != j.size {
			return 0, &MismatchError{Msg: fmt.Sprintf("registry has %d bytes, descriptor says %d", total, j.size)}
		}
		if j.size < 0 {
			j.size = total
			j.prog.AddTotal(total, 0)
		}
	}
	return start, nil
}

// stream fetches with one connection at a time, resuming after breaks.
// Only bytes past the best position reached so far count as progress, so a
// registry that keeps failing at the same place (or ignores Range and
// restarts) still runs out of attempts.
func (j *job) stream(ctx context.Context) error {
	stale, best := 0, j.received()
	for {
		to := int64(-1)
		if j.size >= 0 {
			to = j.size - 1
		}
		from := j.received()
		if from == 0 {
			to = -1 // a plain GET, the way every registry serves it
		}
		resp, wd, err := j.request(ctx, from, to)
		if err != nil {
			return err
		}
		err = j.streamBody(ctx, resp, wd)
		if errors.Is(err, errWiden) {
			j.head, j.headWd = resp, wd
			return err
		}
		release(resp, wd)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !resumable(err) {
			return err
		}
		if got := j.received(); got > best {
			best, stale = got, 0
		}
		if stale++; stale > j.o.Resumes {
			return err
		}
		wait := j.o.Retry.Backoff(stale)
		events.Log(ctx, "transfer", "stream broke: resuming",
			abi.BlobRetried{Digest: j.d.String, Reason: Reason(err), WaitMS: wait.Milliseconds(), Attempt: stale, ResumeAt: j.received()},
			"blob", j.d.String, "at", j.received(),
			"reason", Reason(err), "wait", wait.Round(time.Millisecond), "try", stale, "of", j.o.Resumes)
		if err := Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// log is the logger of the call ctx belongs to, for the transfer engine.
func (j *job) log(ctx context.Context) *slog.Logger { return logs.From(ctx, "transfer") }

// received is where the next byte from the network goes.
func (j *job) received() int64 {
	if j.cur != nil {
		return j.cur.off + int64(j.cur.n)
	}
	return j.valid
}

func (j *job) streamBody(ctx context.Context, resp *http.Response, wd *watchdog) error {
	from := j.received()
	start, err := j.startOf(resp, from)
	if err != nil {
		return err
	}
	if start == 0 && from > 0 {
		j.restart()
		from = 0
	}
	if err := j.open(ctx); err != nil {
		return err
	}
	body := io.Reader(resp.Body)
	if j.size >= 0 {
		body = io.LimitReader(body, j.size-from+1) // one byte more shows an overrun
	}
	body = wd.reader(body, j.prog, &j.fetched)
	for {
		if j.cur == nil {
			room := int64(j.pool.size)
			if j.size >= 0 {
				room = j.size - j.valid + 1
			}
			j.cur = j.pool.get(j.valid, room)
		}
		m, rerr := fill(body, j.cur.buf[j.cur.n:])
		j.cur.n += m
		if j.size >= 0 && j.received() > j.size {
			return &MismatchError{Msg: fmt.Sprintf("registry sent more than the %d bytes of the blob", j.size)}
		}
		if j.cur.full() || rerr == io.EOF {
			p := j.cur
			j.cur = nil
			if err := j.emit(ctx, p); err != nil {
				return err
			}
			if rerr == nil && j.widen(resp) {
				return errWiden
			}
		}
		if rerr == nil {
			continue
		}
		if rerr != io.EOF {
			return wd.explain(rerr)
		}
		switch {
		case j.size < 0:
			j.size = j.valid
			return nil
		case j.valid < j.size && resp.ContentLength < 0:
			// It ended cleanly without announcing a length: that is all the
			// registry has, and it is not the blob the descriptor describes.
			return &MismatchError{Msg: fmt.Sprintf("received %d bytes, descriptor says %d", j.valid, j.size)}
		case j.valid < j.size:
			return fmt.Errorf("stream ended at byte %d of %d: %w", j.valid, j.size, io.ErrUnexpectedEOF)
		}
		return nil
	}
}

// fill reads until buf is full or r fails; unlike io.ReadFull it passes
// the reader's own error through, so a clean end (io.EOF) stays apart from
// a body cut short (net/http's io.ErrUnexpectedEOF).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// resumable reports whether a failed stream should be continued.
func resumable(err error) bool {
	var mm *MismatchError
	var pe *os.PathError
	var te *transport.Error
	switch {
	case errors.As(err, &mm), errors.As(err, &pe):
		return false
	case errors.As(err, &te):
		return RetryStatus(te.StatusCode)
	}
	return Transient(err)
}

func parseContentRange(v string) (start, total int64, ok bool) {
	// "bytes START-END/TOTAL" (TOTAL may be "*")
	v = strings.TrimSpace(v)
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	span, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	s, _, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

// watchdog cancels a request whose body stops moving.
type watchdog struct {
	ctx     context.Context
	cancel  context.CancelFunc
	timer   *time.Timer
	timeout time.Duration
	fired   atomic.Bool
}

func newWatchdog(parent context.Context, timeout time.Duration) *watchdog {
	ctx, cancel := context.WithCancel(parent)
	w := &watchdog{cancel: cancel, timeout: timeout}
	w.ctx = context.WithValue(ctx, watchdogKey{}, w)
	w.timer = time.AfterFunc(timeout, func() {
		w.fired.Store(true)
		cancel()
	})
	return w
}

// release is done with a response (nil: nothing to do) and its watchdog.
func release(resp *http.Response, wd *watchdog) {
	if resp != nil {
		resp.Body.Close()
		wd.stop()
	}
}

func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel()
}

// pause keeps a wait that is ours, not the registry's, from counting as
// a stall; resume starts the clock again.
func (w *watchdog) pause()  { w.timer.Stop() }
func (w *watchdog) resume() { w.timer.Reset(w.timeout) }

// reader watches r: each byte that arrives puts off the stall and counts
// as progress at once (p may be nil), so progress moves with the network,
// not in whole pieces. Every response body is read through one, so it is
// where fetched (may be nil) sees exactly the bytes received.
func (w *watchdog) reader(r io.Reader, p *Progress, fetched *atomic.Int64) io.Reader {
	return &watchedReader{r: r, w: w, p: p, fetched: fetched}
}

// explain turns the cancellation the watchdog caused into a stall error.
func (w *watchdog) explain(err error) error {
	if err != nil && w.fired.Load() {
		return fmt.Errorf("%w: no data for %s", ErrStalled, w.timeout)
	}
	return err
}

type watchedReader struct {
	r       io.Reader
	w       *watchdog
	p       *Progress
	fetched *atomic.Int64
}

func (r *watchedReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.w.timer.Reset(r.w.timeout)
		r.p.AddBytes(int64(n))
		if r.fetched != nil {
			r.fetched.Add(int64(n))
		}
	}
	return n, err
}
