package oci_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
