package oci

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/oci-client/liboci/auth"
	"github.com/oci-client/liboci/netconf"
)

func registryErr(status int, code string) error {
	e := &transport.Error{StatusCode: status}
	if code != "" {
		e.Errors = []transport.Diagnostic{{Code: transport.ErrorCode(code), Message: "m"}}
	}
	return e
}

func TestAsErrorClassification(t *testing.T) {
	_, nameErr := name.ParseReference("Bad Ref")
	cases := []struct {
		label  string
		err    error
		code   Code
		status int
		regc   string
	}{
		{"401", registryErr(401, "UNAUTHORIZED"), CodeUnauthorized, 401, "UNAUTHORIZED"},
		{"401 without body", registryErr(401, ""), CodeUnauthorized, 401, ""},
		{"401 DENIED", registryErr(401, "DENIED"), CodeDenied, 401, "DENIED"},
		{"403", registryErr(403, "DENIED"), CodeDenied, 403, "DENIED"},
		{"404 blob", registryErr(404, "BLOB_UNKNOWN"), CodeNotFound, 404, "BLOB_UNKNOWN"},
		{"429", registryErr(429, ""), CodeTooManyRequests, 429, ""},
		{"TOOMANYREQUESTS on 503", registryErr(503, "TOOMANYREQUESTS"), CodeTooManyRequests, 503, "TOOMANYREQUESTS"},
		{"500", registryErr(500, "UNKNOWN"), CodeRegistry, 500, "UNKNOWN"},
		{"wrapped 404", fmt.Errorf("fetching: %w", registryErr(404, "MANIFEST_UNKNOWN")), CodeNotFound, 404, "MANIFEST_UNKNOWN"},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), CodeTimeout, 0, ""},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), CodeCanceled, 0, ""},
		{"unknown CA", fmt.Errorf("x: %w", x509.UnknownAuthorityError{}), CodeTLS, 0, ""},
		{"hostname", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "h"}, CodeTLS, 0, ""},
		// A ping that failed over https (certificate) and then http: TLS wins.
		{"tls and status", errors.Join(x509.UnknownAuthorityError{}, registryErr(400, "")), CodeTLS, 400, ""},
		{"bad name", nameErr, CodeInvalidReference, 0, ""},
		{"credentials", &auth.Error{Msg: "helper", Err: errors.New("boom")}, CodeCredentials, 0, ""},
		{"config", &netconf.ConfigError{Err: errors.New("bad ca")}, CodeInvalidArgument, 0, ""},
		{"plain http", &netconf.PlainHTTPError{Host: "h"}, CodeTLS, 0, ""},
		{"path", &fs.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, CodeIO, 0, ""},
		{"full", &fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}, CodeNoSpace, 0, ""},
		{"quota", fmt.Errorf("pulling: %w", &fs.PathError{Op: "write", Path: "/x", Err: syscall.EDQUOT}), CodeNoSpace, 0, ""},
		// A layer coded IO further down (unpacking) is still a full disk.
		{"coded full", fmt.Errorf("unpacking: %w", Coded(CodeIO, &fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC})), CodeNoSpace, 0, ""},
		{"path wrapping errno that is a net.Error too", &fs.PathError{Op: "write", Path: "/x", Err: syscall.ECONNRESET}, CodeIO, 0, ""},
		{"errno", syscall.EROFS, CodeIO, 0, ""},
		{"errno full", syscall.ENOSPC, CodeNoSpace, 0, ""},
		{"dial", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, CodeNetwork, 0, ""},
		{"unreachable", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, CodeNetwork, 0, ""},
		{"bare reset errno", syscall.ECONNRESET, CodeNetwork, 0, ""},
		{"bare pipe errno", fmt.Errorf("write: %w", syscall.EPIPE), CodeNetwork, 0, ""},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), CodeNetwork, 0, ""},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), CodeNetwork, 0, ""},
		// TLS spoken to a plain HTTP server: the fix is a setting.
		{"https to http", errors.New("http: server gave HTTP response to HTTPS client"), CodeTLS, 0, ""},
		{"refused in a string", errors.New("Get https://x/v2/: dial tcp: connection refused"), CodeNetwork, 0, ""},
		// go-containerregistry's manifest digest check has no type: its text does.
		{"manifest digest", fmt.Errorf("fetching manifest: %w", fmt.Errorf("manifest digest: %q does not match requested digest: %q for %q", "sha256:a", "sha256:b", "r")), CodeDigestMismatch, 0, ""},
		{"other does not match", errors.New(`pagination URL scheme "http" does not match registry scheme "https"`), CodeInternal, 0, ""},
		{"anything else", errors.New("mystery"), CodeInternal, 0, ""},
	}
	for _, tc := range cases {
		e := AsError(tc.err)
		if e.Code != tc.code || e.Status != tc.status || e.RegistryCode != tc.regc {
			t.Errorf("%s: got %s/%d/%q, want %s/%d/%q", tc.label, e.Code, e.Status, e.RegistryCode, tc.code, tc.status, tc.regc)
		}
		if !strings.HasPrefix(e.Error(), tc.err.Error()) {
			t.Errorf("%s: message changed to %q", tc.label, e.Error())
		}
		if !errors.Is(e, tc.err) {
			t.Errorf("%s: the original error does not unwrap", tc.label)
		}
	}
}

