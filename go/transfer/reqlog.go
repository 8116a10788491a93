package transfer

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/events"
	"github.com/oci-client/liboci/internal/logs"
)

// logTransport logs each request that reaches the network, at DEBUG, as
// METHOD URL STATUS duration (URLs masked by logs.URL, no header or body
// ever), and each redirect answered, at INFO: a registry that sends its
// blobs to a CDN or object store is the first thing to know about a slow
// pull. It sits under the retry transport, so every try has its line.
type logTransport struct{ inner http.RoundTripper }

// NewLogTransport wraps inner with request lines and redirect records for
// the logger in each request's context.
func NewLogTransport(inner http.RoundTripper) http.RoundTripper { return &logTransport{inner} }

func (t *logTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if !events.Wanted(ctx) {
		return t.inner.RoundTrip(req)
	}
	start := time.Now()
	resp, err := t.inner.RoundTrip(req)
	took := time.Since(start).Round(time.Millisecond)
	l := logs.From(ctx, "http")
	if l.Enabled(ctx, slog.LevelDebug) {
		if err != nil {
			l.Debug(req.Method+" "+logs.URL(req.URL)+" failed", "took", took, "error", Reason(err))
		} else {
			l.Debug(req.Method+" "+logs.URL(req.URL)+" "+resp.Status, "took", took)
		}
	}
	if err == nil && isRedirect(resp.StatusCode) {
		if loc, lerr := resp.Location(); lerr == nil {
			events.Log(ctx, "http", "redirected", abi.RedirectFollowed{FromHost: events.Host(req.URL), ToHost: events.Host(loc), Status: resp.StatusCode},
				"from", logs.URL(req.URL), "to", logs.URL(loc), "status", resp.StatusCode)
		}
	}
	return resp, err
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// Reason is err's text for a log line, with the URL net/http puts in it
// masked: it may be a signed one, whose query is the credential.
func Reason(err error) string {
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		msg = strings.ReplaceAll(msg, ue.URL, logs.RawURL(ue.URL))
	}
	return msg
}
