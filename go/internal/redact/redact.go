// Package redact keeps credentials out of every message that leaves a call.
//
// Each call carries a Set in its context; code that learns a secret (a
// password from a helper, a token) adds it, and the envelope writer scrubs
// the final message. Known token shapes are scrubbed even when no one added
// them, since a registry may echo what it was sent.
package redact

import (
	"context"
	"encoding/base64"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Mask replaces what is hidden.
const Mask = "[REDACTED]"

// Set holds the secrets of one call.
type Set struct {
	mu      sync.Mutex
	secrets []string
}

type ctxKey struct{}

// WithSet returns ctx carrying a new Set, and the Set.
func WithSet(ctx context.Context) (context.Context, *Set) {
	s := &Set{}
	return context.WithValue(ctx, ctxKey{}, s), s
}

// Add records secrets on the Set in ctx, if there is one. Short values are
// ignored: masking "a" everywhere would wreck messages and hide nothing.
func Add(ctx context.Context, secrets ...string) {
	s, _ := ctx.Value(ctxKey{}).(*Set)
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range secrets {
		if len(v) >= 3 {
			s.secrets = append(s.secrets, v)
		}
	}
}

// AddBasic records a username/password pair and its base64 "auth" form.
func AddBasic(ctx context.Context, user, pass string) {
	if pass == "" {
		return
	}
	Add(ctx, pass, base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
}

var patterns = []struct {
	re   *regexp.Regexp
	repl string
}{
	// JSON Web Tokens, whatever carried them.
	{regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`), Mask},
	// Personal access tokens with well-known prefixes (Docker Hub, GitHub,
	// GitLab, Hugging Face) and AWS access key ids.
	{regexp.MustCompile(`\b(dckr_pat_|dckr_oat_|ghp_|gho_|ghs_|ghu_|github_pat_|glpat-|hf_)[A-Za-z0-9_-]{8,}`), Mask},
	{regexp.MustCompile(`\b(AKIA|ASIA)[A-Z0-9]{16}\b`), Mask},
	// Authorization header values.
	{regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`), "$1 " + Mask},
	// user:password@ in URLs.
	{regexp.MustCompile(`(://[^/\s:@]+):[^/\s@]+@`), "$1:" + Mask + "@"},
	// Signed-URL and token query parameters (S3, CDN redirects).
	{regexp.MustCompile(`(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|token|access_token|refresh_token|password|se|sp)=)[^&\s"]+`), "$1" + Mask},
}

// Scrub returns msg with the Set's secrets and known token shapes masked.
// A nil Set still masks the shapes.
func (s *Set) Scrub(msg string) string {
	if s != nil {
		s.mu.Lock()
		secrets := append([]string(nil), s.secrets...)
		s.mu.Unlock()
		// Longest first, so a secret containing another is masked whole.
		sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
		for _, v := range secrets {
			msg = strings.ReplaceAll(msg, v, Mask)
		}
	}
	for _, p := range patterns {
		msg = p.re.ReplaceAllString(msg, p.repl)
	}
	return msg
}

// queryAllowed are the query parameters of the registry protocol itself;
// any other came from somewhere else (a redirect to storage, a CDN) and may
// be a signature or a token. go-containerregistry keeps the same list.
var queryAllowed = map[string]bool{
	"scope": true, "service": true, "mount": true, "from": true, "digest": true, "n": true, "last": true,
}

// URL is raw without its user information and with the value of every query
// parameter outside the registry protocol masked, so that an error may say
// which request failed without handing on what signed it. What does not
// parse as a URL with a host gives "".
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" {
		q := u.Query()
		for k, vs := range q {
			if !queryAllowed[strings.ToLower(k)] {
				for i := range vs {
					vs[i] = Mask
				}
			}
		}
		// The mask unescaped: the URL is for people to read, and reads as the
		// message's own masks do.
		u.RawQuery = strings.ReplaceAll(q.Encode(), url.QueryEscape(Mask), Mask)
	}
	return u.String()
}
