package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/oci-client/liboci/internal/envmap"
	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/internal/lru"
	"github.com/oci-client/liboci/mirrors"
	"github.com/oci-client/liboci/netconf"
	"github.com/opencontainers/go-digest"
)

// A pull-through cache reaches its upstream through the mirrors the
// machine's configuration names for it (hosts.toml, registries.conf,
// OCI_CLIENT_MIRRORS), as every oci-client pull does. distribution's proxy
// has no option for a transport of its own: it sends every upstream request
// through http.DefaultTransport, which the first cache started in a process
// replaces with upstreams. Requests to hosts that are no cache's upstream
// pass through unchanged.

// mirrorWindow is how long what the cache learns of a mirror (that it
// failed) and the configuration it read hold before both are renewed.
const mirrorWindow = 30 * time.Second

var (
	upstreams   = &router{by: map[string]*upstream{}}
	installOnce sync.Once
)

// router sends each upstream's requests to its own routing.
type router struct {
	base http.RoundTripper // what http.DefaultTransport was

	mu sync.Mutex
	by map[string]*upstream // by upstream host[:port], lower case

	// moved maps where an upstream (or a mirror) redirected a blob
	// request to the blob, so that the redirected answer is checked too.
	moved *lru.Cache[string, movedBlob]
}

type movedBlob struct {
	ctx    context.Context
	digest digest.Digest
}

// upstream is one cache's upstream registry.
type upstream struct {
	host     string
	settings mirrors.Settings
	window   *mirrors.Window
	routed   http.RoundTripper
	log      *slog.Logger
}

// upstreamKey marks the contexts of one cache's requests with its
// upstream (Start makes it the base of every request the cache serves, and
// distribution's client passes the request's context on): caches of one
// upstream with different mirrors can share a process, as in tests.
type upstreamKey struct{}

// addUpstream routes the requests for host of a cache started with c.
func addUpstream(c Config) (*upstream, error) {
	u, err := url.Parse(c.ProxyURL)
	if err != nil {
		return nil, fmt.Errorf("bad proxy URL")
	}
	env := c.Env
	if env == nil {
		env = envmap.FromList(os.Environ())
	}
	s := mirrors.Settings{Env: env, Mirrors: c.Mirrors, CertsDirs: c.CertsDirs, Net: netconf.Config{Env: env}}
	// A configuration that cannot be read is said now; the cache still
	// starts (the origin serves) as a pull does, and says it again per window.
	installOnce.Do(func() {
		upstreams.base = http.DefaultTransport
		upstreams.moved = lru.New[string, movedBlob](256, nil)
		http.DefaultTransport = upstreams
	})
	log := slog.New(logrusHandler{})
	if cfg, err := mirrors.Resolve(s, u.Host, ""); err != nil {
		log.Warn("mirror configuration unusable: pulling from the upstream itself", logs.AreaKey, "mirrors", "registry", u.Host, "error", err.Error())
	} else if len(cfg.Mirrors) > 0 {
		log.Info("pulling through mirrors", logs.AreaKey, "mirrors", "registry", u.Host, "from", cfg.Source, "hosts", len(cfg.Mirrors))
	}
	host := strings.ToLower(u.Host)
	up := &upstream{
		host:     host,
		settings: s,
		window:   mirrors.NewWindow(mirrorWindow),
		// Mirrors get no retries: the next host is the retry.
		routed: mirrors.NewTransport(host, upstreams.base, func(rt http.RoundTripper, _ bool) http.RoundTripper { return rt }),
		log:    log,
	}
	upstreams.mu.Lock()
	upstreams.by[host] = up
	upstreams.mu.Unlock()
	return up, nil
}

func (r *router) RoundTrip(req *http.Request) (*http.Response, error) {
	host := strings.ToLower(req.URL.Host)
	u, ours := req.Context().Value(upstreamKey{}).(*upstream)
	if !ours {
		// Requests without a cache's context (distribution's pings use
		// http.Get): the last cache started for that upstream.
		r.mu.Lock()
		u = r.by[host]
		r.mu.Unlock()
	}
	// A cache's requests to other hosts (its token service, storage it is
	// redirected to) are no other cache's business.
	if u != nil && u.host == host {
		return u.roundTrip(req, r)
	}
	key := req.URL.String()
	m, ok := r.moved.Get(key)
	resp, err := r.base.RoundTrip(req)
	if err != nil || !ok {
		return resp, err
	}
	checkBlob(m.ctx, req, resp, m.digest)
	return resp, nil
}

