package netconf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The rules for where a registry may send us (see router.RoundTrip):
//
//   - never from HTTPS down to plain HTTP;
//   - to a private address (RFC 1918, loopback, link-local, unique local)
//     only from a registry that is itself on one: on-prem storage on 10.x
//     behind an on-prem registry works, while a registry on the internet
//     cannot point us at the cloud's metadata service or the LAN;
//   - a bearer token realm on a private IP literal is allowed by the same
//     rule. go-containerregistry refuses any such realm other than the
//     registry's own host:port, which breaks an on-prem registry whose token
//     service is on another port; its check sees a host name, so a realm we
//     allow is handed to it under an alias only this process minted, and
//     turned back into the address when the token is fetched.
//
// Credentials never follow a redirect to another host: go-containerregistry
// adds them for the registry's own host only, and what a caller set itself,
// which net/http would copy to another port of the same host name or to a
// subdomain, is taken off here.

// RedirectError refuses a redirect the rules above forbid.
type RedirectError struct {
	From, To string // hosts
	Why      string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("refusing the redirect from %s to %s: %s", e.From, e.To, e.Why)
}

// followRedirect returns req, a request made to follow a redirect, as it may
// be sent (without credentials when it goes to another host), or why not.
func followRedirect(req *http.Request) (*http.Request, error) {
	prev := req.Response.Request
	if err := checkRedirect(req, prev); err != nil {
		return nil, err
	}
	if !strings.EqualFold(req.URL.Host, prev.URL.Host) && (req.Header.Get("Authorization") != "" || req.Header.Get("Cookie") != "") {
		req = req.Clone(req.Context())
		req.Header.Del("Authorization")
		req.Header.Del("Cookie")
	}
	return req, nil
}

// checkRedirect says why req, made to follow the redirect prev got, must not
// be sent; nil when it may.
func checkRedirect(req, prev *http.Request) error {
	if prev.URL.Scheme == "https" && req.URL.Scheme == "http" {
		return &RedirectError{From: prev.URL.Host, To: req.URL.Host, Why: "it goes from HTTPS down to plain HTTP"}
	}
	origin := prev
	for origin.Response != nil && origin.Response.Request != nil {
		origin = origin.Response.Request
	}
	if privateHost(req.Context(), req.URL.Host, false) && !privateHost(req.Context(), origin.URL.Host, true) {
		return &RedirectError{From: origin.URL.Host, To: req.URL.Host,
			Why: "it points at a private address, and the registry is not on one"}
	}
	return nil
}

// privateAddr: the ranges a registry on the internet must not reach us into.
func privateAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified()
}

// privateHost reports whether host ("name[:port]") is on a private address.
// A name is looked up: as an origin (all) it counts only when every address
// is private, as a destination when any is; one that does not resolve here
// (a registry reached through a proxy) is not.
func privateHost(ctx context.Context, host string, all bool) bool {
	if IsLoopback(host) {
		return true
	}
	h := hostOnly(strings.ToLower(host))
	if a, err := netip.ParseAddr(h); err == nil {
		return privateAddr(a)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", h)
	if err != nil || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if privateAddr(a) != all {
			return !all
		}
	}
	return all
}

// realmAliases are the stand-in hosts of private token realms allowed so
// far: alias -> the realm's real host:port. Process-wide, and bounded by the
// realms a machine's private registries name.
var realmAliases = struct {
	sync.Mutex
	byAlias map[string]string
	byHost  map[string]string
	secret  string
}{byAlias: map[string]string{}, byHost: map[string]string{}}

// realmAliasSuffix ends every alias; .invalid never resolves (RFC 6761).
const realmAliasSuffix = ".realm.oci-client.invalid"

var realmParam = regexp.MustCompile(`(?i)(\brealm\s*=\s*")([^"]*)(")`)

// allowPrivateRealm rewrites, in a 401 from a registry on a private
// address, a bearer realm on a private IP literal to its alias, so that
// go-containerregistry's realm check lets it through.
func allowPrivateRealm(req *http.Request, resp *http.Response) {
	values := resp.Header.Values("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || len(values) == 0 {
		return
	}
	checked, private := false, false
	for i, v := range values {
		values[i] = realmParam.ReplaceAllStringFunc(v, func(m string) string {
			parts := realmParam.FindStringSubmatch(m)
			u, err := url.Parse(parts[2])
			if err != nil || u.Host == req.URL.Host {
				return m // the registry's own host:port: allowed as it is
			}
			a, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]"))
			if err != nil || !privateAddr(a) {
				return m // a name, or a public address: nothing to allow
			}
			if !checked {
				checked, private = true, privateHost(req.Context(), req.URL.Host, true)
			}
			if !private {
				return m // left for go-containerregistry to refuse
			}
			u.Host = realmAlias(u.Host)
			return parts[1] + u.String() + parts[3]
		})
	}
	resp.Header["Www-Authenticate"] = values
}

// realmAlias is the alias of the private realm host hostport, minted once.
func realmAlias(hostport string) string {
	realmAliases.Lock()
	defer realmAliases.Unlock()
	if a, ok := realmAliases.byHost[hostport]; ok {
		return a
	}
	if realmAliases.secret == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		realmAliases.secret = hex.EncodeToString(b)
	}
	// Unguessable, so that no registry can name an alias it was not given.
	label := fmt.Sprintf("r%d-%s", len(realmAliases.byAlias)+1, realmAliases.secret)
	alias := label + realmAliasSuffix
	if _, port, err := net.SplitHostPort(hostport); err == nil {
		alias = net.JoinHostPort(alias, port)
	}
	realmAliases.byAlias[alias] = hostport
	realmAliases.byHost[hostport] = alias
	return alias
}

// unalias turns a request to a minted realm alias back to its address.
func unalias(req *http.Request) *http.Request {
	if !strings.Contains(req.URL.Host, realmAliasSuffix) {
		return req
	}
	realmAliases.Lock()
	host, ok := realmAliases.byAlias[req.URL.Host]
	realmAliases.Unlock()
	if !ok {
		return req // not ours: it fails to resolve, as .invalid does
	}
	out := req.Clone(req.Context())
	out.URL.Host, out.Host = host, ""
	return out
}
