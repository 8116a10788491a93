package transfer_test

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/transfer"
)

func TestDownloadSizes(t *testing.T) {
	t.Parallel()
	const chunk = 1024
	for _, size := range []int{0, 1, 2, chunk - 1, chunk, chunk + 1, 2*chunk - 1, 2 * chunk, 2*chunk + 1, 4 * chunk, 4*chunk + 1, 9*chunk + 7} {
		for _, known := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d/known=%v", size, known), func(t *testing.T) {
				t.Parallel()
				data := testutil.RandomBytes(t, size)
				s := newBlobServer(t, data, nil)
				dest := destIn(t)
				o := options(0)
				if known {
					o.Size = int64(size)
				}
				o.Connections, o.ChunkSize = 4, chunk
				res, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
				if err != nil {
					t.Fatal(err)
				}
				if res.Size != int64(size) {
					t.Errorf("Download returned %d, want %d", res.Size, size)
				}
				wantFile(t, dest, data)
				if fi, err := os.Stat(dest); err == nil && fi.Mode().Perm() != 0o644 {
					t.Errorf("mode %v", fi.Mode())
				}
				ranges := s.Ranges()
				chunked := known && size >= 2*chunk
				if !chunked {
					if len(ranges) != 1 || ranges[0] != "" {
						t.Errorf("one plain GET expected, got ranges %q", ranges)
					}
				} else {
					want := (size + chunk - 1) / chunk
					if len(ranges) != want {
						t.Errorf("%d requests, want one per chunk (%d): %q", len(ranges), want, ranges)
					}
					wantClosedRanges(t, ranges, size)
				}
				if got := s.served.Load(); got != int64(size) {
					t.Errorf("server sent %d bytes, want %d", got, size)
				}
			})
		}
	}
}

// wantClosedRanges checks every Range is "bytes=A-B" inside the blob and
// that together they cover it.
func wantClosedRanges(t *testing.T, ranges []string, size int) {
	t.Helper()
	wantClosedRangesFrom(t, ranges, 0, size)
}

// wantClosedRangesFrom checks every Range is "bytes=A-B" inside the blob
// and that together they cover [from, size).
func wantClosedRangesFrom(t *testing.T, ranges []string, from, size int) {
	t.Helper()
	covered := make([]bool, size)
	for i := range from {
		covered[i] = true
	}
	for _, r := range ranges {
		spec, ok := strings.CutPrefix(r, "bytes=")
		a, b, ok2 := strings.Cut(spec, "-")
		start, err1 := strconv.Atoi(a)
		end, err2 := strconv.Atoi(b)
		if !ok || !ok2 || err1 != nil || err2 != nil || start > end || end >= size {
			t.Errorf("Range %q is not a closed range inside %d bytes", r, size)
			continue
		}
		for i := start; i <= end; i++ {
			covered[i] = true
		}
	}
	for i, c := range covered {
		if !c {
			t.Errorf("byte %d was never requested", i)
			break
		}
	}
}

func TestDownloadWithoutContentLength(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, 100_000)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		// Chunked transfer encoding: no length anywhere.
		w.WriteHeader(http.StatusOK)
		w.Write(data[:50_000])
		w.(http.Flusher).Flush()
		w.Write(data[50_000:])
		return true
	})
	p := &transfer.Progress{}
	dest := destIn(t)
	res, err := transfer.Download(transfer.WithProgress(testCtx(t), p), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), options(0))
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	if res.Size != int64(len(data)) {
		t.Errorf("size = %d", res.Size)
	}
	if snap := p.Snapshot(); snap.BytesDone != int64(len(data)) || snap.BlobsDone != 1 {
		t.Errorf("progress %+v", snap)
	}
}

func TestDownloadSHA512(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, 3000)
	s := newBlobServer(t, data, nil)
	sum := sha512.Sum512(data)
	d := transfer.Digest{String: "sha512:" + hex.EncodeToString(sum[:]), Hex: hex.EncodeToString(sum[:]), New: sha512.New}
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), d, transfer.File(dest), options(3000)); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
}

func TestDownloadCreatesParentsAndReplacesDest(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, 1000)
	s := newBlobServer(t, data, nil)
	dest := filepath.Join(t.TempDir(), "a", "b", "blob")
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), options(1000)); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	// An older file at dest is replaced by the verified blob.
	testutil.WriteFile(t, dest, []byte("old content, much longer than nothing at all"), 0o600)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), options(1000)); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
}

