package capi

import (
	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/export"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/pullmodel"
	"github.com/oci-client/liboci/pushmodel"
	"github.com/oci-client/liboci/transfer"
)

// The conversions from the domain types to the wire types of package abi.
// Lists and maps are never nil: a reader takes every field without a
// default.

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

func wireManifest(m *oci.Manifest) abi.ManifestResult {
	return abi.ManifestResult{Reference: m.Reference, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, Raw: orEmpty(m.Raw)}
}

func wireBlob(b oci.Blob) abi.PulledBlob {
	return abi.PulledBlob{Digest: b.Digest, Size: b.Size, Path: b.Path, Fetched: b.Fetched}
}

func wireAuth(a *oci.AuthResult) abi.AuthResult {
	return abi.AuthResult{Registry: a.Registry, Repository: a.Repository, Anonymous: a.Anonymous, Source: a.Source, Digest: a.Digest}
}

func wireModel(m *model.Model) abi.Model {
	if m == nil {
		return abi.Model{Files: []abi.ModelFile{}, Skipped: []abi.SkippedLayer{}, ConfigDescriptor: abi.Descriptor{Annotations: map[string]string{}}}
	}
	d := m.Config
	desc := abi.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, Annotations: d.Annotations, ArtifactType: d.ArtifactType}
	if desc.Annotations == nil {
		desc.Annotations = map[string]string{}
	}
	if p := d.Platform; p != nil {
		desc.Platform = &abi.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	}
	return abi.Model{
		Format: m.Format, ManifestMediaType: m.ManifestType, ArtifactType: m.ArtifactType, ConfigDescriptor: desc,
		Files: mapSlice(m.Files, func(f model.File) abi.ModelFile {
			return abi.ModelFile{Path: f.Path, Digest: f.Digest, Size: f.Size, MediaType: f.MediaType, Kind: f.Kind, Archive: f.Archive, ExtractTo: f.ExtractTo}
		}),
		TotalSize: m.TotalSize,
		Skipped: mapSlice(m.Skipped, func(s model.Skipped) abi.SkippedLayer {
			return abi.SkippedLayer{Digest: s.Digest, MediaType: s.MediaType, Reason: s.Reason}
		}),
	}
}

func wirePull(r *pullmodel.Result) abi.PullModelResult {
	return abi.PullModelResult{Path: r.Path, Reference: r.Reference, Digest: r.Digest, Model: wireModel(r.Model),
		Files: orEmpty(r.Files), BlobsDownloaded: r.BlobsDownloaded, BytesDownloaded: r.BytesDownloaded}
}

func wireExport(r *export.Result) abi.ExportModelResult {
	return abi.ExportModelResult{Layout: r.Layout, Reference: r.Reference, Digest: r.Digest, MediaType: r.MediaType, Tag: r.Tag,
		Blobs: r.Blobs, BlobsDownloaded: r.BlobsDownloaded, BytesDownloaded: r.BytesDownloaded}
}

func wireInspection(i *pullmodel.Inspection) abi.InspectModelResult {
	return abi.InspectModelResult{Reference: i.Reference, Digest: i.Digest, MediaType: i.MediaType, ManifestDigest: i.ManifestDigest,
		ConfigMediaType: i.ConfigMediaType, Model: wireModel(i.Model), Config: i.Config}
}

func wireListing(l *cache.Listing) abi.CacheListResult {
	return abi.CacheListResult{Root: l.Root, Size: l.Size, Repos: mapSlice(l.Repos, func(r cache.RepoInfo) abi.CachedRepo {
		return abi.CachedRepo{Registry: r.Registry, Repository: r.Repository, Size: r.Size,
			Snapshots: mapSlice(r.Snapshots, func(s cache.SnapshotInfo) abi.CachedSnapshot {
				out := abi.CachedSnapshot{Digest: s.Digest, Tags: orEmpty(s.Tags), Path: s.Path, Format: s.Format, Files: s.Files, Size: s.Size}
				if !s.LastUsed.IsZero() {
					t := s.LastUsed
					out.LastUsed = &t
				}
				return out
			})}
	})}
}

func wireRemoved(r *cache.Removed) abi.RemovedResult {
	return abi.RemovedResult{Snapshots: orEmpty(r.Snapshots), Tags: orEmpty(r.Tags), Blobs: r.Blobs, Bytes: r.Bytes}
}

func wireFlushed(f cache.Flushed) abi.CacheSyncResult {
	return abi.CacheSyncResult{Synced: f.Synced, Left: f.Left, ElapsedMS: f.ElapsedMS}
}

func wireChecked(c *cache.Checked, problems int, repaired []string) abi.CacheVerifyResult {
	return abi.CacheVerifyResult{Root: c.Root, Checked: c.Checked, BytesHashed: c.BytesHashed, Problems: problems, Repaired: orEmpty(repaired),
		Blobs: mapSlice(c.Blobs, func(b cache.BlobCheck) abi.CheckedBlob {
			return abi.CheckedBlob{Digest: b.Digest, Size: b.Size, Status: b.Status, Path: b.Path, MovedTo: b.MovedTo,
				Action: b.Action, Fixed: b.Fixed, Models: orEmpty(b.Models), Error: b.Error}
		})}
}

func wirePush(r *pushmodel.Result) abi.PushModelResult {
	return abi.PushModelResult{Reference: r.Reference, Tag: r.Tag, Digest: r.Digest, MediaType: r.MediaType, Size: r.Size,
		Format: r.Format, Raw: orEmpty(r.Raw), Uploaded: r.Uploaded, Skipped: r.Skipped, Mounted: r.Mounted,
		BytesSent: r.BytesSent, Continued: r.Continued, Files: r.Files, FileBytes: r.FileBytes,
		Blobs: mapSlice(r.Blobs, func(b pushmodel.Blob) abi.PushedBlob {
			return abi.PushedBlob{Digest: b.Digest, Size: b.Size, How: b.How, MediaType: b.MediaType, Path: b.Path,
				MountedFrom: b.MountedFrom, BytesSent: b.Sent, ContinuedAt: b.ContinuedAt}
		})}
}

func wireProgress(s transfer.Snapshot) abi.OperationResult {
	return abi.OperationResult{BytesDone: s.BytesDone, BytesTotal: s.BytesTotal, BlobsDone: s.BlobsDone, BlobsTotal: s.BlobsTotal,
		Blobs: mapSlice(s.Blobs, func(b transfer.BlobSnapshot) abi.BlobProgress {
			return abi.BlobProgress{Label: b.Label, BytesDone: b.BytesDone, BytesTotal: b.BytesTotal, Done: b.Done, Path: b.Path, Present: b.Present}
		})}
}
