package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/events"
)

type span struct{ start, end int64 } // [start, end)

// chunked fetches [valid, size) as ranged requests over several
// connections. The digest needs the bytes in order, so pieces that arrive
// ahead of the hashed prefix wait in memory, and no connection reads past
// valid + Connections x ChunkSize: that bounds the memory whatever the
// blob size, and nothing is read back from disk. The sink writes in order,
// so the file is always a good prefix. Each connection asks for its next
// span while it receives the current one (see sentAhead), and connections
// that o.Lender frees join in while enough is left. A registry that
// ignores Range gets one ordinary stream instead.
func (j *job) chunked(ctx context.Context) error {
	// What is lent at the start was borrowed by the stream widened into this.
	connections := j.o.Connections + int(j.lent.Load())
	var spans []span
	for s := j.valid; s < j.size; s += j.o.ChunkSize {
		spans = append(spans, span{s, min(s+j.o.ChunkSize, j.size)})
	}
	// A widened stream serves the first span; otherwise the first request
	// finds out whether the registry honours ranges at all.
	resp, wd := j.head, j.headWd
	j.head, j.headWd = nil, nil
	if resp == nil {
		var err error
		if resp, wd, err = j.request(ctx, spans[0].start, spans[0].end-1); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusPartialContent {
			release(resp, wd)
			j.narrow = true
			events.Log(ctx, "transfer", "registry ignores range requests: one stream instead of chunks",
				abi.RangeRefused{Digest: j.d.String, Fallback: "one_stream", At: spans[0].start},
				"blob", j.d.String, "status", resp.StatusCode)
			return j.stream(ctx)
		}
		if _, err := j.startOf(resp, spans[0].start); err != nil {
			release(resp, wd)
			return err
		}
	}
	if err := j.open(ctx); err != nil {
		release(resp, wd)
		return err
	}

	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	win := newWindow(j.valid, int64(connections)*j.o.ChunkSize)
	arrived := make(chan *piece, connections)
	var next atomic.Int64
	next.Store(1)
	var wg sync.WaitGroup
	var conns atomic.Int64
	conns.Store(int64(connections))
	var work func(idx int, resp *http.Response, wd *watchdog)
	// grow puts connections the lender has freed to work while at least
	// MinChunked is left, each on the next span, with the window widened
	// to keep one chunk per connection.
	grow := func() {
		left := int64(len(spans)-int(next.Load())) * j.o.ChunkSize
		if j.o.Lender == nil || left < j.o.MinChunked {
			return
		}
		n := j.borrow(int(conns.Load()))
		if n == 0 {
			return
		}
		win.widen(conns.Add(int64(n)) * j.o.ChunkSize)
		for range n {
			idx := int(next.Add(1) - 1)
			if idx >= len(spans) {
				return
			}
			wg.Add(1)
			go work(idx, nil, nil)
		}
	}
	work = func(idx int, resp *http.Response, wd *watchdog) {
		defer wg.Done()
		for idx < len(spans) {
			grow()
			// Ask ahead only once this span may be received, so at most
			// one span per connection waits beyond the window.
			sp := spans[idx]
			if err := win.wait(gctx, sp.start+min(int64(j.pool.size), sp.end-sp.start)); err != nil {
				release(resp, wd)
				cancel(err)
				return
			}
			// A connection the lender wants back takes no next span: this
			// one is its last.
			retiring := j.retire()
			var ahead *sentAhead
			following := len(spans)
			if !retiring {
				following = int(next.Add(1) - 1)
			}
			if following < len(spans) {
				ahead = j.sendAhead(gctx, spans[following])
			}
			if err := j.fetchSpan(gctx, sp, resp, wd, win, arrived); err != nil {
				ahead.discard()
				cancel(err)
				return
			}
			if retiring {
				conns.Add(-1)
				return
			}
			idx = following
			resp, wd = ahead.take()
		}
	}
	// Every connection's first span is handed out before any asks ahead:
	// connection i starts on span i, and the spans asked for ahead follow
	// them, so none starts beyond the window while one inside waits.
	first := []int{0}
	for w := 1; w < connections; w++ {
		idx := int(next.Add(1) - 1)
		if idx >= len(spans) {
			break
		}
		first = append(first, idx)
	}
	wg.Add(len(first))
	go work(0, resp, wd)
	for _, idx := range first[1:] {
		go work(idx, nil, nil)
	}

	err := j.sequence(gctx, arrived, win)
	if err != nil {
		cancel(err)
	}
	wg.Wait()
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// sequence hashes and queues pieces in order as they arrive.
func (j *job) sequence(ctx context.Context, arrived <-chan *piece, win *window) error {
	pending := map[int64]*piece{}
	for j.valid < j.size {
		select {
		case p := <-arrived:
			pending[p.off] = p
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		for p := pending[j.valid]; p != nil; p = pending[j.valid] {
			delete(pending, p.off)
			if err := j.emit(ctx, p); err != nil {
				return err
			}
			win.advance(j.valid)
		}
	}
	return nil
}

// fetchSpan receives one chunk into pieces, resuming inside it after a
// broken stream. resp, when given, is an already-open response for the
// chunk's start.
func (j *job) fetchSpan(ctx context.Context, sp span, resp *http.Response, wd *watchdog, win *window, arrived chan<- *piece) (err error) {
	var body io.Reader
	if resp != nil {
		wd.resume()
		body = wd.reader(resp.Body, j.prog, &j.fetched)
	}
	defer func() {
		release(resp, wd)
	}()
	var p *piece
	off, stale, moved := sp.start, 0, false // off: the next byte to receive
	for off < sp.end {
		if p == nil {
			n := min(int64(j.pool.size), sp.end-off)
			if wd != nil {
				wd.pause() // waiting on the hash is not a stalled registry
			}
			if err := win.wait(ctx, off+n); err != nil {
				return err
			}
			if wd != nil {
				wd.resume()
			}
			p = j.pool.get(off, n)
		}
		if resp == nil {
			if resp, wd, err = j.rangeRequest(ctx, off, sp.end-1); err != nil {
				return err
			}
			body = wd.reader(resp.Body, j.prog, &j.fetched)
		}
		m, rerr := fill(body, p.buf[p.n:])
		p.n += m
		off += int64(m)
		moved = moved || m > 0
		if p.full() {
			select {
			case arrived <- p:
				p = nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		if rerr == nil || (rerr == io.EOF && off == sp.end) {
			continue
		}
		release(resp, wd)
		rerr = wd.explain(rerr)
		resp = nil
		if rerr == io.EOF {
			rerr = fmt.Errorf("chunk ended at byte %d of %d: %w", off, sp.end, io.ErrUnexpectedEOF)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if !resumable(rerr) {
			return rerr
		}
		if moved {
			stale, moved = 0, false
		}
		if stale++; stale > j.o.Resumes {
			return rerr
		}
		wait := j.o.Retry.Backoff(stale)
		events.Log(ctx, "transfer", "chunk broke: resuming",
			abi.BlobRetried{Digest: j.d.String, Reason: Reason(rerr), WaitMS: wait.Milliseconds(), Attempt: stale, ResumeAt: off},
			"blob", j.d.String, "at", off,
			"reason", Reason(rerr), "wait", wait.Round(time.Millisecond), "try", stale, "of", j.o.Resumes)
		if err := Sleep(ctx, wait); err != nil {
			return err
		}
	}
	return nil
}

// sentAhead is the request for a connection's next span, sent while the
// current one is received: its round trip (and the registry's time to
// answer) overlaps that body instead of leaving the connection idle after
// it, which on a link with a 50 ms round trip and 8 MiB chunks at 50 MB/s
// would be a quarter of the time. The connection pool opens a second
// connection for it; what the registry sends before its turn waits in the
// socket, held back by TCP flow control, not in our memory.
type sentAhead struct {
	done chan struct{}
	resp *http.Response
	wd   *watchdog
}

func (j *job) sendAhead(ctx context.Context, sp span) *sentAhead {
	a := &sentAhead{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		resp, wd, err := j.rangeRequest(ctx, sp.start, sp.end-1)
		if err != nil {
			return // the span's own fetch asks again, retrying as it does
		}
		wd.pause() // unread until its turn, which is not a stalled registry
		a.resp, a.wd = resp, wd
	}()
	return a
}

// take waits for the request and hands over its response: nil when there
// is none or it failed.
func (a *sentAhead) take() (*http.Response, *watchdog) {
	if a == nil {
		return nil, nil
	}
	<-a.done
	return a.resp, a.wd
}

// discard closes a response no one will read.
func (a *sentAhead) discard() {
	release(a.take())
}

// errNoRanges: a ranged request got the whole blob back.
var errNoRanges = errors.New("registry stopped honouring range requests")

// rangeRequest asks for [from, to] and insists on a 206 starting at from.
func (j *job) rangeRequest(ctx context.Context, from, to int64) (*http.Response, *watchdog, error) {
	resp, wd, err := j.request(ctx, from, to)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusPartialContent {
		release(resp, wd)
		return nil, nil, errNoRanges
	}
	if s, _, ok := parseContentRange(resp.Header.Get("Content-Range")); !ok || s != from {
		release(resp, wd)
		return nil, nil, fmt.Errorf("registry answered a range request for byte %d with Content-Range %q", from, resp.Header.Get("Content-Range"))
	}
	return resp, wd, nil
}

// window is how far past the hashed prefix connections may receive.
type window struct {
	mu       sync.Mutex
	frontier int64
	limit    int64
	moved    chan struct{} // closed when the frontier advances
}

func newWindow(frontier, limit int64) *window {
	return &window{frontier: frontier, limit: limit, moved: make(chan struct{})}
}

// wait returns once bytes up to end may be received.
func (w *window) wait(ctx context.Context, end int64) error {
	for {
		w.mu.Lock()
		if end <= w.frontier+w.limit {
			w.mu.Unlock()
			return nil
		}
		moved := w.moved
		w.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// widen lets connections receive up to limit past the frontier.
func (w *window) widen(limit int64) {
	w.mu.Lock()
	if limit > w.limit {
		w.limit = limit
		close(w.moved)
		w.moved = make(chan struct{})
	}
	w.mu.Unlock()
}

func (w *window) advance(frontier int64) {
	w.mu.Lock()
	w.frontier = frontier
	close(w.moved)
	w.moved = make(chan struct{})
	w.mu.Unlock()
}