func TestResumeAfterDrop(t *testing.T) {
	t.Parallel()
	const size, cut = 100_000, 30_000
	for _, known := range []bool{true, false} {
		t.Run(fmt.Sprintf("known=%v", known), func(t *testing.T) {
			t.Parallel()
			data := testutil.RandomBytes(t, size)
			s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
				if n == 0 {
					s.cut(w, r, cut, false)
					return true
				}
				return false
			})
			o := options(0)
			if known {
				o.Size = size
			}
			dest := destIn(t)
			res, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
			if err != nil {
				t.Fatal(err)
			}
			wantFile(t, dest, data)
			if res.Size != size {
				t.Errorf("size = %d", res.Size)
			}
			ranges := s.Ranges()
			if len(ranges) != 2 || ranges[0] != "" || ranges[1] != fmt.Sprintf("bytes=%d-%d", cut, size-1) {
				t.Errorf("ranges %q, want a plain GET then bytes=%d-%d", ranges, cut, size-1)
			}
			if got := s.served.Load(); got != size {
				t.Errorf("server sent %d bytes for a %d-byte blob", got, size)
			}
		})
	}
}

func TestResumeAfterDropChunked(t *testing.T) {
	t.Parallel()
	const size, chunk, cut = 64 << 10, 8 << 10, 3000
	data := testutil.RandomBytes(t, size)
	var dropped atomic.Bool
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		if r.Header.Get("Range") == fmt.Sprintf("bytes=%d-%d", 2*chunk, 3*chunk-1) && dropped.CompareAndSwap(false, true) {
			s.cut(w, r, cut, false)
			return true
		}
		return false
	})
	o := options(size)
	o.Connections, o.ChunkSize = 4, chunk
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	ranges := s.Ranges()
	wantClosedRanges(t, ranges, size)
	if len(ranges) != size/chunk+1 {
		t.Errorf("%d requests, want %d: %q", len(ranges), size/chunk+1, ranges)
	}
	resumed := fmt.Sprintf("bytes=%d-%d", 2*chunk+cut, 3*chunk-1)
	found := false
	for _, r := range ranges {
		found = found || r == resumed
	}
	if !found {
		t.Errorf("no request continued the broken chunk with %s: %q", resumed, ranges)
	}
	if got := s.served.Load(); got != size {
		t.Errorf("server sent %d bytes for a %d-byte blob", got, size)
	}
}

func TestServerIgnoringRangeAfterDrop(t *testing.T) {
	t.Parallel()
	const size, cut = 50_000, 20_000
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 0 {
			s.cut(w, r, cut, true)
			return true
		}
		// Range? What Range? Here is the whole blob again.
		status, h, body := answer(r, data, true)
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		m, _ := w.Write(body)
		s.served.Add(int64(m))
		return true
	})
	p := &transfer.Progress{}
	dest := destIn(t)
	if _, err := transfer.Download(transfer.WithProgress(testCtx(t), p), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), options(size)); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	ranges := s.Ranges()
	if len(ranges) != 2 || ranges[1] != fmt.Sprintf("bytes=%d-%d", cut, size-1) {
		t.Errorf("ranges %q", ranges)
	}
	if got := s.served.Load(); got != cut+size {
		t.Errorf("served %d, want %d", got, cut+size)
	}
	if got := p.Snapshot().BytesDone; got != size {
		t.Errorf("progress ends at %d, want %d (the restart must take back the discarded bytes)", got, size)
	}
}

func TestChunkedFallsBackWhenRangeIgnored(t *testing.T) {
	t.Parallel()
	const size, chunk = 40_000, 4096
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		status, h, body := answer(r, data, true)
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		m, _ := w.Write(body)
		s.served.Add(int64(m))
		return true
	})
	o := options(size)
	o.Connections, o.ChunkSize = 4, chunk
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	if reqs := s.Requests(); len(reqs) > 2 {
		t.Errorf("%d requests to a server that ignores Range, want at most 2", len(reqs))
	}
}

// A registry that honours the first range of a chunked download and then
// ignores Range (a proxy or CDN node that does not support it behind a load
// balancer) gets one stream from the verified prefix: the blob arrives.
func TestChunkedFallsBackWhenLaterRangesAreIgnored(t *testing.T) {
	t.Parallel()
	const size, chunk = 40_000, 4096
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		status, h, body := answer(r, data, n > 0)
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		m, _ := w.Write(body)
		s.served.Add(int64(m))
		return true
	})
	o := options(size)
	o.Connections, o.ChunkSize = 4, chunk
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
}

