// Package logs carries each call's logger in its context.
//
// Nothing here is global: two calls running at once each log into their own
// Recorder, and code whose context holds no logger gets one that discards,
// so a call that asked for no logs pays one Enabled check per log site (the
// way go-containerregistry's pkg/logs discards unless told otherwise). The
// Go side never calls back into its caller, so the records are collected
// per call and handed out with its progress and in its envelope.
package logs

import (
	"context"
	"log/slog"
	"net/url"
	"strings"

	"github.com/oci-client/liboci/internal/redact"
)

// AreaKey is the attribute naming the part of the library that logs
// ("http", "transfer", "oci", "cache", "pull"); the caller maps it to a
// logger of its own (Python: oci_client.<area>).
const AreaKey = "logger"

type ctxKey struct{}

var discard = slog.New(slog.DiscardHandler)

// With returns ctx carrying l.
func With(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// From returns the logger of the call ctx belongs to, for area, or one
// that discards.
func From(ctx context.Context, area string) *slog.Logger {
	l, _ := ctx.Value(ctxKey{}).(*slog.Logger)
	if l == nil {
		return discard
	}
	return l.With(AreaKey, area)
}

// Enabled reports whether ctx's logger takes records at level, so that a
// site can skip work (formatting a URL) no one will read.
func Enabled(ctx context.Context, level slog.Level) bool {
	l, _ := ctx.Value(ctxKey{}).(*slog.Logger)
	return l != nil && l.Enabled(ctx, level)
}

// URL is u for a log line: every query value and any password masked. A
// signed URL's query is its credential, and its parameter names vary by
// store (X-Amz-Signature, sig, Signature, token, Expires…), so none is kept.
func URL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	password := false
	if c.User != nil {
		if _, password = c.User.Password(); password {
			c.User = url.User(c.User.Username())
		}
	}
	if c.RawQuery != "" {
		parts := strings.Split(c.RawQuery, "&")
		for i, p := range parts {
			if k, _, ok := strings.Cut(p, "="); ok {
				parts[i] = k + "=" + redact.Mask
			}
		}
		c.RawQuery = strings.Join(parts, "&")
	}
	c.Fragment, c.RawFragment = "", ""
	s := c.String()
	if password {
		// Spliced in: as userinfo the mask would come out percent-encoded.
		s = strings.Replace(s, "@", ":"+redact.Mask+"@", 1)
	}
	return s
}

// RawURL is URL for a string; one that does not parse is dropped whole.
func RawURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return URL(u)
}
