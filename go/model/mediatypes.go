package model

import (
	"regexp"
	"strings"
)

// Manifest and index media types.
const (
	mtOCIManifest         = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex            = "application/vnd.oci.image.index.v1+json"
	mtDockerManifest      = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerManifestList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtOCIArtifactManifest = "application/vnd.oci.artifact.manifest.v1+json" // OCI 1.1 drafts; early oras 1.0 pushed it
	mtDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mtDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// Config media types of container images, which are refused with a message
// that says so.
const (
	mtDockerImageConfig = "application/vnd.docker.container.image.v1+json"
	mtOCIImageConfig    = "application/vnd.oci.image.config.v1+json"
)

// Docker Model Runner (docker/model-runner pkg/distribution/types/config.go;
// the lora type and the gguf.v3.mmproj spelling are from docker/model-spec
// spec.md, the runner itself writes application/vnd.docker.ai.mmproj).
const (
	dmrConfigPrefix  = "application/vnd.docker.ai.model.config." // v0.1+json, v0.2+json
	dmrGGUF          = "application/vnd.docker.ai.gguf.v3"
	dmrLoRA          = "application/vnd.docker.ai.gguf.v3.lora"
	dmrMMProj        = "application/vnd.docker.ai.mmproj"
	dmrMMProjSpec    = "application/vnd.docker.ai.gguf.v3.mmproj"
	dmrSafetensors   = "application/vnd.docker.ai.safetensors"
	dmrDDUF          = "application/vnd.docker.ai.dduf"
	dmrLicense       = "application/vnd.docker.ai.license"
	dmrChatTemplate  = "application/vnd.docker.ai.chat.template.jinja"
	dmrModelFile     = "application/vnd.docker.ai.model.file"
	dmrVLLMConfigTar = "application/vnd.docker.ai.vllm.config.tar"
	dmrDirTar        = "application/vnd.docker.ai.dir.tar"
)

// CNCF ModelPack (modelpack/model-spec specs-go/v1). Until June 2025
// (model-spec commit 859889f) its names began "application/vnd.cnai." and
// "org.cnai."; modctl still reads those.
const (
	mpPrefix           = "application/vnd.cncf.model."
	mpLegacyPrefix     = "application/vnd.cnai.model."
	mpArtifactType     = mpPrefix + "manifest.v1+json"
	mpLegacyArtifact   = mpLegacyPrefix + "manifest.v1+json"
	mpConfig           = mpPrefix + "config.v1+json"
	mpLegacyConfig     = mpLegacyPrefix + "config.v1+json"
	annotationFilepath = "org.cncf.model.filepath" // Docker Model Runner uses it too
	annotationLegacyFP = "org.cnai.model.filepath"
)

// KitOps (kitops-ml/kitops pkg/lib/constants/mediaType.go).
const kitConfig = "application/vnd.kitops.modelkit.config.v1+json"

// ORAS (oras-project/oras-go content/file/file.go).
const (
	annotationTitle      = "org.opencontainers.image.title"
	annotationORASUnpack = "io.deis.oras.content.unpack"
)

// layerType is what a layer media type says about the file it holds.
type layerType struct {
	family  string // the Format the media type belongs to; "" if none
	kind    string
	archive string
	// ext names unnamed weights "model.<ext>"; stem names other unnamed
	// layers (numbered when repeated). Neither: unnamed layers are skipped.
	ext  string
	stem string
	// kitBase is the KitOps layer type (model, modelpart, code, ...).
	kitBase string
}

// archiveExt is how generated archive names end.
var archiveExt = map[string]string{ArchiveTar: ".tar", ArchiveTarGzip: ".tar.gz", ArchiveTarZstd: ".tar.zst"}

var dmrTypes = map[string]layerType{
	// DMR's own unpacking (internal/bundle/unpack.go) names unnamed GGUF and
	// safetensors weights model.<ext> or model-0000i-of-0000N.<ext>, the
	// projector model.mmproj and the template template.jinja. It never
	// unpacks licenses, and has no LoRA layers.
	dmrGGUF:          {kind: KindWeight, ext: "gguf"},
	dmrSafetensors:   {kind: KindWeight, ext: "safetensors"},
	dmrDDUF:          {kind: KindWeight, ext: "dduf"},
	dmrLoRA:          {kind: KindLoRA, stem: "adapter.gguf"},
	dmrMMProj:        {kind: KindMMProj, stem: "model.mmproj"},
	dmrMMProjSpec:    {kind: KindMMProj, stem: "model.mmproj"},
	dmrLicense:       {kind: KindLicense, stem: "LICENSE"},
	dmrChatTemplate:  {kind: KindChatTemplate, stem: "template.jinja"},
	dmrModelFile:     {kind: KindWeightConfig},
	dmrVLLMConfigTar: {kind: KindWeightConfig, archive: ArchiveTar, stem: "vllm-config"},
	dmrDirTar:        {kind: KindOther, archive: ArchiveTar, stem: "dir"},
}

var modelPackKinds = map[string]string{
	"weight":        KindWeight,
	"weight.config": KindWeightConfig,
	"doc":           KindDoc,
	"code":          KindCode,
	"dataset":       KindDataset,
}

var modelPackSuffixes = map[string]string{"raw": "", "tar": ArchiveTar, "tar+gzip": ArchiveTarGzip, "tar+zstd": ArchiveTarZstd}

// kitLayer is the media type pattern kit itself parses (ParseMediaType); it
// writes only uncompressed and gzip layers, and unpacks no others.
var kitLayer = regexp.MustCompile(`^application/vnd\.kitops\.modelkit\.(\w+)\.v1\.tar(\+gzip)?$`)

var kitKinds = map[string]string{
	"model":     KindWeight,
	"modelpart": KindWeight,
	"code":      KindCode,
	"dataset":   KindDataset,
	"docs":      KindDoc,
}

// classify says what a layer media type holds; false for unknown types.
func classify(mediaType string) (layerType, bool) {
	mt := baseType(mediaType)
	if t, ok := dmrTypes[mt]; ok {
		t.family = FormatDocker
		return t, true
	}
	if rest, ok := cutModelPack(mt); ok {
		name, suffix, _ := strings.Cut(rest, ".v1.")
		kind, ok := modelPackKinds[name]
		if !ok {
			return layerType{}, false
		}
		t := layerType{family: FormatModelPack, kind: kind}
		if kind == KindWeight {
			// weight.v1.gguf and .safetensors: early ModelPack names that
			// Docker Model Runner still reads (pkg/distribution/modelpack).
			switch suffix {
			case "gguf", "safetensors":
				t.ext = suffix
				return t, true
			}
			t.ext = "bin"
		}
		archive, ok := modelPackSuffixes[suffix]
		if !ok {
			return layerType{}, false
		}
		t.archive = archive
		if archive != "" {
			t.stem = strings.ReplaceAll(name, ".", "-")
		}
		return t, true
	}
	if m := kitLayer.FindStringSubmatch(mt); m != nil {
		t := layerType{family: FormatKitOps, kind: KindOther, archive: ArchiveTar, stem: m[1], kitBase: m[1]}
		if k, ok := kitKinds[m[1]]; ok {
			t.kind = k
		}
		if m[2] != "" {
			t.archive = ArchiveTarGzip
		}
		return t, true
	}
	return layerType{}, false
}

func cutModelPack(mt string) (string, bool) {
	if rest, ok := strings.CutPrefix(mt, mpPrefix); ok {
		return rest, true
	}
	return strings.CutPrefix(mt, mpLegacyPrefix)
}

// configFormat is the format a config media type (or an artifactType that
// repeats it) names; "" if none.
func configFormat(mediaType string) string {
	mt := baseType(mediaType)
	switch {
	case strings.HasPrefix(mt, dmrConfigPrefix):
		return FormatDocker
	case mt == mpConfig || mt == mpLegacyConfig || mt == mpArtifactType || mt == mpLegacyArtifact:
		return FormatModelPack
	case mt == kitConfig:
		return FormatKitOps
	}
	return ""
}

// isImageLayer reports container image layers, which a model never needs.
func isImageLayer(mediaType string) bool {
	mt := baseType(mediaType)
	return strings.HasPrefix(mt, "application/vnd.docker.image.rootfs.") ||
		strings.HasPrefix(mt, "application/vnd.oci.image.layer.")
}
