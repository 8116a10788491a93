package transfer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/internal/redact"
	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/transfer"
)

// logged returns a context whose call records at level, and a function
// that drains them as JSON lines (what leaves the library).
func logged(t *testing.T, level string) (context.Context, func() []string) {
	t.Helper()
	min, _, err := logs.ParseLevel(level)
	if err != nil {
		t.Fatal(err)
	}
	ctx, secrets := redact.WithSet(testCtx(t))
	rec := logs.NewRecorder(min, secrets)
	return logs.With(ctx, rec.Logger()), func() []string {
		var out []string
		for _, e := range rec.Drain() {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(e); err != nil {
				t.Fatal(err)
			}
			out = append(out, strings.TrimSpace(b.String()))
		}
		return out
	}
}

func loggingClient(t *testing.T) *http.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	policy := transfer.RetryPolicy{Attempts: 3, Base: time.Millisecond, Max: 2 * time.Millisecond, MaxRetryAfter: time.Second}
	return &http.Client{Transport: transfer.NewRetryTransport(transfer.NewLogTransport(tr), policy)}
}

func fetch(t *testing.T, ctx context.Context, c *http.Client, url string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func find(lines []string, substr string) string {
	for _, l := range lines {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return ""
}

func TestRetryIsLoggedWithReasonAndWait(t *testing.T) {
	t.Parallel()
	srv, _ := statusServer(t, []int{503, 429}, func(n int) http.Header {
		if n == 1 {
			return http.Header{"Retry-After": {"0"}}
		}
		return nil
	})
	ctx, drain := logged(t, "debug")
	fetch(t, ctx, loggingClient(t), srv.URL+"/v2/repo/blobs/x?sig=supersecret1&X-Amz-Signature=supersecret2")
	lines := drain()
	first := find(lines, `"reason":"503 Service Unavailable"`)
	if first == "" || !strings.Contains(first, `"msg":"retrying request"`) || !strings.Contains(first, `"wait":"`) || !strings.Contains(first, `"try":2,"of":3`) {
		t.Errorf("no retry record for the 503 in %v", lines)
	}
	if ra := find(lines, `"reason":"429 Too Many Requests"`); !strings.Contains(ra, `"wait":"0s"`) || !strings.Contains(ra, `"retry_after":true`) {
		t.Errorf("the Retry-After wait is not told: %q", ra)
	}
	// DEBUG: one request line per try, query values masked.
	if n := strings.Count(strings.Join(lines, "\n"), `"level":"DEBUG"`); n != 3 {
		t.Errorf("%d request lines, want 3: %v", n, lines)
	}
	if line := find(lines, " 200 OK"); !strings.Contains(line, "?sig=[REDACTED]&X-Amz-Signature=[REDACTED]") || !strings.Contains(line, `"logger":"http"`) {
		t.Errorf("request line %q", line)
	}
	for _, l := range lines {
		if strings.Contains(l, "supersecret") {
			t.Errorf("secret in %s", l)
		}
	}
}

func TestNothingBelowTheLevel(t *testing.T) {
	t.Parallel()
	srv, _ := statusServer(t, []int{503}, nil)
	ctx, drain := logged(t, "warning")
	fetch(t, ctx, loggingClient(t), srv.URL)
	if lines := drain(); len(lines) != 0 {
		t.Errorf("records below the level: %v", lines)
	}
	// No logger at all: the same requests work and nothing is kept anywhere.
	fetch(t, testCtx(t), loggingClient(t), srv.URL)
}

func TestRedirectIsLoggedMasked(t *testing.T) {
	t.Parallel()
	data := testutil.RandomBytes(t, 10_000)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		if strings.HasPrefix(r.URL.Path, "/v2/") {
			http.Redirect(w, r, "/storage/blob?X-Amz-Signature=signedsecret&X-Amz-Expires=300", http.StatusTemporaryRedirect)
			return true
		}
		return false
	})
	ctx, drain := logged(t, "info")
	dest := destIn(t)
	if _, err := transfer.Download(ctx, loggingClient(t), s.URL(), digestOf(data), transfer.File(dest), options(int64(len(data)))); err != nil {
		t.Fatal(err)
	}
	lines := drain()
	line := find(lines, `"msg":"redirected"`)
	if !strings.Contains(line, "/storage/blob?X-Amz-Signature=[REDACTED]&X-Amz-Expires=[REDACTED]") || !strings.Contains(line, `"status":307`) {
		t.Errorf("redirect record %q in %v", line, lines)
	}
	if strings.Contains(strings.Join(lines, "\n"), "signedsecret") {
		t.Errorf("signature in %v", lines)
	}
}

func TestRangeFallbackAndResumeLogged(t *testing.T) {
	t.Parallel()
	const size, chunk = 40_000, 4096
	data := testutil.RandomBytes(t, size)
	s := newBlobServer(t, data, func(s *blobServer, w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 {
			s.cut(w, r, 10_000, true) // the stream breaks once
			return true
		}
		status, h, body := answer(r, data, true)
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return true
	})
	o := options(size)
	o.Connections, o.ChunkSize = 4, chunk
	ctx, drain := logged(t, "info")
	if _, err := transfer.Download(ctx, httpClient(t), s.URL(), digestOf(data), transfer.File(destIn(t)), o); err != nil {
		t.Fatal(err)
	}
	lines := drain()
	want := fmt.Sprintf(`"blob":%q,"status":200`, digestOf(data).String)
	if line := find(lines, "registry ignores range requests"); !strings.Contains(line, want) {
		t.Errorf("no range fallback record in %v", lines)
	}
	if line := find(lines, "stream broke: resuming"); !strings.Contains(line, `"reason":`) || !strings.Contains(line, `"wait":`) {
		t.Errorf("no resume record in %v", lines)
	}
}
