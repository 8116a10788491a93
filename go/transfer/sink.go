package transfer

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"
)

// directAlign is the offset, length and memory alignment O_DIRECT needs:
// 4096 covers both 512-byte and 4 KiB logical block sizes.
const directAlign = 4096

// pieceSize is the unit data moves in between the network, the hash and
// the disk. Each O_DIRECT write waits for the device, so larger writes
// cost less CPU and idle time per byte: on this project's 2-vCPU test VM
// a 2 GiB model pulled in 3.1 s with 1 MiB pieces, 2.7 s with 2 MiB and
// 2.5 s with 4 MiB. A stream holds two pieces at once.
const pieceSize = 4 << 20

// sinkDepth is how many hashed pieces may wait while the writer is busy.
// None: the hand-off itself lets the next piece be received while this
// one is written, and a queue measured no faster, only bigger.
const sinkDepth = 0

// piece is one buffer of blob data destined for [off, off+n).
type piece struct {
	off int64
	buf []byte
	n   int
}

func (p *piece) data() []byte { return p.buf[:p.n] }
func (p *piece) full() bool   { return p.n == len(p.buf) }

// pieces recycles aligned buffers of one download. What bounds their
// number is the caller (the stream's pipeline, the chunk window), not the
// pool, so get never waits.
type pieces struct {
	size int
	mu   sync.Mutex
	free [][]byte
}

func newPieces(size int) *pieces { return &pieces{size: size} }

// get returns an empty piece at off holding at most n bytes.
func (ps *pieces) get(off int64, n int64) *piece {
	ps.mu.Lock()
	var b []byte
	if k := len(ps.free); k > 0 {
		b, ps.free = ps.free[k-1], ps.free[:k-1]
	}
	ps.mu.Unlock()
	if b == nil {
		b = alignedBuffer(ps.size)
	}
	return &piece{off: off, buf: b[:min(int64(ps.size), n)]}
}

func (ps *pieces) put(p *piece) {
	ps.mu.Lock()
	ps.free = append(ps.free, p.buf[:cap(p.buf)])
	ps.mu.Unlock()
}

func alignedBuffer(n int) []byte {
	raw := make([]byte, n+directAlign)
	skip := (directAlign - int(uintptrOf(raw)%directAlign)) % directAlign
	return raw[skip : skip+n : skip+n]
}

// sink writes hashed pieces, strictly in order, on its own goroutine, so
// receiving and hashing the next piece overlaps the disk write of the last.
// Aligned pieces go through O_DIRECT when the file system allows it; the
// rest (a blob's unaligned tail, or everything when it does not) goes
// through the page cache with write-back started as it lands.
type sink struct {
	f       *os.File // the locked partial file
	direct  *os.File // the same file opened O_DIRECT, or nil
	pool    *pieces
	queue   chan *piece
	done    chan struct{}
	off     int64                 // next offset to write; the writer goroutine's, read after done closes
	flushed int64                 // where buffered write-back was last asked for
	kick    chan int64            // write-back wanted up to this offset (cap 1); nil: none
	kicked  chan struct{}         // closed when the write-back goroutine ends
	started atomic.Int64          // write-back calls made
	failed  atomic.Pointer[error] // the first write error
}

// bufferedWrite is the largest write through the page cache. One 4 MiB
// write makes the kernel allocate large folios for it, which on some VMs
// (memory the host reclaims) fill at half the speed of small ones: a 2 GiB
// pull took 5.1 s instead of 3.0 s.
const bufferedWrite = 256 << 10

// newSink starts writing at off. useDirect asks for O_DIRECT, which is
// used only when off and the piece size are aligned. writeback starts the
// kernel's write-back of buffered data as it lands, for a caller that
// fsyncs at the end; without it the data waits in the page cache for the
// kernel's own write-back (or the caller's later fsync), as any program's
// writes do.
func newSink(f *os.File, off int64, pool *pieces, useDirect, writeback bool) *sink {
	s := &sink{
		f: f, pool: pool, queue: make(chan *piece, sinkDepth), done: make(chan struct{}), off: off, flushed: off,
	}
	if useDirect && off%directAlign == 0 && pool.size%directAlign == 0 {
		s.direct = openDirect(f)
	}
	go s.run()
	if writeback {
		s.kick, s.kicked = make(chan int64, 1), make(chan struct{})
		go s.writeback(off)
	}
	return s
}

// writeback starts the kernel's write-back of what the writer has put in
// the page cache, on a goroutine of its own: sync_file_range does the
// write-back's work in the caller (ext4 allocates the blocks then, reading
// block bitmaps from the disk; the block layer throttles the submitter),
// and a writer that did it itself stalled every stream behind it for up to
// a second on a 300 MB/s disk. Offsets that arrive while one call runs
// are folded into the next.
func (s *sink) writeback(from int64) {
	defer close(s.kicked)
	for end := range s.kick {
		startWriteback(s.f, from, end-from)
		s.started.Add(1)
		from = end
	}
}

func (s *sink) run() {
	defer close(s.done)
	for p := range s.queue {
		if s.failed.Load() == nil {
			if p.off != s.off {
				panic("transfer: sink got a piece out of order")
			}
			if err := s.write(p.data(), p.off); err != nil {
				s.failed.Store(&err)
			} else {
				s.off += int64(p.n)
			}
		}
		s.pool.put(p)
	}
	if s.kick != nil {
		close(s.kick)
		<-s.kicked
	}
	if s.direct != nil {
		s.direct.Close()
	}
}

func (s *sink) write(b []byte, off int64) error {
	// A piece at an unaligned offset (after a chunk size that is not a
	// multiple of 4 KiB) goes buffered, like a tail; O_DIRECT resumes
	// with the next aligned one.
	if s.direct != nil && off%directAlign == 0 {
		if a := len(b) &^ (directAlign - 1); a > 0 {
			switch _, err := s.direct.WriteAt(b[:a], off); {
			case err == nil:
				b, off = b[a:], off+int64(a)
			case directRefused(err):
				s.direct.Close()
				s.direct = nil
			default:
				return err
			}
		}
	}
	if len(b) == 0 {
		return nil
	}
	for rest, at := b, off; len(rest) > 0; {
		n := min(len(rest), bufferedWrite)
		if _, err := s.f.WriteAt(rest[:n], at); err != nil {
			return err
		}
		rest, at = rest[n:], at+int64(n)
	}
	if end := off + int64(len(b)); s.kick != nil && end-s.flushed >= writebackSpan {
		select {
		case s.kick <- end:
		case <-s.kick: // still busy with an earlier one: this end covers both
			s.kick <- end
		}
		s.flushed = end
	}
	return nil
}

// put queues a hashed piece; it fails once a write has failed (the disk
// error, which no retry will fix) or ctx ends.
func (s *sink) put(ctx context.Context, p *piece) error {
	if e := s.failed.Load(); e != nil {
		s.pool.put(p)
		return *e
	}
	select {
	case s.queue <- p:
		return nil
	case <-ctx.Done():
		s.pool.put(p)
		return context.Cause(ctx)
	}
}

// close waits for every queued piece and returns how far the file is
// written, and the write error if there was one.
func (s *sink) close() (int64, error) {
	close(s.queue)
	<-s.done
	if e := s.failed.Load(); e != nil {
		return s.off, *e
	}
	return s.off, nil
}

// writebackSpan is how much buffered data accumulates before write-back
// is started.
const writebackSpan = 16 << 20

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
