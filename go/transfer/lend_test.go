package transfer_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/transfer"
)

// lender grants `extra` connections once, on the `after`-th call to
// Borrow, and records what it lent and got back.
type lender struct {
	after, extra int

	mu             sync.Mutex
	calls          int
	lent, returned int
}

func (l *lender) Borrow(have int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls != l.after {
		return 0
	}
	l.lent += l.extra
	return l.extra
}

func (l *lender) Return(n int) {
	l.mu.Lock()
	l.returned += n
	l.mu.Unlock()
}

func (l *lender) counts() (calls, lent, returned int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls, l.lent, l.returned
}

// peak tracks the most requests a server was answering at once.
type peak struct{ now, most atomic.Int64 }

func (p *peak) enter() {
	n := p.now.Add(1)
	for m := p.most.Load(); n > m && !p.most.CompareAndSwap(m, n); m = p.most.Load() {
	}
}

func (p *peak) leave() { p.now.Add(-1) }

// paced answers like a range-honouring registry, a quarter of a 16 KiB
// chunk every 2 ms, counting a request busy until its last byte is sent:
// so no more are busy than the client has asked for and not yet read.
func (p *peak) paced(data []byte) func(*blobServer, http.ResponseWriter, *http.Request, int) bool {
	return func(s *blobServer, w http.ResponseWriter, r *http.Request, _ int) bool {
		p.enter()
		left := true
		defer func() {
			if left {
				p.leave()
			}
		}()
		status, h, body := answer(r, data, false)
		for k, v := range h {
			w.Header()[k] = v
		}
		w.Header().Set("Accept-Ranges", "bytes")
		w.WriteHeader(status)
		const step = 4 << 10
		for off := 0; off < len(body); off += step {
			if _, err := w.Write(body[off:min(off+step, len(body))]); err != nil {
				return true
			}
			w.(http.Flusher).Flush()
			if off+step >= len(body) {
				left = false
				p.leave()
				return true
			}
			select {
			case <-r.Context().Done():
				return true
			case <-time.After(2 * time.Millisecond):
			}
		}
		return true
	}
}

// A blob streamed for want of connections turns into ranged chunks over
// the ones lent to it, continuing from where the stream got to.
func TestStreamWidensIntoChunksOverLentConnections(t *testing.T) {
	t.Parallel()
	const chunk = 16 << 10
	const size = 64 * chunk
	data := testutil.RandomBytes(t, size)
	var busy peak
	s := newBlobServer(t, data, busy.paced(data))
	l := &lender{after: 3, extra: 2}
	o := options(size)
	o.Connections, o.ChunkSize, o.Lender = 1, chunk, l
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), dest, o); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	ranges := s.Ranges()
	if len(ranges) < 3 || ranges[0] != "" {
		t.Fatalf("requests %q: want a plain GET, then ranges", ranges)
	}
	for _, r := range ranges[1:] {
		if !strings.HasPrefix(r, "bytes=") || strings.HasSuffix(r, "-") {
			t.Fatalf("request with Range %q after the stream: want closed ranges only", r)
		}
	}
	// The lender granted after the stream's third piece (49152): the
	// stream still serves the chunk from there, the ranges follow it, and
	// only what the stream had on the way past that is fetched twice.
	var starts []int
	for _, r := range ranges[1:] {
		start, end, _ := parseRange(r, size)
		if end-start+1 != chunk && end != size-1 {
			t.Errorf("range %q is not one chunk", r)
		}
		starts = append(starts, start)
	}
	slices.Sort(starts)
	for i, start := range starts {
		if want := 49152 + chunk*(i+1); start != want {
			t.Fatalf("chunks start at %v, want one every %d from %d", starts, chunk, 49152+chunk)
		}
	}
	if got := s.served.Load(); got > size+2*chunk {
		t.Errorf("server sent %d bytes for a %d-byte blob", got, size)
	}
	if busy.most.Load() < 3 {
		t.Errorf("at most %d requests at once: the lent connections were not used", busy.most.Load())
	}
	if _, lent, returned := l.counts(); lent != 2 || returned != 2 {
		t.Errorf("lent %d, given back %d: want 2 and 2", lent, returned)
	}
}

