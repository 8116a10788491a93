package model

import (
	"path"
	"strings"
)

// What a publisher writes: the same names Parse reads, so that what is
// pushed pulls back through the same tables.
const (
	MediaTypeOCIManifest  = mtOCIManifest
	ModelPackArtifactType = mpArtifactType
	ModelPackConfig       = mpConfig
	DockerConfigV02       = dmrConfigPrefix + "v0.2+json"
	AnnotationFilepath    = annotationFilepath
	AnnotationTitle       = annotationTitle
)

// weightExts are the files that hold weights, whatever the framework.
var weightExts = map[string]bool{
	".safetensors": true, ".gguf": true, ".bin": true, ".pt": true, ".pth": true, ".ckpt": true,
	".h5": true, ".msgpack": true, ".onnx": true, ".dduf": true, ".tflite": true, ".npz": true,
	".pb": true, ".mlmodel": true, ".engine": true, ".plan": true,
}

var docExts = map[string]bool{".md": true, ".rst": true, ".pdf": true, ".html": true}

var codeExts = map[string]bool{".py": true, ".ipynb": true, ".sh": true, ".js": true, ".ts": true, ".go": true, ".rs": true, ".c": true, ".cpp": true, ".h": true}

// bigFile is the size from which a file of no known kind counts as weights.
const bigFile = 64 << 20

// KindOf classifies a file of a model directory by its path (slash
// separated, relative) and size.
func KindOf(p string, size int64) string {
	base := strings.ToLower(path.Base(p))
	ext := path.Ext(base)
	switch {
	case weightExts[ext] && ext == ".gguf" && strings.Contains(base, "mmproj"):
		return KindMMProj
	case weightExts[ext]:
		return KindWeight
	case strings.HasPrefix(base, "license"), strings.HasPrefix(base, "licence"), strings.HasPrefix(base, "copying"), strings.HasPrefix(base, "notice"):
		return KindLicense
	case ext == ".jinja":
		return KindChatTemplate
	case strings.HasPrefix(base, "readme"), docExts[ext]:
		return KindDoc
	case codeExts[ext]:
		return KindCode
	case size >= bigFile:
		return KindWeight
	}
	return KindWeightConfig
}

// modelPackKindNames maps kinds to ModelPack's five layer families.
var modelPackKindNames = map[string]string{
	KindWeight:       "weight",
	KindMMProj:       "weight",
	KindLoRA:         "weight",
	KindWeightConfig: "weight.config",
	KindChatTemplate: "weight.config",
	KindDoc:          "doc",
	KindLicense:      "doc",
	KindCode:         "code",
	KindDataset:      "dataset",
}

// ModelPackLayer is the media type of a raw (unpacked) ModelPack layer
// holding a file of kind.
func ModelPackLayer(kind string) string {
	family, ok := modelPackKindNames[kind]
	if !ok {
		family = "weight.config"
	}
	return mpPrefix + family + ".v1.raw"
}

// DockerLayer is the media type Docker Model Runner's v0.2 layout gives a
// file of kind at path p: its weight types by extension, the license and
// chat template types, and the generic model file type for the rest.
func DockerLayer(kind, p string) string {
	switch kind {
	case KindLicense:
		return dmrLicense
	case KindChatTemplate:
		return dmrChatTemplate
	case KindMMProj:
		return dmrMMProj
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".safetensors":
		return dmrSafetensors
	case ".gguf":
		return dmrGGUF
	case ".dduf":
		return dmrDDUF
	}
	return dmrModelFile
}
