package oci_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/transfer"
)

// Two blobs, a stream each: once the small one is done, the large one
// takes over its connection and fetches the rest in ranged chunks.
func TestLastBlobRunningBorrowsTheConnectionsOfFinishedOnes(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	small, large := testutil.RandomBytes(t, 10<<10), testutil.RandomBytes(t, 1<<20)
	ds, dl := testutil.PushBlob(t, reg.Ref("m", ""), small), testutil.PushBlob(t, reg.Ref("m", ""), large)
	dir := t.TempDir()
	smallDest := filepath.Join(dir, "small")
	var mu sync.Mutex
	var ranges []string
	reg.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+dl) {
				next.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			ranges = append(ranges, r.Header.Get("Range"))
			mu.Unlock()
			w.Header().Set("Accept-Ranges", "bytes")
			if r.Header.Get("Range") != "" {
				next.ServeHTTP(w, r)
				return
			}
			// The stream: 64 KiB, then the rest slowly once the small
			// blob is in place.
			w.Header().Set("Content-Length", "1048576")
			w.WriteHeader(http.StatusOK)
			w.Write(large[:64<<10])
			w.(http.Flusher).Flush()
			testutil.WaitFor(t, 10*time.Second, "the small blob", func() bool { _, err := os.Stat(smallDest); return err == nil })
			for off := 64 << 10; off < len(large); off += 16 << 10 {
				if _, err := w.Write(large[off : off+16<<10]); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				time.Sleep(5 * time.Millisecond)
			}
		})
	})
	c := anonClient(t, oci.WithTransfer(transfer.Options{Connections: 2, ChunkSize: 64 << 10}))
	largeDest := filepath.Join(dir, "large")
	_, err := c.PullBlobs(ctx(t), reg.Ref("m", ""), []oci.BlobRequest{
		{Digest: dl, Path: largeDest, Size: int64(len(large))},
		{Digest: ds, Path: smallDest, Size: int64(len(small))},
	}, 2)
	if err != nil {
		t.Fatal(err)
	}
	for dest, want := range map[string][]byte{largeDest: large, smallDest: small} {
		if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: content differs (%d bytes, %v)", dest, len(got), err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ranges) < 3 || ranges[0] != "" || ranges[1] == "" {
		t.Errorf("requests for the large blob %q: want its stream, then ranged chunks", ranges)
	}
}

// Committed runs on each blob as it lands, with the file in place; its error
// fails the pull as a local one.
func TestCommittedRunsAsEachBlobLands(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	data := testutil.RandomBytes(t, 64<<10)
	d := testutil.PushBlob(t, reg.Ref("m", ""), data)
	dest := filepath.Join(t.TempDir(), "blob")
	var seen []byte
	c := anonClient(t)
	_, err := c.PullBlobs(ctx(t), reg.Ref("m", ""), []oci.BlobRequest{{Digest: d, Path: dest, Committed: func(p string) error {
		seen, _ = os.ReadFile(p)
		return nil
	}}}, 1)
	if err != nil || !bytes.Equal(seen, data) {
		t.Fatalf("err %v; the hook saw %d bytes at the destination, want %d", err, len(seen), len(data))
	}
	_, err = c.PullBlobs(ctx(t), reg.Ref("m", ""), []oci.BlobRequest{{Digest: d, Path: dest + "2", Committed: func(string) error {
		return &os.PathError{Op: "write", Path: dest + "2.state", Err: os.ErrPermission}
	}}}, 1)
	if e := oci.AsError(err); e == nil || e.Code != oci.CodeIO || !strings.Contains(err.Error(), "2.state") {
		t.Fatalf("a failing hook: %v, want an IO error naming it", err)
	}
}

// pacedWriter holds one response to about 4 MB/s, as a CDN holds each
// connection to a rate.
type pacedWriter struct{ http.ResponseWriter }

func (w pacedWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), 16<<10)
		m, err := w.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		w.ResponseWriter.(http.Flusher).Flush()
		p = p[k:]
		time.Sleep(4 * time.Millisecond)
	}
	return n, nil
}

// Behind a registry that holds each connection to a rate, a pull left to
// its defaults opens more connections than its budget, as more pay; one
// given a number of connections keeps to it.
func TestMoreConnectionsOnlyWhereEachIsHeldToARate(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	var blobs [][]byte
	var digests []string
	for range 4 {
		b := testutil.RandomBytes(t, 8<<20)
		blobs, digests = append(blobs, b), append(digests, testutil.PushBlob(t, reg.Ref("m", ""), b))
	}
	var now, most atomic.Int64
	reg.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !testutil.IsBlobGet(r) {
				next.ServeHTTP(w, r)
				return
			}
			n := now.Add(1)
			defer now.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			w.Header().Set("Accept-Ranges", "bytes") // as distribution says
			next.ServeHTTP(pacedWriter{w}, r)
		})
	})
	pull := func(o transfer.Options) int64 {
		most.Store(0)
		dir := t.TempDir()
		var reqs []oci.BlobRequest
		for i, d := range digests {
			reqs = append(reqs, oci.BlobRequest{Digest: d, Path: filepath.Join(dir, strconv.Itoa(i)), Size: int64(len(blobs[i]))})
		}
		if _, err := anonClient(t, oci.WithTransfer(o)).PullBlobs(ctx(t), reg.Ref("m", ""), reqs, 4); err != nil {
			t.Fatal(err)
		}
		for i, b := range blobs {
			if got, err := os.ReadFile(reqs[i].Path); err != nil || !bytes.Equal(got, b) {
				t.Fatalf("blob %d: content differs (%d bytes, %v)", i, len(got), err)
			}
		}
		return most.Load()
	}
	// 4 connections, each with the request for its next chunk open ahead:
	// at most 8 requests at once without tuning.
	if got := pull(transfer.Options{ChunkSize: 256 << 10}); got <= 8 {
		t.Errorf("at most %d blob requests at once with the defaults: want more than the 8 of 4 connections", got)
	}
	if got := pull(transfer.Options{ChunkSize: 256 << 10, Connections: 4}); got > 8 {
		t.Errorf("%d blob requests at once with connections set to 4: want at most 8", got)
	}
}
