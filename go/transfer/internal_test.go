package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 0-99/100", 0, 100, true},
		{"bytes 42-99/100", 42, 100, true},
		{"bytes 42-99/*", 42, -1, true},
		{"  bytes 7-7/8  ", 7, 8, true},
		{"bytes 9223372036854775806-9223372036854775806/9223372036854775807", 9223372036854775806, 9223372036854775807, true},
		{"", 0, 0, false},
		{"bytes", 0, 0, false},
		{"bytes */100", 0, 0, false}, // the 416 form: no range at all
		{"bytes 0-99", 0, 0, false},
		{"bytes 0/100", 0, 0, false},
		{"bytes -5-99/100", 0, 0, false},
		{"bytes x-99/100", 0, 0, false},
		{"bytes 0-99/abc", 0, 0, false},
		{"bytes 0-99/", 0, 0, false},
		{"items 0-99/100", 0, 0, false},
		{"bytes=0-99/100", 0, 0, false},
		{"bytes 99999999999999999999-1/2", 0, 0, false},
	} {
		start, total, ok := parseContentRange(tc.in)
		if ok != tc.ok || ok && (start != tc.start || total != tc.total) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, %v", tc.in, start, total, ok, tc.start, tc.total, tc.ok)
		}
	}
}

func TestResumable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("stream ended: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("%w: no data for 1s", ErrStalled), true},
		{syscall.ECONNRESET, true},
		{&MismatchError{Msg: "wrong"}, false},
		{fmt.Errorf("x: %w", &MismatchError{Msg: "wrong"}), false},
		{&fs.PathError{Op: "write", Path: "/f", Err: syscall.ENOSPC}, false},
		{&transport.Error{StatusCode: 503}, true},
		{&transport.Error{StatusCode: 429}, true},
		{&transport.Error{StatusCode: 404}, false},
		{&transport.Error{StatusCode: 416}, false},
		{errors.New("http: server gave HTTP response to HTTPS client"), false},
	} {
		if got := resumable(tc.err); got != tc.want {
			t.Errorf("resumable(%v) = %v", tc.err, got)
		}
	}
}

// fill keeps a clean end apart from a cut one, and returns what it read.
func TestFill(t *testing.T) {
	t.Parallel()
	buf := make([]byte, 10)
	n, err := fill(iotest.OneByteReader(strings.NewReader("abcdefghijklmnop")), buf)
	if n != 10 || err != nil || string(buf) != "abcdefghij" {
		t.Errorf("full buffer: %d %v %q", n, err, buf)
	}
	n, err = fill(iotest.HalfReader(strings.NewReader("abc")), buf)
	if n != 3 || err != io.EOF {
		t.Errorf("short, clean end: %d %v", n, err)
	}
	n, err = fill(io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(io.ErrUnexpectedEOF)), buf)
	if n != 2 || err != io.ErrUnexpectedEOF {
		t.Errorf("cut: %d %v", n, err)
	}
}

func TestWatchdog(t *testing.T) {
	t.Parallel()
	// Fires when nothing moves, and explain says so.
	w := newWatchdog(context.Background(), 30*time.Millisecond)
	<-w.ctx.Done()
	if err := w.explain(context.Canceled); !errors.Is(err, ErrStalled) {
		t.Errorf("explain = %v", err)
	}
	if w.explain(nil) != nil {
		t.Error("explain(nil) is not nil")
	}
	w.stop()

	// Bytes that keep arriving keep it quiet: the stream lasts twice the timeout, and each
	// gap is a twentieth of it, so a loaded machine's late wake-ups cannot pass for a stall.
	w = newWatchdog(context.Background(), 500*time.Millisecond)
	pr, pw := io.Pipe()
	go func() {
		for range 40 {
			time.Sleep(25 * time.Millisecond)
			pw.Write([]byte("x"))
		}
		pw.Close()
	}()
	if b, err := io.ReadAll(w.reader(pr, nil, nil)); err != nil || len(b) != 40 {
		t.Errorf("read %d, %v", len(b), err)
	}
	if w.ctx.Err() != nil {
		t.Error("watchdog fired on a moving stream")
	}
	w.stop()
	if w.ctx.Err() == nil {
		t.Error("stop does not release the context")
	}
	if err := w.explain(io.ErrUnexpectedEOF); err != io.ErrUnexpectedEOF {
		t.Errorf("explain turned %v into a stall", err)
	}
}

func TestPartialMetaRoundTrip(t *testing.T) {
	t.Parallel()
	dest := filepath.Join(t.TempDir(), "blob")
	if _, ok := loadMeta(dest); ok {
		t.Error("metadata loaded from nowhere")
	}
	m := partialMeta{Digest: "sha256:abc", Size: 10, Valid: 4}
	if err := saveMeta(dest, m); err != nil {
		t.Fatal(err)
	}
	if got, ok := loadMeta(dest); !ok || got != m {
		t.Errorf("loaded %+v %v", got, ok)
	}
	if _, err := os.Stat(dest + metaSuffix + ".tmp"); err == nil {
		t.Error("temporary metadata file left behind")
	}
	if err := os.WriteFile(dest+metaSuffix, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := loadMeta(dest); ok {
		t.Error("corrupt metadata accepted")
	}
	os.WriteFile(IncompletePath(dest), []byte("x"), 0o644)
	removePartial(dest)
	for _, p := range []string{IncompletePath(dest), dest + metaSuffix} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s survived removePartial", p)
		}
	}
}

