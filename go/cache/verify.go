package cache

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"io"
	"os"
)

func newHash(alg string) hash.Hash {
	if alg == "sha512" {
		return sha512.New()
	}
	return sha256.New()
}

// Matches says whether data has digest d.
func Matches(d string, data []byte) bool {
	alg, want, err := SplitDigest(d)
	if err != nil {
		return false
	}
	h := newHash(alg)
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil)) == want
}

// ctxReader stops a long read when ctx ends, and tells read (if set) of
// every chunk it reads.
type ctxReader struct {
	ctx  context.Context
	r    io.Reader
	read func(int64)
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if c.read != nil && n > 0 {
		c.read(int64(n))
	}
	return n, err
}

// FileMatches re-hashes the file at path against digest d.
func FileMatches(ctx context.Context, path, d string) (bool, error) {
	ok, _, err := hashFile(ctx, path, d, nil)
	return ok, err
}

// hashFile re-hashes the file at path against digest d, counting the bytes
// (and telling read, if set, of each chunk).
func hashFile(ctx context.Context, path, d string, read func(int64)) (bool, int64, error) {
	alg, want, err := SplitDigest(d)
	if err != nil {
		return false, 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	h := newHash(alg)
	n, err := io.CopyBuffer(h, ctxReader{ctx, f, read}, make([]byte, 1<<20))
	if err != nil {
		return false, n, err
	}
	return hex.EncodeToString(h.Sum(nil)) == want, n, nil
}
