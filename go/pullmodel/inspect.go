package pullmodel

import (
	"context"
	"encoding/json"

	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
)

// Inspection is a model as its manifest and config describe it.
type Inspection struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	// ManifestDigest repeats Digest under the name the CLI's JSON and
	// ModelInfo document, so scripts need not know which digest Digest is.
	ManifestDigest  string       `json:"manifest_digest"`
	ConfigMediaType string       `json:"config_media_type"`
	Model           *model.Model `json:"model"`
	// Config is the config blob when it is JSON of at most 4 MiB.
	Config json.RawMessage `json:"config,omitempty"`
}

// Inspect resolves ref as Pull does and reads its config, fetching nothing
// else; what it fetches goes into the cache.
func Inspect(ctx context.Context, c *oci.Client, ref string, o Options) (*Inspection, error) {
	p, res, err := start(ctx, c, ref, o)
	if err != nil {
		return nil, err
	}
	out := &Inspection{Reference: p.repo.Digest(res.digest).String(), Digest: res.digest, MediaType: res.mediaType,
		ManifestDigest: res.digest, ConfigMediaType: res.model.Config.MediaType, Model: res.model}
	data := res.config
	if data == nil {
		if data, err = p.readConfig(ctx, res.model.Config); err != nil {
			return nil, err
		}
	}
	if json.Valid(data) {
		out.Config = data
	}
	return out, nil
}
