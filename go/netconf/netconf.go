// Package netconf builds the HTTP transports used to reach registries: TLS
// roots, per-registry insecure exceptions, proxies, all from per-call
// settings rather than the environment frozen at library load.
package netconf

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/oci-client/liboci/internal/envmap"
	"github.com/oci-client/liboci/layout"
	"golang.org/x/net/http/httpproxy"
)

// Config is everything that decides how bytes travel to a registry.
type Config struct {
	// Env supplies HTTP(S)_PROXY, NO_PROXY, SSL_CERT_FILE and SSL_CERT_DIR.
	Env envmap.Env
	// CAFile adds PEM certificates to the trusted roots.
	CAFile string
	// Insecure lists registries ("host" or "host:port") that may be reached
	// over plain HTTP and whose TLS certificates are not verified, as with
	// docker's insecure-registries. Loopback hosts may always use plain HTTP.
	Insecure []string
	// Proxy, when set, is the proxy of every request ("http://host:port",
	// https or socks5 too, credentials in the URL), in place of the
	// environment's HTTP_PROXY and HTTPS_PROXY; NO_PROXY still applies.
	Proxy string
}

// ProxyURL is the proxy c.Proxy names, checked; nil when none is set.
func (c Config) ProxyURL() (*url.URL, error) {
	if c.Proxy == "" {
		return nil, nil
	}
	u, err := url.Parse(c.Proxy)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("proxy %q is not a URL such as http://proxy.example:3128", redactedProxy(c.Proxy))
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return nil, fmt.Errorf("proxy %s: the scheme must be http, https, socks5 or socks5h", u.Redacted())
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("proxy %s: a proxy URL has no path or query", u.Redacted())
	}
	return u, nil
}

// redactedProxy is what an error may say of a proxy setting that is no URL:
// the text before any "@", so a password in it is never shown.
func redactedProxy(s string) string {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return "…" + s[i:]
	}
	return s
}

// ProxyPasswords are the passwords of the proxy in use for requests (the
// option's, else the environment's), for callers that mask secrets in what
// they report; "" when there is none.
func (c Config) ProxyPasswords() []string {
	var out []string
	for _, s := range []string{c.Proxy, c.Env.First("HTTP_PROXY", "http_proxy"), c.Env.First("HTTPS_PROXY", "https_proxy")} {
		if u, err := url.Parse(s); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				out = append(out, p)
			}
		}
	}
	return out
}

// ConfigError is a setting that cannot be used (an unreadable CA file).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// PlainHTTPError refuses cleartext to a host nobody marked insecure.
type PlainHTTPError struct{ Host string }

func (e *PlainHTTPError) Error() string {
	return fmt.Sprintf("refusing plain HTTP to %s: it is not a loopback host; list it in insecure_registries to allow it", e.Host)
}

// IsInsecure reports whether host (as in a reference, "host[:port]") is listed.
func (c Config) IsInsecure(host string) bool {
	host = strings.ToLower(host)
	hostname := hostOnly(host)
	for _, h := range c.Insecure {
		h = strings.ToLower(strings.TrimSpace(h))
		h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
		h = strings.TrimSuffix(h, "/")
		// An entry without a port covers every port of that host.
		if h == host || (!hasPort(h) && hostOnly(h) == hostname) {
			return true
		}
	}
	return false
}

func hasPort(h string) bool {
	_, _, err := net.SplitHostPort(h)
	return err == nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	h := hostOnly(strings.ToLower(host))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Transport returns a shared transport for this configuration; calls with
// the same settings share connections.
func Transport(c Config) (http.RoundTripper, string, error) {
	roots, rootsID, err := c.roots()
	if err != nil {
		return nil, "", &ConfigError{err}
	}
	insecure := append([]string(nil), c.Insecure...)
	sort.Strings(insecure)
	proxy := httpproxy.Config{
		HTTPProxy:  c.Env.First("HTTP_PROXY", "http_proxy"),
		HTTPSProxy: c.Env.First("HTTPS_PROXY", "https_proxy"),
		NoProxy:    c.Env.First("NO_PROXY", "no_proxy"),
	}
	if u, err := c.ProxyURL(); err != nil {
		return nil, "", &ConfigError{err}
	} else if u != nil {
		proxy.HTTPProxy, proxy.HTTPSProxy = u.String(), u.String()
	}
	h := sha256.New()
	for _, s := range []string{rootsID, proxy.HTTPProxy, proxy.HTTPSProxy, proxy.NoProxy, strings.Join(insecure, ",")} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	key := hex.EncodeToString(h.Sum(nil))
	if r, ok := transports.Get(key); ok {
		return r, key, nil
	}
	r := &router{cfg: c, secure: newHTTPTransport(roots, false, proxy)}
	if len(c.Insecure) > 0 {
		r.insecure = newHTTPTransport(roots, true, proxy)
	}
	return transports.Add(key, r), key, nil
}

// router sends each request through the verifying transport unless its own
// host is listed insecure; redirects to other hosts are checked again.
type router struct {
	cfg      Config
	secure   *http.Transport
	insecure *http.Transport
}

func (r *router) RoundTrip(req *http.Request) (*http.Response, error) {
	if layout.IsHost(req.URL.Host) {
		return layout.RoundTrip(req) // a directory, read as a registry: no socket
	}
	req = unalias(req)
	refuse := func(err error) (*http.Response, error) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if req.Response != nil && req.Response.Request != nil {
		followed, err := followRedirect(req)
		if err != nil {
			return refuse(err)
		}
		req = followed
	}
	listed := r.insecure != nil && r.cfg.IsInsecure(req.URL.Host)
	if req.URL.Scheme == "http" && !listed && !IsLoopback(req.URL.Host) {
		return refuse(&PlainHTTPError{Host: req.URL.Host})
	}
	t := r.secure
	if listed {
		t = r.insecure
	}
	resp, err := t.RoundTrip(req)
	if err == nil {
		allowPrivateRealm(req, resp)
	}
	return resp, err
}

func (r *router) closeIdle() {
	r.secure.CloseIdleConnections()
	if r.insecure != nil {
		r.insecure.CloseIdleConnections()
	}
}

func newHTTPTransport(roots *x509.CertPool, skipVerify bool, proxy httpproxy.Config) *http.Transport {
	proxyFunc := proxy.ProxyFunc()
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: func(req *http.Request) (*url.URL, error) { return proxyFunc(req.URL) },
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, socketReadBuffer)}, nil
		},
		TLSClientConfig: &tls.Config{
			RootCAs:            roots,
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: skipVerify, //nolint:gosec // only for registries the caller listed as insecure
		},
		// HTTP/1.1 only: on loopback, distribution's HTTP/2 over TLS moved
		// about half of what HTTP/1.1 did, and blobs want one stream per
		// connection anyway. A non-nil empty map turns HTTP/2 off.
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		ForceAttemptHTTP2:     false,
		TLSHandshakeTimeout:   15 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		// Digests are over the bytes as stored; never let a proxy or server
		// re-encode them underneath us.
		DisableCompression: true,
		ReadBufferSize:     256 << 10,
		WriteBufferSize:    64 << 10,
	}
}

