package oci

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/oci-client/liboci/auth"
	"github.com/oci-client/liboci/internal/errtext"
	"github.com/oci-client/liboci/internal/redact"
	"github.com/oci-client/liboci/layout"
	"github.com/oci-client/liboci/netconf"
	"github.com/oci-client/liboci/transfer"
)

// Code classifies a failure for callers in other languages.
type Code string

// The codes every export may return. Callers must treat unknown codes as
// CodeInternal: new ones may be added.
const (
	CodeInvalidReference Code = "INVALID_REFERENCE"
	CodeInvalidArgument  Code = "INVALID_ARGUMENT"
	CodeUnauthorized     Code = "UNAUTHORIZED"      // 401: no or wrong credentials
	CodeDenied           Code = "DENIED"            // 403: credentials lack access
	CodeCredentials      Code = "CREDENTIALS"       // config file or credential helper failed
	CodeNotFound         Code = "NOT_FOUND"         // 404: repository, manifest or blob
	CodeTooManyRequests  Code = "TOO_MANY_REQUESTS" // 429
	CodeRegistry         Code = "REGISTRY"          // any other registry answer
	CodeDigestMismatch   Code = "DIGEST_MISMATCH"   // content is not what was asked for
	CodeTLS              Code = "TLS"               // certificate not trusted or invalid
	CodeNetwork          Code = "NETWORK"
	CodeTimeout          Code = "TIMEOUT"
	CodeCanceled         Code = "CANCELED"
	CodeIO               Code = "IO"             // local file system
	CodeNoSpace          Code = "NO_SPACE"       // the destination's file system is full (or the quota is)
	CodeNotCached        Code = "NOT_CACHED"     // offline, and the cache lacks what was asked for
	CodeUnsafeArchive    Code = "UNSAFE_ARCHIVE" // an archive layer would write outside its target, or exceeds a limit
	CodeInvalidModel     Code = "INVALID_MODEL"  // the artifact is not a model, or its manifest or archive is malformed
	CodeNoMatch          Code = "NO_MATCH"       // the patterns select no file of the model
	CodeInternal         Code = "INTERNAL"
)

// Error is the one error type this package returns from its front ends.
type Error struct {
	Code Code
	// Status is the HTTP status of the registry answer, when there was one.
	Status int
	// RegistryCode is the registry's own error code (MANIFEST_UNKNOWN, ...).
	RegistryCode string
	// Details is what a caller may act on beyond the message, as JSON
	// (CodeNoMatch: the patterns and the model's files).
	Details any
	// Reference, Digest and URL say what the failure concerns, where known:
	// the reference (registry/repository:tag or @digest), the blob or
	// manifest digest, and the request that failed (redacted: no user
	// information, no signed query parameters).
	Reference string
	Digest    string
	URL       string
	Err       error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func newError(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Coded gives err code unless it carries one already; nil stays nil.
func Coded(code Code, err error) error {
	var e *Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return &Error{Code: code, Err: err}
}

// AsError classifies any error into an *Error, keeping its message.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		// Keep the outer message (it has the context) and the inner code,
		// unless a context error deeper down says why the call really ended.
		code := e.Code
		if c := contextCode(err); c != "" && (code == CodeNetwork || code == CodeInternal) {
			code = c
		}
		if code == CodeIO && noSpace(err) {
			code = CodeNoSpace
		}
		return inLayoutTerms(&Error{
			Code: code, Status: e.Status, RegistryCode: e.RegistryCode, Details: e.Details,
			Reference: e.Reference, Digest: e.Digest, URL: cmp.Or(e.URL, requestURL(err)), Err: err,
		})
	}
	code := classify(err)
	if code == CodeIO && noSpace(err) {
		code = CodeNoSpace
	}
	if code == CodeTLS && errtext.Of(err) == errtext.PlainHTTPAnswer {
		err = fmt.Errorf("%w (the registry speaks plain HTTP: list it in insecure_registries to allow that)", err)
	}
	return inLayoutTerms(&Error{Code: code, Status: status(err), RegistryCode: registryCode(err), URL: requestURL(err), Err: err})
}

