// Package oci pulls manifests and blobs from OCI registries with the
// credentials a Docker user already has.
//
// It is a thin front end over go-containerregistry's transports: each call
// resolves the reference, finds credentials (package auth), gets a shared
// transport for the network settings (package netconf) and an authenticated
// one per repository and login, cached so that repeated calls reuse
// connections and bearer tokens (which are refreshed when they expire).
//
// Settings come in one way per kind: a Client's are Options, which fail
// (CodeInvalidArgument) when they cannot apply, over defaults decided in
// one place; a call's are its arguments and request structs (BlobRequest,
// PushOptions), whose zero fields take those defaults and whose impossible
// values (a negative concurrency) fail the call before any request.
package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/oci-client/liboci/auth"
	"github.com/oci-client/liboci/internal/envmap"
	"github.com/oci-client/liboci/internal/redact"
	"github.com/oci-client/liboci/layout"
	"github.com/oci-client/liboci/mirrors"
	"github.com/oci-client/liboci/netconf"
	"github.com/oci-client/liboci/transfer"
)

// DefaultUserAgent is sent unless WithUserAgent says otherwise.
const DefaultUserAgent = "oci-client/0.1"

// Client pulls from registries. It holds only settings; connections live in
// caches shared by all clients (package netconf), so creating one per call
// is cheap.
type Client struct {
	env       envmap.Env
	caFile    string
	insecure  []string
	proxy     string
	userAgent string
	retry     transfer.RetryPolicy
	transfer  transfer.Options
	directIO  bool
	mirrors   map[string][]string
	certsDirs []string
}

// Option configures a Client. An option that cannot apply (a number out of
// range, an empty name) is an error with CodeInvalidArgument, never
// ignored; the defaults are decided in one place (defaults).
type Option func(*Client) error

// defaults is a Client before any option: every default of the package.
func defaults() Client {
	return Client{userAgent: DefaultUserAgent, retry: transfer.DefaultRetryPolicy, directIO: true}
}

func invalid(format string, args ...any) error {
	return newError(CodeInvalidArgument, format, args...)
}

// WithEnv sets the environment that decides credentials, proxies and TLS
// roots. Default: a snapshot of os.Environ() taken by New.
func WithEnv(env map[string]string) Option {
	return func(c *Client) error {
		c.env = envmap.Env(env)
		return nil
	}
}

// WithCAFile adds the PEM certificates in path to the trusted roots.
// Default: none (system roots, or SSL_CERT_FILE/SSL_CERT_DIR from the env).
func WithCAFile(path string) Option {
	return func(c *Client) error {
		if path == "" {
			return invalid("the CA file is an empty path")
		}
		c.caFile = path
		return nil
	}
}

// WithInsecureRegistries allows plain HTTP and unverified TLS for the listed
// "host" or "host:port" entries. Default: none; loopback hosts may always
// use plain HTTP.
func WithInsecureRegistries(hosts ...string) Option {
	return func(c *Client) error {
		c.insecure = append(c.insecure, hosts...)
		return nil
	}
}

// WithProxy sends every request through the proxy at url (http, https or
// socks5; credentials in the URL), in place of HTTP_PROXY and HTTPS_PROXY
// from the environment; NO_PROXY still applies. Default: the environment's.
// A URL that is not one is CodeInvalidArgument.
func WithProxy(url string) Option {
	return func(c *Client) error {
		if _, err := (netconf.Config{Proxy: url}).ProxyURL(); err != nil || url == "" {
			if err == nil {
				err = errors.New("the proxy is an empty URL")
			}
			return &Error{Code: CodeInvalidArgument, Err: err}
		}
		c.proxy = url
		return nil
	}
}

// WithMirrors sets the mirrors of registries ("docker.io", "host:port",
// "*" for all) as URLs tried in order before the registry itself; an
// empty list turns a registry's mirrors off. Default: OCI_CLIENT_MIRRORS,
// else hosts.toml and registries.conf (package mirrors).
func WithMirrors(m map[string][]string) Option {
	return func(c *Client) error {
		if err := mirrors.CheckList(m); err != nil {
			return invalid("%s", err)
		}
		c.mirrors = m
		return nil
	}
}

// WithCertsDirs adds certs.d directories (containerd's hosts.toml,
// docker's ca.crt, client.cert and client.key per registry), searched
// before the system's. Default: OCI_CLIENT_CERTS_DIR.
func WithCertsDirs(dirs ...string) Option {
	return func(c *Client) error {
		for _, d := range dirs {
			if d == "" {
				return invalid("a certs.d directory is an empty path")
			}
		}
		c.certsDirs = append(c.certsDirs, dirs...)
		return nil
	}
}

