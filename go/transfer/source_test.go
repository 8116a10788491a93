package transfer_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/transfer"
)

// signedStorage is a registry that redirects every blob GET to a storage
// server with a fresh signature, and that storage server. accept decides
// whether the storage honours a signature on its use-th use (1-based);
// refused uses get a 403, the way S3 answers an expired URL.
type signedStorage struct {
	registry, store *blobServer
	refused         atomic.Int64

	mu   sync.Mutex
	uses map[string]int
}

func newSignedStorage(t *testing.T, data []byte, accept func(use int) bool) *signedStorage {
	t.Helper()
	ss := &signedStorage{uses: map[string]int{}}
	ss.store = newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		sig := r.URL.Query().Get("X-Amz-Signature")
		ss.mu.Lock()
		ss.uses[sig]++
		use := ss.uses[sig]
		ss.mu.Unlock()
		if sig == "" || !accept(use) {
			ss.refused.Add(1)
			http.Error(w, "Request has expired", http.StatusForbidden)
			return true
		}
		return false
	})
	var issued atomic.Int64
	ss.registry = newBlobServer(t, nil, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		sig := "sig" + strconv.FormatInt(issued.Add(1), 10)
		http.Redirect(w, r, ss.store.URL()+"?X-Amz-Signature="+url.QueryEscape(sig), http.StatusTemporaryRedirect)
		return true
	})
	return ss
}

func (ss *signedStorage) download(t *testing.T, data []byte, o transfer.Options) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: authFor{host: ss.registry.srv.Listener.Addr().String(), inner: transfer.NewRetryTransport(tr, testPolicy)}}
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), client, ss.registry.URL(), digestOf(data), transfer.File(dest), o); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	for i, r := range ss.store.Requests() {
		if r.Auth != "" {
			t.Errorf("storage request %d received Authorization %q", i, r.Auth)
		}
	}
}

func TestExpiredLearnedURLGoesBackToRegistry(t *testing.T) {
	t.Parallel()
	// A signature lasts longer than the first round of reuses, so none
	// expires while its first reuse is still on its way (which would read
	// as a single-use URL).
	const size, chunk, good = 192 << 10, 8 << 10, 6
	data := testutil.RandomBytes(t, size)
	ss := newSignedStorage(t, data, func(use int) bool { return use <= good })
	o := options(size)
	o.Connections, o.ChunkSize = 4, chunk
	ss.download(t, data, o)

	chunks := size / chunk
	reg, refused := len(ss.registry.Requests()), int(ss.refused.Load())
	if refused == 0 {
		t.Fatal("no signature expired: the test proves nothing")
	}
	// An expiry sends back to the registry the request it refused, and
	// the chunks that start before a new URL is learned: at most one per
	// connection.
	if reg > 1+o.Connections*refused {
		t.Errorf("%d registry requests for %d expired signatures, want at most %d", reg, refused, 1+o.Connections*refused)
	}
	if reg >= chunks {
		t.Errorf("%d registry requests for %d chunks: the learned URL was not reused", reg, chunks)
	}
	if got := len(ss.store.Requests()); got != chunks+refused {
		t.Errorf("%d storage requests, want %d chunks + %d refused", got, chunks, refused)
	}
	wantClosedRanges(t, ss.store.Ranges(), size)
}

func TestSingleUseURLsAreNotReused(t *testing.T) {
	t.Parallel()
	const size, chunk, conns = 768 << 10, 8 << 10, 4
	data := testutil.RandomBytes(t, size)
	ss := newSignedStorage(t, data, func(use int) bool { return use == 1 })
	o := options(size)
	o.Connections, o.ChunkSize = conns, chunk
	ss.download(t, data, o)

	// Two learned URLs in a row fail at their reuse, with the requests
	// that raced them (a few for each of the two a connection may have
	// out: its span and the next); from then on every chunk goes through
	// the registry, and each failed reuse was followed by one registry
	// request for the same bytes.
	chunks := size / chunk
	refused := int(ss.refused.Load())
	if most := 3 * 2 * conns; refused < 2 || refused > most {
		t.Errorf("%d refused reuses for %d chunks, want 2 to %d", refused, chunks, most)
	}
	if got, want := len(ss.registry.Requests()), chunks; got != want {
		t.Errorf("%d registry requests, want %d (one per chunk)", got, want)
	}
}

func TestStreamResumeUsesLearnedURL(t *testing.T) {
	t.Parallel()
	const size, cut = 40_000, 12_345
	data := testutil.RandomBytes(t, size)
	var broke atomic.Bool
	ss := newSignedStorage(t, data, func(int) bool { return true })
	inner := ss.store.fault
	ss.store.fault = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if inner(w, r, n) {
			return true
		}
		if broke.CompareAndSwap(false, true) {
			ss.store.cut(w, r, cut, false)
			return true
		}
		return false
	}
	ss.download(t, data, options(size))
	if got := len(ss.registry.Requests()); got != 1 {
		t.Errorf("%d registry requests, want 1", got)
	}
	want := []string{"", fmt.Sprintf("bytes=%d-%d", cut, size-1)}
	if got := ss.store.Ranges(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("storage saw ranges %q, want %q", got, want)
	}
	if q := ss.store.Requests()[1].Query; q != "X-Amz-Signature=sig1" {
		t.Errorf("the resume asked the storage with %q, want the learned signature", q)
	}
}
