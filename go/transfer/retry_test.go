package transfer_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/netconf"
	"github.com/oci-client/liboci/transfer"
)

// countingTransport counts round trips to the network.
type countingTransport struct {
	inner http.RoundTripper
	n     atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.inner.RoundTrip(r)
}

func retryClient(t *testing.T, policy transfer.RetryPolicy) (*http.Client, *countingTransport) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	ct := &countingTransport{inner: tr}
	return &http.Client{Transport: transfer.NewRetryTransport(ct, policy)}, ct
}

// statusServer answers the first len(statuses) requests with those
// statuses (and headers), then 200 "ok".
func statusServer(t *testing.T, statuses []int, header func(n int) http.Header) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1) - 1)
		if i < len(statuses) {
			if header != nil {
				for k, v := range header(i) {
					w.Header()[k] = v
				}
			}
			w.WriteHeader(statuses[i])
			fmt.Fprintf(w, "answer %d", i)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func get(t *testing.T, c *http.Client, method, url string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, string(b), nil
}

func TestRetryTransportRetryableStatuses(t *testing.T) {
	t.Parallel()
	for _, status := range []int{408, 429, 500, 502, 503, 504, 522} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			srv, n := statusServer(t, []int{status}, nil)
			c, _ := retryClient(t, testPolicy)
			resp, body, err := get(t, c, http.MethodGet, srv.URL)
			if err != nil || resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("%v %v %q", resp, err, body)
			}
			if n.Load() != 2 {
				t.Errorf("%d requests, want 2", n.Load())
			}
		})
	}
}

func TestRetryTransportGivesUpAfterAttempts(t *testing.T) {
	t.Parallel()
	srv, n := statusServer(t, []int{503, 503, 503, 503, 503}, nil)
	c, _ := retryClient(t, testPolicy)
	resp, body, err := get(t, c, http.MethodGet, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// The last answer comes back intact for the caller to classify.
	if resp.StatusCode != 503 || body != "answer 2" {
		t.Errorf("got %d %q, want the third 503", resp.StatusCode, body)
	}
	if n.Load() != int64(testPolicy.Attempts) {
		t.Errorf("%d requests, want %d", n.Load(), testPolicy.Attempts)
	}
}

func TestRetryTransportNotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method string
		status int
	}{
		{http.MethodPost, 503}, {http.MethodPut, 503}, {http.MethodPatch, 500}, {http.MethodDelete, 502},
		{http.MethodGet, 404}, {http.MethodGet, 401}, {http.MethodGet, 403}, {http.MethodGet, 416}, {http.MethodGet, 501},
	} {
		t.Run(fmt.Sprintf("%s %d", tc.method, tc.status), func(t *testing.T) {
			t.Parallel()
			srv, n := statusServer(t, []int{tc.status}, nil)
			c, _ := retryClient(t, testPolicy)
			resp, _, err := get(t, c, tc.method, srv.URL)
			if err != nil || resp.StatusCode != tc.status {
				t.Fatalf("%v %v", resp, err)
			}
			if n.Load() != 1 {
				t.Errorf("%d requests, want 1", n.Load())
			}
		})
	}
}

func TestRetryTransportHEADRetried(t *testing.T) {
	t.Parallel()
	srv, n := statusServer(t, []int{503}, nil)
	c, _ := retryClient(t, testPolicy)
	resp, _, err := get(t, c, http.MethodHead, srv.URL)
	if err != nil || resp.StatusCode != 200 || n.Load() != 2 {
		t.Fatalf("%v %v, %d requests", resp, err, n.Load())
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	srv, n := statusServer(t, []int{429}, func(int) http.Header { return http.Header{"Retry-After": {"1"}} })
	c, _ := retryClient(t, testPolicy)
	start := time.Now()
	resp, _, err := get(t, c, http.MethodGet, srv.URL)
	el := time.Since(start)
	if err != nil || resp.StatusCode != 200 || n.Load() != 2 {
		t.Fatalf("%v %v, %d requests", resp, err, n.Load())
	}
	if el < 900*time.Millisecond || el > 1900*time.Millisecond {
		t.Errorf("waited %v for Retry-After: 1", el)
	}
}

func TestRetryAfterDate(t *testing.T) {
	t.Parallel()
	srv, n := statusServer(t, []int{503}, func(int) http.Header {
		// HTTP dates have whole seconds: this asks for a wait in (1 s, 2 s].
		return http.Header{"Retry-After": {time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)}}
	})
	c, _ := retryClient(t, testPolicy)
	start := time.Now()
	resp, _, err := get(t, c, http.MethodGet, srv.URL)
	el := time.Since(start)
	if err != nil || resp.StatusCode != 200 || n.Load() != 2 {
		t.Fatalf("%v %v, %d requests", resp, err, n.Load())
	}
	if el < 800*time.Millisecond || el > 2600*time.Millisecond {
		t.Errorf("waited %v for a Retry-After date 2 s ahead", el)
	}
}