// WithUserAgent sets the User-Agent header. Default: DefaultUserAgent.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		if ua == "" {
			return invalid("the user agent is empty")
		}
		c.userAgent = ua
		return nil
	}
}

// WithRetries sets how many times one request is tried in all (408, 429,
// 5xx and connection errors; Retry-After is honoured up to a minute), and
// how many resume attempts without progress a broken blob stream gets.
// Default: transfer.DefaultRetryPolicy (5). Fewer than 1 is an error.
func WithRetries(n int) Option {
	return func(c *Client) error {
		if n < 1 {
			return invalid("retries must be at least 1 (one try), not %d", n)
		}
		c.retry.Attempts = n
		c.transfer.Resumes = n
		return nil
	}
}

// WithTransfer tunes blob downloads (connections per blob, chunk size,
// read timeout); zero fields keep transfer's defaults, negative ones are
// an error (transfer.Options.Check).
func WithTransfer(o transfer.Options) Option {
	return func(c *Client) error {
		if err := o.Check(); err != nil {
			return &Error{Code: CodeInvalidArgument, Err: err}
		}
		resumes := c.transfer.Resumes
		c.transfer = o
		if o.Resumes == 0 {
			c.transfer.Resumes = resumes
		}
		return nil
	}
}

// WithDirectIO says whether blobs that PullBlobs keeps on its own (no
// BlobRequest.Policy) are written with O_DIRECT where the file system
// allows it. Default: true.
func WithDirectIO(on bool) Option {
	return func(c *Client) error { c.directIO = on; return nil }
}

// apply applies opts to c in order; the first that cannot apply is the error.
func (c *Client) apply(opts []Option) error {
	for _, o := range opts {
		if err := o(c); err != nil {
			return err
		}
	}
	c.transfer.Retry = c.retry
	return nil
}

// With returns a copy of c with more options applied.
func (c *Client) With(opts ...Option) (*Client, error) {
	cp := *c
	cp.insecure = slices.Clone(c.insecure)
	if err := cp.apply(opts); err != nil {
		return nil, err
	}
	return &cp, nil
}

// New returns a Client with the given options over the defaults.
func New(opts ...Option) (*Client, error) {
	c := defaults()
	if err := c.apply(opts); err != nil {
		return nil, err
	}
	if c.env == nil {
		c.env = envmap.FromList(os.Environ())
	}
	return &c, nil
}

func (c *Client) netConfig() netconf.Config {
	return netconf.Config{Env: c.env, CAFile: c.caFile, Insecure: c.insecure, Proxy: c.proxy}
}

func (c *Client) mirrorSettings() mirrors.Settings {
	return mirrors.Settings{Env: c.env, Mirrors: c.mirrors, CertsDirs: c.certsDirs, Net: c.netConfig()}
}

// ParseReference parses s the way docker does ("ubuntu" is
// index.docker.io/library/ubuntu:latest), marking listed hosts insecure.
// An "oci-layout:/dir[:tag|@digest]" reference reads that OCI image layout
// (package layout).
func (c *Client) ParseReference(s string) (name.Reference, error) {
	if layout.IsReference(s) {
		resolved, err := layout.Resolve(s)
		if err != nil {
			return nil, &Error{Code: CodeInvalidReference, Err: fmt.Errorf("parsing reference %q: %w", s, err)}
		}
		s = resolved
	}
	if strings.TrimSpace(s) != s || s == "" {
		return nil, newError(CodeInvalidReference, "parsing reference %q: empty or surrounded by white space", s)
	}
	if hasEmptyComponent(s) {
		// go-containerregistry accepts empty path components; docker's
		// grammar does not, and a registry would see another repository.
		return nil, newError(CodeInvalidReference, "parsing reference %q: invalid reference format: empty path component", s)
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, &Error{Code: CodeInvalidReference, Err: fmt.Errorf("parsing reference %q: %w", s, err)}
	}
	if err := checkPort(ref.Context().RegistryStr()); err != nil {
		// go-containerregistry takes any digits; the dial would fail only
		// after every retry, as a network error.
		return nil, &Error{Code: CodeInvalidReference, Err: fmt.Errorf("parsing reference %q: %w", s, err)}
	}
	if c.netConfig().IsInsecure(ref.Context().RegistryStr()) {
		ref, err = name.ParseReference(s, name.Insecure)
		if err != nil {
			return nil, &Error{Code: CodeInvalidReference, Err: fmt.Errorf("parsing reference %q: %w", s, err)}
		}
	}
	return ref, nil
}