func (u *upstream) roundTrip(req *http.Request, r *router) (*http.Response, error) {
	ctx := logs.With(u.window.Begin(req.Context(), u.settings), u.log)
	req = req.WithContext(ctx)
	resp, err := u.routed.RoundTrip(req)
	if err != nil {
		if req.URL.Path == "/v2/" && ctx.Err() == nil && u.hasMirrors() {
			// distribution pings the upstream before each blob it fetches
			// (and at start, for its token realms): with the upstream down,
			// its mirrors may still serve what they hold, as they do for a
			// pull whose registry is unreachable. (A cache started so learns
			// no token realm for its upstream credentials until a restart.)
			u.log.Warn("upstream unreachable: serving from its mirrors only", logs.AreaKey, "mirrors", "registry", u.host, "error", err.Error())
			return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: http.Header{}, Body: http.NoBody, Request: req, ProtoMajor: 1, ProtoMinor: 1}, nil
		}
		return nil, err
	}
	d, ok := upstreamBlob(req)
	if !ok {
		return resp, nil
	}
	if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
		if to, err := req.URL.Parse(loc); err == nil {
			r.moved.Add(to.String(), movedBlob{ctx: ctx, digest: d})
		}
		return resp, nil
	}
	checkBlob(ctx, req, resp, d)
	return resp, nil
}

func (u *upstream) hasMirrors() bool {
	cfg, err := mirrors.Resolve(u.settings, u.host, "")
	return err == nil && len(cfg.Mirrors) > 0
}

// upstreamBlob is the digest of a request for a whole blob.
func upstreamBlob(req *http.Request) (digest.Digest, bool) {
	if req.Method != http.MethodGet || req.Header.Get("Range") != "" {
		return "", false
	}
	i := strings.LastIndex(req.URL.Path, "/blobs/")
	if i < 0 {
		return "", false
	}
	d, err := digest.Parse(req.URL.Path[i+len("/blobs/"):])
	return d, err == nil
}

// checkBlob makes resp's body fail, rather than end, when the blob's bytes
// are not the blob d (from a mirror, the upstream or its storage).
func checkBlob(ctx context.Context, req *http.Request, resp *http.Response, d digest.Digest) {
	if resp.StatusCode != http.StatusOK || req.Method != http.MethodGet || req.Header.Get("Range") != "" {
		return
	}
	resp.Body = &checkedBlob{ReadCloser: resp.Body, ctx: ctx, d: d, v: d.Verifier(), want: resp.ContentLength}
}

// checkedBlob checks a blob as it passes, before its last bytes: distribution
// copies exactly the blob's size into its storage and to the client, and
// stops reading there, so the check must come with the last byte, not at
// EOF. Wrong bytes fail the read, so distribution neither stores the blob
// nor ends the client's response as if it were whole; the mirror that sent
// them is skipped for the rest of the window, and the client's retry gets
// the blob from the next host.
type checkedBlob struct {
	io.ReadCloser
	ctx  context.Context
	d    digest.Digest
	v    digest.Verifier
	want int64 // -1: unknown, checked at EOF
	n    int64
	err  error
}

func (b *checkedBlob) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.ReadCloser.Read(p)
	_, _ = b.v.Write(p[:n])
	b.n += int64(n)
	end := errors.Is(err, io.EOF) || (b.want >= 0 && b.n >= b.want)
	if !end {
		return n, err
	}
	switch {
	case b.want >= 0 && b.n != b.want:
		b.err = fmt.Errorf("blob %s: %d bytes where %d were announced", b.d, b.n, b.want)
	case !b.v.Verified():
		b.err = fmt.Errorf("blob %s: the bytes received are not the blob", b.d)
	default:
		mirrors.Forget(b.ctx, b.d.String())
		return n, err
	}
	if mirrors.Distrust(b.ctx, b.d.String(), b.err.Error()) {
		b.err = fmt.Errorf("%w (from a mirror, skipped from now on)", b.err)
	}
	return 0, b.err
}
