// Package pushmodel publishes a model directory (safetensors or GGUF
// shards, config and tokenizer files, chat template, license, README, and
// sub-directories) as an OCI artifact, in the CNCF ModelPack format or
// Docker Model Runner's v0.2 layout, so that package pullmodel (and
// modctl, docker model, oras, skopeo, crane) gets the same files back.
//
// Every file becomes one raw layer named by org.cncf.model.filepath (and
// org.opencontainers.image.title): weights are never re-packed or
// compressed, and both formats prescribe one layer per file. Digests are
// computed once per file and remembered (see cache.PushDigests), blobs the
// registry has are skipped, blobs pushed before to another repository of
// the same registry are mounted, and the rest stream from disk in parallel
// (package oci's PushBlobs).
package pushmodel

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
)

// Formats Push writes.
const (
	FormatModelPack = "modelpack"
	FormatDocker    = "docker"
)

// Options tune one push; zero values take the defaults noted.
type Options struct {
	// Format is FormatModelPack (default) or FormatDocker.
	Format string
	// CacheDir, when set, is the cache root whose push-digests directory
	// remembers file digests and where each file was pushed. Default: none
	// (every file is hashed).
	CacheDir string
	// Concurrency is how many blobs upload at once (0: oci's default;
	// negative: an error).
	Concurrency int
	// MountFrom adds repositories of the same registry to mount blobs from
	// (those the digest cache remembers are tried too).
	MountFrom []string
	// FollowSymlinks follows every symlink. By default one is followed only
	// when it resolves inside the directory, into SnapshotCache's (or
	// CacheDir's) blobs, or into the blobs of a huggingface_hub cache; any
	// other is refused (INVALID_ARGUMENT) before anything is sent.
	FollowSymlinks bool
	// SnapshotCache is the cache root (package cache's layout) whose
	// snapshots, links into its blobs, publish; default CacheDir. It is
	// separate because a push may remember no digests yet start from a
	// snapshot.
	SnapshotCache string
}

// Blob reports one pushed file (Path "" for the config).
type Blob struct {
	oci.PushedBlob
	Path      string `json:"path,omitempty"`
	MediaType string `json:"media_type"`
}

