package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/oci-client/liboci/transfer"
)

// maxMountSources bounds the mount requests one blob may cost.
const maxMountSources = 3

// uploader speaks the distribution upload protocol for one repository:
// HEAD (skip), POST with mount (link) or without (open a session), one
// streaming PATCH, and PUT ?digest= to commit. A single PATCH rather than
// a monolithic PUT because a PATCH that breaks can be continued: the
// session's GET tells how much the registry kept.
type uploader struct {
	c    *Client
	s    *session
	http *http.Client
}

func (u *uploader) blobsURL(repo name.Repository) string {
	return fmt.Sprintf("%s://%s/v2/%s/blobs/", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr())
}

func (u *uploader) push(ctx context.Context, j *pushJob) (PushedBlob, error) {
	res := PushedBlob{Digest: j.d.str, Size: j.Size}
	has, err := u.exists(ctx, j.d.str)
	if err != nil {
		return res, err
	}
	if has {
		j.prog.AddBytes(j.Size)
		res.How = PushedExists
		return res, nil
	}
	attempts := max(u.c.retry.Attempts, 1)
	var loc string
	var offset, counted int64 // what the registry holds; what progress shows
	for try := 1; ; try++ {
		if loc == "" {
			var from string
			if loc, from, err = u.start(ctx, j.d.str, j.mounts); err != nil {
				return res, err
			}
			if loc == "" {
				j.prog.AddBytes(j.Size - counted)
				res.How, res.MountedFrom = PushedMounted, from
				return res, nil
			}
			offset = 0
		}
		if offset < j.Size {
			var next string
			if next, err = u.send(ctx, j, loc, offset, &res.Sent, &counted); err == nil {
				loc = next
			}
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil || !retryableUpload(err) || try >= attempts {
			return res, err
		}
		kept, next, serr := u.status(ctx, loc)
		if serr != nil || kept > j.Size {
			loc, kept = "", 0 // start a new session
		} else {
			loc = next
		}
		j.prog.AddBytes(kept - counted)
		counted, offset = kept, kept
		if err := transfer.Sleep(ctx, u.c.retry.Backoff(try)); err != nil {
			return res, err
		}
	}
	if err := u.commit(ctx, loc, j.d.str); err != nil {
		return res, err
	}
	res.How = PushedUploaded
	return res, nil
}

// exists asks the repository whether it has the blob.
func (u *uploader) exists(ctx context.Context, digest string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u.blobsURL(u.s.repo)+digest, nil)
	if err != nil {
		return false, err
	}
	resp, err := u.http.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, transport.CheckError(resp, http.StatusOK, http.StatusNotFound)
}

// start opens an upload session, first offering the registry a mount from
// each candidate repository. It returns the session's URL, or "" and the
// source repository when a mount made the upload unnecessary.
func (u *uploader) start(ctx context.Context, digest string, sources []name.Repository) (loc, mountedFrom string, err error) {
	for i := 0; ; i++ {
		q := ""
		var from string
		if i < len(sources) {
			from = sources[i].RepositoryStr()
			q = "?" + url.Values{"mount": {digest}, "from": {from}}.Encode()
		}
		endpoint := u.blobsURL(u.s.repo) + "uploads/" + q
		resp, err := u.do(ctx, func() (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
		}, http.StatusAccepted, http.StatusCreated)
		if err != nil {
			return "", "", err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			return "", from, nil
		}
		next, err := location(resp)
		if err != nil {
			return "", "", err
		}
		if i+1 >= len(sources) {
			return next, "", nil
		}
		u.cancel(ctx, next) // not mounted from this one: try the next source
	}
}

