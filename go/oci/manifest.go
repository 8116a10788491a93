package oci

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/oci-client/liboci/mirrors"
)

// Manifest is a manifest or index exactly as the registry served it.
type Manifest struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
	// Raw holds the bytes as served; the digest is computed over them.
	Raw []byte `json:"raw"`
}

// PullManifest fetches the manifest or index that ref (a tag or digest)
// names. A digest reference is verified against the bytes received.
func (c *Client) PullManifest(ctx context.Context, ref string) (*Manifest, error) {
	r, err := c.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	_, pinned := r.(name.Digest)
	ctx = mirrors.Begin(ctx, c.mirrorSettings(), pinned)
	s, err := c.open(ctx, r.Context())
	if err != nil {
		return nil, About(err, r.Name(), refDigest(r))
	}
	desc, err := remote.Get(r, s.remoteOptions(ctx)...)
	if err != nil {
		return nil, About(fmt.Errorf("fetching manifest %s: %w", r, s.refused(err)), r.Name(), refDigest(r))
	}
	return &Manifest{
		Reference: r.Name(),
		Digest:    desc.Digest.String(),
		MediaType: string(desc.MediaType),
		Size:      desc.Size,
		Raw:       desc.Manifest,
	}, nil
}

// refDigest is the digest r pins, "" for a tag.
func refDigest(r name.Reference) string {
	if d, ok := r.(name.Digest); ok {
		return d.DigestStr()
	}
	return ""
}
