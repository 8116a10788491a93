package model

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Selector says which manifest of an index to take. Empty fields select
// nothing.
type Selector struct {
	// Platform is "os/arch[/variant]", e.g. "linux/arm64". Without a
	// variant any variant matches.
	Platform string
	// ArtifactType is the artifactType the index entry must carry.
	ArtifactType string
}

// SelectManifest picks the model manifest from an index (or Docker manifest
// list): the one matching sel when sel is given; else the only entry; else
// the only entry that looks like a model (its artifactType, or an annotation
// about its config or artifact type, names a model format). Attestation
// manifests (annotation "vnd.docker.reference.type": "attestation-manifest")
// and entries for platform "unknown/unknown" are never chosen.
func SelectManifest(raw []byte, sel Selector) (Descriptor, error) {
	var idx struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return Descriptor{}, fmt.Errorf("%w: index: %v", ErrBadManifest, err)
	}
	switch mt := baseType(idx.MediaType); mt {
	case "", mtOCIIndex, mtDockerManifestList:
	default:
		return Descriptor{}, fmt.Errorf("%w: %s is not an index", ErrBadManifest, mt)
	}
	if idx.SchemaVersion != 2 {
		return Descriptor{}, fmt.Errorf("%w: index schemaVersion %d, want 2", ErrBadManifest, idx.SchemaVersion)
	}
	for i, d := range idx.Manifests {
		if err := checkDescriptor(d); err != nil {
			return Descriptor{}, fmt.Errorf("%w: index entry %d: %v", ErrBadManifest, i, err)
		}
	}
	var want *Platform
	if sel.Platform != "" {
		p, err := parsePlatform(sel.Platform)
		if err != nil {
			return Descriptor{}, err
		}
		want = &p
	}

	var candidates []Descriptor
	for _, d := range idx.Manifests {
		if !isAttestation(d) && !isUnknownPlatform(d) {
			candidates = append(candidates, d)
		}
	}
	if len(candidates) == 0 {
		return Descriptor{}, fmt.Errorf("%w: the index lists no manifest but attestations (%d entries)", ErrNotModel, len(idx.Manifests))
	}
	if want != nil || sel.ArtifactType != "" {
		matched := keep(candidates, func(d Descriptor) bool {
			return (want == nil || platformMatches(*want, d.Platform)) &&
				(sel.ArtifactType == "" || d.ArtifactType == sel.ArtifactType)
		})
		switch len(matched) {
		case 1:
			return matched[0], nil
		case 0:
			return Descriptor{}, fmt.Errorf("%w: no manifest in the index matches %s; it lists %s", ErrAmbiguousIndex, describeSelector(sel), describe(candidates))
		default:
			return Descriptor{}, fmt.Errorf("%w: %d manifests match %s: %s", ErrAmbiguousIndex, len(matched), describeSelector(sel), describe(matched))
		}
	}
	if len(candidates) == 1 {
		return candidates[0], nil
	}
	models := keep(candidates, looksLikeModel)
	if len(models) == 1 {
		return models[0], nil
	}
	what := "manifests"
	if len(models) > 1 {
		candidates, what = models, "model manifests"
	}
	return Descriptor{}, fmt.Errorf("%w: the index lists %d %s; select one by platform, artifact type or digest: %s", ErrAmbiguousIndex, len(candidates), what, describe(candidates))
}

func keep(ds []Descriptor, ok func(Descriptor) bool) []Descriptor {
	var out []Descriptor
	for _, d := range ds {
		if ok(d) {
			out = append(out, d)
		}
	}
	return out
}

// isAttestation is BuildKit's marking of provenance and SBOM manifests.
func isAttestation(d Descriptor) bool {
	return d.Annotations["vnd.docker.reference.type"] == "attestation-manifest"
}

func isUnknownPlatform(d Descriptor) bool {
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

func looksLikeModel(d Descriptor) bool {
	if configFormat(d.ArtifactType) != "" {
		return true
	}
	for k, v := range d.Annotations {
		k = strings.ToLower(k)
		if (strings.Contains(k, "config") || strings.Contains(k, "artifact")) && configFormat(v) != "" {
			return true
		}
	}
	return false
}

func parsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" || (len(parts) == 3 && parts[2] == "") {
		return Platform{}, fmt.Errorf("%w: platform %q: want os/arch or os/arch/variant", ErrBadPattern, s)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return normalizePlatform(p), nil
}

// normalizePlatform spells a platform as the OCI image spec does, which is
// how indexes list them.
func normalizePlatform(p Platform) Platform {
	p.OS, p.Architecture, p.Variant = strings.ToLower(p.OS), strings.ToLower(p.Architecture), strings.ToLower(p.Variant)
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	}
	if p.Architecture == "arm64" && p.Variant == "v8" {
		p.Variant = ""
	}
	return p
}

func platformMatches(want Platform, have *Platform) bool {
	if have == nil {
		return false
	}
	h := normalizePlatform(*have)
	return want.OS == h.OS && want.Architecture == h.Architecture && (want.Variant == "" || want.Variant == h.Variant)
}

func describeSelector(sel Selector) string {
	var parts []string
	if sel.Platform != "" {
		parts = append(parts, "platform "+sel.Platform)
	}
	if sel.ArtifactType != "" {
		parts = append(parts, "artifact type "+sel.ArtifactType)
	}
	return strings.Join(parts, " and ")
}

// describe lists index entries as a user would pick one: by digest.
func describe(ds []Descriptor) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		var about []string
		if p := d.Platform; p != nil {
			s := p.OS + "/" + p.Architecture
			if p.Variant != "" {
				s += "/" + p.Variant
			}
			about = append(about, s)
		}
		if d.ArtifactType != "" {
			about = append(about, "artifactType "+d.ArtifactType)
		}
		if len(about) == 0 {
			about = append(about, "no platform or artifact type")
		}
		out[i] = fmt.Sprintf("%s (%s)", d.Digest, strings.Join(about, ", "))
	}
	return strings.Join(out, ", ")
}
