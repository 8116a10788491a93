package model

import "fmt"

// detectFormat goes by the config media type, then the artifactType, then
// the first layer whose media type belongs to a format; failing those, any
// layer with a file name makes a plain artifact.
func detectFormat(man *manifestJSON) (string, error) {
	configType := ""
	if man.Config != nil {
		configType = man.Config.MediaType
	}
	if f := configFormat(configType); f != "" {
		return f, nil
	}
	if f := configFormat(man.ArtifactType); f != "" {
		return f, nil
	}
	for _, l := range man.Layers {
		if t, ok := classify(l.MediaType); ok {
			return t.family, nil
		}
	}
	for _, l := range man.Layers {
		if layerName(l) != "" {
			return FormatArtifact, nil
		}
	}
	switch baseType(configType) {
	case mtDockerImageConfig, mtOCIImageConfig:
		return "", fmt.Errorf("%w: this is a container image (config %s), not a model artifact", ErrNotModel, configType)
	}
	what := configType
	if man.ArtifactType != "" {
		what = man.ArtifactType
	}
	return "", fmt.Errorf("%w: no layer of %q is a model file or has a file name", ErrNotModel, what)
}

// layerName is the file name a layer's annotations give, raw.
func layerName(l Descriptor) string {
	for _, key := range []string{annotationFilepath, annotationLegacyFP, annotationTitle} {
		if p := l.Annotations[key]; p != "" {
			return p
		}
	}
	return ""
}