func TestAsErrorKeepsOwnErrors(t *testing.T) {
	if AsError(nil) != nil {
		t.Fatal("AsError(nil) != nil")
	}
	inner := &Error{Code: CodeDigestMismatch, Status: 200, RegistryCode: "X", Err: errors.New("bad bytes")}
	if e := AsError(inner); e.Code != inner.Code || e.Status != 200 || e.RegistryCode != "X" || e.Error() != "bad bytes" {
		t.Errorf("an *Error changed: %+v", e)
	}
	wrapped := fmt.Errorf("pulling blob: %w", inner)
	e := AsError(wrapped)
	if e.Code != CodeDigestMismatch || e.Status != 200 || e.RegistryCode != "X" || e.Error() != wrapped.Error() {
		t.Errorf("wrapped: %+v %q", e, e.Error())
	}
	// A network error caused by the call's context is a timeout.
	netErr := &Error{Code: CodeNetwork, Err: fmt.Errorf("read: %w", context.DeadlineExceeded)}
	if got := AsError(fmt.Errorf("x: %w", netErr)).Code; got != CodeTimeout {
		t.Errorf("network error from a deadline: %s", got)
	}
	// Other codes keep theirs even with a context error inside.
	dm := &Error{Code: CodeDigestMismatch, Err: fmt.Errorf("x: %w", context.Canceled)}
	if got := AsError(dm).Code; got != CodeDigestMismatch {
		t.Errorf("digest mismatch with a context error inside: %s", got)
	}
}

func TestParseDigest(t *testing.T) {
	hex64 := strings.Repeat("0123456789abcdef", 4)
	ok := []string{"sha256:" + hex64, "sha512:" + hex64 + hex64}
	for _, s := range ok {
		d, err := parseDigest(s)
		if err != nil {
			t.Errorf("parseDigest(%q): %v", s, err)
			continue
		}
		if d.str != s || d.algo+":"+d.hex != s || d.newHash().Size()*2 != len(d.hex) {
			t.Errorf("parseDigest(%q) = %+v", s, d)
		}
	}
	bad := []string{"", "sha256", "sha256:", hex64, "sha256:" + hex64[:63], "sha256:" + hex64 + "0",
		"sha256:" + strings.ToUpper(hex64), "SHA256:" + hex64, "sha384:" + hex64, "sha512:" + hex64,
		"sha256:" + hex64[:63] + "g", " sha256:" + hex64}
	for _, s := range bad {
		_, err := parseDigest(s)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalidArgument {
			t.Errorf("parseDigest(%q) = %v, want INVALID_ARGUMENT", s, err)
		}
	}
}

func TestStatusCodeTable(t *testing.T) {
	for status, want := range map[int]Code{
		http.StatusUnauthorized:        CodeUnauthorized,
		http.StatusForbidden:           CodeDenied,
		http.StatusNotFound:            CodeNotFound,
		http.StatusTooManyRequests:     CodeTooManyRequests,
		http.StatusInternalServerError: CodeRegistry,
		http.StatusBadRequest:          CodeRegistry,
		http.StatusMethodNotAllowed:    CodeRegistry,
	} {
		if got := statusCode(status, ""); got != want {
			t.Errorf("statusCode(%d) = %s, want %s", status, got, want)
		}
	}
}

func TestDescribeCredNeverShowsSecrets(t *testing.T) {
	for _, c := range []auth.Credential{
		{},
		{Username: "alice", Password: "pw-secret", Source: "/cfg.json"},
		{IdentityToken: "tok-secret", Source: "docker-credential-x"},
		{RegistryToken: "reg-secret", Source: "/cfg.json"},
	} {
		d := describeCred(c)
		for _, s := range c.Secrets() {
			if strings.Contains(d, s) {
				t.Errorf("describeCred(%+v) = %q", c, d)
			}
		}
		if c.Source != "" && !strings.Contains(d, c.Source) {
			t.Errorf("describeCred(%+v) = %q does not name the source", c, d)
		}
	}
}

