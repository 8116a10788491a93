package netconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oci-client/liboci/internal/envmap"
	"github.com/oci-client/liboci/internal/testutil"
)

func TestIsInsecure(t *testing.T) {
	cfg := Config{Insecure: []string{
		"reg.test",
		"ported.test:5000",
		"https://schemed.test/",
		"http://SCHEMED-PORT.test:8080",
		" spaced.test ",
		"10.1.2.3",
		"[::1]:5001",
		"[fd00::5]",
	}}
	cases := map[string]bool{
		"reg.test":               true,
		"REG.TEST":               true,
		"reg.test:443":           true, // a bare host entry covers every port
		"reg.test:5000":          true,
		"ported.test:5000":       true,
		"ported.test":            false, // a host:port entry covers that port only
		"ported.test:5001":       false,
		"schemed.test":           true,
		"schemed.test:99":        true,
		"schemed-port.test:8080": true,
		"schemed-port.test":      false,
		"spaced.test":            true,
		"10.1.2.3:5000":          true,
		"10.1.2.4":               false,
		"[::1]:5001":             true,
		"[::1]:5002":             false,
		"[fd00::5]:5000":         true, // a bracketed IPv6 entry covers every port
		"[fd00::5]":              true,
		"[fd00::6]:5000":         false,
		"other.test":             false,
		"sub.reg.test":           false,
		"reg.test.evil":          false,
		"":                       false,
	}
	for host, want := range cases {
		if got := cfg.IsInsecure(host); got != want {
			t.Errorf("IsInsecure(%q) = %v, want %v", host, got, want)
		}
	}
	if (Config{}).IsInsecure("reg.test") {
		t.Error("an empty list marks a host insecure")
	}
}

func TestIsLoopback(t *testing.T) {
	cases := map[string]bool{
		"localhost":           true,
		"LOCALHOST:5000":      true,
		"registry.localhost":  true,
		"a.b.localhost:1":     true,
		"127.0.0.1":           true,
		"127.0.0.1:5000":      true,
		"127.9.8.7:1":         true,
		"[::1]:5000":          true,
		"::1":                 true,
		"localhost.evil.test": false,
		"notlocalhost":        false,
		"10.0.0.1:5000":       false,
		"192.168.1.1":         false,
		"example.com":         false,
		"0.0.0.0:80":          false,
		"":                    false,
	}
	for host, want := range cases {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func mustTransport(t *testing.T, c Config) http.RoundTripper {
	t.Helper()
	rt, _, err := Transport(c)
	if err != nil {
		t.Fatalf("Transport: %v", err)
	}
	return rt
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestPlainHTTPToRemoteHostRefused(t *testing.T) {
	rt := mustTransport(t, Config{Env: envmap.Env{}})
	body := &closeRecorder{Reader: strings.NewReader("payload")}
	req, err := http.NewRequest(http.MethodPost, "http://example.invalid:1/v2/", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if resp != nil {
		resp.Body.Close()
	}
	var pe *PlainHTTPError
	if !errors.As(err, &pe) {
		// A DNS or dial error here would mean the request went out first.
		t.Fatalf("err = %v (%T), want *PlainHTTPError", err, err)
	}
	if pe.Host != "example.invalid:1" || !strings.Contains(pe.Error(), "example.invalid:1") || !strings.Contains(pe.Error(), "insecure_registries") {
		t.Errorf("PlainHTTPError = %+v, message %q", pe, pe.Error())
	}
	if !body.closed.Load() {
		t.Error("request body not closed (RoundTripper contract)")
	}
}

func TestPlainHTTPRefusedEvenWithOtherHostsListed(t *testing.T) {
	rt := mustTransport(t, Config{Env: envmap.Env{}, Insecure: []string{"other.invalid"}})
	req, _ := http.NewRequest(http.MethodGet, "http://example.invalid:1/", nil)
	_, err := rt.RoundTrip(req)
	var pe *PlainHTTPError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *PlainHTTPError", err)
	}
}

func TestPlainHTTPRedirectToRemoteHostRefused(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("http://example.invalid:1/elsewhere", http.StatusFound))
	defer srv.Close()
	client := &http.Client{Transport: mustTransport(t, Config{Env: envmap.Env{}})}
	resp, err := client.Get(srv.URL + "/v2/")
	if resp != nil {
		resp.Body.Close()
	}
	var pe *PlainHTTPError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *PlainHTTPError for the redirect target", err)
	}
}

func TestPlainHTTPToLoopbackAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer srv.Close()
	client := &http.Client{Transport: mustTransport(t, Config{Env: envmap.Env{}})}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "hello" {
		t.Errorf("body %q", b)
	}
}

