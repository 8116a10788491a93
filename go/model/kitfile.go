package model

import (
	"encoding/json"
	"fmt"
	"path"

	"github.com/oci-client/liboci/internal/safepath"
)

// kitfile is the part of a KitOps config (the Kitfile as JSON, kitops
// pkg/artifact/kitfile.go) that says where each layer goes. Kit matches
// layers to its entries by order within each layer type (pkg/cmd/unpack).
type kitfile struct {
	Model *struct {
		kitEntry
		Parts []kitEntry `json:"parts"`
	} `json:"model"`
	Code     []kitEntry `json:"code"`
	DataSets []kitEntry `json:"datasets"`
	Docs     []kitEntry `json:"docs"`

	seen map[string]int
}

type kitEntry struct {
	Path string `json:"path"`
	// Digest and DiffID are recorded since kit 0.5, which also changed tar
	// entries from relative to the parent of Path to relative to the root.
	Digest string `json:"digest"`
	DiffID string `json:"diffId"`
}

func parseKitfile(config []byte) (*kitfile, error) {
	k := &kitfile{seen: map[string]int{}}
	if err := json.Unmarshal(config, k); err != nil {
		return nil, fmt.Errorf("%w: KitOps config: %v", ErrBadManifest, err)
	}
	return k, nil
}

// place says where the next layer of a KitOps layer type goes: its clean
// path in the Kitfile ("" if none) and the directory its entries are
// relative to.
func (k *kitfile) place(base, digest string) (string, string, error) {
	var entries []kitEntry
	switch base {
	case "model":
		// Kit reads every model layer against the one model entry.
		if k.Model != nil {
			entries = []kitEntry{k.Model.kitEntry}
		}
		k.seen[base] = 0
	case "modelpart":
		if k.Model != nil {
			entries = k.Model.Parts
		}
	case "code":
		entries = k.Code
	case "dataset":
		entries = k.DataSets
	case "docs":
		entries = k.Docs
	default:
		return "", "", nil
	}
	n := k.seen[base]
	k.seen[base]++
	if n >= len(entries) {
		return "", "", fmt.Errorf("%s layer %d has no entry in the Kitfile, which lists %d", base, n+1, len(entries))
	}
	e := entries[n]
	if e.Digest != "" && e.Digest != digest {
		return "", "", fmt.Errorf("the Kitfile gives this %s layer digest %s", base, e.Digest)
	}
	if e.Path == "" {
		return "", "", nil
	}
	p, err := safepath.Clean(e.Path)
	if err != nil {
		return "", "", fmt.Errorf("path in the Kitfile: %w", err)
	}
	extractTo := ""
	if e.Digest == "" && e.DiffID == "" {
		if extractTo = path.Dir(p); extractTo == "." {
			extractTo = ""
		}
	}
	return p, extractTo, nil
}
