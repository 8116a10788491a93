package netconf

import (
	"crypto/x509"
	"net/http"

	"github.com/oci-client/liboci/internal/lru"
)

// The network state every call of the process shares, all of it here, so
// that connections, parsed roots and bearer tokens outlive one call and
// one Client (which holds only settings):
//
//	transports  connection pools, one per network settings (proxies, roots, insecure hosts)
//	rootsCache  parsed certificate pools, by the files they came from
//	sessions    authenticated transports over those pools, one per settings,
//	            repository, login, user agent, retries and token scopes
//
// The other process-wide state of the library: package cache's background
// syncer (durability after a pull returns) and what it knows of the
// machine (boot id, host name); package capi's registry of running calls.

var transports = lru.New[string, *router](32, func(r *router) { r.closeIdle() })

// rootsCache keeps parsed pools: SSL_CERT_DIR commonly holds hundreds of
// certificates, far too many to parse on every call.
var rootsCache = lru.New[string, *x509.CertPool](16, nil)

// sessions keeps authenticated transports; the tokens inside refresh
// themselves on 401.
var sessions = lru.New[string, http.RoundTripper](256, nil)

// Session returns the authenticated transport kept under key, if any.
func Session(key string) (http.RoundTripper, bool) { return sessions.Get(key) }

// KeepSession keeps rt under key and returns the transport kept there (rt,
// or one another call kept first).
func KeepSession(key string, rt http.RoundTripper) http.RoundTripper { return sessions.Add(key, rt) }