// socketReadBuffer is how much one read syscall may bring in.
const socketReadBuffer = 256 << 10

// bufferedConn reads the socket through a buffer. TLS asks for one record
// (at most 16 KiB) at a time, so without it every record of a multi-GB
// blob costs a read syscall and often a trip through the poller; with it
// one syscall takes whatever the kernel holds. Reads at least as large as
// the buffer (plain HTTP bodies) go straight to the socket.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// ReadFrom hands a body to the socket's own ReadFrom, so that net/http
// uploads a file with sendfile(2) through this wrapper too.
func (c *bufferedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// roots builds the trusted pool: SSL_CERT_FILE/SSL_CERT_DIR replace the
// system roots (as in Go and OpenSSL), CAFile adds to them; nil stands for
// crypto/tls's own roots, loaded when first needed. The returned id
// changes whenever the files do (by size, modification time or inode).
func (c Config) roots() (*x509.CertPool, string, error) {
	file, dir := c.Env.Get("SSL_CERT_FILE"), c.Env.Get("SSL_CERT_DIR")
	if c.CAFile == "" && file == os.Getenv("SSL_CERT_FILE") && dir == os.Getenv("SSL_CERT_DIR") &&
		(file == "" || statID(file) != "missing") {
		// The roots crypto/tls itself uses (it reads these two variables from
		// the environment the Go runtime started with): nil leaves them for it
		// to load at the first TLS handshake, once per process. Parsing them
		// here took 16-44 ms (hundreds of files where SSL_CERT_DIR is set) at
		// the start of every process's first call, plain HTTP and cache hits
		// included. As in any Go program, a bundle rewritten in place is then
		// read again only by a new process, so the id does not follow the
		// files. A missing SSL_CERT_FILE still fails here, as a ConfigError.
		return nil, "crypto/tls", nil
	}
	var id strings.Builder
	for _, f := range []struct{ kind, path string }{{"file", file}, {"dir", dir}, {"ca", c.CAFile}} {
		for _, p := range filepath.SplitList(f.path) {
			fmt.Fprintf(&id, "%s:%s:%s\x00", f.kind, p, statID(p))
		}
	}
	key := id.String()
	if pool, ok := rootsCache.Get(key); ok {
		return pool, key, nil
	}
	pool, err := c.loadRoots(file, dir)
	if err != nil {
		return nil, "", err
	}
	return rootsCache.Add(key, pool), key, nil
}

func statID(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = uint64(st.Ino)
	}
	return fmt.Sprintf("%d:%d:%d", fi.Size(), fi.ModTime().UnixNano(), ino)
}

func (c Config) loadRoots(file, dir string) (*x509.CertPool, error) {
	var pool *x509.CertPool
	if file != "" || dir != "" {
		pool = x509.NewCertPool()
		if file != "" {
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("reading SSL_CERT_FILE: %w", err)
			}
			pool.AppendCertsFromPEM(data)
		}
		for _, d := range filepath.SplitList(dir) {
			entries, err := os.ReadDir(d)
			if err != nil {
				continue // as OpenSSL does: a missing directory adds nothing
			}
			for _, e := range entries {
				if data, err := os.ReadFile(filepath.Join(d, e.Name())); err == nil {
					pool.AppendCertsFromPEM(data)
				}
			}
		}
	} else {
		sys, err := x509.SystemCertPool()
		if err != nil || sys == nil {
			sys = x509.NewCertPool()
		}
		pool = sys
	}
	if c.CAFile != "" {
		data, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(data) {
			return nil, errors.New("ca_file " + c.CAFile + " holds no PEM certificate")
		}
	}
	return pool, nil
}
