package transfer_test

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/transfer"
)

// A registry that holds back the last byte of each span until the span a
// connection will fetch next has been asked for: a connection that only
// asked once its span was done would wait out every hold.
func TestNextSpanIsAskedForWhileThisOneIsReceived(t *testing.T) {
	t.Parallel()
	const chunk, chunks, conns = 8 << 10, 8, 2
	const size = chunk * chunks
	data := testutil.RandomBytes(t, size)
	var asked [chunks]chan struct{}
	var once [chunks]sync.Once
	for k := range asked {
		asked[k] = make(chan struct{})
	}
	var held, inVain atomic.Int64
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		start, end, ok := parseRange(r.Header.Get("Range"), size)
		if !ok {
			return false
		}
		k := start / chunk
		once[k].Do(func() { close(asked[k]) })
		if start%chunk != 0 || k+conns >= chunks {
			return false
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
		w.Header().Set("Content-Length", strconv.Itoa(end-start+1))
		w.WriteHeader(http.StatusPartialContent)
		_, _ = w.Write(data[start:end])
		w.(http.Flusher).Flush()
		held.Add(1)
		select {
		case <-asked[k+conns]:
		case <-time.After(3 * time.Second):
			inVain.Add(1)
		case <-r.Context().Done():
			return true
		}
		_, _ = w.Write(data[end : end+1])
		return true
	})
	o := options(size)
	o.Connections, o.ChunkSize = conns, chunk
	o.ReadTimeout = 30 * time.Second
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	if held.Load() != chunks-conns {
		t.Fatalf("%d spans held, want %d: the test proves nothing", held.Load(), chunks-conns)
	}
	if n := inVain.Load(); n > 0 {
		t.Errorf("%d spans waited for the next request until the registry gave up: it was not sent ahead", n)
	}
	if got := len(s.Requests()); got != chunks {
		t.Errorf("%d requests for %d spans, want one each", got, chunks)
	}
}
