package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// manifestJSON is an image manifest, or an OCI artifact manifest (blobs, no
// config), or an index sent where a manifest was expected (manifests).
type manifestJSON struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	ArtifactType  string          `json:"artifactType"`
	Config        *Descriptor     `json:"config"`
	Layers        []Descriptor    `json:"layers"`
	Blobs         []Descriptor    `json:"blobs"`
	Manifests     json.RawMessage `json:"manifests"`
}

// Parse reads an image manifest (raw bytes as served and the served media
// type) into a Model. KitOps ModelKits are better read with ParseWithConfig.
func Parse(raw []byte, mediaType string) (*Model, error) {
	return ParseWithConfig(raw, mediaType, nil)
}

// ParseWithConfig is Parse with the manifest's config blob, for the formats
// whose config says where files go; the others ignore it. For KitOps it
// names each layer after its path in the Kitfile, and places the layers of
// ModelKits packed before kit 0.5 (whose archive entries are relative to the
// layer's directory, not the model root); without it KitOps layers get
// generated names and are unpacked into the root.
func ParseWithConfig(raw []byte, mediaType string, config []byte) (*Model, error) {
	man, manifestType, err := decodeManifest(raw, mediaType)
	if err != nil {
		return nil, err
	}
	format, err := detectFormat(man)
	if err != nil {
		return nil, err
	}
	m := &Model{Format: format, ManifestType: manifestType, ArtifactType: man.ArtifactType}
	if man.Config != nil {
		m.Config = *man.Config
	}
	if format == FormatModelPack {
		m.weightExt = modelPackWeightExt(config)
	}
	var kit *kitfile
	if format == FormatKitOps && len(config) > 0 {
		if kit, err = parseKitfile(config); err != nil {
			return nil, err
		}
	}
	if err := m.addFiles(man.Layers, kit); err != nil {
		return nil, err
	}
	if len(m.Files) == 0 {
		return nil, fmt.Errorf("%w: %s manifest has no usable layer: %s", ErrNotModel, format, skipReasons(m.Skipped))
	}
	return m, nil
}

// modelPackWeightExt reads config.format of a ModelPack config: unnamed raw
// weights are files of that format, and loaders find them by extension.
func modelPackWeightExt(config []byte) string {
	var c struct {
		Config struct {
			Format string `json:"format"`
		} `json:"config"`
	}
	if json.Unmarshal(config, &c) == nil {
		switch f := strings.ToLower(c.Config.Format); f {
		case "safetensors", "gguf", "onnx", "dduf":
			return f
		}
	}
	return ""
}

// decodeManifest parses and validates the manifest's structure, and says
// which kind of manifest it is.
func decodeManifest(raw []byte, servedType string) (*manifestJSON, string, error) {
	var man manifestJSON
	if err := json.Unmarshal(raw, &man); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	served, body := baseType(servedType), baseType(man.MediaType)
	mt := body
	if mt == "" && isManifestType(served) {
		mt = served
	}
	if body != "" && isManifestType(served) && served != body {
		return nil, "", fmt.Errorf("%w: served as %s but says it is %s", ErrBadManifest, served, body)
	}
	if mt == "" && present(man.Manifests) && man.Layers == nil && man.Blobs == nil {
		mt = mtOCIIndex
	}
	switch mt {
	case "":
		// The image spec asks for the field (SHOULD) but does not require it.
		mt = mtOCIManifest
	case mtOCIManifest, mtDockerManifest, mtOCIArtifactManifest:
	case mtOCIIndex, mtDockerManifestList:
		return nil, "", fmt.Errorf("%w: %s is an index: select a manifest from it first", ErrBadManifest, mt)
	case mtDockerSchema1, mtDockerSchema1Signed:
		return nil, "", fmt.Errorf("%w: Docker schema 1 manifests are not supported", ErrBadManifest)
	default:
		return nil, "", fmt.Errorf("%w: unsupported manifest media type %q", ErrBadManifest, mt)
	}
	if mt == mtOCIArtifactManifest {
		if man.Config != nil || man.Layers != nil {
			return nil, "", fmt.Errorf("%w: an artifact manifest has blobs, not config and layers", ErrBadManifest)
		}
		man.Layers, man.Blobs = man.Blobs, nil
	} else {
		if man.SchemaVersion != 2 {
			return nil, "", fmt.Errorf("%w: schemaVersion %d, want 2", ErrBadManifest, man.SchemaVersion)
		}
		if man.Config == nil {
			return nil, "", fmt.Errorf("%w: no config descriptor", ErrBadManifest)
		}
		if err := checkDescriptor(*man.Config); err != nil {
			return nil, "", fmt.Errorf("%w: config: %v", ErrBadManifest, err)
		}
	}
	for i, l := range man.Layers {
		if err := checkDescriptor(l); err != nil {
			return nil, "", fmt.Errorf("%w: layer %d: %v", ErrBadManifest, i, err)
		}
	}
	if len(man.Layers) == 0 {
		return nil, "", fmt.Errorf("%w: the manifest has no layers", ErrNotModel)
	}
	return &man, mt, nil
}

func isManifestType(mt string) bool {
	switch mt {
	case mtOCIManifest, mtDockerManifest, mtOCIArtifactManifest, mtOCIIndex, mtDockerManifestList, mtDockerSchema1, mtDockerSchema1Signed:
		return true
	}
	return false
}

// IsIndex reports whether a manifest (raw bytes as served and the served
// media type) is an index or a Docker manifest list, to be resolved with
// SelectManifest before Parse. When the served type is none of the manifest
// types it goes by the body: its mediaType, else a "manifests" member.
func IsIndex(mediaType string, raw []byte) bool {
	switch mt := baseType(mediaType); mt {
	case mtOCIIndex, mtDockerManifestList:
		return true
	default:
		if isManifestType(mt) {
			return false
		}
	}
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Layers    json.RawMessage `json:"layers"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return false
	}
	switch mt := baseType(probe.MediaType); mt {
	case mtOCIIndex, mtDockerManifestList:
		return true
	case "":
		return present(probe.Manifests) && !present(probe.Layers)
	}
	return false
}

// present reports a JSON member that is there and not null.
func present(m json.RawMessage) bool {
	return len(m) > 0 && !bytes.Equal(m, []byte("null"))
}

// skipReasons says why layers were skipped, briefly: the first few reasons.
func skipReasons(skipped []Skipped) string {
	var reasons []string
	for i, s := range skipped {
		if i == 3 {
			reasons = append(reasons, fmt.Sprintf("and %d more", len(skipped)-i))
			break
		}
		reasons = append(reasons, s.Reason)
	}
	return strings.Join(reasons, "; ")
}