// inLayoutTerms says a failure to read an OCI image layout in the layout's
// terms: the reference the caller gave, what the layout said, and no
// request URL (its host is a name made up inside this process).
func inLayoutTerms(e *Error) *Error {
	shown := layout.Display(e.Reference)
	if shown == e.Reference {
		return e // not a layout's
	}
	e.Reference, e.URL = shown, ""
	var te *transport.Error
	if errors.As(e.Err, &te) && len(te.Errors) > 0 {
		said := make([]string, 0, len(te.Errors))
		for _, d := range te.Errors {
			said = append(said, d.Message)
		}
		e.Err = &layoutError{ref: shown, said: strings.Join(said, "; "), err: e.Err}
	}
	return e
}

// layoutError keeps the whole chain for errors.As while its message leaves
// out the made-up host and the requests that never left the process.
type layoutError struct {
	ref, said string
	err       error
}

func (l *layoutError) Error() string { return l.ref + ": " + l.said }
func (l *layoutError) Unwrap() error { return l.err }

// About gives err the reference and digest it concerns, unless it names
// them already (the innermost knows best: a blob's digest beats the
// manifest's); nil stays nil.
func About(err error, ref, digest string) error {
	e := AsError(err)
	if e == nil {
		return nil
	}
	e.Reference = cmp.Or(e.Reference, ref)
	e.Digest = cmp.Or(e.Digest, digest)
	return e
}

// requestURL is the URL of the request that failed, redacted: the one the
// registry answered (transport.Error), else the one net/http could not
// complete (url.Error); "" when err names none.
func requestURL(err error) string {
	var te *transport.Error
	if errors.As(err, &te) && te.Request != nil && te.Request.URL != nil {
		return redact.URL(te.Request.URL.String())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return redact.URL(ue.URL)
	}
	return ""
}

// noSpace tells a full file system (or quota) from other local failures:
// the one a caller can fix by freeing space, and may want to catch.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func contextCode(err error) Code {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	}
	return ""
}

