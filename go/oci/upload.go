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
	"strconv"
	"strings"
	"time"

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
	c        *Client
	s        *session
	http     *http.Client
	sessions UploadSessions // nil: unfinished uploads are not remembered
	mounts   mountPlanner
}

func (u *uploader) blobsURL(repo name.Repository) string {
	return fmt.Sprintf("%s://%s/v2/%s/blobs/", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr())
}

// push sends one blob whose digest is known, or learnt first by hashing.
func (u *uploader) push(ctx context.Context, j *pushJob) error {
	up := u
	if j.d.str == "" {
		if err := u.learn(ctx, j); err != nil {
			return err
		}
		if len(j.mounts) > 0 && !j.exists {
			// Sources learnt only now: the session's token does not name
			// them (those of known digests it does, see PushBlobs).
			var err error
			if up, err = u.scopedFor(ctx, j); err != nil {
				return err
			}
		}
	}
	if j.exists {
		u.skipped(j, PushedExists, "")
		return nil
	}
	return up.upload(ctx, j, "", 0, nil)
}

// pushHashing uploads a file blob while another reader hashes it ahead of
// the upload (see PushBlobs). Once the digest is known, a blob the
// registry has, or can mount, stops the upload; otherwise the session is
// remembered and the upload goes on to its commit.
func (u *uploader) pushHashing(ctx context.Context, j *pushJob) error {
	loc, _, err := u.open(ctx, "", nil, true)
	if err != nil {
		return err
	}
	sendCtx, stop := context.WithCancel(ctx)
	defer stop()
	type sent struct {
		next string
		err  error
	}
	done := make(chan sent, 1)
	go func() {
		next, err := u.send(sendCtx, j, loc, 0)
		done <- sent{next, err}
	}()
	abandon := func() {
		stop()
		<-done
		// Also after Ctrl-C: the session is of no use without its digest.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		u.cancel(cctx, loc)
	}
	if err := u.learn(ctx, j); err != nil {
		abandon()
		return err
	}
	if j.exists {
		abandon()
		u.skipped(j, PushedExists, "")
		return nil
	}
	if len(j.mounts) > 0 {
		scoped, err := u.scopedFor(ctx, j)
		if err != nil {
			abandon()
			return err
		}
		if _, from, err := scoped.open(ctx, j.d.str, j.mounts, false); err == nil && from != "" {
			abandon()
			u.skipped(j, PushedMounted, from)
			return nil
		}
	}
	u.save(j, loc)
	r := <-done
	if r.err != nil {
		return u.upload(ctx, j, loc, 0, r.err)
	}
	return u.upload(ctx, j, r.next, j.Size, nil)
}

// learn hashes j's file, then asks whether the repository has the blob and
// which repositories may hold it.
func (u *uploader) learn(ctx context.Context, j *pushJob) error {
	digest, err := j.Hash(ctx)
	if err != nil {
		return err
	}
	if j.d, err = parseDigest(digest); err != nil {
		return err
	}
	if j.exists, err = u.exists(ctx, digest); err != nil {
		return err
	}
	j.mounts = u.mounts.sources(j)
	return nil
}

// scopedFor is an uploader whose token may also pull from j's mount
// sources (a registry refuses a mount from a repository outside the token).
func (u *uploader) scopedFor(ctx context.Context, j *pushJob) (*uploader, error) {
	s, err := u.c.openPush(ctx, u.s.repo, j.mounts)
	if err != nil {
		return nil, err
	}
	return &uploader{c: u.c, s: s, http: &http.Client{Transport: s.rt}, sessions: u.sessions, mounts: u.mounts}, nil
}

// skipped settles a blob that was not sent (how: exists or mounted).
func (u *uploader) skipped(j *pushJob, how, from string) {
	j.prog.AddBytes(j.Size - j.counted)
	j.counted = j.Size
	j.result.How, j.result.MountedFrom = how, from
	u.forget(j)
}