// proxied returns a fake proxy that serves every request with a handler
// answering "via proxy".
func proxied(t *testing.T) *testutil.Proxy {
	return testutil.NewProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "via proxy "+r.URL.Path)
	}))
}

func get(t *testing.T, rt http.RoundTripper, url string) (string, error) {
	t.Helper()
	resp, err := (&http.Client{Transport: rt}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestInsecureListedHostUsesPlainHTTPThroughProxy(t *testing.T) {
	p := proxied(t)
	for _, proxyVar := range []string{"HTTP_PROXY", "http_proxy"} {
		t.Run(proxyVar, func(t *testing.T) {
			env := envmap.Env{proxyVar: p.Server.URL}
			rt := mustTransport(t, Config{Env: env, Insecure: []string{"registry.test:5000"}})
			got, err := get(t, rt, "http://registry.test:5000/v2/")
			if err != nil {
				t.Fatalf("GET through proxy: %v", err)
			}
			if got != "via proxy /v2/" {
				t.Errorf("body %q", got)
			}
			hosts := p.Hosts()
			if len(hosts) == 0 || hosts[len(hosts)-1] != "registry.test:5000" {
				t.Errorf("proxy saw hosts %q", hosts)
			}
		})
	}
	// Without the insecure listing the same request never leaves.
	before := len(p.Hosts())
	rt := mustTransport(t, Config{Env: envmap.Env{"HTTP_PROXY": p.Server.URL}})
	_, err := get(t, rt, "http://registry.test:5000/v2/")
	var pe *PlainHTTPError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *PlainHTTPError", err)
	}
	if len(p.Hosts()) != before {
		t.Error("a refused plain HTTP request reached the proxy")
	}
}

func TestNoProxyAndLoopbackBypassProxy(t *testing.T) {
	p := proxied(t)
	direct := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "direct") }))
	defer direct.Close()

	// Loopback never goes through a proxy.
	rt := mustTransport(t, Config{Env: envmap.Env{"HTTP_PROXY": p.Server.URL}})
	if got, err := get(t, rt, direct.URL); err != nil || got != "direct" {
		t.Fatalf("loopback GET = %q, %v", got, err)
	}
	// NO_PROXY names the host: it is dialled directly (and fails to resolve).
	rt = mustTransport(t, Config{Env: envmap.Env{"HTTP_PROXY": p.Server.URL, "NO_PROXY": "registry.test"}, Insecure: []string{"registry.test"}})
	if _, err := get(t, rt, "http://registry.test:5000/v2/"); err == nil {
		t.Fatal("registry.test resolved without the proxy")
	}
	// HTTPS_PROXY does not apply to plain HTTP.
	rt = mustTransport(t, Config{Env: envmap.Env{"HTTPS_PROXY": p.Server.URL}, Insecure: []string{"registry.test"}})
	if _, err := get(t, rt, "http://registry.test:5000/v2/"); err == nil {
		t.Fatal("plain HTTP used HTTPS_PROXY")
	}
	if hosts := p.Hosts(); len(hosts) != 0 {
		t.Errorf("proxy was used for %q", hosts)
	}
}

func TestUpperCaseProxyVariableWins(t *testing.T) {
	good, bad := proxied(t), proxied(t)
	rt := mustTransport(t, Config{Env: envmap.Env{"HTTP_PROXY": good.Server.URL, "http_proxy": bad.Server.URL}, Insecure: []string{"registry.test"}})
	if _, err := get(t, rt, "http://registry.test/v2/"); err != nil {
		t.Fatal(err)
	}
	if len(good.Hosts()) != 1 || len(bad.Hosts()) != 0 {
		t.Errorf("HTTP_PROXY got %d requests, http_proxy %d", len(good.Hosts()), len(bad.Hosts()))
	}
}

