package oci

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/oci-client/liboci/internal/errtext"
	"github.com/oci-client/liboci/netconf"
	"github.com/oci-client/liboci/transfer"
)

// connectError is a failure to reach a server at all, before any answer
// could say whether a login is good: it names the step and the host, not the
// credentials, so that nobody goes looking for a login problem. Err keeps
// the whole chain for classification (NETWORK, TLS, TIMEOUT stay as they were).
type connectError struct {
	step   string // "connecting to", "resolving", "TLS handshake with", "waiting for"
	host   string
	detail string
	Err    error
}

func (e *connectError) Error() string { return e.step + " " + e.host + ": " + e.detail }
func (e *connectError) Unwrap() error { return e.Err }

// describeConnectFailure returns err as a *connectError when it is a
// connection-level failure (DNS, refused or unreachable, TLS, timeout) on the
// way to registry or its token server, and nil when it is anything else: an
// answer from a server (401, 403, 5xx) is about the login and keeps saying so.
func describeConnectFailure(err error, registry string) error {
	host, elsewhere := registry, false
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		if u, perr := url.Parse(urlErr.URL); perr == nil && u.Host != "" && !strings.EqualFold(u.Host, registry) {
			// Only a token server lives elsewhere: say whose it is.
			host, elsewhere = fmt.Sprintf("%s (the token server for %s)", u.Host, registry), true
		}
	}
	var (
		dnsErr *net.DNSError
		opErr  *net.OpError
		netErr net.Error
		plain  *netconf.PlainHTTPError
	)
	switch {
	// The same order as classify: a certificate problem is the one to fix
	// even when the plain-HTTP fallback failed in some other way.
	case transfer.RemoteTLSAlert(err):
		return &connectError{"TLS handshake with", host, innerText(err) +
			" (the registry ended the handshake; if it asks for a client certificate, client.cert and client.key in its certs.d directory give one)", err}
	case transfer.IsTLSError(err) || errtext.Of(err) == errtext.PlainHTTPAnswer:
		return &connectError{"TLS handshake with", host, innerText(err), err}
	case errors.As(err, &plain):
		return &connectError{"connecting to", host, plain.Error(), err}
	case errors.As(err, &dnsErr):
		if dnsErr.Name != "" && !elsewhere {
			host = dnsErr.Name // the name looked up, without the port
		}
		return &connectError{"resolving", host, dnsErr.Error(), err}
	case errors.As(err, &opErr) && opErr.Op == "dial":
		detail := dialDetail(opErr)
		if addr := fmt.Sprint(opErr.Addr); opErr.Addr != nil && !strings.EqualFold(addr, registry) {
			// localhost may resolve to ::1 while the registry listens on 127.0.0.1 only.
			detail += " (at " + addr + ")"
		}
		return &connectError{"connecting to", host, detail, err}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return &connectError{"waiting for", host, innerText(err), err}
	}
	return nil
}

// dialDetail is the reason a dial failed without the "dial tcp ADDR:" prefix
// the message already has in its own words ("connection refused",
// "i/o timeout", "network is unreachable").
func dialDetail(e *net.OpError) string {
	if e.Err == nil {
		return e.Error()
	}
	msg := e.Err.Error()
	// The syscall's name ("connect: connection refused") says nothing more.
	if _, rest, ok := strings.Cut(msg, ": "); ok && !strings.Contains(rest, ": ") {
		return rest
	}
	return msg
}

// innerText is err's message without net/http's `Get "URL": ` prefix, which
// repeats the host and, on a ping, once per scheme tried.
func innerText(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Err != nil {
		return urlErr.Err.Error()
	}
	return err.Error()
}
