package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// feed hands data to s in pieces of pool.size, starting at off.
func feed(t *testing.T, s *sink, pool *pieces, off int64, data []byte) {
	t.Helper()
	for len(data) > 0 {
		p := pool.get(off, int64(len(data)))
		p.n = copy(p.buf, data)
		if err := s.put(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		off += int64(p.n)
		data = data[p.n:]
	}
}

func TestSinkWritesInOrder(t *testing.T) {
	t.Parallel()
	// Aligned pieces and an unaligned tail, from 0 and from an aligned or
	// unaligned offset, direct or not, on disk and (where there is one) on
	// a tmpfs, which always gets buffered writes.
	dirs := map[string]string{"disk": t.TempDir()}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "sink"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			dirs["tmpfs"] = d
		}
	}
	if dir, ok := dirs["tmpfs"]; ok && directFS(dir) {
		t.Errorf("O_DIRECT would be used on the tmpfs %s", dir)
	}
	for where, dir := range dirs {
		for _, direct := range []bool{true, false} {
			for _, off := range []int64{0, 3 * directAlign, 1000} {
				f, err := os.Create(filepath.Join(dir, "f"+where+map[bool]string{true: "d", false: "b"}[direct]+string(rune('0'+off%10))+string(rune('a'+off/directAlign))))
				if err != nil {
					t.Fatal(err)
				}
				head := randomBytes(t, int(off))
				if _, err := f.Write(head); err != nil {
					t.Fatal(err)
				}
				pool := newPieces(64 << 10)
				s := newSink(f, off, pool, direct, true)
				usedDirect := s.direct != nil
				data := randomBytes(t, 5*(64<<10)+777)
				feed(t, s, pool, off, data)
				written, err := s.close()
				f.Close()
				if err != nil || written != off+int64(len(data)) {
					t.Fatalf("%s direct=%v off=%d: close = %d, %v", where, direct, off, written, err)
				}
				got, _ := os.ReadFile(f.Name())
				if !bytes.Equal(got, append(head, data...)) {
					t.Errorf("%s direct=%v off=%d: file differs", where, direct, off)
				}
				wantDirect := direct && off%directAlign == 0 && where == "disk" && directFS(dir)
				if usedDirect != wantDirect {
					t.Errorf("%s direct=%v off=%d: O_DIRECT used %v, want %v", where, direct, off, usedDirect, wantDirect)
				}
			}
		}
	}
}

