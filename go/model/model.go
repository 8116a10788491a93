// Package model reads the manifest of an ML model stored as an OCI artifact
// and says what the model is and which files it has, so that a puller can
// turn it into a directory that transformers, vLLM or llama.cpp can load.
//
// It knows Docker Model Runner models, CNCF ModelPack models (modctl; also
// the older CNAI names), KitOps ModelKits and plain ORAS-style artifacts.
// It does no network or file I/O: callers hand it the bytes they fetched.
package model

// The model formats Parse recognises.
const (
	FormatDocker    = "docker"    // Docker Model Runner (docker model package)
	FormatModelPack = "modelpack" // CNCF ModelPack (modctl, model-spec)
	FormatKitOps    = "kitops"    // KitOps ModelKit (kit pack)
	FormatArtifact  = "artifact"  // any manifest whose layers carry file names (oras push)
)

// The kinds of File. Kinds are informational: the puller treats them alike.
const (
	KindWeight       = "weight"
	KindWeightConfig = "weight-config" // config.json, tokenizer files, vLLM config archives
	KindDoc          = "doc"
	KindCode         = "code"
	KindDataset      = "dataset"
	KindLicense      = "license"
	KindChatTemplate = "chat-template"
	KindMMProj       = "mmproj" // multimodal projector
	KindLoRA         = "lora"
	KindOther        = "other"
)

// The archive formats of File.Archive.
const (
	ArchiveTar     = "tar"
	ArchiveTarGzip = "tar+gzip"
	ArchiveTarZstd = "tar+zstd"
)

// Descriptor is an OCI descriptor (the fields we use).
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     *Platform         `json:"platform,omitempty"`
}

// Platform is the platform of an index entry.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// File is one file (or one archive) of a model.
type File struct {
	// Path is a clean relative path: the layer's file name annotation, else
	// a generated name. For an archive it names the archive (or, in
	// ModelPack and ORAS, what it holds); it is unique among a Model's Files.
	Path      string `json:"path"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
	Kind      string `json:"kind"`
	// Archive is "", ArchiveTar, ArchiveTarGzip or ArchiveTarZstd. An archive
	// is unpacked into ExtractTo ("" = the model root), a clean relative path.
	Archive   string `json:"archive,omitempty"`
	ExtractTo string `json:"extract_to,omitempty"`
	// Unnamed is an archive with no name of its own: its Path is generated,
	// or the name it was given is the model root. Patterns select its
	// entries (Filter).
	Unnamed bool `json:"-"`
	// Entries, set by Filter on an archive kept for what it holds, picks
	// the entries to place; nil: all of them.
	Entries *EntryFilter `json:"-"`
}

// Skipped is a layer the model does not use, and why (the caller logs one
// line for each).
type Skipped struct {
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	Reason    string `json:"reason"`
}

// Model is what a manifest says about a model.
type Model struct {
	Format       string     `json:"format"`
	ManifestType string     `json:"manifest_media_type"`
	ArtifactType string     `json:"artifact_type,omitempty"`
	Config       Descriptor `json:"config_descriptor"`
	// Files are in manifest order, which is shard order.
	Files []File `json:"files"`
	// TotalSize is the sum of the Files' sizes: the bytes to download.
	TotalSize int64     `json:"total_size"`
	Skipped   []Skipped `json:"skipped,omitempty"`

	// weightExt names unnamed raw ModelPack weights, from the config's
	// format ("bin" when it says nothing usable).
	weightExt string
}