func classify(err error) Code {
	if c := contextCode(err); c != "" {
		return c
	}
	// A ping that tried https and then http reports both failures; the
	// certificate problem is the one the user must fix.
	if transfer.IsTLSError(err) || errtext.Of(err) == errtext.PlainHTTPAnswer {
		return CodeTLS
	}
	var mismatch *transfer.MismatchError
	if errors.As(err, &mismatch) {
		return CodeDigestMismatch
	}
	if errors.Is(err, transfer.ErrStalled) {
		return CodeNetwork
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return statusCode(te.StatusCode, registryCode(err))
	}
	var nameErr *name.ErrBadName
	if errors.As(err, &nameErr) {
		return CodeInvalidReference
	}
	var authErr *auth.Error
	if errors.As(err, &authErr) {
		return CodeCredentials
	}
	var cfgErr *netconf.ConfigError
	if errors.As(err, &cfgErr) {
		return CodeInvalidArgument
	}
	var plain *netconf.PlainHTTPError
	var redirect *netconf.RedirectError
	if errors.As(err, &plain) || errors.As(err, &redirect) {
		return CodeTLS // a refusal for the connection's safety, as an untrusted certificate is
	}
	var (
		pathErr    *fs.PathError
		netErr     net.Error
		syscallErr syscall.Errno
	)
	switch {
	case errors.As(err, &pathErr):
		// Before net.Error: a syscall.Errno inside a PathError looks like one.
		return CodeIO
	// A bare syscall.Errno satisfies net.Error too: only a real network
	// error (or a network errno) counts as one, other errnos are local.
	case errors.As(err, &netErr) && !isErrno(netErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		return CodeNetwork
	case errors.As(err, &syscallErr):
		return CodeIO
	}
	// What no type says: the messages package errtext knows.
	switch errtext.Of(err) {
	case errtext.ConnectionRefused:
		return CodeNetwork
	case errtext.DigestMismatch:
		return CodeDigestMismatch
	}
	return CodeInternal
}

func isErrno(err error) bool {
	_, ok := err.(syscall.Errno)
	return ok
}

func statusCode(status int, regCode string) Code {
	switch {
	case status == http.StatusUnauthorized && regCode == "DENIED":
		return CodeDenied
	case status == http.StatusUnauthorized:
		return CodeUnauthorized
	case status == http.StatusForbidden:
		return CodeDenied
	case status == http.StatusNotFound:
		return CodeNotFound
	case status == http.StatusTooManyRequests || regCode == "TOOMANYREQUESTS":
		return CodeTooManyRequests
	}
	return CodeRegistry
}

func status(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

func registryCode(err error) string {
	var te *transport.Error
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return string(te.Errors[0].Code)
	}
	return ""
}

// authFailure rewrites a 401 or 403 from the registry to say which login
// was refused and why in words: transport.Error prints the registry's
// detail as a Go map and names a URL the user did not type. The transport
// error stays in the chain, so the code and status are classified as
// before. It is nil for other errors.
func authFailure(registry string, cred auth.Credential, err error) *refusedError {
	var te *transport.Error
	if !errors.As(err, &te) || (te.StatusCode != http.StatusUnauthorized && te.StatusCode != http.StatusForbidden) {
		return nil
	}
	return &refusedError{login: "authenticating to " + registry + describeCred(cred), te: te}
}

// refusedError is a registry's refusal of a login.
type refusedError struct {
	login string
	te    *transport.Error
}

func (e *refusedError) Error() string { return e.login + ": " + describeRegistryError(e.te) }
func (e *refusedError) Unwrap() error { return e.te }

// describeRegistryError is the registry's answer as "CODE: message
// (detail)" for each error it sent, or the HTTP status when it sent none
// (a HEAD has no body).
func describeRegistryError(te *transport.Error) string {
	if len(te.Errors) == 0 {
		return fmt.Sprintf("the registry answered %d %s", te.StatusCode, http.StatusText(te.StatusCode))
	}
	parts := make([]string, 0, len(te.Errors))
	for _, d := range te.Errors {
		s := string(d.Code)
		if d.Message != "" {
			s += ": " + d.Message
		}
		if detail := describeDetail(d.Detail); detail != "" {
			s += " (" + detail + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// describeDetail renders a diagnostic's free-form detail. Registries
// running the distribution code send a list of access entries
// ({Type, Class, Name, Action}); those read as "repository org/model,
// action pull". Other objects read as "key value" pairs in key order.
func describeDetail(detail any) string {
	switch v := detail.(type) {
	case nil:
		return ""
	case string:
		return v
	case []any:
		parts := make([]string, 0, len(v))
		for _, item := range v {
			if s := describeDetail(item); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "; ")
	case map[string]any:
		var parts []string
		seen := map[string]bool{}
		typ, name := detailString(v, "type"), detailString(v, "name")
		if typ != "" && name != "" {
			parts = append(parts, typ+" "+name)
			seen["type"], seen["name"] = true, true
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			lk := strings.ToLower(k)
			if seen[lk] {
				continue
			}
			if s := describeDetail(v[k]); s != "" {
				parts = append(parts, lk+" "+s)
			}
		}
		return strings.Join(parts, ", ")
	}
	if b, err := json.Marshal(detail); err == nil {
		return string(b)
	}
	return fmt.Sprint(detail)
}

// detailString is the string under key, matched without regard to case
// (distribution sends "Type", others "type").
func detailString(m map[string]any, key string) string {
	for k, v := range m {
		if s, ok := v.(string); ok && strings.EqualFold(k, key) {
			return s
		}
	}
	return ""
}