func TestContentRangeStartMismatch(t *testing.T) {
	t.Parallel()
	const size, cut = 30_000, 10_000
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 0 {
			s.cut(w, r, cut, false)
			return true
		}
		// A 206 that starts one byte later than asked.
		start, end, _ := parseRange(r.Header.Get("Range"), size)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start+1, end, size))
		w.Header().Set("Content-Length", strconv.Itoa(end-start))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(data[start+1 : end+1])
		return true
	})
	dest := destIn(t)
	_, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), options(size))
	if err == nil || !strings.Contains(err.Error(), "Content-Range") {
		t.Fatalf("err = %v, want one about Content-Range", err)
	}
	wantNoDest(t, dest)
	if kept := wantPrefixKept(t, dest, data); kept != cut {
		t.Errorf("kept %d bytes, want the %d good ones", kept, cut)
	}
	if n := len(s.Requests()); n > 1+4 {
		t.Errorf("%d requests: retried a misbehaving registry without bound", n)
	}
}

func TestContentRangeStartMismatchChunked(t *testing.T) {
	t.Parallel()
	const size, chunk = 32 << 10, 4 << 10
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		start, end, _ := parseRange(r.Header.Get("Range"), size)
		if start != 3*chunk {
			return false
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", 0, end-start, size))
		w.Header().Set("Content-Length", strconv.Itoa(end-start+1))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(data[:end-start+1])
		return true
	})
	o := options(size)
	o.Connections, o.ChunkSize = 4, chunk
	dest := destIn(t)
	_, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
	if err == nil || !strings.Contains(err.Error(), "Content-Range") {
		t.Fatalf("err = %v, want one about Content-Range", err)
	}
	wantNoDest(t, dest)
	kept := wantPrefixKept(t, dest, data)
	if kept > 3*chunk || kept%chunk != 0 {
		t.Errorf("kept %d bytes: not a hashed prefix before the bad chunk", kept)
	}
}

// authFor sets Authorization only on requests to host, as the registry's
// bearer transport does, so a redirect elsewhere carries none.
type authFor struct {
	host  string
	inner http.RoundTripper
}

func (a authFor) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == a.host {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer registry-token")
	}
	return a.inner.RoundTrip(r)
}

func TestRangeFollowsRedirect(t *testing.T) {
	t.Parallel()
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			t.Parallel()
			const size, cut, chunk = 40_000, 12_345, 8192
			data := testutil.RandomBytes(t, size)
			cutAt := cut
			if chunked {
				cutAt = 3000 // inside the first chunk
			}
			store := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
				if n == 0 {
					s.cut(w, r, cutAt, false)
					return true
				}
				return false
			})
			registry := newBlobServer(t, nil, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
				http.Redirect(w, r, store.URL()+"?X-Amz-Signature=abc", http.StatusTemporaryRedirect)
				return true
			})
			tr := http.DefaultTransport.(*http.Transport).Clone()
			t.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: authFor{host: registry.srv.Listener.Addr().String(), inner: transfer.NewRetryTransport(tr, testPolicy)}}
			o := options(size)
			if chunked {
				o.Connections, o.ChunkSize = 4, chunk
			}
			dest := destIn(t)
			if _, err := transfer.Download(testCtx(t), client, registry.URL(), digestOf(data), transfer.File(dest), o); err != nil {
				t.Fatal(err)
			}
			wantFile(t, dest, data)
			// Once redirected, the download asks the storage directly.
			regReqs, storeReqs := registry.Requests(), store.Requests()
			if len(regReqs) != 1 {
				t.Errorf("%d registry requests, want 1 (then the learned URL)", len(regReqs))
			}
			if regReqs[0].Auth != "Bearer registry-token" {
				t.Errorf("the registry request had Authorization %q", regReqs[0].Auth)
			}
			if storeReqs[0].Range != regReqs[0].Range {
				t.Errorf("Range %q at the registry, %q at the storage", regReqs[0].Range, storeReqs[0].Range)
			}
			for i, r := range storeReqs {
				if r.Auth != "" {
					t.Errorf("storage request %d received Authorization %q", i, r.Auth)
				}
			}
			var ranges []string
			for _, r := range storeReqs {
				ranges = append(ranges, r.Range)
			}
			if !chunked {
				want := []string{"", fmt.Sprintf("bytes=%d-%d", cut, size-1)}
				if fmt.Sprint(ranges) != fmt.Sprint(want) {
					t.Errorf("storage saw ranges %q, want %q", ranges, want)
				}
			} else {
				wantClosedRanges(t, ranges, size)
				if want := fmt.Sprintf("bytes=%d-%d", cutAt, chunk-1); !contains(ranges, want) {
					t.Errorf("the broken chunk was not continued with %s: %q", want, ranges)
				}
			}
			if got := store.served.Load(); got != size {
				t.Errorf("storage sent %d bytes", got)
			}
		})
	}
}

