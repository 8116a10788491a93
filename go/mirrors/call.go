package mirrors

import (
	"context"
	"log/slog"
	"sync"

	"github.com/oci-client/liboci/auth"
	"github.com/oci-client/liboci/internal/envmap"
	"github.com/oci-client/liboci/internal/logs"
)

type callKey struct{}
type pullKey struct{}

// call is what one call (one pull, however many requests and blobs)
// learns about hosts: which failed, which served which blob. A mirror
// that fails is skipped for the rest of the call and logged once.
type call struct {
	mu      sync.Mutex
	configs map[string]configResult
	failed  map[string]string          // host key: why
	logged  map[string]bool            // host key + what was said
	served  map[string]map[string]Host // blob digest: hosts that sent bytes of it
	http    map[string]bool            // insecure hosts found to speak plain HTTP
	creds   map[string]credResult      // a mirror's own login, looked up once per call
}

type credResult struct {
	cred auth.Credential
	err  error
}

type configResult struct {
	cfg Config
	err error
}

// pull marks a context whose requests may go to mirrors: a pull, with
// the client's settings. Pushes never carry one.
type pull struct {
	settings Settings
	pinned   bool // the reference names a digest
	origin   bool // only the origin's own TLS settings apply: no mirrors
}

// WithCall gives ctx a record of one call, unless it has one: the C API
// starts one per call, so that a pull's manifest and blob requests share
// what they learn.
func WithCall(ctx context.Context) context.Context {
	if _, ok := ctx.Value(callKey{}).(*call); ok {
		return ctx
	}
	return context.WithValue(ctx, callKey{}, newCall())
}

func newCall() *call {
	return &call{
		configs: map[string]configResult{},
		failed:  map[string]string{},
		logged:  map[string]bool{},
		served:  map[string]map[string]Host{},
		http:    map[string]bool{},
		creds:   map[string]credResult{},
	}
}

// Begin marks ctx as a pull with settings s; pinned says the reference
// names a digest (registries.conf's tag-only mirrors then stay out).
func Begin(ctx context.Context, s Settings, pinned bool) context.Context {
	ctx = WithCall(ctx)
	return context.WithValue(ctx, pullKey{}, &pull{settings: s, pinned: pinned})
}

// Origin gives ctx settings s for the origin's own TLS (its certs.d
// directory) without sending anything to mirrors: pushes, login checks.
func Origin(ctx context.Context, s Settings) context.Context {
	ctx = WithCall(ctx)
	return context.WithValue(ctx, pullKey{}, &pull{settings: s, origin: true})
}

func logFrom(ctx context.Context) *slog.Logger { return logs.From(ctx, "mirrors") }

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

func pullFrom(ctx context.Context) *pull {
	p, _ := ctx.Value(pullKey{}).(*pull)
	return p
}

// config resolves (once per call) what applies to reg and repo; a
// configuration that cannot be read is logged once, and the origin alone
// serves.
func (c *call) config(ctx context.Context, s Settings, reg, repo string) Config {
	key := reg + "\x00" + repo
	c.mu.Lock()
	r, ok := c.configs[key]
	c.mu.Unlock()
	if !ok {
		cfg, err := Resolve(s, reg, repo)
		r = configResult{cfg, err}
		c.mu.Lock()
		c.configs[key] = r
		c.mu.Unlock()
		if err != nil {
			logs.From(ctx, "mirrors").Warn("mirror configuration unusable: pulling from the registry itself", "registry", reg, "error", err.Error())
		} else if len(cfg.Mirrors) > 0 {
			logs.From(ctx, "mirrors").Debug("mirrors", "registry", reg, "repository", repo, "from", cfg.Source, "hosts", len(cfg.Mirrors))
		}
	}
	return r.cfg
}

func (c *call) isFailed(h Host) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, bad := c.failed[h.Key()]
	return bad
}

// fail records that h could not serve a request. skip keeps it out for
// the rest of the call (it is down, refuses us, or sent wrong bytes);
// otherwise it just lacked this one thing. Either is said once per call.
func (c *call) fail(ctx context.Context, h Host, registry, reason string, skip bool) {
	key := h.Key()
	c.mu.Lock()
	if skip {
		if _, already := c.failed[key]; already {
			c.mu.Unlock()
			return
		}
		c.failed[key] = reason
	}
	said := key
	if !skip {
		said += "\x00missing"
	}
	first := !c.logged[said]
	c.logged[said] = true
	c.mu.Unlock()
	if !first {
		return
	}
	l := logs.From(ctx, "mirrors").With("mirror", key)
	if registry != "" { // Distrust knows the blob, not whose
		l = l.With("registry", registry)
	}
	if skip {
		l.Warn("mirror failed: the next host serves the rest of this pull", "reason", reason)
	} else {
		l.Info("mirror does not have it: asking the next host", "reason", reason)
	}
}

// used says, once per call and host, that h serves this pull.
func (c *call) used(ctx context.Context, h Host, registry string) {
	key := h.Key() + "\x00used"
	c.mu.Lock()
	first := !c.logged[key]
	c.logged[key] = true
	c.mu.Unlock()
	if first {
		logs.From(ctx, "mirrors").Debug("pulling through mirror", "mirror", h.Key(), "registry", registry, "from", h.Source)
	}
}

// cred is the user's login for a mirror's host, looked up (files read,
// helpers run) once per call, not once per request.
func (c *call) cred(ctx context.Context, env envmap.Env, host, repo string) (auth.Credential, error) {
	key := host + "\x00" + repo
	c.mu.Lock()
	r, ok := c.creds[key]
	c.mu.Unlock()
	if !ok {
		cred, err := auth.Lookup(ctx, env, host, repo)
		r = credResult{cred, err}
		c.mu.Lock()
		c.creds[key] = r
		c.mu.Unlock()
	}
	return r.cred, r.err
}

// servedBy records that h sent (some of) blob digest.
func (c *call) servedBy(digest string, h Host) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.served[digest]
	if m == nil {
		m = map[string]Host{}
		c.served[digest] = m
	}
	m[h.Key()] = h
}

// Distrust is told that the bytes received for blob digest were not that
// blob. Every mirror that sent some of them is skipped for the rest of the
// call; the result says whether one did, so that fetching the blob again
// (from the next host) may help.
func Distrust(ctx context.Context, digest, reason string) bool {
	c := callFrom(ctx)
	if c == nil {
		return false
	}
	c.mu.Lock()
	hosts := c.served[digest]
	delete(c.served, digest)
	c.mu.Unlock()
	for _, h := range hosts {
		c.fail(ctx, h, "", "sent wrong bytes for "+digest+": "+reason, true)
	}
	return len(hosts) > 0
}

// Forget drops what ctx's call recorded about blob digest's sources once
// it is in place.
func Forget(ctx context.Context, digest string) {
	if c := callFrom(ctx); c != nil {
		c.mu.Lock()
		delete(c.served, digest)
		c.mu.Unlock()
	}
}
