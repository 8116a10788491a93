package netconf

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/oci-client/liboci/internal/envmap"
	"github.com/oci-client/liboci/internal/testutil"
)

func redirectTo(target string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.Path, http.StatusTemporaryRedirect)
	})
}

func storage(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			w.WriteHeader(http.StatusBadRequest) // a credential must never follow a redirect
			return
		}
		io.WriteString(w, "stored "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func wantRedirectError(t *testing.T, err error, why string) {
	t.Helper()
	var re *RedirectError
	if !errors.As(err, &re) || !strings.Contains(re.Why, why) {
		t.Fatalf("err = %v, want a RedirectError saying %q", err, why)
	}
}

func TestRedirectFromHTTPSDownToHTTPIsRefused(t *testing.T) {
	plain := storage(t)
	srv := httptest.NewTLSServer(redirectTo(plain.URL))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	rt := mustTransport(t, Config{Env: envmap.Env{}, Insecure: []string{host}})
	_, err := get(t, rt, srv.URL+"/v2/blob")
	wantRedirectError(t, err, "HTTPS down to plain HTTP")
}

func TestRedirectToAPrivateAddressFollowedOnlyFromAPrivateRegistry(t *testing.T) {
	store := storage(t)
	// A registry on loopback sends its blobs to storage on loopback: followed, and the
	// request there carries no credential (storage answers 400 if it does).
	registry := httptest.NewServer(redirectTo(store.URL))
	t.Cleanup(registry.Close)
	rt := mustTransport(t, Config{Env: envmap.Env{}})
	req, _ := http.NewRequest(http.MethodGet, registry.URL+"/v2/blob", nil)
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "stored /v2/blob" {
		t.Fatalf("private to private: %d %q", resp.StatusCode, body)
	}

	// The same redirect from a registry that is not on a private address (registry.test,
	// reached through a proxy, resolves to nothing here): refused.
	p := testutil.NewProxy(t, redirectTo(store.URL))
	rt = mustTransport(t, Config{Env: envmap.Env{"HTTP_PROXY": p.Server.URL}, Insecure: []string{"registry.test"}})
	_, err = get(t, rt, "http://registry.test/v2/blob")
	wantRedirectError(t, err, "private address")
}

func TestPrivateHost(t *testing.T) {
	for host, want := range map[string]bool{
		"10.1.2.3:5000": true, "192.168.0.1": true, "127.0.0.1:80": true, "[::1]:5000": true,
		"169.254.169.254": true, "[fd00::1]:443": true, "localhost:5000": true,
		"203.0.113.7:5000": false, "8.8.8.8": false, "registry.test": false,
	} {
		if got := privateHost(t.Context(), host, true); got != want {
			t.Errorf("privateHost(%q) = %v", host, got)
		}
	}
}

func unauthorized(registry, challenge string) (*http.Request, *http.Response) {
	req := httptest.NewRequest(http.MethodGet, "http://"+registry+"/v2/", nil)
	resp := &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{}}
	resp.Header.Set("WWW-Authenticate", challenge)
	return req, resp
}

func TestPrivateRealmOfAPrivateRegistryIsAllowedUnderAnAlias(t *testing.T) {
	req, resp := unauthorized("10.0.0.5:5000", `Bearer realm="http://10.0.0.5:5001/token",service="reg",scope="repository:a:pull"`)
	allowPrivateRealm(req, resp)
	got := resp.Header.Get("WWW-Authenticate")
	realm := strings.TrimSuffix(strings.TrimPrefix(strings.Split(got, ",")[0], `Bearer realm="`), `"`)
	u, err := url.Parse(realm)
	if err != nil || !strings.HasSuffix(u.Hostname(), realmAliasSuffix) || u.Port() != "5001" || u.Path != "/token" {
		t.Fatalf("challenge = %q", got)
	}
	if !strings.Contains(got, `service="reg",scope="repository:a:pull"`) {
		t.Errorf("the rest of the challenge changed: %q", got)
	}
	// The token request to the alias goes to the realm's real address.
	token := unalias(httptest.NewRequest(http.MethodGet, realm+"?service=reg", nil))
	if token.URL.Host != "10.0.0.5:5001" || token.URL.RawQuery != "service=reg" {
		t.Errorf("unaliased to %s", token.URL)
	}
	// The same realm again gets the same alias.
	req, resp = unauthorized("10.0.0.5:5000", `Bearer realm="http://10.0.0.5:5001/token"`)
	allowPrivateRealm(req, resp)
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), u.Host) {
		t.Errorf("a second alias for one realm: %q", resp.Header.Get("WWW-Authenticate"))
	}
}

func TestRealmsLeftAsTheyAre(t *testing.T) {
	for _, c := range []struct{ registry, challenge string }{
		// A registry on the internet naming a private realm: left for go-containerregistry to refuse.
		{"203.0.113.7:5000", `Bearer realm="http://10.0.0.5:5001/token"`},
		// The registry's own host:port, a name, a public address: nothing to allow.
		{"10.0.0.5:5000", `Bearer realm="http://10.0.0.5:5000/token"`},
		{"10.0.0.5:5000", `Bearer realm="https://auth.example.com/token"`},
		{"10.0.0.5:5000", `Bearer realm="https://203.0.113.9/token"`},
		{"10.0.0.5:5000", `Basic realm="registry"`},
	} {
		req, resp := unauthorized(c.registry, c.challenge)
		allowPrivateRealm(req, resp)
		if got := resp.Header.Get("WWW-Authenticate"); got != c.challenge {
			t.Errorf("%s: %q became %q", c.registry, c.challenge, got)
		}
	}
}

func TestAnAliasNotMintedHereStaysUnresolvable(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "http://r1-0000000000000000"+realmAliasSuffix+":5001/token", nil)
	if got := unalias(req); got != req {
		t.Errorf("a foreign alias became %s", got.URL)
	}
}