func TestSinkFallsBackWhenDirectIsRefused(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pool := newPieces(8192)
	s := newSink(f, 0, pool, true, true)
	if s.direct == nil {
		t.Skip("this file system does not open O_DIRECT")
	}
	// A buffer off the alignment O_DIRECT needs: the kernel says EINVAL,
	// and the sink carries on through the page cache.
	data := randomBytes(t, 3*8192)
	for off := 0; off < len(data); off += 8192 {
		raw := alignedBuffer(8192 + 1)
		p := &piece{off: int64(off), buf: raw[1 : 8192+1]}
		p.n = copy(p.buf, data[off:off+8192])
		if err := s.put(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if written, err := s.close(); err != nil || written != int64(len(data)) {
		t.Fatalf("close = %d, %v", written, err)
	}
	if s.direct != nil {
		t.Error("still writing O_DIRECT after the kernel refused")
	}
	if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, data) {
		t.Error("file differs")
	}
}

func TestSinkMixesDirectAndBufferedPieces(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if !directFS(dir) {
		t.Skip("O_DIRECT is not used on this file system")
	}
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Pieces of 3 x 4096 + 100 bytes: every other one starts unaligned.
	const n = 3*directAlign + 100
	pool := newPieces(4 * directAlign)
	s := newSink(f, 0, pool, true, true)
	if s.direct == nil || s.direct.Name() != f.Name() {
		t.Fatalf("the O_DIRECT file is %v, want one named %s (a failed write's error shows it)", s.direct, f.Name())
	}
	data := randomBytes(t, 7*n)
	for off := 0; off < len(data); off += n {
		p := pool.get(int64(off), n)
		p.n = copy(p.buf, data[off:off+n])
		if err := s.put(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if written, err := s.close(); err != nil || written != int64(len(data)) {
		t.Fatalf("close = %d, %v", written, err)
	}
	if s.direct == nil {
		t.Error("an unaligned piece turned O_DIRECT off for good")
	}
	if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, data) {
		t.Error("file differs")
	}
}

func TestSinkReportsWriteError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pool := newPieces(4096)
	s := newSink(f, 0, pool, false, true)
	var putErr error
	deadline := time.Now().Add(10 * time.Second)
	for off := int64(0); putErr == nil && time.Now().Before(deadline); off += 4096 {
		p := pool.get(off, 4096)
		p.n = 4096
		putErr = s.put(context.Background(), p)
	}
	written, err := s.close()
	var pe *fs.PathError
	if !errors.As(err, &pe) || !errors.As(putErr, &pe) {
		t.Errorf("close error %v, put error %v: want the write's PathError from both", err, putErr)
	}
	if written != 0 {
		t.Errorf("written %d, want 0", written)
	}
}

func TestWindow(t *testing.T) {
	t.Parallel()
	w := newWindow(100, 50)
	ctx := context.Background()
	if err := w.wait(ctx, 150); err != nil {
		t.Fatal(err)
	}
	released := make(chan error, 1)
	go func() { released <- w.wait(ctx, 170) }()
	select {
	case err := <-released:
		t.Fatalf("wait past the window returned %v before the frontier moved", err)
	case <-time.After(50 * time.Millisecond):
	}
	w.advance(110)
	select {
	case err := <-released:
		t.Fatalf("wait(170) returned %v with the frontier at 110", err)
	case <-time.After(50 * time.Millisecond):
	}
	w.advance(120)
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { released <- w.wait(cctx, 1000) }()
	cancel()
	if err := <-released; !errors.Is(err, context.Canceled) {
		t.Errorf("wait after cancel = %v", err)
	}
}

func TestAlignedBuffer(t *testing.T) {
	t.Parallel()
	for i := 0; i < 20; i++ {
		b := alignedBuffer(pieceSize)
		if len(b) != pieceSize || cap(b) != pieceSize {
			t.Fatalf("len %d cap %d", len(b), cap(b))
		}
		if addr := uintptrOf(b); addr%directAlign != 0 {
			t.Fatalf("buffer at %#x is not %d-aligned", addr, directAlign)
		}
	}
}

// A piece the sink does not take (the call is being cancelled) must not
// count as valid: keep would then extend the file over bytes never written.
func TestEmitCountsOnlyWhatTheSinkTook(t *testing.T) {
	t.Parallel()
	pool := newPieces(4096)
	// A sink whose writer is busy: nothing receives from its queue.
	s := &sink{pool: pool, queue: make(chan *piece), done: make(chan struct{})}
	j := &job{pool: pool, out: s, h: sha256.New(), valid: 8192}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := pool.get(8192, 4096)
	p.n = 4096
	if err := j.emit(ctx, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("emit = %v, want the cancellation", err)
	}
	if j.valid != 8192 {
		t.Errorf("valid moved to %d for a piece the sink never took", j.valid)
	}
}

func TestSinkStartsWriteBackOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	for _, writeback := range []bool{true, false} {
		f, err := os.Create(filepath.Join(t.TempDir(), "f"))
		if err != nil {
			t.Fatal(err)
		}
		pool := newPieces(1 << 20)
		s := newSink(f, 0, pool, false, writeback)
		data := randomBytes(t, 3*writebackSpan)
		feed(t, s, pool, 0, data)
		if written, err := s.close(); err != nil || written != int64(len(data)) {
			t.Fatalf("close = %d, %v", written, err)
		}
		f.Close()
		if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, data) {
			t.Errorf("writeback=%v: the file differs", writeback)
		}
		if n := s.started.Load(); (n > 0) != writeback {
			t.Errorf("writeback=%v: %d write-back calls", writeback, n)
		}
	}
}