func TestRetryAfterAboveCapReturnsAtOnce(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"3600", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)} {
		srv, n := statusServer(t, []int{429, 429}, func(int) http.Header { return http.Header{"Retry-After": {v}} })
		c, _ := retryClient(t, testPolicy)
		start := time.Now()
		resp, body, err := get(t, c, http.MethodGet, srv.URL)
		if err != nil || resp.StatusCode != 429 || body != "answer 0" {
			t.Fatalf("Retry-After %s: %v %v %q, want the first 429 with its body", v, resp, err, body)
		}
		if n.Load() != 1 {
			t.Errorf("Retry-After %s: %d requests", v, n.Load())
		}
		if el := time.Since(start); el > 500*time.Millisecond {
			t.Errorf("Retry-After %s: took %v", v, el)
		}
	}
}

func TestRetryAfterUnparsableUsesBackoff(t *testing.T) {
	t.Parallel()
	srv, n := statusServer(t, []int{429, 429}, func(int) http.Header { return http.Header{"Retry-After": {"soon"}} })
	c, _ := retryClient(t, testPolicy)
	start := time.Now()
	resp, _, err := get(t, c, http.MethodGet, srv.URL)
	if err != nil || resp.StatusCode != 200 || n.Load() != 3 {
		t.Fatalf("%v %v, %d requests", resp, err, n.Load())
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("took %v", el)
	}
}

func TestRetryTransportContextEndsWait(t *testing.T) {
	t.Parallel()
	srv, n := statusServer(t, []int{429}, func(int) http.Header { return http.Header{"Retry-After": {"2"}} })
	c, _ := retryClient(t, testPolicy)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	start := time.Now()
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("no error")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("took %v to notice the context ended", el)
	}
	if n.Load() != 1 {
		t.Errorf("%d requests", n.Load())
	}
}

func TestRetryTransportConnectionRefused(t *testing.T) {
	t.Parallel()
	c, ct := retryClient(t, testPolicy)
	_, _, err := get(t, c, http.MethodGet, "http://"+testutil.FreePort(t)+"/v2/")
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want connection refused", err)
	}
	if !transfer.Transient(err) {
		t.Error("connection refused is not transient")
	}
	if ct.n.Load() != int64(testPolicy.Attempts) {
		t.Errorf("%d attempts, want %d", ct.n.Load(), testPolicy.Attempts)
	}
}

func TestRetryTransportConnectionResetRetried(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.(*net.TCPConn).SetLinger(0) // RST
			conn.Close()
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	c, _ := retryClient(t, testPolicy)
	resp, body, err := get(t, c, http.MethodGet, srv.URL)
	if err != nil || body != "ok" {
		t.Fatalf("%v %v %q", resp, err, body)
	}
	if n.Load() != 2 {
		t.Errorf("%d requests", n.Load())
	}
}

func TestRetryTransportTLSNotRetried(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are the point
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	t.Cleanup(plain.Close)
	for _, tc := range []struct {
		name, url string
		check     func(error) bool
	}{
		{"unknown authority", tlsSrv.URL, func(err error) bool {
			var v *tls.CertificateVerificationError
			var ua x509.UnknownAuthorityError
			return errors.As(err, &v) && errors.As(err, &ua)
		}},
		{"plain HTTP server", strings.Replace(plain.URL, "http://", "https://", 1), func(err error) bool {
			return strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
		}},
		{"unsupported scheme", "ftp://" + plain.Listener.Addr().String() + "/", func(err error) bool {
			return strings.Contains(err.Error(), "unsupported protocol scheme")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ct := retryClient(t, testPolicy)
			_, _, err := get(t, c, http.MethodGet, tc.url)
			if err == nil || !tc.check(err) {
				t.Fatalf("err = %v", err)
			}
			if transfer.Transient(err) {
				t.Errorf("%v counted as transient", err)
			}
			if ct.n.Load() != 1 {
				t.Errorf("%d attempts, want 1", ct.n.Load())
			}
		})
	}
	if n.Load() != 0 {
		t.Errorf("%d requests reached a handler", n.Load())
	}
}

func TestRetryTransportMinimumOneAttempt(t *testing.T) {
	t.Parallel()
	srv, n := statusServer(t, []int{503, 503}, nil)
	c, _ := retryClient(t, transfer.RetryPolicy{})
	resp, _, err := get(t, c, http.MethodGet, srv.URL)
	if err != nil || resp.StatusCode != 503 || n.Load() != 1 {
		t.Fatalf("%v %v, %d requests", resp, err, n.Load())
	}
}

func TestRetryStatus(t *testing.T) {
	t.Parallel()
	retry := map[int]bool{408: true, 429: true, 500: true, 502: true, 503: true, 504: true, 522: true}
	for code := 100; code < 600; code++ {
		if got := transfer.RetryStatus(code); got != retry[code] {
			t.Errorf("RetryStatus(%d) = %v", code, got)
		}
	}
}