func TestStallResumed(t *testing.T) {
	t.Parallel()
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			t.Parallel()
			const size, chunk, sent = 64 << 10, 16 << 10, 5000
			data := testutil.RandomBytes(t, size)
			var stalled atomic.Bool
			s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
				start, _, _ := parseRange(r.Header.Get("Range"), size)
				if start == chunk && stalled.CompareAndSwap(false, true) || !chunked && n == 0 {
					s.stall(w, r, sent, nil)
					return true
				}
				return false
			})
			o := options(size)
			o.ReadTimeout = 200 * time.Millisecond
			if chunked {
				o.Connections, o.ChunkSize = 4, chunk
			}
			dest := destIn(t)
			start := time.Now()
			if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o); err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("took %v to get past a stall with a 200 ms read timeout", el)
			}
			wantFile(t, dest, data)
			want := fmt.Sprintf("bytes=%d-%d", sent, size-1)
			if chunked {
				want = fmt.Sprintf("bytes=%d-%d", chunk+sent, 2*chunk-1)
			}
			ranges := s.Ranges()
			if !contains(ranges, want) {
				t.Errorf("no request resumed with %s: %q", want, ranges)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestStallBeforeHeadersIsAnError(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, 1000)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return true
	})
	o := options(1000)
	o.ReadTimeout = 200 * time.Millisecond
	dest := destIn(t)
	start := time.Now()
	_, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
	if !errors.Is(err, transfer.ErrStalled) {
		t.Fatalf("err = %v, want ErrStalled", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v", el)
	}
	wantNoDest(t, dest)
	wantNoPartial(t, dest)
}

func TestDropAtZeroEveryTime(t *testing.T) {
	t.Parallel()
	const size = 10_000
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		s.cut(w, r, 0, false)
		return true
	})
	o := options(size)
	o.Resumes = 3
	dest := destIn(t)
	start := time.Now()
	_, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
	if err == nil {
		t.Fatal("no error")
	}
	var mm *transfer.MismatchError
	if errors.As(err, &mm) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v (%T), want a network error (unexpected EOF)", err, err)
	}
	if n := len(s.Requests()); n != o.Resumes+1 {
		t.Errorf("%d requests, want %d (one plus Resumes)", n, o.Resumes+1)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("gave up after %v", el)
	}
	wantNoDest(t, dest)
	// Nothing good arrived: whatever partial is kept holds no data.
	if fi, err := os.Stat(dest + ".incomplete"); err == nil && fi.Size() != 0 {
		t.Errorf("partial of %d bytes kept after receiving nothing", fi.Size())
	}
}

func TestBreaksAtSameOffsetIgnoringRange(t *testing.T) {
	t.Parallel()
	const size, cut = 20_000, 7_000
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		s.cut(w, r, cut, true)
		return true
	})
	o := options(size)
	o.Resumes = 3
	dest := destIn(t)
	done := make(chan error, 1)
	go func() {
		_, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("err = %v, want unexpected EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Download does not give up on a registry that always breaks at the same place")
	}
	// The first request plus Resumes attempts that never got further.
	if n := len(s.Requests()); n > o.Resumes+2 {
		t.Errorf("%d requests, want at most %d", n, o.Resumes+2)
	}
	wantNoDest(t, dest)
	if kept := wantPrefixKept(t, dest, data); kept != cut {
		t.Errorf("kept %d bytes, want %d", kept, cut)
	}
}

func TestDigestMismatch(t *testing.T) {
	t.Parallel()
	const size = 40_000
	for _, tc := range []struct {
		name    string
		known   bool
		chunked bool
	}{{"known", true, false}, {"unknown", false, false}, {"chunked", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := testutil.RandomBytes(t, size)
			other := testutil.RandomBytes(t, size)
			s := newBlobServer(t, other, nil)
			o := options(0)
			if tc.known {
				o.Size = size
			}
			if tc.chunked {
				o.Connections, o.ChunkSize = 4, 4096
			}
			dest := destIn(t)
			_, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
			var mm *transfer.MismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("err = %v (%T), want *MismatchError", err, err)
			}
			if !strings.Contains(err.Error(), digestOf(other).Hex) || !strings.Contains(err.Error(), digestOf(data).String) {
				t.Errorf("message %q does not name both digests", err)
			}
			wantNoDest(t, dest)
			wantNoPartial(t, dest)
		})
	}
}

