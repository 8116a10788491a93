// Package testutil holds helpers shared by the module's tests: an in-process
// registry behind an httptest server with swappable middleware, seeding
// helpers, fault-injecting middleware, credential files and fake credential
// helper programs. Nothing here is used outside tests.
package testutil

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Middleware wraps a handler.
type Middleware func(http.Handler) http.Handler

// Registry is go-containerregistry's in-process registry served by an
// httptest server on 127.0.0.1. Middleware can be swapped at any time, so a
// test seeds the registry first and injects faults afterwards.
type Registry struct {
	Server *httptest.Server
	// Host is "127.0.0.1:PORT".
	Host  string
	inner http.Handler

	mu sync.RWMutex
	mw Middleware

	// Requests counts every request that reached the server.
	Requests atomic.Int64
}

// NewRegistry starts an empty registry, closed when the test ends.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	r := &Registry{inner: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.Requests.Add(1)
		r.mu.RLock()
		mw := r.mw
		r.mu.RUnlock()
		if mw != nil {
			mw(r.inner).ServeHTTP(w, req)
			return
		}
		r.inner.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Server.Close)
	r.Host = strings.TrimPrefix(r.Server.URL, "http://")
	return r
}

// Use replaces the middleware (nil: none).
func (r *Registry) Use(mw Middleware) {
	r.mu.Lock()
	r.mw = mw
	r.mu.Unlock()
}

// Inner is the bare registry handler, without middleware.
func (r *Registry) Inner() http.Handler { return r.inner }

// Ref returns "127.0.0.1:PORT/repo" + suffix (":tag" or "@sha256:...").
func (r *Registry) Ref(repo, suffix string) string { return r.Host + "/" + repo + suffix }

// PushImage writes img to host/repo:tag and returns its digest and the
// manifest bytes as pushed.
func PushImage(t testing.TB, ref string, img v1.Image) (string, []byte) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("parsing %s: %v", ref, err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), raw
}

// PushIndex writes idx to ref and returns its digest and raw bytes.
func PushIndex(t testing.TB, ref string, idx v1.ImageIndex) (string, []byte) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("parsing %s: %v", ref, err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), raw
}

// PushBlob uploads data as a blob of repo ("host/name") and returns its digest.
func PushBlob(t testing.TB, repo string, data []byte) string {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatalf("parsing %s: %v", repo, err)
	}
	l := static.NewLayer(data, types.OCIUncompressedLayer)
	if err := remote.WriteLayer(r, l); err != nil {
		t.Fatalf("pushing blob to %s: %v", repo, err)
	}
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// RandomBytes returns n random bytes.
func RandomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Env returns an environment whose HOME is a fresh temporary directory and
// whose PATH holds only binDir (if not empty) and the system directories,
// so no test ever reads the real ~/.docker.
func Env(t testing.TB, binDir string) map[string]string {
	t.Helper()
	path := "/usr/bin:/bin"
	if binDir != "" {
		path = binDir + ":" + path
	}
	return map[string]string{"HOME": t.TempDir(), "PATH": path}
}

// WriteFile writes data to path, creating parent directories.
func WriteFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

// WriteJSON marshals v to path.
func WriteJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, path, b, 0o600)
}

// AuthsConfig renders a config.json with one "auths" entry per host,
// using the base64 "auth" field.
func AuthsConfig(creds map[string][2]string) map[string]any {
	auths := map[string]any{}
	for host, up := range creds {
		auths[host] = map[string]string{"auth": BasicB64(up[0], up[1])}
	}
	return map[string]any{"auths": auths}
}

// BasicB64 is base64("user:pass").
func BasicB64(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// WriteHelper writes an executable shell script dir/docker-credential-NAME
// whose body follows "#!/bin/sh\n".
//
// Tests that exec helpers must not run in parallel with tests that write
// them: a fork racing with an open write descriptor makes exec fail with
// ETXTBSY (golang/go#22315).
func WriteHelper(t testing.TB, dir, helperName, body string) string {
	t.Helper()
	p := filepath.Join(dir, "docker-credential-"+helperName)
	WriteFile(t, p, []byte("#!/bin/sh\n"+body), 0o755)
	return p
}

// CertPEM writes the certificate of a TLS httptest server to a PEM file in
// a new temporary directory and returns its path.
func CertPEM(t testing.TB, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	WriteFile(t, p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	return p
}

// RegistryError answers with a distribution-style JSON error body.
func RegistryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

// IsBlobGet reports whether r fetches a blob.
func IsBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha")
}

// IsManifest reports whether r asks for a manifest (GET or HEAD).
func IsManifest(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.URL.Path, "/manifests/")
}

// BasicAuth requires user:pass on every /v2/ request, answering 401 with a
// Basic challenge otherwise.
func BasicAuth(user, pass string) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				RegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Status answers every request matching match with status and a registry
// error code; other requests pass through. It counts the answers it gave.
func Status(match func(*http.Request) bool, status int, code string, count *atomic.Int64) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) {
				if count != nil {
					count.Add(1)
				}
				RegistryError(w, status, code, http.StatusText(status))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// HangManifests holds every manifest request open until the client gives
// up on it or the test ends; other requests pass through.
func HangManifests(t testing.TB) Middleware {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if IsManifest(r) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Serve answers blob GETs with body (and its true Content-Length); other
// requests pass through.
func Serve(body []byte) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !IsBlobGet(r) {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(http.StatusOK)
			w.Write(body)
		})
	}
}

