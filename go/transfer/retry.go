package transfer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/errtext"
	"github.com/oci-client/liboci/internal/events"
	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/netconf"
)

// RetryPolicy bounds how often and how long requests are retried.
type RetryPolicy struct {
	// Attempts is the total number of tries of one request (>= 1).
	Attempts int
	// Base is the first backoff; each retry doubles it, up to Max.
	Base time.Duration
	Max  time.Duration
	// MaxRetryAfter caps a server's Retry-After: a registry asking for an
	// hour should fail the call now rather than hang it.
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy: 5 tries over about 4 s of backoff, Retry-After up to 60 s.
var DefaultRetryPolicy = RetryPolicy{Attempts: 5, Base: 250 * time.Millisecond, Max: 10 * time.Second, MaxRetryAfter: 60 * time.Second}

// Backoff returns the wait before retry number n (1-based), with jitter so
// that parallel clients do not retry in lockstep.
func (p RetryPolicy) Backoff(n int) time.Duration {
	d := p.Base << max(0, n-1)
	if d > p.Max || d <= 0 {
		d = p.Max
	}
	return d/2 + rand.N(d/2+1)
}

// RetryStatus reports whether an HTTP status is worth retrying.
func RetryStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, 522:
		return true
	}
	return false
}

// IsTLSError reports a certificate or TLS protocol failure: the kind of
// error that retrying will not fix and that the user must.
func IsTLSError(err error) bool {
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
		verifyErr *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
		alertErr  tls.AlertError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &certErr) ||
		errors.As(err, &verifyErr) || errors.As(err, &recordErr) || errors.As(err, &alertErr) ||
		RemoteTLSAlert(err)
}

// RemoteTLSAlert reports whether the server ended the TLS handshake with an
// alert (over TCP crypto/tls reports one as a net.OpError "remote error",
// its alert type unexported): a registry that wants a client certificate
// answers "bad certificate" or "certificate required" so.
func RemoteTLSAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// Transient reports whether a transport error may go away on retry: resets,
// refusals and timeouts may; certificate and protocol mismatches will not.
func Transient(err error) bool {
	if err == nil || IsTLSError(err) {
		return false
	}
	var plain *netconf.PlainHTTPError
	if errors.As(err, &plain) {
		return false
	}
	// A name that does not exist will not exist a second later; a
	// resolver that timed out or failed may answer next time.
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return false
	}
	switch errtext.Of(err) {
	case errtext.PlainHTTPAnswer, errtext.UnsupportedScheme:
		return false
	}
	return true
}

// RetryAfter parses a Retry-After header (seconds or an HTTP date).
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// Sleep waits d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryTransport retries idempotent requests that fail before a response
// arrives, or that get a retryable status, honouring Retry-After. Failures
// after the body has started are the downloader's business (it resumes).
type retryTransport struct {
	inner  http.RoundTripper
	policy RetryPolicy
}

// NewRetryTransport wraps inner with policy.
func NewRetryTransport(inner http.RoundTripper, policy RetryPolicy) http.RoundTripper {
	if policy.Attempts < 1 {
		policy.Attempts = 1
	}
	return &retryTransport{inner: inner, policy: policy}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return t.inner.RoundTrip(req)
	}
	ctx := req.Context()
	for attempt := 1; ; attempt++ {
		resp, err := t.inner.RoundTrip(req)
		retryable := (err != nil && Transient(err)) || (err == nil && RetryStatus(resp.StatusCode))
		if !retryable || attempt >= t.policy.Attempts || ctx.Err() != nil {
			return resp, err
		}
		wait, retryAfter, asked := t.policy.Backoff(attempt), false, false
		if resp != nil {
			asked = resp.StatusCode == http.StatusTooManyRequests || resp.Header.Get("Retry-After") != ""
			if ra, ok := RetryAfter(resp.Header, time.Now()); ok {
				if ra > t.policy.MaxRetryAfter {
					// Waiting that long would hang the call: give the answer back now.
					logs.From(ctx, "transfer").Info("not retrying: Retry-After is too long",
						"method", req.Method, "url", logs.URL(req.URL), "status", resp.StatusCode,
						"retry_after", ra, "most", t.policy.MaxRetryAfter)
					return resp, nil
				}
				wait, retryAfter = ra, true
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		logRetry(ctx, req, resp, err, wait, retryAfter, attempt, t.policy.Attempts)
		w, _ := ctx.Value(waitsKey{}).(*Waits)
		if !asked {
			w = nil
		}
		w.begin()
		err = pausingWatchdog(ctx, wait)
		w.end()
		if err != nil {
			return nil, err
		}
	}
}

// logRetry says why a request is tried again and after how long, in the
// logs and as a blob_retried event.
func logRetry(ctx context.Context, req *http.Request, resp *http.Response, err error, wait time.Duration, retryAfter bool, attempt, attempts int) {
	if !events.Wanted(ctx) {
		return
	}
	reason := ""
	if err != nil {
		reason = Reason(err)
	} else {
		reason = resp.Status
	}
	args := []any{"method", req.Method, "url", logs.URL(req.URL), "reason", reason, "wait", wait.Round(time.Millisecond), "try", attempt + 1, "of", attempts}
	if retryAfter {
		args = append(args, "retry_after", true)
	}
	events.Log(ctx, "transfer", "retrying request", abi.BlobRetried{
		Digest: events.DigestInURL(req.URL), Reason: reason, WaitMS: wait.Milliseconds(),
		Attempt: attempt + 1, Attempts: attempts, RetryAfter: retryAfter,
	}, args...)
}

type waitsKey struct{}

// Waits counts a call's requests that wait because the registry asked them
// to (429, or an answer with Retry-After): how many wait now, and how many
// such waits have begun. A pull's connection tuner must not decide on a rate
// measured while one was under way: it would read the wait as connections
// too slow and open more, asking more of a registry that asked for less.
type Waits struct{ now, began atomic.Int64 }

// WithWaits gives ctx a Waits that the retry transport keeps.
func WithWaits(ctx context.Context) (context.Context, *Waits) {
	w := new(Waits)
	return context.WithValue(ctx, waitsKey{}, w), w
}

// Since reports whether a wait is under way, or one began since the count
// in *seen, which it brings up to date.
func (w *Waits) Since(seen *int64) bool {
	began := w.began.Load()
	busy := w.now.Load() > 0 || began != *seen
	*seen = began
	return busy
}

func (w *Waits) begin() {
	if w != nil {
		w.began.Add(1)
		w.now.Add(1)
	}
}

func (w *Waits) end() {
	if w != nil {
		w.now.Add(-1)
	}
}

type watchdogKey struct{}

// pausingWatchdog sleeps with the caller's stall watchdog (if any) paused:
// waiting out a Retry-After is not a stalled stream.
func pausingWatchdog(ctx context.Context, d time.Duration) error {
	if w, ok := ctx.Value(watchdogKey{}).(*watchdog); ok {
		w.timer.Stop()
		defer w.timer.Reset(w.timeout)
	}
	return Sleep(ctx, d)
}