func TestProxyOptionReplacesTheEnvironmentsAndKeepsNoProxy(t *testing.T) {
	option, env := proxied(t), proxied(t)
	cfg := Config{Env: envmap.Env{"HTTP_PROXY": env.Server.URL}, Insecure: []string{"registry.test", "other.test"}, Proxy: option.Server.URL}
	rt := mustTransport(t, cfg)
	if _, err := get(t, rt, "http://registry.test/v2/"); err != nil {
		t.Fatal(err)
	}
	if len(option.Hosts()) != 1 || len(env.Hosts()) != 0 {
		t.Errorf("the option's proxy got %d requests, HTTP_PROXY's %d", len(option.Hosts()), len(env.Hosts()))
	}
	cfg.Env["NO_PROXY"] = "other.test"
	if _, err := get(t, mustTransport(t, cfg), "http://other.test/v2/"); err == nil {
		t.Fatal("other.test resolved: NO_PROXY did not send it direct")
	}
	if len(option.Hosts()) != 1 {
		t.Errorf("NO_PROXY's host went through the proxy: %q", option.Hosts())
	}
}

func TestProxyOptionThatIsNoProxyURLIsAConfigErrorWithoutItsPassword(t *testing.T) {
	for _, bad := range []string{"proxy.example:3128", "ftp://proxy.example", "http://", "http://u:s3cret-pw@proxy.example/path", "http://u:s3cret-pw@proxy.example:99999999x"} {
		_, _, err := Transport(Config{Proxy: bad})
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%q: err = %v, want a ConfigError", bad, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("%q: the error shows the password: %v", bad, err)
		}
	}
	for _, good := range []string{"http://proxy.example:3128", "https://u:p@proxy.example", "socks5://127.0.0.1:1080", "http://proxy.example/"} {
		if _, _, err := Transport(Config{Proxy: good}); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}

func TestProxyPasswordsComeFromTheOptionAndTheEnvironment(t *testing.T) {
	c := Config{Proxy: "http://u:opt-pw@p:1", Env: envmap.Env{"https_proxy": "http://v:env-pw@q:2", "HTTP_PROXY": "http://r:3"}}
	got := c.ProxyPasswords()
	if strings.Join(got, ",") != "opt-pw,env-pw" {
		t.Errorf("ProxyPasswords = %q", got)
	}
}

func tlsServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure") }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func wantTLSError(t *testing.T, err error) {
	t.Helper()
	var uae x509.UnknownAuthorityError
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &uae) && !errors.As(err, &cve) {
		t.Fatalf("err = %v (%T), want a certificate verification error", err, err)
	}
}

func TestTLSRoots(t *testing.T) {
	srv := tlsServer(t)
	pemFile := testutil.CertPEM(t, srv)
	pemDir := filepath.Dir(pemFile)

	t.Run("untrusted", func(t *testing.T) {
		_, err := get(t, mustTransport(t, Config{Env: envmap.Env{}}), srv.URL)
		wantTLSError(t, err)
	})
	for label, cfg := range map[string]Config{
		"SSL_CERT_FILE": {Env: envmap.Env{"SSL_CERT_FILE": pemFile}},
		"SSL_CERT_DIR":  {Env: envmap.Env{"SSL_CERT_DIR": "/nonexistent" + string(os.PathListSeparator) + pemDir}},
		"CAFile":        {Env: envmap.Env{}, CAFile: pemFile},
		"insecure":      {Env: envmap.Env{}, Insecure: []string{strings.TrimPrefix(srv.URL, "https://")}},
	} {
		t.Run(label, func(t *testing.T) {
			got, err := get(t, mustTransport(t, cfg), srv.URL)
			if err != nil || got != "secure" {
				t.Fatalf("GET = %q, %v", got, err)
			}
		})
	}
	t.Run("insecure other port", func(t *testing.T) {
		_, err := get(t, mustTransport(t, Config{Env: envmap.Env{}, Insecure: []string{"127.0.0.1:1"}}), srv.URL)
		wantTLSError(t, err)
	})
	t.Run("SSL_CERT_FILE without the cert", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "empty.pem")
		testutil.WriteFile(t, empty, []byte(""), 0o644)
		_, err := get(t, mustTransport(t, Config{Env: envmap.Env{"SSL_CERT_FILE": empty}}), srv.URL)
		wantTLSError(t, err)
	})
}

