package abi

import (
	"bytes"
	"encoding/json"
	"time"
)

// The result types below are what each export answers in its envelope's
// "result". They mirror the domain types (package capi converts), so that
// a domain type can change without the wire changing by accident, and they
// are snake_case throughout. Every field without omitempty is always sent
// (lists as [] rather than null, maps as {}), so a reader can take it
// without a default; the few with omitempty say when they are present.

// ManifestResult is PullManifest's result: a manifest or index exactly as
// the registry served it.
type ManifestResult struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
	// Raw holds the bytes as served (base64); the digest is computed over them.
	Raw []byte `json:"raw"`
}

// PulledBlob is a verified blob written to Path (PullBlob's result, and
// each of PullBlobs').
type PulledBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Path   string `json:"path"`
	// Fetched is the bytes received from the registry for it by this call:
	// less than Size when an earlier call's partial data was resumed.
	Fetched int64 `json:"fetched"`
}

// PullBlobsResult is PullBlobs' result, in request order.
type PullBlobsResult struct {
	Blobs []PulledBlob `json:"blobs"`
}

// AuthResult is TestAuthentication's result: what a successful check
// used, without secrets.
type AuthResult struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Anonymous  bool   `json:"anonymous"`
	// Source is the file or helper the credentials came from ("" for none).
	Source string `json:"source"`
	Digest string `json:"digest"`
}

// Descriptor is an OCI descriptor: the fields a model's config uses.
type Descriptor struct {
	MediaType    string            `json:"media_type"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations"`
	ArtifactType string            `json:"artifact_type"`
	// Platform is an index entry's platform (null for none).
	Platform *Platform `json:"platform"`
}

// Platform is the platform of an index entry.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
}

