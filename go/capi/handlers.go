package capi

import (
	"context"
	"path/filepath"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/transfer"
)

// newClient is the registry client a request's pieces describe; t is nil
// for an export that downloads no blob.
func newClient(e abi.Environ, n abi.Network, t *abi.Transfer) *oci.Client {
	env := e.Env
	if env == nil {
		// An explicit empty environment, never the one frozen at load time.
		env = map[string]string{}
	}
	opts := []oci.Option{oci.WithEnv(env), oci.WithCAFile(n.CAFile), oci.WithInsecureRegistries(n.InsecureRegistries...)}
	if t != nil {
		opts = append(opts, oci.WithTransfer(transfer.Options{
			Connections: t.Connections,
			ChunkSize:   t.ChunkSize,
			ReadTimeout: time.Duration(t.ReadTimeoutMS) * time.Millisecond,
			Buffered:    t.DirectIO != nil && !*t.DirectIO,
		}))
	}
	opts = append(opts, oci.WithRetries(n.Retries))
	if n.Mirrors != nil {
		opts = append(opts, oci.WithMirrors(n.Mirrors))
	}
	if n.CertsDir != "" {
		opts = append(opts, oci.WithCertsDirs(filepath.SplitList(n.CertsDir)...))
	}
	if n.UserAgent != "" {
		opts = append(opts, oci.WithUserAgent(n.UserAgent))
	}
	return oci.New(opts...)
}

// BlobsResult is PullBlobs' result, in request order.
type BlobsResult struct {
	Blobs []oci.Blob `json:"blobs"`
}

// OperationResult answers CancelOperation and OperationProgress.
type OperationResult struct {
	// Running is false when no call with that id is running (yet, or any more).
	Running bool `json:"running"`
	transfer.Snapshot
	// Logs are the call's log records made since the last read, oldest
	// first, when it asked for them (log_level).
	Logs []logs.Entry `json:"logs,omitempty"`
}

func blobRequest(b abi.Blob) oci.BlobRequest {
	return oci.BlobRequest{Digest: b.Digest, Path: b.Path, Size: b.Size, Label: b.Label}
}

// PullManifest is the body of the PullManifest export.
func PullManifest(ctx context.Context, input []byte) []byte {
	return Call(ctx, "PullManifest", input, func(ctx context.Context, r abi.PullManifestRequest) (*oci.Manifest, error) {
		return newClient(r.Environ, r.Network, nil).PullManifest(ctx, r.Reference)
	})
}

// PullBlob is the body of the PullBlob export.
func PullBlob(ctx context.Context, input []byte) []byte {
	return Call(ctx, "PullBlob", input, func(ctx context.Context, r abi.PullBlobRequest) (*oci.Blob, error) {
		return newClient(r.Environ, r.Network, &r.Transfer).PullBlob(ctx, r.Reference, blobRequest(r.Blob))
	})
}

// PullBlobs is the body of the PullBlobs export.
func PullBlobs(ctx context.Context, input []byte) []byte {
	return Call(ctx, "PullBlobs", input, func(ctx context.Context, r abi.PullBlobsRequest) (*BlobsResult, error) {
		reqs := make([]oci.BlobRequest, len(r.Blobs))
		for i, b := range r.Blobs {
			reqs[i] = blobRequest(b)
		}
		blobs, err := newClient(r.Environ, r.Network, &r.Transfer).PullBlobs(ctx, r.Reference, reqs, r.Concurrency)
		if err != nil {
			return nil, err
		}
		return &BlobsResult{Blobs: blobs}, nil
	})
}

// TestAuthentication is the body of the TestAuthentication export.
func TestAuthentication(ctx context.Context, input []byte) []byte {
	return Call(ctx, "TestAuthentication", input, func(ctx context.Context, r abi.TestAuthenticationRequest) (*oci.AuthResult, error) {
		return newClient(r.Environ, r.Network, nil).CheckAuth(ctx, r.Reference)
	})
}

// CancelOperation is the body of the CancelOperation export. Cancelling an
// id whose call has not started yet cancels that call when it starts.
func CancelOperation(ctx context.Context, input []byte) []byte {
	return Call(ctx, "CancelOperation", input, func(ctx context.Context, r abi.CancelOperationRequest) (*OperationResult, error) {
		return &OperationResult{Running: cancelOperation(r.ID)}, nil
	})
}

// OperationProgress is the body of the OperationProgress export.
func OperationProgress(ctx context.Context, input []byte) []byte {
	return Call(ctx, "OperationProgress", input, func(ctx context.Context, r abi.OperationProgressRequest) (*OperationResult, error) {
		waitForBlobs(ctx, r.ID, r.BlobsAfter, time.Duration(r.WaitMS)*time.Millisecond)
		s, entries, ok := progressOf(r.ID)
		return &OperationResult{Running: ok, Snapshot: s, Logs: entries}, nil
	})
}