// checkPort rejects a registry "host:port" whose port is empty or outside
// 1-65535; a registry without a port is fine.
func checkPort(registry string) error {
	i := strings.LastIndex(registry, ":")
	if i < 0 || strings.HasSuffix(registry, "]") {
		return nil // no port, or a bare bracketed IPv6 address
	}
	port := registry[i+1:]
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid port %q in registry %q: a port is 1 to 65535", port, registry)
	}
	return nil
}

// hasEmptyComponent reports a name part ("host/a//b", "a/", "/a") with an
// empty component, after the digest and tag are taken off.
func hasEmptyComponent(s string) bool {
	s, _, _ = strings.Cut(s, "@")
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		s = s[:i]
	}
	for _, part := range strings.Split(s, "/") {
		if part == "" {
			return true
		}
	}
	return false
}

// session is one repository reached with one login.
type session struct {
	repo name.Repository
	cred auth.Credential
	rt   http.RoundTripper
}

// refused names the login when the registry refused it (see authFailure),
// else returns err as it is.
func (s *session) refused(err error) error {
	if rerr := authFailure(s.repo.RegistryStr(), s.cred, err); rerr != nil {
		return rerr
	}
	return err
}

func (s *session) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithTransport(s.rt), remote.WithContext(ctx)}
}

func (c *Client) open(ctx context.Context, repo name.Repository) (*session, error) {
	return c.openScoped(ctx, repo, []string{repo.Scope(transport.PullScope)})
}

// openScoped is open with the token scopes given (the first is repo's own).
func (c *Client) openScoped(ctx context.Context, repo name.Repository, scopes []string) (*session, error) {
	// A local policy, not the registry's answer: nothing is sent.
	if err := mirrors.CheckPull(ctx, repo.RegistryStr(), repo.RepositoryStr()); err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Err: err}
	}
	cred, err := auth.Lookup(ctx, c.env, repo.RegistryStr(), repo.RepositoryStr())
	if err != nil {
		return nil, err
	}
	redact.Add(ctx, cred.Secrets()...)
	redact.AddBasic(ctx, cred.Username, cred.Password)
	redact.Add(ctx, c.netConfig().ProxyPasswords()...)

	base, netKey, err := netconf.Transport(c.netConfig())
	if err != nil {
		return nil, err
	}
	key := strings.Join([]string{netKey, repo.RegistryStr(), repo.Scheme(), repo.RepositoryStr(), cred.Fingerprint(), c.userAgent, fmt.Sprint(c.retry.Attempts), joinScopes(scopes)}, "\x00")
	if rt, ok := netconf.Session(key); ok {
		return &session{repo: repo, cred: cred, rt: rt}, nil
	}
	// Under the retries, so that each try has its request line.
	t := transfer.NewRetryTransport(transfer.NewLogTransport(base), c.retry)
	// Mirrors, where a pull's context allows them, go under the auth.
	t = mirrors.NewTransport(repo.RegistryStr(), t, func(rt http.RoundTripper, mirror bool) http.RoundTripper {
		if mirror { // no retries: the next host is the retry
			return transfer.NewLogTransport(rt)
		}
		return transfer.NewRetryTransport(transfer.NewLogTransport(rt), c.retry)
	})
	t = transport.NewUserAgent(t, c.userAgent)
	rt, err := transport.NewWithContext(ctx, repo.Registry, cred.Authenticator(), t, scopes)
	if err != nil {
		// The ping and the token fetch fail this way before any server has
		// judged the login: naming the credentials then sends people to the
		// wrong problem.
		if cerr := describeConnectFailure(err, repo.RegistryStr()); cerr != nil {
			// Mirrors may serve a pull that the registry cannot (down, not
			// a certificate or plain-HTTP problem: those are for the user).
			var plain *netconf.PlainHTTPError
			if !transfer.IsTLSError(err) && !errors.As(err, &plain) {
				if mrt, ok := mirrors.WithoutOrigin(ctx, repo, t, scopes); ok {
					return &session{repo: repo, cred: cred, rt: mrt}, nil
				}
			}
			return nil, cerr
		}
		if rerr := authFailure(repo.RegistryStr(), cred, err); rerr != nil {
			return nil, rerr
		}
		return nil, fmt.Errorf("authenticating to %s%s: %w", repo.RegistryStr(), describeCred(cred), err)
	}
	return &session{repo: repo, cred: cred, rt: netconf.KeepSession(key, rt)}, nil
}

// describeCred says which login was used, never what it holds.
func describeCred(c auth.Credential) string {
	switch {
	case c.Anonymous():
		return " anonymously (no credentials found)"
	case c.Username != "":
		return fmt.Sprintf(" as %q (from %s)", c.Username, c.Source)
	default:
		return fmt.Sprintf(" with a token (from %s)", c.Source)
	}
}
