package oci

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// copyBufferSize trades a little memory for fewer syscalls on multi-GB blobs.
const copyBufferSize = 1 << 20

// BlobOptions refine PullBlob.
type BlobOptions struct {
	// Size is the expected size from the descriptor; <= 0 means unknown.
	// When known, a longer or shorter body fails before the digest check.
	Size int64
}

// Blob describes a verified blob written to Path.
type Blob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Path   string `json:"path"`
}

// PullBlob streams the blob with digest from ref's repository to dest,
// hashing as it writes. The data goes to a temporary file beside dest that
// is renamed over dest only after size and digest check out, so dest is
// either the old file or the complete, verified blob, never anything else.
func (c *Client) PullBlob(ctx context.Context, ref, digest, dest string, opts BlobOptions) (*Blob, error) {
	r, err := c.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	d, err := parseDigest(digest)
	if err != nil {
		return nil, err
	}
	dest, err = checkDestination(dest)
	if err != nil {
		return nil, err
	}
	s, err := c.open(ctx, r.Context())
	if err != nil {
		return nil, AsError(err)
	}
	n, err := s.download(ctx, d, dest, opts.Size)
	if err != nil {
		return nil, AsError(fmt.Errorf("pulling blob %s from %s: %w", d.str, r.Context(), err))
	}
	return &Blob{Digest: d.str, Size: n, Path: dest}, nil
}

func checkDestination(dest string) (string, error) {
	if dest == "" {
		return "", newError(CodeInvalidArgument, "destination path is empty")
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return "", &Error{Code: CodeInvalidArgument, Err: fmt.Errorf("destination %q: %w", dest, err)}
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return "", newError(CodeInvalidArgument, "destination %q is a directory", dest)
	}
	return abs, nil
}

func (s *session) blobURL(d blobDigest) string {
	return fmt.Sprintf("%s://%s/v2/%s/blobs/%s", s.repo.Scheme(), s.repo.RegistryStr(), s.repo.RepositoryStr(), d.str)
}

func (s *session) download(ctx context.Context, d blobDigest, dest string, size int64) (n int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.blobURL(d), nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: s.rt}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return 0, err
	}
	if size > 0 && resp.ContentLength >= 0 && resp.ContentLength != size {
		return 0, &Error{Code: CodeDigestMismatch, Err: fmt.Errorf("registry announced %d bytes, descriptor says %d", resp.ContentLength, size)}
	}

	// Only now that the registry is sending the blob is anything created.
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.incomplete")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	h := d.newHash()
	body := io.Reader(resp.Body)
	if size > 0 {
		// One byte past the expected size is enough to know it is too long.
		body = io.LimitReader(body, size+1)
	}
	n, err = io.CopyBuffer(io.MultiWriter(tmp, h), body, make([]byte, copyBufferSize))
	if err != nil {
		return n, err
	}
	if size > 0 && n != size {
		return n, &Error{Code: CodeDigestMismatch, Err: fmt.Errorf("received %d bytes, descriptor says %d", n, size)}
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, &Error{Code: CodeNetwork, Err: fmt.Errorf("received %d of %d bytes: %w", n, resp.ContentLength, io.ErrUnexpectedEOF)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.hex {
		return n, &Error{Code: CodeDigestMismatch, Err: fmt.Errorf("content has digest %s:%s", d.algo, got)}
	}
	return n, finish(tmp, dest)
}

// finish makes the verified temporary file the destination, durably: data
// synced before the rename, the directory synced after it.
func finish(tmp *os.File, dest string) error {
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		var le *os.LinkError
		if errors.As(err, &le) {
			return &fs.PathError{Op: "rename", Path: dest, Err: le.Err}
		}
		return err
	}
	if dir, err := os.Open(filepath.Dir(dest)); err == nil {
		_ = dir.Sync() // best effort: some file systems refuse directory fsync
		dir.Close()
	}
	return nil
}