// Result describes a published model.
type Result struct {
	Reference string `json:"reference"` // repository@digest
	Tag       string `json:"tag,omitempty"`
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
	Format    string `json:"format"`
	// Raw is the manifest as pushed.
	Raw   []byte `json:"raw"`
	Blobs []Blob `json:"blobs"`
	// Totals over the blobs.
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

// Push publishes dir at ref (a tag; a digest reference must be the digest
// of what dir publishes to) with the client's credentials and settings.
func Push(ctx context.Context, c *oci.Client, dir, ref string, o Options) (*Result, error) {
	format := o.Format
	if format == "" {
		format = FormatModelPack
	}
	if format != FormatModelPack && format != FormatDocker {
		return nil, &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("unknown model format %q (modelpack or docker)", o.Format)}
	}
	if o.Concurrency < 0 {
		return nil, &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("concurrency must not be negative (0: the default), got %d", o.Concurrency)}
	}
	r, err := c.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	snapshots := o.SnapshotCache
	if snapshots == "" {
		snapshots = o.CacheDir
	}
	files, err := listFiles(dir, snapshots, o.FollowSymlinks)
	if err != nil {
		return nil, wrap(oci.CodeInvalidArgument, fmt.Errorf("publishing %s: %w", dir, err))
	}
	dc := cache.PushDigests{}
	var holders *cache.Cache
	if o.CacheDir != "" {
		if holders, err = cache.Open(o.CacheDir); err != nil {
			return nil, wrap(oci.CodeIO, err)
		}
		dc = holders.PushDigests()
	}
	entries, err := firstDigests(ctx, dc, files)
	if err != nil {
		return nil, wrap(oci.CodeIO, fmt.Errorf("reading %s: %w", dir, err))
	}
	repo := r.Context()
	po := oci.PushOptions{Concurrency: o.Concurrency, MountFrom: o.MountFrom}
	if holders != nil {
		po.Holders, po.Sessions = holders.Holders, holders.Uploads()
	}
	blobs, index := fileBlobs(dc, files, entries)
	pushed, err := c.PushBlobs(ctx, repo.String(), blobs, po)
	if err != nil {
		return nil, err
	}
	for i, f := range files {
		if entries[i].Digest == "" {
			return nil, wrap(oci.CodeInternal, fmt.Errorf("%s was pushed without a digest", f.rel))
		}
	}

	layers := make([]model.Descriptor, len(files))
	diffIDs := make([]string, len(files))
	for i, f := range files {
		mt := model.ModelPackLayer(f.kind)
		if format == FormatDocker {
			mt = model.DockerLayer(f.kind, f.rel)
		}
		layers[i] = model.Descriptor{
			MediaType: mt, Digest: entries[i].Digest, Size: f.size,
			Annotations: map[string]string{model.AnnotationFilepath: f.rel, model.AnnotationTitle: f.rel},
		}
		diffIDs[i] = entries[i].Digest
	}
	d := describe(files)
	var configRaw []byte
	configType := model.ModelPackConfig
	if format == FormatDocker {
		configType = model.DockerConfigV02
		configRaw, err = dockerConfig(d, diffIDs)
	} else {
		configRaw, err = modelPackConfig(d, path.Base(repo.RepositoryStr()), diffIDs)
	}
	if err != nil {
		return nil, err
	}
	config := model.Descriptor{MediaType: configType, Digest: digestOf(configRaw), Size: int64(len(configRaw))}
	// The config names every file's digest, so it goes after them.
	if !slices.Contains(diffIDs, config.Digest) {
		cp, err := c.PushBlobs(ctx, repo.String(), []oci.PushBlob{{Digest: config.Digest, Size: config.Size, Data: configRaw, Label: "config"}}, po)
		if err != nil {
			return nil, err
		}
		pushed = append(pushed, cp...)
		index = append(index, blobOrigin{mediaType: config.MediaType})
	}
	if holders != nil {
		holders.NoteHolder(repo.Name(), append(diffIDs, config.Digest)...)
	}

	manifest := struct {
		SchemaVersion int                `json:"schemaVersion"`
		MediaType     string             `json:"mediaType"`
		ArtifactType  string             `json:"artifactType,omitempty"`
		Config        model.Descriptor   `json:"config"`
		Layers        []model.Descriptor `json:"layers"`
	}{SchemaVersion: 2, MediaType: model.MediaTypeOCIManifest, Config: config, Layers: layers}
	if format == FormatModelPack {
		manifest.ArtifactType = model.ModelPackArtifactType
	}
	raw, err := json.Marshal(manifest)
	if err != nil {
		return nil, err
	}
	m, err := c.PushManifest(ctx, r.String(), raw, model.MediaTypeOCIManifest)
	if err != nil {
		return nil, err
	}
	res := &Result{
		Reference: repo.Digest(m.Digest).String(), Digest: m.Digest, MediaType: m.MediaType,
		Size: m.Size, Format: format, Raw: raw, Files: len(files), FileBytes: d.size,
	}
	if t, ok := r.(name.Tag); ok {
		res.Tag = t.TagStr()
	}
	for i, p := range pushed {
		mt := index[i].mediaType
		if index[i].file >= 0 {
			mt = layers[index[i].file].MediaType
		}
		b := Blob{PushedBlob: p, Path: index[i].path, MediaType: mt}
		res.Blobs = append(res.Blobs, b)
		res.BytesSent += p.Sent
		if p.ContinuedAt > 0 {
			res.Continued++
		}
		switch p.How {
		case oci.PushedUploaded:
			res.Uploaded++
		case oci.PushedExists:
			res.Skipped++
		case oci.PushedMounted:
			res.Mounted++
		}
	}
	return res, nil
}

// blobOrigin is what a pushed blob was: file (an index into the files, -1
// for the config) at path, or of mediaType.
type blobOrigin struct {
	file      int
	path      string
	mediaType string
}

// fileBlobs lists the files as blobs, each digest once (two files with the
// same content are one blob). A file whose digest is not known yet is
// hashed by the push (see oci.PushBlobs), which fills its entry.
func fileBlobs(dc cache.PushDigests, files []file, entries []cache.FileDigest) ([]oci.PushBlob, []blobOrigin) {
	seen := map[string]bool{}
	var blobs []oci.PushBlob
	var index []blobOrigin
	for i, f := range files {
		d := entries[i].Digest
		if d != "" && seen[d] {
			continue
		}
		seen[d] = true
		b := oci.PushBlob{Digest: d, Size: f.size, Path: f.abs, Label: f.rel}
		if d == "" {
			b.Hash = func(ctx context.Context) (string, error) {
				e, err := digestFile(ctx, dc, f)
				if err != nil {
					return "", err
				}
				entries[i] = e
				dc.Put(e) // now: a push cut short continues with it next time
				return e.Digest, nil
			}
		}
		blobs = append(blobs, b)
		index = append(index, blobOrigin{file: i, path: f.rel})
	}
	return blobs, index
}