func TestSSLCertFileReplacesSystemRoots(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.pem")
	testutil.WriteFile(t, a, testutil.SelfSignedPEM(t), 0o644)
	testutil.WriteFile(t, b, testutil.SelfSignedPEM(t), 0o644)
	pool, _, err := Config{Env: envmap.Env{"SSL_CERT_FILE": a}}.roots()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pool.Subjects()); n != 1 { //nolint:staticcheck // counting a pool we built
		t.Errorf("pool holds %d certificates, want only the SSL_CERT_FILE one", n)
	}
	// CAFile adds to the pool rather than replacing it.
	pool, _, err = Config{Env: envmap.Env{"SSL_CERT_FILE": a}, CAFile: b}.roots()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pool.Subjects()); n != 2 { //nolint:staticcheck // as above
		t.Errorf("pool holds %d certificates, want SSL_CERT_FILE's plus CAFile's", n)
	}
}

func wantConfigError(t *testing.T, err error, substr string) {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want *ConfigError", err, err)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Errorf("message %q does not contain %q", err, substr)
	}
	if errors.Unwrap(ce) == nil {
		t.Error("ConfigError does not unwrap")
	}
}

func TestBadCAConfiguration(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	testutil.WriteFile(t, garbage, []byte("this is not a certificate\n"), 0o644)
	missing := filepath.Join(dir, "missing.pem")

	_, _, err := Transport(Config{Env: envmap.Env{}, CAFile: missing})
	wantConfigError(t, err, "ca_file")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want it to wrap fs.ErrNotExist", err)
	}
	_, _, err = Transport(Config{Env: envmap.Env{}, CAFile: dir}) // a directory: unreadable as a file
	wantConfigError(t, err, "ca_file")
	_, _, err = Transport(Config{Env: envmap.Env{}, CAFile: garbage})
	wantConfigError(t, err, "holds no PEM certificate")
	_, _, err = Transport(Config{Env: envmap.Env{"SSL_CERT_FILE": missing}})
	wantConfigError(t, err, "SSL_CERT_FILE")
}

// The roots crypto/tls would use anyway are left for it to load at the first
// handshake (nil), not parsed at every process's first call.
func TestSystemRootsAreNotParsedUpFront(t *testing.T) {
	ours := envmap.Env{"SSL_CERT_FILE": os.Getenv("SSL_CERT_FILE"), "SSL_CERT_DIR": os.Getenv("SSL_CERT_DIR")}
	pool, _, err := Config{Env: ours}.roots()
	if err != nil || pool != nil {
		t.Fatalf("roots() = %v, %v; want nil (crypto/tls's roots, loaded when first needed)", pool, err)
	}
	_, err = get(t, mustTransport(t, Config{Env: ours}), tlsServer(t).URL)
	wantTLSError(t, err) // still verified, against those roots
	ca := filepath.Join(t.TempDir(), "ca.pem")
	testutil.WriteFile(t, ca, testutil.SelfSignedPEM(t), 0o644)
	if pool, _, err = (Config{Env: ours, CAFile: ca}).roots(); err != nil || pool == nil {
		t.Fatalf("with a CAFile: roots() = %v, %v; want the system roots plus it", pool, err)
	}
	// A caller's SSL_CERT_FILE other than the process's is read here, as before.
	other := envmap.Env{"SSL_CERT_FILE": ca, "SSL_CERT_DIR": os.Getenv("SSL_CERT_DIR")}
	if pool, _, err = (Config{Env: other}).roots(); err != nil || pool == nil {
		t.Fatalf("with another SSL_CERT_FILE: roots() = %v, %v; want a pool read from it", pool, err)
	}
	// The process's own SSL_CERT_FILE, missing: refused up front, not at the first handshake.
	missing := filepath.Join(t.TempDir(), "missing.pem")
	t.Setenv("SSL_CERT_FILE", missing)
	_, _, err = Transport(Config{Env: envmap.Env{"SSL_CERT_FILE": missing, "SSL_CERT_DIR": os.Getenv("SSL_CERT_DIR")}})
	wantConfigError(t, err, "SSL_CERT_FILE")
}