// Chunked answers blob GETs with body and no Content-Length.
func Chunked(body []byte) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !IsBlobGet(r) {
				next.ServeHTTP(w, r)
				return
			}
			w.WriteHeader(http.StatusOK)
			w.Write(body)
			w.(http.Flusher).Flush()
		})
	}
}

// Truncate answers blob GETs announcing announced bytes but sending only
// body, then closing the connection.
func Truncate(body []byte, announced int) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !IsBlobGet(r) {
				next.ServeHTTP(w, r)
				return
			}
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", announced)
			buf.Write(body)
			buf.Flush()
		})
	}
}

// Proxy is a fake forward HTTP proxy that resolves every host to target.
type Proxy struct {
	Server *httptest.Server
	// Hosts records the Host of every proxied request, in order.
	mu    sync.Mutex
	hosts []string
}

// NewProxy starts a forward proxy that serves every absolute-URI request
// with target, as though the requested host resolved to it.
func NewProxy(t testing.TB, target http.Handler) *Proxy {
	t.Helper()
	p := &Proxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.hosts = append(p.hosts, r.URL.Host)
		p.mu.Unlock()
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		// Serve it as the origin would: a path-only URL.
		r2 := r.Clone(r.Context())
		r2.URL.Scheme, r2.URL.Host = "", ""
		target.ServeHTTP(w, r2)
	}))
	t.Cleanup(p.Server.Close)
	return p
}

// Hosts returns the hosts requested through the proxy so far.
func (p *Proxy) Hosts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.hosts...)
}

// ReadLines returns the lines of the file at path ("" when missing).
func ReadLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}

// FreePort returns a port nothing listens on (for "connection refused").
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// WaitFor polls cond until it holds or `within` has passed; then it
// reports the timeout with Errorf (safe from any goroutine, unlike
// Fatalf) and returns false.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) bool {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %s", what)
			return false
		}
	}
	return true
}

// Contains reports whether any of the needles occurs in haystack.
func Contains(haystack []byte, needles ...string) (string, bool) {
	for _, n := range needles {
		if n != "" && bytes.Contains(haystack, []byte(n)) {
			return n, true
		}
	}
	return "", false
}

// SelfSignedPEM returns a new self-signed CA certificate in PEM form, with
// a distinct subject each call.
func SelfSignedPEM(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "test CA " + serial.String()},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TokenServer is a fake bearer token endpoint paired with the Bearer
// middleware, as Docker Hub and distribution's token auth work.
type TokenServer struct {
	Server *httptest.Server
	// Realm is "http://localhost:PORT/token": a host name, since
	// go-containerregistry refuses realms on loopback IP literals other than
	// the registry's own address.
	Realm string
	// User and Pass, when User is set, are required as Basic credentials.
	User, Pass string

	mu       sync.Mutex
	valid    map[string]bool
	issued   int
	queries  []string
	override http.Handler
}

// Override makes the token endpoint answer with h instead.
func (ts *TokenServer) Override(h http.Handler) {
	ts.mu.Lock()
	ts.override = h
	ts.mu.Unlock()
}

// NewTokenServer starts a token endpoint; user "" allows anonymous tokens.
func NewTokenServer(t testing.TB, user, pass string) *TokenServer {
	t.Helper()
	ts := &TokenServer{User: user, Pass: pass, valid: map[string]bool{}}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Server.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.Server.URL, "http://"))
	ts.Realm = "http://localhost:" + port + "/token"
	return ts
}

func (ts *TokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	h := ts.override
	ts.mu.Unlock()
	if h != nil {
		h.ServeHTTP(w, r)
		return
	}
	if ts.User != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != ts.User || p != ts.Pass {
			RegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad credentials for the token service")
			return
		}
	}
	ts.mu.Lock()
	ts.issued++
	tok := fmt.Sprintf("opaque-token-%d", ts.issued)
	ts.valid[tok] = true
	ts.queries = append(ts.queries, r.URL.RawQuery)
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"token":%q,"expires_in":300}`, tok)
}

// Issued reports how many tokens were handed out.
func (ts *TokenServer) Issued() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.issued
}

// Queries returns the query strings of the token requests so far.
func (ts *TokenServer) Queries() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.queries...)
}

// Revoke invalidates every token issued so far.
func (ts *TokenServer) Revoke() {
	ts.mu.Lock()
	ts.valid = map[string]bool{}
	ts.mu.Unlock()
}

func (ts *TokenServer) isValid(tok string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.valid[tok]
}

// Bearer requires a token from ts on every /v2/ request, answering 401 with
// a challenge naming ts's realm, service "test-registry" and scope.
func (ts *TokenServer) Bearer(scope string) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || !ts.isValid(tok) {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="test-registry",scope=%q`, ts.Realm, scope))
				RegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
