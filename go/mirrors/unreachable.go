package mirrors

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// WithoutOrigin is for a pull whose registry could not be reached for its
// login handshake: where mirrors are configured for it, t (the transport
// that routes to them) is returned ready for go-containerregistry, without
// a login, and the pull goes on with what the mirrors may serve (blobs and
// manifests by digest, tags where a host may resolve). Content stays
// checked as always. ok is false when ctx is no pull or nothing is
// configured.
func WithoutOrigin(ctx context.Context, repo name.Repository, t http.RoundTripper, scopes []string) (http.RoundTripper, bool) {
	p, c := pullFrom(ctx), callFrom(ctx)
	if p == nil || c == nil || p.origin {
		return nil, false
	}
	origin := repo.RegistryStr()
	if len(c.config(ctx, p.settings, origin, repo.RepositoryStr()).Mirrors) == 0 {
		return nil, false
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, authn.Anonymous, &pingless{origin: origin, scheme: repo.Scheme(), next: t}, scopes)
	if err != nil {
		return nil, false
	}
	key := "\x00unreachable:" + origin
	c.mu.Lock()
	first := !c.logged[key]
	c.logged[key] = true
	c.mu.Unlock()
	if first {
		logFrom(ctx).Warn("registry unreachable: pulling from its mirrors only", "registry", origin)
	}
	return rt, true
}

// pingless answers the registry's ping itself: the registry is down, and
// no login is needed for the mirrors.
type pingless struct {
	origin, scheme string
	next           http.RoundTripper
}

func (p *pingless) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.EqualFold(req.URL.Host, p.origin) && req.URL.Path == "/v2/" {
		if req.URL.Scheme != p.scheme {
			// go-containerregistry tries https first where http may do:
			// the answer must come for the scheme the registry's name gets.
			return nil, errors.New("registry unreachable")
		}
		return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: http.Header{}, Body: http.NoBody, Request: req, ProtoMajor: 1, ProtoMinor: 1}, nil
	}
	return p.next.RoundTrip(req)
}
