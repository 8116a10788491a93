package transfer

import (
	"errors"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// source is where one download asks for its bytes. Registries often answer
// a blob GET with a redirect to a CDN or object store, with a signed URL
// that stays good for minutes (Docker Hub, GHCR, ECR, Harbor on S3). Once a
// request has been redirected, the download's later requests (the other
// chunks, resumes) go straight to where it ended: a round trip and a
// registry API call fewer per chunk, and no credentials sent anywhere new
// (the transport adds them by host, as for the redirect itself).
//
// When that URL stops working (its signature expired: the object store
// answers 400, 401, 403, 404 or 410), the request goes back to the registry
// once, which redirects again. Should two learned URLs in a row fail
// before either served a request of its own, the registry hands out
// single-use URLs: the download stops reusing them, or every chunk would
// pay for two requests.
type source struct {
	registry string

	mu       sync.Mutex
	resolved string // "" until a request is redirected
	reused   bool   // resolved has answered a request of its own
	strikes  int    // learned URLs in a row that failed before being reused
	off      bool   // learned URLs are not reused
}

// url is where the next request goes, and whether it is a learned URL.
func (s *source) url() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resolved != "" {
		return s.resolved, true
	}
	return s.registry, false
}

// answered records that a request for asked was answered by final (the
// URL after any redirects).
func (s *source) answered(asked, final string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.off:
	case final != asked:
		s.resolved, s.reused = final, false
	case asked != s.registry:
		s.strikes = 0
		if asked == s.resolved {
			s.reused = true
		}
	}
}

// reusing says whether learned URLs are still reused (false once the
// registry proved to hand out single-use ones).
func (s *source) reusing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.off
}

// failed records that the learned URL u answered with err; it reports
// whether the request should go back to the registry.
func (s *source) failed(u string, err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) || !expired(te.StatusCode) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u == s.resolved {
		if !s.reused {
			s.strikes++
			s.off = s.strikes >= 2
		}
		s.resolved = ""
	}
	return true
}

// expired says whether an object store's status can mean "this signed URL
// is no longer good": S3 and CloudFront say 403, GCS 400, others 401, 404
// or 410.
func expired(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone:
		return true
	}
	return false
}
