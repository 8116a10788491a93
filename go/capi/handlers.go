package capi

import (
	"context"

	"github.com/oci-client/liboci/oci"
)

// Common holds the settings every request carries. Env is the caller's
// whole environment at call time (see package envmap for why).
type Common struct {
	Reference          string            `json:"reference"`
	Env                map[string]string `json:"env"`
	CAFile             string            `json:"ca_file"`
	InsecureRegistries []string          `json:"insecure_registries"`
	UserAgent          string            `json:"user_agent"`
}

func (c Common) client() *oci.Client {
	env := c.Env
	if env == nil {
		// An explicit empty environment, never the one frozen at load time.
		env = map[string]string{}
	}
	opts := []oci.Option{oci.WithEnv(env), oci.WithCAFile(c.CAFile), oci.WithInsecureRegistries(c.InsecureRegistries...)}
	if c.UserAgent != "" {
		opts = append(opts, oci.WithUserAgent(c.UserAgent))
	}
	return oci.New(opts...)
}

// ManifestRequest is PullManifest's input.
type ManifestRequest struct {
	Common
}

// BlobRequest is PullBlob's input.
type BlobRequest struct {
	Common
	Digest string `json:"digest"`
	Path   string `json:"path"`
	// Size is the descriptor's size when known (0: unknown).
	Size int64 `json:"size"`
}

// AuthRequest is TestAuthentication's input.
type AuthRequest struct {
	Common
}

// PullManifest is the body of the PullManifest export.
func PullManifest(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r ManifestRequest) (*oci.Manifest, error) {
		return r.client().PullManifest(ctx, r.Reference)
	})
}

// PullBlob is the body of the PullBlob export.
func PullBlob(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r BlobRequest) (*oci.Blob, error) {
		return r.client().PullBlob(ctx, r.Reference, r.Digest, r.Path, oci.BlobOptions{Size: r.Size})
	})
}

// TestAuthentication is the body of the TestAuthentication export.
func TestAuthentication(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r AuthRequest) (*oci.AuthResult, error) {
		return r.client().CheckAuth(ctx, r.Reference)
	})
}