// send streams the blob from offset to the session at loc and returns the
// session's next URL.
func (u *uploader) send(ctx context.Context, j *pushJob, loc string, offset int64, sent, counted *int64) (string, error) {
	var body io.Reader
	if j.Path != "" {
		f, err := os.Open(j.Path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		body = io.NewSectionReader(f, offset, j.Size-offset)
	} else {
		body = bytes.NewReader(j.Data[offset:])
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, loc, &countingReader{r: body, prog: j.prog, n: sent, counted: counted})
	if err != nil {
		return "", err
	}
	req.ContentLength = j.Size - offset
	req.Header.Set("Content-Type", "application/octet-stream")
	if offset > 0 {
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", offset, j.Size-1))
	}
	resp, err := u.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusAccepted, http.StatusNoContent, http.StatusCreated); err != nil {
		return "", err
	}
	if resp.Header.Get("Location") == "" {
		return loc, nil
	}
	return location(resp)
}

// status asks how much of the session's data the registry kept.
func (u *uploader) status(ctx context.Context, loc string) (kept int64, next string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := u.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusNoContent, http.StatusOK); err != nil {
		return 0, "", err
	}
	next = loc
	if resp.Header.Get("Location") != "" {
		if next, err = location(resp); err != nil {
			return 0, "", err
		}
	}
	// "0-N" holds N+1 bytes; distribution also says "0-0" for none, so that
	// is read as none (resending one byte costs nothing).
	start, end, ok := strings.Cut(resp.Header.Get("Range"), "-")
	if !ok || strings.TrimPrefix(start, "bytes=") != "0" {
		return 0, next, nil
	}
	n, err := strconv.ParseInt(end, 10, 64)
	if err != nil || n <= 0 {
		return 0, next, nil
	}
	return n + 1, next, nil
}

// commit closes the session with the blob's digest. A commit whose answer
// was lost and is retried finds no session: the blob is there if HEAD says so.
func (u *uploader) commit(ctx context.Context, loc, digest string) error {
	target, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := target.Query()
	q.Set("digest", digest)
	target.RawQuery = q.Encode()
	resp, err := u.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, target.String(), http.NoBody)
		if err == nil {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		return req, err
	}, http.StatusCreated, http.StatusNoContent, http.StatusAccepted)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			if has, herr := u.exists(ctx, digest); herr == nil && has {
				return nil
			}
		}
		return err
	}
	resp.Body.Close()
	return nil
}

// cancel ends a session that will not be used (best effort).
func (u *uploader) cancel(ctx context.Context, loc string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, loc, nil)
	if err != nil {
		return
	}
	if resp, err := u.http.Do(req); err == nil {
		resp.Body.Close()
	}
}

// do sends a request without a streamed body, retrying connection errors
// and retryable statuses within the client's policy.
func (u *uploader) do(ctx context.Context, mk func() (*http.Request, error), ok ...int) (*http.Response, error) {
	attempts := max(u.c.retry.Attempts, 1)
	for try := 1; ; try++ {
		req, err := mk()
		if err != nil {
			return nil, err
		}
		resp, err := u.http.Do(req)
		if err == nil {
			err = transport.CheckError(resp, ok...)
			if err == nil {
				return resp, nil
			}
		}
		if ctx.Err() != nil || !retryableUpload(err) || try >= attempts {
			return nil, err
		}
		if err := transfer.Sleep(ctx, u.c.retry.Backoff(try)); err != nil {
			return nil, err
		}
	}
}

// location is the absolute URL an upload answer points to next.
func location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%s %s: the registry answered %d without a Location", resp.Request.Method, resp.Request.URL.Redacted(), resp.StatusCode)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("upload location %q: %w", loc, err)
	}
	return u.String(), nil
}

func retryableUpload(err error) bool {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return false // the local file, not the network
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return transfer.RetryStatus(te.StatusCode)
	}
	return transfer.Transient(err) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// countingReader reports the bytes an upload reads to its progress.
type countingReader struct {
	r       io.Reader
	prog    *transfer.Progress
	n       *int64
	counted *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.prog.AddBytes(int64(n))
		*c.n += int64(n)
		*c.counted += int64(n)
	}
	return n, err
}