func TestWrongSize(t *testing.T) {
	t.Parallel()
	const size = 5000
	data := testutil.RandomBytes(t, size)
	noLength := func(body []byte) func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		return func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
			w.WriteHeader(http.StatusOK)
			w.Write(body)
			w.(http.Flusher).Flush()
			return true
		}
	}
	for _, tc := range []struct {
		name  string
		size  int64
		fault func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool
		msg   string
	}{
		{"announced shorter", size + 10, nil, "registry has"},
		{"announced longer", size - 10, nil, "registry has"},
		{"chunked announced", size + 10000, nil, "registry has"},
		{"sent more, no length", size - 10, noLength(data), "more than"},
		{"sent less, no length", size + 10, noLength(data), "received"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newBlobServer(t, data, tc.fault)
			o := options(tc.size)
			o.Connections, o.ChunkSize = 4, 2048
			dest := destIn(t)
			_, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
			var mm *transfer.MismatchError
			if !errors.As(err, &mm) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v (%T), want *MismatchError saying %q", err, err, tc.msg)
			}
			wantNoDest(t, dest)
			wantNoPartial(t, dest)
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusNotFound, http.StatusUnauthorized, http.StatusServiceUnavailable} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			s := newBlobServer(t, nil, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
				testutil.RegistryError(w, status, "SOME_CODE", "no")
				return true
			})
			dest := filepath.Join(t.TempDir(), "sub", "blob")
			_, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf([]byte("x")), transfer.File(dest), options(1))
			var te *transport.Error
			if !errors.As(err, &te) || te.StatusCode != status {
				t.Fatalf("err = %v (%T), want a transport.Error with status %d", err, err, status)
			}
			want := 1
			if transfer.RetryStatus(status) {
				want = testPolicy.Attempts
			}
			if n := len(s.Requests()); n != want {
				t.Errorf("%d requests, want %d", n, want)
			}
			if _, err := os.Stat(filepath.Dir(dest)); err == nil {
				t.Error("a failed download created the destination's directory")
			}
		})
	}
}

func TestRetryTransportRetriesBeforeBody(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, 2000)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		if n < 2 {
			testutil.RegistryError(w, http.StatusBadGateway, "X", "try again")
			return true
		}
		return false
	})
	dest := destIn(t)
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), options(2000)); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
}

func TestCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, 2000)
	s := newBlobServer(t, data, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dest := destIn(t)
	_, err := transfer.Download(ctx, httpClient(t), s.URL(), digestOf(data), transfer.File(dest), options(2000))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	wantNoDest(t, dest)
	wantNoPartial(t, dest)
}

func TestResumeAcrossCalls(t *testing.T) {
	t.Parallel()
	for _, known := range []bool{true, false} {
		t.Run(fmt.Sprintf("known=%v", known), func(t *testing.T) {
			t.Parallel()
			// Slow enough to cancel part-way; what was received is kept.
			const size = 6 << 20
			data := testutil.RandomBytes(t, size)
			var fast atomic.Bool
			s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
				if fast.Load() {
					return false
				}
				s.slow(w, r, 64<<10, 5*time.Millisecond)
				return true
			})
			o := options(0)
			if known {
				o.Size = size
			}
			dest := destIn(t)
			p := &transfer.Progress{}
			ctx, cancel := context.WithCancel(transfer.WithProgress(testCtx(t), p))
			done := make(chan error, 1)
			go func() {
				_, err := transfer.Download(ctx, httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
				done <- err
			}()
			waitFor(t, "some progress", func() bool { return p.Snapshot().BytesDone >= 1<<20 })
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			wantNoDest(t, dest)
			kept := wantPrefixKept(t, dest, data)
			if kept < 1<<20 || kept >= size {
				t.Fatalf("kept %d bytes", kept)
			}
			m, _ := readMeta(t, dest)
			if m.Valid != -1 || m.Size != size {
				t.Errorf("metadata %+v, want size %d and valid -1", m, size)
			}

			fast.Store(true)
			s.waitIdle(t)
			before, reqs := s.served.Load(), len(s.Requests())
			p2 := &transfer.Progress{}
			res, err := transfer.Download(transfer.WithProgress(testCtx(t), p2), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Size != size {
				t.Errorf("size = %d", res.Size)
			}
			wantFile(t, dest, data)
			if ranges := s.Ranges()[reqs:]; len(ranges) != 1 || ranges[0] != fmt.Sprintf("bytes=%d-%d", kept, size-1) {
				t.Errorf("second call asked for %q, want bytes=%d-%d", ranges, kept, size-1)
			}
			if got := s.served.Load() - before; got != size-kept {
				t.Errorf("second call moved %d bytes, want %d", got, size-kept)
			}
			if res.Fetched != size-kept {
				t.Errorf("second call fetched %d bytes, want the %d it was missing", res.Fetched, size-kept)
			}
			snap := p2.Snapshot()
			if snap.BytesDone != size || snap.BlobsDone != 1 {
				t.Errorf("progress %+v: resumed bytes must count as done", snap)
			}
			if !known && snap.BytesTotal != size {
				t.Errorf("progress %+v: an unknown size must be announced once learned", snap)
			}
		})
	}
}