func TestRetryAfterParsing(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Sunday, 01-Jun-25 12:00:30 GMT", 30 * time.Second, true}, // RFC 850
	} {
		h := http.Header{}
		if tc.v != "" {
			h.Set("Retry-After", tc.v)
		}
		got, ok := transfer.RetryAfter(h, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	for _, p := range []transfer.RetryPolicy{testPolicy, transfer.DefaultRetryPolicy, {Attempts: 3, Base: time.Second, Max: time.Second}} {
		for n := 0; n <= 200; n++ {
			ceil := p.Base << max(0, n-1)
			if n > 40 || ceil > p.Max || ceil <= 0 {
				ceil = p.Max
			}
			for range 20 {
				d := p.Backoff(n)
				if d < ceil/2 || d > ceil || d > p.Max {
					t.Fatalf("%+v: Backoff(%d) = %v, want within [%v, %v]", p, n, d, ceil/2, ceil)
				}
			}
		}
	}
	// Jitter: not every wait is the same.
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[transfer.DefaultRetryPolicy.Backoff(3)] = true
	}
	if len(seen) < 2 {
		t.Error("Backoff has no jitter")
	}
	if d := (transfer.RetryPolicy{}).Backoff(1); d != 0 {
		t.Errorf("zero policy: Backoff = %v", d)
	}
}

func TestTransient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{io.ErrUnexpectedEOF, true},
		{syscall.ECONNRESET, true},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{transfer.ErrStalled, true},
		{x509.UnknownAuthorityError{}, false},
		{fmt.Errorf("get: %w", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "h"}), false},
		{x509.CertificateInvalidError{Reason: x509.Expired}, false},
		{&tls.CertificateVerificationError{Err: errors.New("x")}, false},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, false},
		{errors.New("http: server gave HTTP response to HTTPS client"), false},
		{errors.New(`unsupported protocol scheme "ftp"`), false},
		{fmt.Errorf("get: %w", &netconf.PlainHTTPError{Host: "h"}), false},
		{&url.Error{Op: "Get", URL: "https://r.invalid/v2/", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "r.invalid", IsNotFound: true}}}, false},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Err: "i/o timeout", Name: "r.example", IsTimeout: true}}, true},
		{&net.DNSError{Err: "server misbehaving", Name: "r.example", IsTemporary: true}, true},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, false},
	} {
		if got := transfer.Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v", tc.err, got)
		}
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	if err := transfer.Sleep(context.Background(), 0); err != nil {
		t.Error(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := transfer.Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(0) on a cancelled context = %v", err)
	}
	start := time.Now()
	if err := transfer.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Error("Sleep ignored the cancelled context")
	}
	start = time.Now()
	if err := transfer.Sleep(context.Background(), 30*time.Millisecond); err != nil || time.Since(start) < 30*time.Millisecond {
		t.Errorf("Sleep = %v after %v", err, time.Since(start))
	}
}

func TestRetryAfterWaitIsNotAStall(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	data := []byte("patience pays")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	dest := filepath.Join(t.TempDir(), "blob")
	client := &http.Client{Transport: transfer.NewRetryTransport(http.DefaultTransport, transfer.RetryPolicy{Attempts: 3, Base: 10 * time.Millisecond, Max: 50 * time.Millisecond, MaxRetryAfter: 2 * time.Second})}
	_, err := transfer.Download(context.Background(), client, srv.URL, digestOf(data), transfer.File(dest), transfer.Options{ReadTimeout: 300 * time.Millisecond, Resumes: 1})
	if err != nil {
		t.Fatalf("a Retry-After longer than the read timeout failed the call: %v", err)
	}
	if got, _ := os.ReadFile(dest); string(got) != string(data) {
		t.Fatalf("got %q", got)
	}
}

// A request that waits because the registry asked counts as a wait while
// it waits; one that merely failed does not.
func TestRetryTransportCountsWaitsTheRegistryAskedFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		waits  int64
	}{
		{"429", 429, nil, 1},
		{"503 with Retry-After", 503, http.Header{"Retry-After": {"1"}}, 1},
		{"503", 503, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := statusServer(t, []int{tc.status}, func(int) http.Header { return tc.header })
			c, _ := retryClient(t, testPolicy)
			ctx, waits := transfer.WithWaits(testCtx(t))
			var seen int64
			busy := make(chan bool, 1)
			go func() {
				// Retry-After: 1 holds the request a second: seen while it lasts;
				// the others' waits are over by then, and seen as begun.
				time.Sleep(300 * time.Millisecond)
				busy <- waits.Since(&seen)
			}()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			resp, err := c.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%v %v", resp, err)
			}
			resp.Body.Close()
			if during := <-busy; during != (tc.waits > 0) {
				t.Errorf("seen waiting during the request: %v", during)
			}
			seen = 0
			if got := waits.Since(&seen); got != (tc.waits > 0) || seen != tc.waits {
				t.Errorf("waits begun %d (since: %v), want %d", seen, got, tc.waits)
			}
			if waits.Since(&seen) {
				t.Error("a wait still counted as under way after the request")
			}
		})
	}
}
