package cache

import "encoding/json"

// childDigests lists the manifests an index names (none for a manifest).
func childDigests(raw []byte) []string {
	var idx struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if json.Unmarshal(raw, &idx) != nil {
		return nil
	}
	out := make([]string, 0, len(idx.Manifests))
	for _, m := range idx.Manifests {
		out = append(out, m.Digest)
	}
	return out
}
