package transfer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/transfer"
)

// testPolicy keeps every backoff short.
var testPolicy = transfer.RetryPolicy{Attempts: 3, Base: 10 * time.Millisecond, Max: 50 * time.Millisecond, MaxRetryAfter: 2 * time.Second}

// seen is what the server recorded of one request.
type seen struct {
	Method string
	Range  string
	Auth   string
	Query  string
}

// blobServer serves data with Range support (http.ServeContent) and lets
// a test answer chosen requests itself to inject faults.
type blobServer struct {
	t    *testing.T
	data []byte
	srv  *httptest.Server
	// fault, when set, may answer request number n (0-based, in arrival
	// order) itself; it returns false to let the normal handler answer.
	fault func(w http.ResponseWriter, r *http.Request, n int) bool

	mu   sync.Mutex
	reqs []seen
	// served counts body bytes written, by normal and faulty answers.
	served atomic.Int64
	// active counts handlers still running.
	active atomic.Int64
}

func newBlobServer(t *testing.T, data []byte, fault func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool) *blobServer {
	t.Helper()
	s := &blobServer{t: t, data: data}
	if fault != nil {
		s.fault = func(w http.ResponseWriter, r *http.Request, n int) bool { return fault(s, w, r, n) }
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *blobServer) URL() string { return s.srv.URL + "/v2/repo/blobs/" + digestOf(s.data).String }

func (s *blobServer) serve(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	defer s.active.Add(-1)
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, seen{Method: r.Method, Range: r.Header.Get("Range"), Auth: r.Header.Get("Authorization"), Query: r.URL.RawQuery})
	s.mu.Unlock()
	if s.fault != nil && s.fault(w, r, n) {
		return
	}
	http.ServeContent(&countingWriter{ResponseWriter: w, n: &s.served}, r, "", time.Time{}, bytes.NewReader(s.data))
}

// waitIdle waits until no handler runs any more, so that a count taken
// afterwards holds no bytes of an earlier call's answers.
func (s *blobServer) waitIdle(t *testing.T) {
	t.Helper()
	waitFor(t, "the server's handlers to return", func() bool { return s.active.Load() == 0 })
}

// Requests returns what the server has seen so far.
func (s *blobServer) Requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

// Ranges returns the Range header of every request so far.
func (s *blobServer) Ranges() []string {
	var out []string
	for _, r := range s.Requests() {
		out = append(out, r.Range)
	}
	return out
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	m, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(m))
	return m, err
}

// answer works out what a range-honouring server sends for r: status,
// headers and body. ignoreRange answers 200 with everything.
func answer(r *http.Request, data []byte, ignoreRange bool) (int, http.Header, []byte) {
	h := http.Header{}
	h.Set("Content-Type", "application/octet-stream")
	start, end, ok := parseRange(r.Header.Get("Range"), len(data))
	if ignoreRange || !ok {
		h.Set("Content-Length", strconv.Itoa(len(data)))
		return http.StatusOK, h, data
	}
	h.Set("Content-Length", strconv.Itoa(end-start+1))
	h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, len(data)))
	return http.StatusPartialContent, h, data[start : end+1]
}

// parseRange reads "bytes=A-B" or "bytes=A-" (B clamped to size-1).
func parseRange(v string, size int) (start, end int, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes=")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.Atoi(a)
	if err != nil || start >= size {
		return 0, 0, false
	}
	end = size - 1
	if b != "" {
		if end, err = strconv.Atoi(b); err != nil {
			return 0, 0, false
		}
		end = min(end, size-1)
	}
	return start, end, end >= start
}

// cut answers r (as a range-honouring server would, or with the whole body
// when ignoreRange) but sends only the first n body bytes, then drops the
// connection.
func (s *blobServer) cut(w http.ResponseWriter, r *http.Request, n int, ignoreRange bool) {
	status, h, body := answer(r, s.data, ignoreRange)
	s.cutWith(w, status, h, body[:min(n, len(body))])
}

// cutWith writes status, h and body on the raw connection and closes it.
func (s *blobServer) cutWith(w http.ResponseWriter, status int, h http.Header, body []byte) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		s.t.Errorf("hijack: %v", err)
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	h.Write(buf)
	buf.WriteString("\r\n")
	buf.Write(body)
	buf.Flush()
	s.served.Add(int64(len(body)))
}