func TestAuthFailureDescribesTheRegistryAnswer(t *testing.T) {
	// The detail as distribution sends it, decoded from JSON.
	te := &transport.Error{
		StatusCode: http.StatusUnauthorized,
		Errors: []transport.Diagnostic{{
			Code:    transport.UnauthorizedErrorCode,
			Message: "authentication required",
			Detail: []any{map[string]any{
				"Type": "repository", "Class": "", "Name": "org/model", "Action": "pull",
			}},
		}},
	}
	cred := auth.Credential{Username: "alice", Password: "pw-secret", Source: "/home/a/.docker/config.json"}
	err := fmt.Errorf("fetching manifest r: %w", authFailure("reg.example:5000", cred, fmt.Errorf("GET url: %w", te)))
	want := `fetching manifest r: authenticating to reg.example:5000 as "alice" (from /home/a/.docker/config.json): ` +
		`UNAUTHORIZED: authentication required (repository org/model, action pull)`
	if err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err, want)
	}
	// The code, status and registry code come from the transport error as before.
	if e := AsError(err); e.Code != CodeUnauthorized || e.Status != 401 || e.RegistryCode != "UNAUTHORIZED" {
		t.Errorf("AsError = %+v", e)
	}

	denied := &transport.Error{StatusCode: http.StatusForbidden, Errors: []transport.Diagnostic{
		{Code: transport.DeniedErrorCode, Message: "requested access to the resource is denied"},
		{Code: "QUOTA", Detail: map[string]any{"limit": 10.0, "scope": []any{"a", "b"}}},
	}}
	got := authFailure("r", auth.Credential{IdentityToken: "tok-secret", Source: "docker-credential-x"}, denied).Error()
	want = `authenticating to r with a token (from docker-credential-x): ` +
		`DENIED: requested access to the resource is denied; QUOTA (limit 10, scope a; b)`
	if got != want {
		t.Errorf("message\n got %q\nwant %q", got, want)
	}
	if e := AsError(authFailure("r", auth.Credential{}, denied)); e.Code != CodeDenied || e.Status != 403 {
		t.Errorf("AsError = %+v", e)
	}

	// A HEAD answer has no body to describe.
	head := authFailure("r", auth.Credential{}, &transport.Error{StatusCode: http.StatusUnauthorized})
	if want := "authenticating to r anonymously (no credentials found): the registry answered 401 Unauthorized"; head.Error() != want {
		t.Errorf("message %q, want %q", head, want)
	}

	for _, other := range []error{
		&transport.Error{StatusCode: http.StatusNotFound},
		errors.New("connection refused"),
	} {
		if rerr := authFailure("r", cred, other); rerr != nil {
			t.Errorf("authFailure(%v) = %v, want nil", other, rerr)
		}
	}
}

func TestNewSnapshotsProcessEnvironment(t *testing.T) {
	// Without WithEnv, New copies os.Environ() once.
	t.Setenv("LIBOCI_TEST_MARKER", "before")
	c := mustNewT(t)
	os.Setenv("LIBOCI_TEST_MARKER", "after")
	if got := c.env.Get("LIBOCI_TEST_MARKER"); got != "before" {
		t.Errorf("env = %q, want the snapshot taken by New", got)
	}
	// With WithEnv, nothing from the process leaks in.
	if got := mustNewT(t, WithEnv(map[string]string{})).env.Get("LIBOCI_TEST_MARKER"); got != "" {
		t.Errorf("explicit env picked up %q from the process", got)
	}
}

// The URL of the failed request comes from whichever error in the chain
// has one, redacted; About adds what the caller knows without overriding
// what an inner error knew.
func TestErrorContext(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://u:p@s3.example/b?X-Amz-Signature=s&scope=x", nil)
	te := &transport.Error{StatusCode: 403, Request: req}
	e := AsError(fmt.Errorf("pulling: %w", te))
	if e.URL != "https://s3.example/b?X-Amz-Signature=[REDACTED]&scope=x" {
		t.Errorf("transport URL %q", e.URL)
	}
	ue := &url.Error{Op: "Get", URL: "https://reg.example/v2/", Err: syscall.ECONNREFUSED}
	if e := AsError(ue); e.URL != "https://reg.example/v2/" || e.Code != CodeNetwork {
		t.Errorf("url.Error: %+v", e)
	}
	if e := AsError(errors.New("x")); e.URL != "" || e.Reference != "" || e.Digest != "" {
		t.Errorf("context from nowhere: %+v", e)
	}
	inner := About(te, "reg/m@sha256:a", "sha256:blob")
	outer := About(fmt.Errorf("pulling model: %w", inner), "reg/m:v1", "sha256:manifest")
	var got *Error
	if !errors.As(outer, &got) || got.Reference != "reg/m@sha256:a" || got.Digest != "sha256:blob" || got.Code != CodeDenied || got.URL == "" {
		t.Errorf("About: %+v", got)
	}
	if About(nil, "r", "d") != nil {
		t.Error("About(nil) != nil")
	}
}
