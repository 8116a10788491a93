package oci

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/transfer"
)

// volumes stands in for the file systems: dev and free bytes by directory.
// Not parallel: it swaps the package's freeSpace for the test's duration.
func volumes(t *testing.T, byDir map[string][2]int64) {
	t.Helper()
	old := freeSpace
	freeSpace = func(dir string) (int64, uint64, bool) {
		v, ok := byDir[dir]
		return v[1], uint64(v[0]), ok
	}
	t.Cleanup(func() { freeSpace = old })
}

type spaceFixture struct {
	ref      string
	a, b     []byte // 64 KiB and 32 KiB
	da, db   string
	requests *atomic.Int64
}

func newSpaceFixture(t *testing.T) *spaceFixture {
	t.Helper()
	reg := testutil.NewRegistry(t)
	f := &spaceFixture{ref: reg.Ref("m", ""), a: testutil.RandomBytes(t, 64<<10), b: testutil.RandomBytes(t, 32<<10), requests: &atomic.Int64{}}
	f.da, f.db = testutil.PushBlob(t, f.ref, f.a), testutil.PushBlob(t, f.ref, f.b)
	reg.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.requests.Add(1)
			next.ServeHTTP(w, r)
		})
	})
	return f
}

func (f *spaceFixture) pull(t *testing.T, destA, destB string) error {
	t.Helper()
	c := mustNewT(t, WithEnv(testutil.Env(t, "")))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.PullBlobs(ctx, f.ref, []BlobRequest{
		{Digest: f.da, Path: destA, Size: int64(len(f.a))},
		{Digest: f.db, Path: destB, Size: int64(len(f.b))},
	}, 2)
	return err
}

func TestPullBlobsRefusesWhatCannotFitBeforeAnyRequest(t *testing.T) {
	f := newSpaceFixture(t)
	dir := t.TempDir()
	volumes(t, map[string][2]int64{dir: {1, 95 << 10}})
	err := f.pull(t, filepath.Join(dir, "sub", "a"), filepath.Join(dir, "b"))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeNoSpace {
		t.Fatalf("got %v, want a %s error", err, CodeNoSpace)
	}
	for _, want := range []string{"2 blobs", "under " + dir + ":", "96.0 KiB more to download", "95.0 KiB free"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if n := f.requests.Load(); n != 0 {
		t.Errorf("%d requests went out before the refusal", n)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the refused pull left %d entries in the destination", len(entries))
	}
}

// Partial data a resume keeps is not fetched again, so it needs no room;
// someone else's partial does not count.
func TestPullBlobsCountsOnlyWhatIsStillToFetch(t *testing.T) {
	f := newSpaceFixture(t)
	dir := t.TempDir()
	destA, destB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	partial := func(digest string) {
		testutil.WriteFile(t, transfer.IncompletePath(destA), f.a[:40<<10], 0o644)
		testutil.WriteJSON(t, destA+".incomplete.json", map[string]any{"digest": digest, "size": len(f.a), "valid": -1})
	}
	volumes(t, map[string][2]int64{dir: {1, 60 << 10}})

	partial(f.db) // not this blob's: 96 KiB still to fetch
	if err := f.pull(t, destA, destB); !isCode(err, CodeNoSpace) || !strings.Contains(err.Error(), "96.0 KiB more") {
		t.Fatalf("with another blob's partial: got %v", err)
	}
	partial(f.da) // 40 KiB of it kept: 56 KiB to fetch
	if err := f.pull(t, destA, destB); err != nil {
		t.Fatalf("with 40 KiB kept, 56 of 60 KiB needed: %v", err)
	}
	for dest, want := range map[string][]byte{destA: f.a, destB: f.b} {
		if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: content differs (%d bytes, %v)", dest, len(got), err)
		}
	}
}

// Each file system is measured against its own downloads; one that does not
// report its space (ok false) is not held to any.
func TestPullBlobsMeasuresEachFileSystemOnItsOwn(t *testing.T) {
	f := newSpaceFixture(t)
	one, two, unknown := t.TempDir(), t.TempDir(), t.TempDir()
	volumes(t, map[string][2]int64{one: {1, 70 << 10}, two: {2, 40 << 10}})
	if err := f.pull(t, filepath.Join(one, "a"), filepath.Join(two, "b")); err != nil {
		t.Fatalf("64 KiB into 70 and 32 into 40: %v", err)
	}
	if err := f.pull(t, filepath.Join(two, "a2"), filepath.Join(one, "b2")); !isCode(err, CodeNoSpace) || !strings.Contains(err.Error(), "1 blob under "+two) {
		t.Fatalf("64 KiB into 40: got %v", err)
	}
	if err := f.pull(t, filepath.Join(unknown, "a"), filepath.Join(unknown, "b")); err != nil {
		t.Fatalf("a file system that does not say: %v", err)
	}
}

func isCode(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 96 << 10: "96.0 KiB", 3 << 29: "1.5 GiB", 5 << 40: "5.0 TiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// mustNewT is New for options that must apply.
func mustNewT(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
