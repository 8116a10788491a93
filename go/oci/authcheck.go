package oci

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/oci-client/liboci/mirrors"
)

// AuthResult tells what a successful check used, without secrets.
type AuthResult struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Anonymous  bool   `json:"anonymous"`
	// Source is the file or helper the credentials came from.
	Source string `json:"source,omitempty"`
	Digest string `json:"digest"`
}

// CheckAuth verifies against the registry that the current credentials can
// pull ref: it authenticates (Basic, or a bearer token for the repository's
// pull scope) and asks for the manifest's headers, which the registry
// answers only when pull access is granted.
func (c *Client) CheckAuth(ctx context.Context, ref string) (*AuthResult, error) {
	r, err := c.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	ctx = mirrors.Origin(ctx, c.mirrorSettings()) // the registry's own answer, never a mirror's
	s, err := c.open(ctx, r.Context())
	if err != nil {
		return nil, About(err, r.Name(), refDigest(r))
	}
	desc, err := remote.Head(r, s.remoteOptions(ctx)...)
	if err != nil {
		if rerr := authFailure(r.Context().RegistryStr(), s.cred, err); rerr != nil {
			return nil, About(fmt.Errorf("checking pull access to %s: %w", r, rerr), r.Name(), refDigest(r))
		}
		return nil, About(fmt.Errorf("checking pull access to %s%s: %w", r, describeCred(s.cred), err), r.Name(), refDigest(r))
	}
	return &AuthResult{
		Registry:   r.Context().RegistryStr(),
		Repository: r.Context().RepositoryStr(),
		Anonymous:  s.cred.Anonymous(),
		Source:     s.cred.Source,
		Digest:     desc.Digest.String(),
	}, nil
}