func TestMissingSSLCertDirIsIgnored(t *testing.T) {
	if _, _, err := Transport(Config{Env: envmap.Env{"SSL_CERT_DIR": filepath.Join(t.TempDir(), "nope")}}); err != nil {
		t.Fatalf("a missing SSL_CERT_DIR is an error: %v", err)
	}
}

func TestTransportCache(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	testutil.WriteFile(t, ca, testutil.SelfSignedPEM(t), 0o644)
	base := Config{Env: envmap.Env{"HTTP_PROXY": "http://proxy.test:3128"}, CAFile: ca, Insecure: []string{"a.test", "b.test"}}

	rt1, key1, err := Transport(base)
	if err != nil {
		t.Fatal(err)
	}
	// Same settings (insecure list in another order, unrelated env
	// variables): the same transport.
	same := base
	same.Env = envmap.Env{"HTTP_PROXY": "http://proxy.test:3128", "UNRELATED": "x"}
	same.Insecure = []string{"b.test", "a.test"}
	rt2, key2, err := Transport(same)
	if err != nil {
		t.Fatal(err)
	}
	if rt1 != rt2 || key1 != key2 {
		t.Error("identical settings gave different transports")
	}

	// Each of these differs in something that matters.
	variants := map[string]Config{
		"proxy":       {Env: envmap.Env{"HTTP_PROXY": "http://other.test:3128"}, CAFile: ca, Insecure: base.Insecure},
		"https proxy": {Env: envmap.Env{"HTTP_PROXY": "http://proxy.test:3128", "HTTPS_PROXY": "http://proxy.test:3128"}, CAFile: ca, Insecure: base.Insecure},
		"no_proxy":    {Env: envmap.Env{"HTTP_PROXY": "http://proxy.test:3128", "NO_PROXY": "x.test"}, CAFile: ca, Insecure: base.Insecure},
		"insecure":    {Env: base.Env, CAFile: ca, Insecure: []string{"a.test"}},
		"no ca":       {Env: base.Env, Insecure: base.Insecure},
	}
	for label, cfg := range variants {
		rt, key, err := Transport(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rt == rt1 || key == key1 {
			t.Errorf("%s: changed settings reused the cached transport", label)
		}
	}

	// The CA file keeps its path but its content changes: a new transport.
	testutil.WriteFile(t, ca, testutil.SelfSignedPEM(t), 0o644)
	rt3, key3, err := Transport(base)
	if err != nil {
		t.Fatal(err)
	}
	if rt3 == rt1 || key3 == key1 {
		t.Error("a changed CA file reused the transport built for the old content")
	}
	// And the new content is itself cached.
	if rt4, _, _ := Transport(base); rt4 != rt3 {
		t.Error("the rebuilt transport is not cached")
	}
}

func TestTransportCacheEvictsAndClosesIdle(t *testing.T) {
	// Filling the cache past its size must keep working and hand back
	// fresh transports for evicted settings.
	first, key, err := Transport(Config{Env: envmap.Env{"HTTP_PROXY": "http://evict-0.test"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 40; i++ {
		if _, _, err := Transport(Config{Env: envmap.Env{"HTTP_PROXY": "http://evict-" + string(rune('a'+i%26)) + strings.Repeat("x", i) + ".test"}}); err != nil {
			t.Fatal(err)
		}
	}
	again, key2, err := Transport(Config{Env: envmap.Env{"HTTP_PROXY": "http://evict-0.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if key != key2 {
		t.Error("the key depends on cache state")
	}
	if again == first {
		t.Error("an evicted transport came back from the cache")
	}
}