// upload brings j's blob to the registry and commits it: from loc at
// offset when given (with the error its send ended in, if it did), else
// from an unfinished upload of an earlier call, else from a mount or a new
// session. A send that breaks resumes where the registry says it stopped.
func (u *uploader) upload(ctx context.Context, j *pushJob, loc string, offset int64, err error) error {
	if loc == "" {
		loc, offset = u.continued(ctx, j)
	}
	attempts := max(u.c.retry.Attempts, 1)
	for try := 1; ; try++ {
		if err == nil {
			if loc == "" {
				var from string
				if loc, from, err = u.open(ctx, j.d.str, j.mounts, true); err != nil {
					return err
				}
				if loc == "" {
					u.skipped(j, PushedMounted, from)
					return nil
				}
				offset = 0
				u.save(j, loc)
			}
			if offset < j.Size {
				var next string
				if next, err = u.send(ctx, j, loc, offset); err == nil {
					loc, offset = next, j.Size
				}
			}
			if err == nil {
				break
			}
		}
		if ctx.Err() != nil || !retryableUpload(err) || try >= attempts {
			return err
		}
		kept, next, serr := u.status(ctx, loc)
		if serr != nil || kept > j.Size {
			loc, kept = "", 0 // start a new session
		} else {
			loc = next
			u.save(j, loc)
		}
		j.prog.AddBytes(kept - j.counted)
		j.counted, offset = kept, kept
		err = nil
		if err := transfer.Sleep(ctx, u.c.retry.Backoff(try)); err != nil {
			return err
		}
	}
	if err := u.commit(ctx, loc, j.d.str); err != nil {
		return err
	}
	u.forget(j)
	j.result.How = PushedUploaded
	return nil
}

// continued finds the session an earlier call left for j's blob and asks
// the registry how much of it it kept; "" when there is none to continue.
func (u *uploader) continued(ctx context.Context, j *pushJob) (string, int64) {
	if u.sessions == nil {
		return "", 0
	}
	saved := u.sessions.Load(u.s.repo.Name(), j.d.str)
	if saved == "" {
		return "", 0
	}
	kept, next, err := u.status(ctx, saved)
	if err != nil || kept > j.Size {
		u.forget(j) // expired, purged, or not ours: start over
		return "", 0
	}
	u.save(j, next)
	j.prog.AddBytes(kept - j.counted)
	j.counted = kept
	j.result.ContinuedAt = kept
	return next, kept
}

func (u *uploader) save(j *pushJob, loc string) {
	if u.sessions != nil {
		u.sessions.Save(u.s.repo.Name(), j.d.str, loc)
	}
}

func (u *uploader) forget(j *pushJob) {
	if u.sessions != nil && j.d.str != "" {
		u.sessions.Forget(u.s.repo.Name(), j.d.str)
	}
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

// open offers the registry a mount of digest from each source in turn; it
// returns "" and the source when one was mounted. Otherwise, with session,
// it returns the URL of an upload session (the last declined mount's, which
// the registry opens anyway, or a new one); without, it closes them all.
func (u *uploader) open(ctx context.Context, digest string, sources []name.Repository, session bool) (loc, mountedFrom string, err error) {
	for i := 0; i < len(sources) || (session && i == 0); i++ {
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
		if session && i+1 >= len(sources) {
			return next, "", nil
		}
		u.cancel(ctx, next) // not mounted from this one: try the next source
	}
	return "", "", nil
}

// send streams the blob from offset to the session at loc and returns the
// session's next URL.
func (u *uploader) send(ctx context.Context, j *pushJob, loc string, offset int64) (string, error) {
	report := func(n int64) {
		j.prog.AddBytes(n)
		j.result.Sent += n
		j.counted += n
	}
	var body io.Reader
	sent := int64(-1) // unknown until the registry answers
	if j.Path != "" {
		fb, err := openFileBody(j.Path, offset, report)
		if err != nil {
			return "", err
		}
		defer func() { fb.finish(sent) }()
		body = fb.reader()
	} else {
		body = &reportingReader{r: bytes.NewReader(j.Data[offset:]), report: report}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, loc, body)
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
	sent = req.ContentLength
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

// reportingReader reports the bytes an upload reads from memory.
type reportingReader struct {
	r      io.Reader
	report func(int64)
}

func (c *reportingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.report(int64(n))
	}
	return n, err
}