// Fetched is what this call received over the network: the rest of a
// resumed blob, not its size; bytes received twice (the registry ignored the
// range and sent the blob from its start) count twice.
func TestFetchedCountsBytesReceived(t *testing.T) {
	t.Parallel()
	const size, kept = 1 << 20, 1 << 19
	for _, tc := range []struct {
		name        string
		connections int
		cutAt       int  // the first response breaks after this many body bytes (0: never)
		ignoreRange bool // ... and answers with the blob from byte 0
		want        int64
	}{
		{name: "stream", connections: 1, want: size - kept},
		{name: "chunked", connections: 4, want: size - kept},
		{name: "stream/broken", connections: 1, cutAt: 100_000, want: size - kept},
		{name: "chunked/broken", connections: 4, cutAt: 10_000, want: size - kept},
		{name: "stream/range-ignored", connections: 1, cutAt: kept + 100_000, ignoreRange: true, want: size},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := testutil.RandomBytes(t, size)
			s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
				if tc.cutAt > 0 && n == 0 {
					s.cut(w, r, tc.cutAt, tc.ignoreRange)
					return true
				}
				return false
			})
			dest := destIn(t)
			writePartial(t, dest, data[:kept], meta{Digest: digestOf(data).String, Size: size, Valid: -1})
			o := options(size)
			o.Connections, o.ChunkSize = tc.connections, 64<<10
			res, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
			if err != nil {
				t.Fatal(err)
			}
			wantFile(t, dest, data)
			if res.Size != size || res.Fetched != tc.want {
				t.Errorf("result %+v, want size %d and %d fetched", res, size, tc.want)
			}
			if got := s.served.Load(); res.Fetched != got {
				t.Errorf("fetched %d, the registry sent %d", res.Fetched, got)
			}
		})
	}
}

// A registry that refuses open-ended ranges (as go-containerregistry's
// pkg/registry does, with 416) must still let a kept partial resume when
// the caller does not know the size: the size is in the partial's metadata.
func TestResumeAcrossCallsUnknownSizeClosedRange(t *testing.T) {
	t.Parallel()
	const size, kept = 30_000, 12_000
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		if strings.HasSuffix(r.Header.Get("Range"), "-") {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return true
		}
		return false
	})
	dest := destIn(t)
	writePartial(t, dest, data[:kept], meta{Digest: digestOf(data).String, Size: size, Valid: -1})
	p := &transfer.Progress{}
	if _, err := transfer.Download(transfer.WithProgress(testCtx(t), p), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), options(0)); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	if ranges := s.Ranges(); len(ranges) != 1 || ranges[0] != fmt.Sprintf("bytes=%d-%d", kept, size-1) {
		t.Errorf("ranges %q", ranges)
	}
	if snap := p.Snapshot(); snap.BytesDone != size || snap.BytesTotal != size {
		t.Errorf("progress %+v", snap)
	}
}

func TestCompletePartialNeedsNoRequest(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, 5000)
	s := newBlobServer(t, data, nil)
	for _, size := range []int64{5000, 0} {
		dest := destIn(t)
		writePartial(t, dest, data, meta{Digest: digestOf(data).String, Size: 5000, Valid: -1})
		if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), options(size)); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		wantFile(t, dest, data)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d requests for blobs already complete on disk", n)
	}
}

func TestUntrustedPartialIgnored(t *testing.T) {
	t.Parallel()
	const size = 30_000
	data := testutil.RandomBytes(t, size)
	junk := testutil.RandomBytes(t, 2*size)
	d := digestOf(data)
	for _, tc := range []struct {
		name    string
		data    []byte
		meta    *meta
		chunked bool
	}{
		{"another digest, longer", junk, &meta{Digest: digestOf(junk).String, Size: 2 * size, Valid: -1}, false},
		{"another digest, longer, chunked", junk, &meta{Digest: digestOf(junk).String, Size: 2 * size, Valid: -1}, true},
		{"another digest, same prefix", data[:size/2], &meta{Digest: "sha256:" + strings.Repeat("0", 64), Valid: -1}, false},
		{"no metadata", junk, nil, false},
		{"metadata for another size", data[:size/2], &meta{Digest: d.String, Size: size + 1, Valid: -1}, false},
		{"valid beyond the size", junk, &meta{Digest: d.String, Size: size, Valid: -1}, false},
		{"valid beyond the size, chunked", junk, &meta{Digest: d.String, Size: size, Valid: -1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newBlobServer(t, data, nil)
			dest := destIn(t)
			if tc.meta != nil {
				writePartial(t, dest, tc.data, *tc.meta)
			} else {
				testutil.WriteFile(t, dest+".incomplete", tc.data, 0o644)
			}
			o := options(size)
			if tc.chunked {
				o.Connections, o.ChunkSize = 4, 4096
			}
			if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), d, transfer.File(dest), o); err != nil {
				t.Fatal(err)
			}
			wantFile(t, dest, data)
			if first := s.Ranges()[0]; first != "" && !strings.HasPrefix(first, "bytes=0-") {
				t.Errorf("first request asked for %q: the untrusted partial was used", first)
			}
			if got := s.served.Load(); got != size {
				t.Errorf("served %d bytes, want %d", got, size)
			}
		})
	}
}