// stall answers r with the first n body bytes, then sends nothing more
// until the client goes away (or release is closed, when not nil).
func (s *blobServer) stall(w http.ResponseWriter, r *http.Request, n int, release <-chan struct{}) {
	status, h, body := answer(r, s.data, false)
	for k, v := range h {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	m, _ := w.Write(body[:min(n, len(body))])
	s.served.Add(int64(m))
	w.(http.Flusher).Flush()
	select {
	case <-r.Context().Done():
	case <-release:
	case <-time.After(20 * time.Second):
	}
}

// slow answers r normally but in pieces of step bytes every pause, giving
// up when the client goes away.
func (s *blobServer) slow(w http.ResponseWriter, r *http.Request, step int, pause time.Duration) {
	status, h, body := answer(r, s.data, false)
	for k, v := range h {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	for off := 0; off < len(body); off += step {
		m, err := w.Write(body[off:min(off+step, len(body))])
		s.served.Add(int64(m))
		if err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(pause):
		}
	}
}

func digestOf(data []byte) transfer.Digest {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	return transfer.Digest{String: "sha256:" + h, Hex: h, New: sha256.New}
}

// httpClient retries as the real client does, over a transport of its own
// (so no test reuses another's connections).
func httpClient(t *testing.T) *http.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: transfer.NewRetryTransport(tr, testPolicy)}
}

// options are the test defaults: short backoffs, a few resumes, and a read
// timeout long enough never to fire unless a test wants it to.
func options(size int64) transfer.Options {
	return transfer.Options{Size: size, Retry: testPolicy, Resumes: 3, ReadTimeout: 10 * time.Second}
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func destIn(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "blob")
}

type meta struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Valid  int64  `json:"valid"`
}

func readMeta(t *testing.T, dest string) (meta, bool) {
	t.Helper()
	b, err := os.ReadFile(dest + ".incomplete.json")
	if err != nil {
		return meta{}, false
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("partial metadata %q: %v", b, err)
	}
	return m, true
}

func writePartial(t *testing.T, dest string, data []byte, m meta) {
	t.Helper()
	testutil.WriteFile(t, dest+".incomplete", data, 0o644)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, dest+".incomplete.json", b, 0o644)
}

// wantFile checks that dest holds exactly data and that no partial files
// are left beside it.
func wantFile(t *testing.T, dest string, data []byte) {
	t.Helper()
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatalf("reading the result: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("file has %d bytes (sha256 %s), want %d (%s)", len(got), digestOf(got).Hex[:12], len(data), digestOf(data).Hex[:12])
	}
	wantNoPartial(t, dest)
}

func wantNoPartial(t *testing.T, dest string) {
	t.Helper()
	for _, p := range []string{dest + ".incomplete", dest + ".incomplete.json", dest + ".incomplete.json.tmp"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was left behind", filepath.Base(p))
		}
	}
}

func wantNoDest(t *testing.T, dest string) {
	t.Helper()
	if _, err := os.Stat(dest); err == nil {
		t.Fatalf("%s exists after a failed download", dest)
	}
}

// wantPrefixKept checks that the partial file beside dest is a (possibly
// empty) prefix of data and returns its length.
func wantPrefixKept(t *testing.T, dest string, data []byte) int64 {
	t.Helper()
	got, err := os.ReadFile(dest + ".incomplete")
	if err != nil {
		t.Fatalf("no partial file kept: %v", err)
	}
	if len(got) > len(data) || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("the kept partial (%d bytes) is not a prefix of the blob", len(got))
	}
	m, ok := readMeta(t, dest)
	if !ok {
		t.Fatal("partial data kept without its metadata")
	}
	if m.Digest != digestOf(data).String {
		t.Errorf("metadata names %s", m.Digest)
	}
	return int64(len(got))
}

// waitFor polls cond until it holds or the test's patience runs out.
// settledProgress waits until p's byte count has not moved for 300 ms,
// and returns it.
func settledProgress(t *testing.T, p *transfer.Progress) int64 {
	t.Helper()
	last, since := p.Snapshot().BytesDone, time.Now()
	waitFor(t, "progress to settle", func() bool {
		if now := p.Snapshot().BytesDone; now != last {
			last, since = now, time.Now()
		}
		return last > 0 && time.Since(since) >= 300*time.Millisecond
	})
	return last
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !testutil.WaitFor(t, 10*time.Second, what, cond) {
		t.FailNow()
	}
}