// A registry that does not say it honours ranges keeps its one stream:
// ranged requests could start the blob over.
func TestStreamStaysWholeWhereRangesAreNotOffered(t *testing.T) {
	t.Parallel()
	const chunk = 16 << 10
	const size = 64 * chunk
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data)
		return true
	})
	l := &lender{after: 1, extra: 3}
	o := options(size)
	o.Connections, o.ChunkSize, o.Lender = 1, chunk, l
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), dest, o); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	if got := s.Ranges(); len(got) != 1 {
		t.Errorf("requests %q: want the one stream", got)
	}
	if calls, lent, _ := l.counts(); calls != 0 || lent != 0 {
		t.Errorf("asked the lender %d times (lent %d): want never", calls, lent)
	}
}

// A registry that says it honours ranges and then answers one with the
// whole blob gets the one stream after all, and the blob still arrives.
func TestWidenedStreamFallsBackWhereRangesAreIgnored(t *testing.T) {
	t.Parallel()
	const chunk = 16 << 10
	const size = 64 * chunk
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		w.Header().Set("Accept-Ranges", "bytes")
		_, h, body := answer(r, data, true)
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		for off := 0; off < len(body); off += chunk {
			if _, err := w.Write(body[off : off+chunk]); err != nil {
				return true
			}
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		}
		return true
	})
	l := &lender{after: 2, extra: 2}
	o := options(size)
	o.Connections, o.ChunkSize, o.Lender = 1, chunk, l
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), dest, o); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	if got := s.Ranges(); len(got) < 2 || got[0] != "" {
		t.Errorf("requests %q: want the stream, then the ranges that failed", got)
	}
	if _, lent, returned := l.counts(); lent != 2 || returned != 2 {
		t.Errorf("lent %d, given back %d: want 2 and 2", lent, returned)
	}
}

// A chunked download puts lent connections to work on the spans left,
// and gives them back when it ends.
func TestChunkedDownloadGrowsOnLentConnections(t *testing.T) {
	t.Parallel()
	const chunk = 16 << 10
	const size = 64 * chunk
	data := testutil.RandomBytes(t, size)
	var busy peak
	s := newBlobServer(t, data, busy.paced(data))
	l := &lender{after: 2, extra: 3}
	o := options(size)
	o.Connections, o.ChunkSize, o.Lender = 2, chunk, l
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), dest, o); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	// 2 connections keep at most 4 requests open (each asks one ahead).
	if busy.most.Load() <= 4 {
		t.Errorf("at most %d requests at once: the lent connections were not used", busy.most.Load())
	}
	if _, lent, returned := l.counts(); lent != 3 || returned != 3 {
		t.Errorf("lent %d, given back %d: want 3 and 3", lent, returned)
	}
	if got := len(s.Requests()); got != size/chunk {
		t.Errorf("%d requests for %d spans, want one each", got, size/chunk)
	}
}

// A widened stream that breaks inside the span it still serves is resumed
// there like any chunk, with a range for the rest of that span.
func TestWidenedStreamBrokenInItsSpanIsResumed(t *testing.T) {
	t.Parallel()
	const chunk = 16 << 10
	const size = 64 * chunk
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		if n > 0 {
			return false
		}
		// The stream dies half way into the span it serves once widened.
		status, h, body := answer(r, data, false)
		h.Set("Accept-Ranges", "bytes")
		s.cutWith(w, status, h, body[:chunk+chunk/2])
		return true
	})
	l := &lender{after: 1, extra: 2}
	o := options(size)
	o.Connections, o.ChunkSize, o.Lender = 1, chunk, l
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), dest, o); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	want := fmt.Sprintf("bytes=%d-%d", chunk+chunk/2, 2*chunk-1)
	if !slices.Contains(s.Ranges(), want) {
		t.Errorf("requests %q: want the stream's span resumed with %q", s.Ranges(), want)
	}
	if _, lent, returned := l.counts(); lent != 2 || returned != 2 {
		t.Errorf("lent %d, given back %d: want 2 and 2", lent, returned)
	}
}