// ModelFile is one file (or one archive) of a model.
type ModelFile struct {
	// Path is a clean relative path: the layer's file name annotation, else
	// a generated name; unique among a model's files.
	Path      string `json:"path"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
	// Kind is "weight", "weight-config", "doc", "code", "dataset",
	// "license", "chat-template", "mmproj", "lora" or "other"
	// (informational: more may come).
	Kind string `json:"kind"`
	// Archive is "" (a plain file), "tar", "tar+gzip" or "tar+zstd"; an
	// archive is unpacked into ExtractTo ("" = the model root).
	Archive   string `json:"archive"`
	ExtractTo string `json:"extract_to"`
}

// SkippedLayer is a layer the model does not use, and why.
type SkippedLayer struct {
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	Reason    string `json:"reason"`
}

// Model is what a manifest says about a model.
type Model struct {
	Format            string     `json:"format"`
	ManifestMediaType string     `json:"manifest_media_type"`
	ArtifactType      string     `json:"artifact_type"`
	ConfigDescriptor  Descriptor `json:"config_descriptor"`
	// Files are in manifest order, which is shard order.
	Files []ModelFile `json:"files"`
	// TotalSize is the sum of the files' sizes: the bytes to download.
	TotalSize int64          `json:"total_size"`
	Skipped   []SkippedLayer `json:"skipped"`
}

// PullModelResult is PullModel's result: a pulled model.
type PullModelResult struct {
	// Path is the model directory.
	Path string `json:"path"`
	// Reference is the repository and the model manifest's digest.
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	Model     Model  `json:"model"`
	// Files are the selected paths, in manifest order: files and whole
	// archives by their paths, and the files picked out of archives.
	Files []string `json:"files"`
	// BlobsDownloaded counts the blobs this call fetched itself, and
	// BytesDownloaded the bytes it received for them (0 for a cache hit).
	BlobsDownloaded int   `json:"blobs_downloaded"`
	BytesDownloaded int64 `json:"bytes_downloaded"`
}

// InspectModelResult is InspectModel's result: a model as its manifest and
// config describe it.
type InspectModelResult struct {
	Reference string `json:"reference"`
	// Digest is the digest of the reference as resolved: through an index,
	// the manifest chosen from it, as ManifestDigest.
	Digest          string `json:"digest"`
	MediaType       string `json:"media_type"`
	ManifestDigest  string `json:"manifest_digest"`
	ConfigMediaType string `json:"config_media_type"`
	Model           Model  `json:"model"`
	// Config is the config blob when it is JSON of at most 4 MiB, else null.
	Config json.RawMessage `json:"config"`
}

// CacheListResult is CacheList's result.
type CacheListResult struct {
	Root  string       `json:"root"`
	Repos []CachedRepo `json:"repos"`
	// Size is what blobs/ holds on disk, shared content counted once.
	Size int64 `json:"size"`
}

// CachedRepo is one cached repository.
type CachedRepo struct {
	Registry   string           `json:"registry"`
	Repository string           `json:"repository"`
	Snapshots  []CachedSnapshot `json:"snapshots"`
	Size       int64            `json:"size"`
}

// CachedSnapshot is one cached model manifest: its snapshot directory and
// the tags that point to it.
type CachedSnapshot struct {
	Digest string   `json:"digest"`
	Tags   []string `json:"tags"`
	Path   string   `json:"path"`
	Format string   `json:"format"`
	Files  int      `json:"files"`
	Size   int64    `json:"size"`
	// LastUsed is when a pull last served it (null: never recorded).
	LastUsed *time.Time `json:"last_used"`
}

// RemovedResult is CacheRemove's and CachePrune's result: what was deleted.
type RemovedResult struct {
	Snapshots []string `json:"snapshots"`
	Tags      []string `json:"tags"`
	Blobs     int      `json:"blobs"`
	Bytes     int64    `json:"bytes"`
}

// CacheSyncResult is CacheSync's result.
type CacheSyncResult struct {
	// Synced blobs were found or made durable during the call.
	Synced int `json:"synced"`
	// Left blobs were still queued, or being synced, when it returned.
	Left int `json:"left"`
	// ElapsedMS is how long it took, in milliseconds.
	ElapsedMS float64 `json:"elapsed_ms"`
}

// CacheVerifyResult is CacheVerify's result: what it found and did.
type CacheVerifyResult struct {
	Root string `json:"root"`
	// Checked counts the blobs looked at (missing ones included).
	Checked     int           `json:"checked"`
	BytesHashed int64         `json:"bytes_hashed"`
	Blobs       []CheckedBlob `json:"blobs"`
	// Problems counts the blobs still wrong when the call returns.
	Problems int `json:"problems"`
	// Repaired lists the snapshots pulled again, repo@digest.
	Repaired []string `json:"repaired"`
}

// CheckedBlob is what CacheVerify found of one blob and did about it.
type CheckedBlob struct {
	Digest string `json:"digest"`
	// Size is the blob's size on disk, or for a missing one the size its
	// snapshots record.
	Size int64 `json:"size"`
	// Status is "ok", "corrupt" or "missing".
	Status string `json:"status"`
	// Path is where the blob lives in blobs/.
	Path string `json:"path"`
	// MovedTo is where a corrupt one went ("" when it was left in place).
	MovedTo string `json:"moved_to"`
	// Action says what was done, in words ("" for a blob that is fine).
	Action string `json:"action"`
	// Fixed is true when the blob is fine now.
	Fixed bool `json:"fixed"`
	// Models are the cached snapshots that use the blob, repo@digest.
	Models []string `json:"models"`
	// Error is a problem met while checking or repairing it ("" for none).
	Error string `json:"error"`
}

// ExportModelResult is ExportModel's result: what went into the layout.
type ExportModelResult struct {
	// Layout is the layout's directory; Reference the layout reference that
	// reads the model back (oci-layout:DIR:TAG, or oci-layout:DIR@DIGEST).
	Layout    string `json:"layout"`
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	// Tag names it in index.json; "" when it was exported by digest alone.
	Tag string `json:"tag"`
	// Blobs counts every blob of the model in the layout, manifests
	// included; BlobsDownloaded and BytesDownloaded what this call fetched.
	Blobs           int   `json:"blobs"`
	BlobsDownloaded int   `json:"blobs_downloaded"`
	BytesDownloaded int64 `json:"bytes_downloaded"`
}

// PushModelResult is PushModel's result: the manifest published, and what
// the push did.
type PushModelResult struct {
	// Reference is repository@digest.
	Reference string `json:"reference"`
	// Tag is the tag pushed ("" for a push by digest).
	Tag       string `json:"tag"`
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
	Format    string `json:"format"`
	// Raw is the manifest as pushed (base64).
	Raw   []byte       `json:"raw"`
	Blobs []PushedBlob `json:"blobs"`
	// Uploaded, Skipped and Mounted count the blobs by what happened to them.
	Uploaded  int   `json:"uploaded"`
	Skipped   int   `json:"skipped"`
	Mounted   int   `json:"mounted"`
	BytesSent int64 `json:"bytes_sent"`
	// Continued counts the uploads an earlier call left unfinished that
	// this one continued from what the registry kept.
	Continued int   `json:"continued"`
	Files     int   `json:"files"`
	FileBytes int64 `json:"file_bytes"`
}

// PushedBlob is one blob of a push: a file, or the config (Path "").
type PushedBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// How is "uploaded", "exists" (the repository had it) or "mounted".
	How       string `json:"how"`
	MediaType string `json:"media_type"`
	Path      string `json:"path"`
	// MountedFrom is the repository a mounted blob came from.
	MountedFrom string `json:"mounted_from"`
	// BytesSent counts the bytes put on the wire, resends included.
	BytesSent int64 `json:"bytes_sent"`
	// ContinuedAt is where an upload an earlier call left unfinished was
	// continued: the bytes the registry had kept of it (0: none).
	ContinuedAt int64 `json:"continued_at"`
}

// OperationResult is CancelOperation's and OperationProgress's result.
type OperationResult struct {
	// Running is false when no call with that id is running (yet, or any
	// more); the counters are then 0.
	Running    bool  `json:"running"`
	BytesDone  int64 `json:"bytes_done"`
	BytesTotal int64 `json:"bytes_total"`
	BlobsDone  int64 `json:"blobs_done"`
	BlobsTotal int64 `json:"blobs_total"`
	// Blobs has one entry per blob, in the order they were started.
	Blobs []BlobProgress `json:"blobs"`
	// Logs are the call's log records made since the last read, oldest
	// first, when it asked for them (log_level).
	Logs []LogRecord `json:"logs,omitempty"`
	// Events are the call's events made since the last read, oldest first,
	// when it asked for them (events); EventsDropped counts those that went
	// unread because more than MaxEvents waited.
	Events        []Event `json:"events,omitempty"`
	EventsDropped int64   `json:"events_dropped,omitempty"`
}

// BlobProgress is one blob's progress.
type BlobProgress struct {
	Label      string `json:"label"`
	BytesDone  int64  `json:"bytes_done"`
	BytesTotal int64  `json:"bytes_total"`
	Done       bool   `json:"done"`
	// Path is the verified file, once Done ("" before): a reader may open it
	// before the operation ends (a loader reads shard 1 while shard 4
	// downloads).
	Path string `json:"path"`
	// Present marks a blob this operation found in place, verified, without
	// downloading it (it was cached, or another process fetched it).
	Present bool `json:"present"`
}

// RuntimeStatsResult is RuntimeStats' result: the library's own runtime,
// for a caller that looks for leaks.
type RuntimeStatsResult struct {
	Goroutines int `json:"goroutines"`
	// Operations is how many calls with an operation_id are registered.
	Operations int `json:"operations"`
	// EarlyCancels is how many cancellations wait for a call not yet started.
	EarlyCancels int `json:"early_cancels"`
	// HeapBytes is the live heap; SysBytes all memory the Go runtime holds.
	HeapBytes uint64 `json:"heap_bytes"`
	SysBytes  uint64 `json:"sys_bytes"`
	// Stacks is every goroutine's stack, when asked for ("" otherwise).
	Stacks string `json:"stacks"`
}

// ErrorBody is the "error" member of a failed envelope.
type ErrorBody struct {
	// Code is one of the codes docs/c-abi.md lists; treat an unknown one as
	// INTERNAL.
	Code    string `json:"code"`
	Message string `json:"message"`
	// Status is the registry's HTTP status, where one answered.
	Status       int    `json:"status,omitempty"`
	RegistryCode string `json:"registry_code,omitempty"`
	// Details are machine-readable particulars of some codes.
	Details any `json:"details,omitempty"`
	// Reference, Digest and URL say what failed, where known; URL is
	// redacted (no user information, no signed query parameters).
	Reference string `json:"reference,omitempty"`
	Digest    string `json:"digest,omitempty"`
	URL       string `json:"url,omitempty"`
}

// Envelope is what every JSON export returns.
type Envelope struct {
	// AbiVersion lets a caller that did not check the AbiVersion export
	// still tell a library of another contract.
	AbiVersion int  `json:"abi_version"`
	OK         bool `json:"ok"`
	// Result is the export's <Name>Result, when OK.
	Result any `json:"result,omitempty"`
	// Error is why the call failed, when not OK.
	Error *ErrorBody `json:"error,omitempty"`
	// Logs are the call's log records not yet read through
	// OperationProgress, when the request asked for them (log_level).
	Logs []LogRecord `json:"logs,omitempty"`
	// Events are the call's events not yet read through OperationProgress,
	// when the request asked for them (events), and EventsDropped how many
	// went unread.
	Events        []Event `json:"events,omitempty"`
	EventsDropped int64   `json:"events_dropped,omitempty"`
}

// LogRecord is one log record as it leaves the library.
type LogRecord struct {
	// Time is seconds since the Unix epoch.
	Time float64 `json:"time"`
	// Level is DEBUG, INFO, WARNING or ERROR (Python's names).
	Level string `json:"level"`
	// Logger names the part of the library that logged ("transfer",
	// "http", "oci", "cache", "pull"); "" for the library itself.
	Logger string `json:"logger,omitempty"`
	Msg    string `json:"msg"`
	// Attrs are the record's attributes, an object of strings, numbers and
	// booleans in the order they were logged.
	Attrs LogAttrs `json:"attrs,omitempty"`
}

// LogAttr is one attribute of a log record; its value is a string, number
// or bool.
type LogAttr struct {
	Key   string
	Value any
}

// LogAttrs marshal as one JSON object in the order they were logged, so a
// line reads as it was written.
type LogAttrs []LogAttr

// MarshalJSON implements json.Marshaler.
func (as LogAttrs) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// The encoder that embeds this decides about HTML escaping.
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	for i, a := range as {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(a.Key); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		if err := enc.Encode(a.Value); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