func TestOpenLocked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "blob.incomplete")
	f, err := openLocked(context.Background(), path, false, true)
	if f != nil || err != nil {
		t.Fatalf("missing file without create: %v, %v", f, err)
	}
	a, err := openLocked(context.Background(), path, true, true)
	if err != nil {
		t.Fatal(err)
	}
	// A second holder waits, and gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	if b, err := openLocked(ctx, path, true, true); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		if b != nil {
			b.Close()
		}
		t.Fatalf("second lock: %v", err)
	}
	// Once the first holder renames the file away and lets go, a waiter
	// must not keep the lock on the old file.
	got := make(chan *os.File, 1)
	go func() {
		b, err := openLocked(context.Background(), path, true, true)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	time.Sleep(50 * time.Millisecond)
	moved := path + ".done"
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	a.Close()
	var b *os.File
	select {
	case b = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("waiter never got the lock")
	}
	defer b.Close()
	if !sameFile(b, path) {
		t.Error("the waiter holds a file that no longer has the name")
	}
	if fi, _ := os.Stat(moved); fi != nil {
		if bi, _ := b.Stat(); os.SameFile(fi, bi) {
			t.Error("the waiter locked the renamed file")
		}
	}
}

func TestProgressNil(t *testing.T) {
	t.Parallel()
	var p *Progress
	p.AddBytes(5)
	p.AddTotal(5, 1)
	p.BlobDone()
	if !reflect.DeepEqual(p.Snapshot(), Snapshot{}) {
		t.Error("nil Progress has a snapshot")
	}
	if ProgressFrom(context.Background()) != nil {
		t.Error("progress from an empty context")
	}
	q := &Progress{}
	ctx := WithProgress(context.Background(), q)
	if ProgressFrom(ctx) != q {
		t.Error("WithProgress/ProgressFrom do not round-trip")
	}
	q.AddTotal(100, 2)
	q.AddBytes(60)
	q.AddBytes(-10)
	q.BlobDone()
	if got, want := q.Snapshot(), (Snapshot{BytesDone: 50, BytesTotal: 100, BlobsDone: 1, BlobsTotal: 2}); !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot %+v, want %+v", got, want)
	}
}

func TestProgressPerBlob(t *testing.T) {
	t.Parallel()
	root := &Progress{}
	a, b := root.Blob("a.safetensors"), root.Blob("b.safetensors")
	a.AddTotal(10, 1)
	b.AddTotal(20, 1)
	a.AddBytes(10)
	a.BlobDone()
	b.AddBytes(5)
	want := Snapshot{BytesDone: 15, BytesTotal: 30, BlobsDone: 1, BlobsTotal: 2, Blobs: []BlobSnapshot{
		{Label: "a.safetensors", BytesDone: 10, BytesTotal: 10, Done: true},
		{Label: "b.safetensors", BytesDone: 5, BytesTotal: 20},
	}}
	if got := root.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot %+v, want %+v", got, want)
	}
}

func TestWaitBlobsWakesWhenABlobFinishes(t *testing.T) {
	t.Parallel()
	root := &Progress{}
	a, b := root.Blob("a"), root.Blob("b")
	root.WaitBlobs(context.Background(), -1) // already more than -1: at once

	woke := make(chan int64)
	go func() {
		root.WaitBlobs(context.Background(), 0)
		woke <- root.blobsDone.Load()
	}()
	a.AddBytes(10) // bytes are not blobs
	select {
	case n := <-woke:
		t.Fatalf("woke with %d blobs done", n)
	case <-time.After(100 * time.Millisecond):
	}
	a.BlobAt("/cache/a")
	if n := <-woke; n != 1 {
		t.Fatalf("woke with %d blobs done, want 1", n)
	}
	root.WaitBlobs(context.Background(), 0) // 1 > 0: at once

	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() {
		root.WaitBlobs(ctx, 1)
		close(ended)
	}()
	cancel()
	<-ended
	child := make(chan struct{}) // a blob's own Progress wakes its waiters too
	go func() {
		b.WaitBlobs(context.Background(), 0)
		close(child)
	}()
	b.BlobDone()
	<-child
	root.WaitBlobs(context.Background(), 1)
	var none *Progress
	none.WaitBlobs(context.Background(), 5) // nil: nothing to wait for
}

func TestFoundIsAFinishedBlobOfNoBytesReportedOnce(t *testing.T) {
	t.Parallel()
	root := &Progress{}
	a := root.Blob("a")
	a.AddTotal(10, 1)
	woke := make(chan struct{})
	go func() {
		root.WaitBlobs(context.Background(), 0)
		close(woke)
	}()
	root.Found("b", "/cache/b") // in place already: a waiter takes it at once
	<-woke
	a.AddBytes(10)
	a.BlobAt("/cache/a")
	root.Found("a", "/elsewhere/a") // this operation's own download: not again
	root.Found("b", "/cache/b")
	want := Snapshot{BytesDone: 10, BytesTotal: 10, BlobsDone: 2, BlobsTotal: 2, Blobs: []BlobSnapshot{
		{Label: "a", BytesDone: 10, BytesTotal: 10, Done: true, Path: "/cache/a"},
		{Label: "b", Done: true, Path: "/cache/b", Present: true},
	}}
	if got := root.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot %+v, want %+v", got, want)
	}
	var none *Progress
	none.Found("c", "/c")
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	o := Options{}.withDefaults()
	if o.Connections != 4 || o.ChunkSize != 8<<20 || o.MinChunked != 16<<20 || o.ReadTimeout != time.Minute || o.Resumes != 5 || o.Retry != DefaultRetryPolicy {
		t.Errorf("defaults %+v", o)
	}
	o = Options{ChunkSize: 1000, Connections: 1, Retry: RetryPolicy{Attempts: 2}}.withDefaults()
	if o.MinChunked != 2000 || o.Connections != 1 || o.Retry.Attempts != 2 {
		t.Errorf("%+v", o)
	}
}
