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
// Borrow, wants `retire` of them back from the `retireAfter`-th call to
// Retire on, and records what it lent and got back.
type lender struct {
	after, extra        int
	retire, retireAfter int

	mu                 sync.Mutex
	calls, retireCalls int
	lent, returned     int
	retired            int
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

func (l *lender) Retire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.retireCalls++
	if l.retireCalls < l.retireAfter || l.retired >= l.retire {
		return false
	}
	l.retired++
	return true
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

// The blob every test here pulls: 64 chunks.
const (
	lendChunk = 16 << 10
	lendSize  = 64 * lendChunk
)

// downloadLending pulls data from s over `connections`, with l lending
// more, and checks the file.
func downloadLending(t *testing.T, s *blobServer, data []byte, connections int, l *lender) {
	t.Helper()
	o := options(int64(len(data)))
	o.Connections, o.ChunkSize, o.Lender = connections, lendChunk, l
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
}

// wantAllBack checks that l lent n connections and got all of them back.
func (l *lender) wantAllBack(t *testing.T, n int) {
	t.Helper()
	if _, lent, returned := l.counts(); lent != n || returned != n {
		t.Errorf("lent %d, given back %d: want %d and %d", lent, returned, n, n)
	}
}

// A blob streamed for want of connections turns into ranged chunks over
// the ones lent to it, continuing from where the stream got to.
func TestStreamWidensIntoChunksOverLentConnections(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, lendSize)
	var busy peak
	s := newBlobServer(t, data, busy.paced(data))
	l := &lender{after: 3, extra: 2}
	downloadLending(t, s, data, 1, l)
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
		start, end, _ := parseRange(r, lendSize)
		if end-start+1 != lendChunk && end != lendSize-1 {
			t.Errorf("range %q is not one chunk", r)
		}
		starts = append(starts, start)
	}
	slices.Sort(starts)
	for i, start := range starts {
		if want := 49152 + lendChunk*(i+1); start != want {
			t.Fatalf("chunks start at %v, want one every %d from %d", starts, lendChunk, 49152+lendChunk)
		}
	}
	if got := s.served.Load(); got > lendSize+2*lendChunk {
		t.Errorf("server sent %d bytes for a %d-byte blob", got, lendSize)
	}
	if busy.most.Load() < 3 {
		t.Errorf("at most %d requests at once: the lent connections were not used", busy.most.Load())
	}
	l.wantAllBack(t, 2)
}

// Connections the lender wants back close once their span is in, without
// a span going missing, and the blob keeps its own connection to the end.
func TestBorrowedConnectionsRetireWhenTheLenderAsks(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, lendSize)
	var busy peak
	var mu sync.Mutex
	var atStart []int64 // requests busy as each one arrives
	paced := busy.paced(data)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		mu.Lock()
		atStart = append(atStart, busy.now.Load())
		mu.Unlock()
		return paced(s, w, r, n)
	})
	l := &lender{after: 3, extra: 3, retire: 3, retireAfter: 12}
	downloadLending(t, s, data, 1, l)
	if busy.most.Load() < 4 {
		t.Errorf("at most %d requests at once: the lent connections were not used", busy.most.Load())
	}
	_, lent, returned := l.counts()
	if l.retired != 3 || lent != 3 || returned != 0 {
		t.Errorf("lent %d, retired %d, given back %d: want 3 lent and 3 retired, none given back", lent, l.retired, returned)
	}
	// Once the three are gone, one connection is left: its request and the
	// one it asks ahead.
	mu.Lock()
	defer mu.Unlock()
	for i, n := range atStart[len(atStart)-16:] {
		if n > 1 {
			t.Fatalf("request %d of the last 16 arrived with %d others busy: borrowed connections still open", i, n)
		}
	}
}

// A registry that does not say it honours ranges keeps its one stream:
// ranged requests could start the blob over.
func TestStreamStaysWholeWhereRangesAreNotOffered(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, lendSize)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		w.Header().Set("Content-Length", strconv.Itoa(lendSize))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data)
		return true
	})
	l := &lender{after: 1, extra: 3}
	downloadLending(t, s, data, 1, l)
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
	data := testutil.RandomBytes(t, lendSize)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		w.Header().Set("Accept-Ranges", "bytes")
		_, h, body := answer(r, data, true)
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		for off := 0; off < len(body); off += lendChunk {
			if _, err := w.Write(body[off : off+lendChunk]); err != nil {
				return true
			}
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		}
		return true
	})
	l := &lender{after: 2, extra: 2}
	downloadLending(t, s, data, 1, l)
	if got := s.Ranges(); len(got) < 2 || got[0] != "" {
		t.Errorf("requests %q: want the stream, then the ranges that failed", got)
	}
	l.wantAllBack(t, 2)
}

// A chunked download puts lent connections to work on the spans left,
// and gives them back when it ends.
func TestChunkedDownloadGrowsOnLentConnections(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, lendSize)
	var busy peak
	s := newBlobServer(t, data, busy.paced(data))
	l := &lender{after: 2, extra: 3}
	downloadLending(t, s, data, 2, l)
	// 2 connections keep at most 4 requests open (each asks one ahead).
	if busy.most.Load() <= 4 {
		t.Errorf("at most %d requests at once: the lent connections were not used", busy.most.Load())
	}
	l.wantAllBack(t, 3)
	if got := len(s.Requests()); got != lendSize/lendChunk {
		t.Errorf("%d requests for %d spans, want one each", got, lendSize/lendChunk)
	}
}

// A widened stream that breaks inside the span it still serves is resumed
// there like any chunk, with a range for the rest of that span.
func TestWidenedStreamBrokenInItsSpanIsResumed(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, lendSize)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		if n > 0 {
			return false
		}
		// The stream dies half way into the span it serves once widened.
		status, h, body := answer(r, data, false)
		h.Set("Accept-Ranges", "bytes")
		s.cutWith(w, status, h, body[:lendChunk+lendChunk/2])
		return true
	})
	l := &lender{after: 1, extra: 2}
	downloadLending(t, s, data, 1, l)
	want := fmt.Sprintf("bytes=%d-%d", lendChunk+lendChunk/2, 2*lendChunk-1)
	if !slices.Contains(s.Ranges(), want) {
		t.Errorf("requests %q: want the stream's span resumed with %q", s.Ranges(), want)
	}
	l.wantAllBack(t, 2)
}
