package mirrors

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/oci-client/liboci/internal/errtext"
	"github.com/oci-client/liboci/internal/lru"
	"github.com/oci-client/liboci/internal/redact"
	"github.com/oci-client/liboci/netconf"
)

// Wrap puts what every request needs (request logs; for the origin also
// retries) over a host's bare transport.
type Wrap func(rt http.RoundTripper, mirror bool) http.RoundTripper

// Transport sends a pull's requests for one registry (the origin) to its
// mirrors first. It sits under the origin's auth transport: the origin's
// Authorization never reaches a mirror, which gets credentials only where
// they are configured for its own host. Requests of contexts that Begin
// did not mark (pushes, token fetches, other hosts) go to next as they are.
type Transport struct {
	origin string
	next   http.RoundTripper
	wrap   Wrap
}

// NewTransport routes origin's requests; next reaches the origin itself.
func NewTransport(origin string, next http.RoundTripper, wrap Wrap) http.RoundTripper {
	return &Transport{origin: origin, next: next, wrap: wrap}
}

// maxManifest bounds a manifest read whole to check its digest.
const maxManifest = 64 << 20

func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	p, c := pullFrom(ctx), callFrom(ctx)
	if p == nil || c == nil || !strings.EqualFold(req.URL.Host, t.origin) {
		return t.next.RoundTrip(req)
	}
	repo, kind, ref, ok := splitPath(req.URL.Path)
	if !ok {
		repo = ""
	}
	cfg := c.config(ctx, p.settings, t.origin, repo)
	origin := t.next
	if !cfg.OriginTLS.Empty() {
		base, err := netconf.HostTransport(p.settings.Net, cfg.OriginTLS)
		if err != nil {
			return nil, err
		}
		origin = t.wrap(base, false)
	}
	if !ok || p.origin || (req.Method != http.MethodGet && req.Method != http.MethodHead) || len(cfg.Mirrors) == 0 {
		return origin.RoundTrip(req)
	}
	tag := kind == "manifests" && !strings.Contains(ref, ":")
	for _, h := range cfg.Mirrors {
		if !eligible(h, tag, p.pinned) || c.isFailed(h) {
			continue
		}
		if resp := t.try(ctx, c, p, h, req, repo, kind, ref); resp != nil {
			return resp, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return origin.RoundTrip(req)
}

// eligible says whether h may serve a request: a tag only where it may
// resolve, anything else where it may pull; tag-only mirrors never for a
// digest-pinned pull.
func eligible(h Host, tag, pinned bool) bool {
	if h.TagOnly && pinned {
		return false
	}
	if tag {
		return h.Pull && h.Resolve
	}
	return h.Pull
}

// splitPath takes "/v2/<repo>/manifests/<ref>" or ".../blobs/<digest>" apart.
func splitPath(p string) (repo, kind, ref string, ok bool) {
	rest, found := strings.CutPrefix(p, "/v2/")
	if !found {
		return "", "", "", false
	}
	for _, k := range []string{"manifests", "blobs"} {
		if i := strings.LastIndex(rest, "/"+k+"/"); i > 0 {
			repo, ref = rest[:i], rest[i+len(k)+2:]
			if ref == "" || strings.Contains(ref, "/") || (k == "blobs" && !strings.Contains(ref, ":")) {
				return "", "", "", false
			}
			return repo, k, ref, true
		}
	}
	return "", "", "", false
}

// try asks h; nil means it did not serve (and why is recorded).
func (t *Transport) try(ctx context.Context, c *call, p *pull, h Host, req *http.Request, repo, kind, ref string) *http.Response {
	reg := Name(t.origin)
	if c.speaksHTTP(h) {
		h.Scheme = "http"
	}
	resp, err := t.send(ctx, c, p, h, req, repo, kind, ref, false)
	if err != nil && h.Insecure && h.Scheme == "https" && plainHTTP(err) {
		c.mu.Lock()
		c.http[h.Key()] = true
		c.mu.Unlock()
		h.Scheme = "http"
		resp, err = t.send(ctx, c, p, h, req, repo, kind, ref, false)
	}
	if err == nil && resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(strings.ToLower(resp.Header.Get("WWW-Authenticate")), "bearer") {
		// Anonymous pulls with a token (Harbor's public projects).
		discard(resp)
		resp, err = t.send(ctx, c, p, h, req, repo, kind, ref, true)
	}
	if err != nil {
		if ctx.Err() == nil {
			c.fail(ctx, h, reg, reason(err), true)
		}
		return nil
	}
	switch code := resp.StatusCode; {
	case code == http.StatusOK || code == http.StatusPartialContent:
	case code >= 300 && code < 400 && resp.Header.Get("Location") != "":
		// Where it sends us (its storage) is its business; the bytes are checked all the same.
		if loc, err := resp.Location(); err == nil {
			resp.Header.Set("Location", loc.String())
		}
		if kind == "blobs" {
			c.servedBy(ref, h)
		}
		resp.Request = req
		return resp
	default:
		discard(resp)
		skip := code >= 500 || code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusTooManyRequests
		c.fail(ctx, h, reg, resp.Status, skip)
		return nil
	}
	if kind == "manifests" && strings.Contains(ref, ":") && req.Method == http.MethodGet {
		body, err := checkManifest(resp, ref)
		if err != nil {
			if ctx.Err() == nil {
				c.fail(ctx, h, reg, err.Error(), true)
			}
			return nil
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	if kind == "blobs" {
		c.servedBy(ref, h)
		resp.Body = &watchedBody{ReadCloser: resp.Body, ctx: ctx, c: c, h: h, reg: reg}
	}
	c.used(ctx, h, reg)
	// The caller asked the origin; that it got the answer elsewhere is no
	// redirect for it to learn.
	resp.Request = req
	return resp
}

// send makes req into a request to h and sends it through h's transport.
func (t *Transport) send(ctx context.Context, c *call, p *pull, h Host, req *http.Request, repo, kind, ref string, anonToken bool) (*http.Response, error) {
	rt, err := t.hostTransport(ctx, c, p, h, repo, anonToken)
	if err != nil {
		return nil, err
	}
	m := req.Clone(ctx)
	m.URL = h.URL(repo, kind+"/"+ref, Name(t.origin))
	m.Host = ""
	m.Header.Del("Authorization")
	for k, vs := range h.Header {
		for _, v := range vs {
			m.Header.Add(k, v)
		}
	}
	return rt.RoundTrip(m)
}

// mirrorTransports keeps the authenticated transports of mirrors with
// credentials of their own (each pinged its host once).
var mirrorTransports = lru.New[string, http.RoundTripper](64, nil)

// hostTransport reaches h: its TLS, request logs, and its own credentials
// where the user has some for its host (or an anonymous token where it
// asked for one).
func (t *Transport) hostTransport(ctx context.Context, c *call, p *pull, h Host, repo string, anonToken bool) (http.RoundTripper, error) {
	base, err := netconf.HostTransport(p.settings.Net, h.TLS)
	if err != nil {
		return nil, err
	}
	rt := t.wrap(base, true)
	cred, err := c.cred(ctx, p.settings.Env, h.Host, h.Repo(repo))
	if err != nil {
		return nil, err
	}
	if cred.Anonymous() && !anonToken {
		return rt, nil
	}
	redact.Add(ctx, cred.Secrets()...)
	redact.AddBasic(ctx, cred.Username, cred.Password)
	opts := []name.Option{}
	if h.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(h.Host, opts...)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%p\x00%s\x00%s\x00%s\x00%s", base, h.Scheme, h.Host, h.Repo(repo), cred.Fingerprint())
	if rt, ok := mirrorTransports.Get(key); ok {
		return rt, nil
	}
	var a authn.Authenticator = authn.Anonymous
	if !cred.Anonymous() {
		a = cred.Authenticator()
	}
	scope := reg.Repo(h.Repo(repo)).Scope(transport.PullScope)
	art, err := transport.NewWithContext(ctx, reg, a, rt, []string{scope})
	if err != nil {
		return nil, err
	}
	return mirrorTransports.Add(key, art), nil
}

func (c *call) speaksHTTP(h Host) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.http[h.Key()]
}

// checkManifest reads a manifest asked for by digest and checks it.
func checkManifest(resp *http.Response, digest string) ([]byte, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	if len(body) > maxManifest {
		return nil, fmt.Errorf("manifest larger than %d bytes", maxManifest)
	}
	alg, want, _ := strings.Cut(digest, ":")
	var h hash.Hash
	switch alg {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return nil, fmt.Errorf("cannot check digest %s", digest)
	}
	h.Write(body)
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return nil, fmt.Errorf("manifest has digest %s:%s, want %s", alg, got, digest)
	}
	return body, nil
}

// plainHTTP says a TLS handshake met a server speaking plain HTTP.
func plainHTTP(err error) bool {
	var rec tls.RecordHeaderError
	return errtext.Of(err) == errtext.PlainHTTPAnswer || errors.As(err, &rec)
}

func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func reason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

// watchedBody skips its mirror for the rest of the call when the stream
// breaks: the download resumes from the next host, keeping what it has.
type watchedBody struct {
	io.ReadCloser
	ctx context.Context
	c   *call
	h   Host
	reg string
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && b.ctx.Err() == nil {
		b.c.fail(b.ctx, b.h, b.reg, "stream broke: "+err.Error(), true)
	}
	return n, err
}