// A stale partial that appears while this call waits for the registry
// (another process's leftover) must not leave its tail in the result.
func TestStalePartialAppearingMidCall(t *testing.T) {
	t.Parallel()
	const size = 10_000
	data := testutil.RandomBytes(t, size)
	dest := destIn(t)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 0 {
			if err := os.WriteFile(dest+".incomplete", make([]byte, 3*size), 0o644); err != nil {
				t.Error(err)
			}
		}
		return false
	})
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), options(size)); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
}

func TestCorruptPartialRedownloaded(t *testing.T) {
	t.Parallel()
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			t.Parallel()
			const size, kept, chunk = 40_000, 8192, 4096
			data := testutil.RandomBytes(t, size)
			s := newBlobServer(t, data, nil)
			dest := destIn(t)
			bad := append([]byte(nil), data[:kept]...)
			bad[100] ^= 0xff
			writePartial(t, dest, bad, meta{Digest: digestOf(data).String, Size: size, Valid: -1})
			o := options(size)
			if chunked {
				o.Connections, o.ChunkSize = 4, chunk
			}
			p := &transfer.Progress{}
			if _, err := transfer.Download(transfer.WithProgress(testCtx(t), p), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o); err != nil {
				t.Fatal(err)
			}
			wantFile(t, dest, data)
			ranges := s.Ranges()
			if !strings.HasPrefix(ranges[0], fmt.Sprintf("bytes=%d-", kept)) {
				t.Errorf("first request %q did not continue the kept partial", ranges[0])
			}
			if got := s.served.Load(); got != 2*size-kept {
				t.Errorf("served %d bytes, want the rest then everything again (%d)", got, 2*size-kept)
			}
			if got := p.Snapshot().BytesDone; got != size {
				t.Errorf("progress ends at %d", got)
			}
		})
	}
}

// Bad data kept from an earlier call earns one fresh start, not two.
func TestCorruptPartialThenWrongContent(t *testing.T) {
	t.Parallel()
	const size = 10_000
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, testutil.RandomBytes(t, size), nil)
	dest := destIn(t)
	writePartial(t, dest, make([]byte, 4000), meta{Digest: digestOf(data).String, Size: size, Valid: -1})
	_, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), options(size))
	var mm *transfer.MismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("err = %v", err)
	}
	if n := len(s.Requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	wantNoDest(t, dest)
	wantNoPartial(t, dest)
}

func TestChunkedCancelKeepsHashedPrefix(t *testing.T) {
	t.Parallel()
	const chunk, chunks = 4096, 16
	const size = chunk * chunks
	data := testutil.RandomBytes(t, size)
	var open atomic.Bool
	var stalls atomic.Int64
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		start, _, _ := parseRange(r.Header.Get("Range"), size)
		if !open.Load() && start == 4*chunk {
			stalls.Add(1)
			s.stall(w, r, 1000, nil) // 1000 bytes in, then silence
			return true
		}
		return false
	})
	o := options(size)
	o.Connections, o.ChunkSize = 4, chunk
	dest := destIn(t)
	p := &transfer.Progress{}
	ctx, cancel := context.WithCancel(transfer.WithProgress(testCtx(t), p))
	done := make(chan error, 1)
	go func() {
		_, err := transfer.Download(ctx, httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
		done <- err
	}()
	// Every chunk before the stalled one is written; those after it wait in
	// memory, no further ahead than the window of Connections chunks, and
	// count as progress as they arrive. One of them may stay unread: the
	// stalled connection may be the one that asked for it ahead.
	window := int64(4*chunk + 1000 + (o.Connections-1)*chunk)
	got := settledProgress(t, p)
	if got != window && got != window-chunk {
		t.Errorf("%d bytes received past a stalled chunk, want %d (the window) or one chunk less", got, window)
	}
	// The registry may also have sent the span each connection asked for
	// ahead: that waits in the socket, unread.
	if got, most := s.served.Load(), window+int64(o.Connections)*chunk; got > most {
		t.Errorf("%d bytes served with the hash stuck at %d, want at most %d (the window and a span ahead per connection)", got, 4*chunk, most)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	wantNoDest(t, dest)
	kept := wantPrefixKept(t, dest, data)
	if kept != 4*chunk {
		t.Errorf("kept %d bytes, want the %d hashed before the stalled chunk", kept, 4*chunk)
	}
	if m, _ := readMeta(t, dest); m.Valid != -1 || m.Size != size {
		t.Errorf("metadata %+v", m)
	}

	open.Store(true)
	s.waitIdle(t)
	before, reqs := s.served.Load(), len(s.Requests())
	if _, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dest, data)
	ranges := s.Ranges()[reqs:]
	if !strings.HasPrefix(ranges[0], fmt.Sprintf("bytes=%d-", kept)) {
		t.Errorf("the next call started with %q, want from %d", ranges[0], kept)
	}
	wantClosedRangesFrom(t, ranges, int(kept), size)
	if got := s.served.Load() - before; got != size-kept {
		t.Errorf("the next call moved %d bytes, want %d", got, size-kept)
	}
}

