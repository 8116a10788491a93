package extract

import (
	"context"
	"io"
)

// source records the errors of the caller's reader, so that they are
// reported as what they are and not as a corrupt archive.
type source struct {
	r   io.Reader
	err error
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// guard sits between the decompressor and archive/tar. It stops the stream
// once ctx is done or the ratio budget is spent, also inside tar.Reader.Next,
// which reads through the data of entries that were skipped without coming
// back to Extract.
type guard struct {
	ctx    context.Context
	r      io.Reader
	n      int64 // decompressed bytes so far
	budget int64
	lim    Limits // for the message
	entry  string // the entry being read, for the message
	stop   error  // why the stream was stopped, once it is
	zeros  int    // trailing zero bytes delivered, up to a block
}

func (g *guard) Read(p []byte) (int, error) {
	if g.stop != nil {
		return 0, g.stop
	}
	if err := g.ctx.Err(); err != nil {
		g.stop = err
		return 0, err
	}
	n, err := g.r.Read(p)
	if g.n += int64(n); g.n > g.budget {
		g.stop = ratioError(g.entry, g.budget, g.lim)
		return 0, g.stop
	}
	g.track(p[:n])
	return n, err
}

// blockSize is the tar block; an archive ends with at least one of zeros.
const blockSize = 512

// track keeps count of the zero bytes the stream ends with so far, looking
// at no more than a block of each read.
func (g *guard) track(b []byte) {
	if len(b) >= blockSize {
		b, g.zeros = b[len(b)-blockSize:], 0
	}
	i := len(b) - 1
	for i >= 0 && b[i] == 0 {
		i--
	}
	if i >= 0 {
		g.zeros = len(b) - 1 - i
	} else {
		g.zeros = min(g.zeros+len(b), blockSize)
	}
}

// ended reports whether the stream read so far ends in an end-of-archive
// block, which archive/tar does not insist on: without it, a stream cut
// between two entries, or an empty one, reads as a shorter archive.
func (g *guard) ended() bool { return g.zeros >= blockSize }

func ratioError(entry string, budget int64, lim Limits) *UnsafeError {
	return unsafe(entry, "archive unpacks to more than %d bytes (%d x %d compressed bytes + 64 MiB)",
		budget, lim.MaxRatio, lim.CompressedSize)
}
