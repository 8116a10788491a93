package extract

import (
	"compress/gzip"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Compression of the tar stream.
type Compression string

// The compressions Extract reads.
const (
	None Compression = ""
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// A zstd frame header names the window the decoder must allocate; these
// bound what a hostile one can make it take. 512 MiB covers every level
// and zstd --long up to 29.
const (
	zstdMaxWindow = 512 << 20
	zstdMaxMemory = 1 << 30
)

// decompressor returns the tar stream inside r and what releases the
// decoder.
func decompressor(r io.Reader, c Compression) (io.Reader, func(), error) {
	switch c {
	case None:
		return r, func() {}, nil
	case Gzip:
		g := &gzipStream{src: r}
		return g, g.close, nil
	case Zstd:
		// One goroutine per layer: layers are already unpacked side by
		// side, and a synchronous decoder starts none of its own.
		zr, err := zstd.NewReader(r,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderMaxMemory(zstdMaxMemory))
		if err != nil {
			return nil, nil, fmt.Errorf("starting zstd decoder: %w", err)
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown compression %q", string(c))
}

// gzipStream reads the first gzip header on the first Read, so that a bad
// one reaches archive/tar like any other damage to the stream. Members
// that follow are read too (gzip.Reader is multistream by default).
type gzipStream struct {
	src io.Reader
	zr  *gzip.Reader
	err error
}

func (g *gzipStream) Read(p []byte) (int, error) {
	if g.zr == nil {
		if g.err != nil {
			return 0, g.err
		}
		zr, err := gzip.NewReader(g.src)
		if err != nil {
			g.err = err
			return 0, err
		}
		g.zr = zr
	}
	return g.zr.Read(p)
}

func (g *gzipStream) close() {
	if g.zr != nil {
		g.zr.Close()
	}
}