func TestConcurrentDownloadsToOneDest(t *testing.T) {
	t.Parallel()
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			t.Parallel()
			const size = 100_000
			data := testutil.RandomBytes(t, size)
			s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
				s.slow(w, r, 10_000, 2*time.Millisecond)
				return true
			})
			o := options(size)
			if chunked {
				o.Connections, o.ChunkSize = 4, 16<<10
			}
			dest := destIn(t)
			const pulls = 4
			errs := make(chan error, pulls)
			for range pulls {
				go func() {
					_, err := transfer.Download(testCtx(t), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
					errs <- err
				}()
			}
			for range pulls {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			wantFile(t, dest, data)
			ents, _ := os.ReadDir(filepath.Dir(dest))
			if len(ents) != 1 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("directory holds %q", names)
			}
		})
	}
}

func TestProgressNeverExceedsSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		known bool
		drop  bool
	}{{"known", true, false}, {"unknown", false, false}, {"drop", true, true}, {"drop unknown", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const size = 300_000
			data := testutil.RandomBytes(t, size)
			s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
				if tc.drop && n == 0 {
					s.cut(w, r, 123_456, true)
					return true
				}
				s.slow(w, r, 7000, time.Millisecond)
				return true
			})
			o := options(0)
			if tc.known {
				o.Size = size
			}
			p := &transfer.Progress{}
			stop := make(chan struct{})
			var worst, last atomic.Int64
			var backwards atomic.Bool
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					s := p.Snapshot()
					if s.BytesDone > worst.Load() {
						worst.Store(s.BytesDone)
					}
					if s.BytesDone < last.Load() {
						backwards.Store(true)
					}
					last.Store(s.BytesDone)
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Microsecond):
					}
				}
			}()
			dest := destIn(t)
			_, err := transfer.Download(transfer.WithProgress(testCtx(t), p), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o)
			close(stop)
			<-sampled
			if err != nil {
				t.Fatal(err)
			}
			wantFile(t, dest, data)
			snap := p.Snapshot()
			if snap.BytesDone != size || snap.BlobsDone != 1 {
				t.Errorf("final progress %+v", snap)
			}
			if w := worst.Load(); w > size {
				t.Errorf("progress reached %d of %d", w, size)
			}
			if !tc.drop && backwards.Load() {
				t.Error("progress went backwards without a restart")
			}
			want := int64(0) // a known size is the caller's to announce
			if !tc.known {
				want = size
			}
			if snap.BytesTotal != want {
				t.Errorf("BytesTotal %d, want %d", snap.BytesTotal, want)
			}
		})
	}
}

func TestProgressChunked(t *testing.T) {
	t.Parallel()
	const size = 256 << 10
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, nil)
	o := options(size)
	o.Connections, o.ChunkSize = 4, 16<<10
	p := &transfer.Progress{}
	p.AddTotal(size, 1)
	dest := destIn(t)
	if _, err := transfer.Download(transfer.WithProgress(testCtx(t), p), httpClient(t), s.URL(), digestOf(data), transfer.File(dest), o); err != nil {
		t.Fatal(err)
	}
	want := transfer.Snapshot{BytesDone: size, BytesTotal: size, BlobsDone: 1, BlobsTotal: 1}
	if got := p.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("progress %+v, want %+v", got, want)
	}
}
