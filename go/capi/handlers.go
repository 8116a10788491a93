package capi

import (
	"context"
	"time"

	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/transfer"
)

// Common holds the settings every request carries. Env is the caller's
// whole environment at call time (see package envmap for why).
type Common struct {
	Reference          string            `json:"reference"`
	Env                map[string]string `json:"env"`
	CAFile             string            `json:"ca_file"`
	InsecureRegistries []string          `json:"insecure_registries"`
	UserAgent          string            `json:"user_agent"`
	// Retries is how often one request is tried (0: the default, 5).
	Retries int `json:"retries"`
	// Connections, ChunkSize and ReadTimeoutMS tune blob downloads
	// (0: transfer's defaults).
	Connections   int   `json:"connections"`
	ChunkSize     int64 `json:"chunk_size"`
	ReadTimeoutMS int64 `json:"read_timeout_ms"`
	// DirectIO false writes blobs through the page cache (nil: O_DIRECT
	// where the file system allows it, transfer's default).
	DirectIO *bool `json:"direct_io"`
}

func (c Common) reference() string { return c.Reference }

func (c Common) client() *oci.Client {
	env := c.Env
	if env == nil {
		// An explicit empty environment, never the one frozen at load time.
		env = map[string]string{}
	}
	opts := []oci.Option{
		oci.WithEnv(env), oci.WithCAFile(c.CAFile), oci.WithInsecureRegistries(c.InsecureRegistries...),
		oci.WithTransfer(transfer.Options{
			Connections: c.Connections,
			ChunkSize:   c.ChunkSize,
			ReadTimeout: time.Duration(c.ReadTimeoutMS) * time.Millisecond,
			Buffered:    c.DirectIO != nil && !*c.DirectIO,
		}),
		oci.WithRetries(c.Retries),
	}
	if c.UserAgent != "" {
		opts = append(opts, oci.WithUserAgent(c.UserAgent))
	}
	return oci.New(opts...)
}

// ManifestRequest is PullManifest's input.
type ManifestRequest struct {
	Common
}

// BlobRequest is PullBlob's input.
type BlobRequest struct {
	Common
	oci.BlobRequest
}

// BlobsRequest is PullBlobs' input.
type BlobsRequest struct {
	Common
	Blobs []oci.BlobRequest `json:"blobs"`
	// Concurrency is how many blobs are fetched at once (0: the default).
	Concurrency int `json:"concurrency"`
}

// BlobsResult is PullBlobs' result, in request order.
type BlobsResult struct {
	Blobs []oci.Blob `json:"blobs"`
}

// AuthRequest is TestAuthentication's input.
type AuthRequest struct {
	Common
}

// OperationRequest names a running call by its operation_id. For
// OperationProgress, WaitMs > 0 makes the read wait (up to that many
// milliseconds, at most 1000) until more than BlobsAfter blobs are done or
// the call ends, so that a finished blob is heard of as it finishes.
type OperationRequest struct {
	ID         string `json:"id"`
	WaitMs     int64  `json:"wait_ms,omitempty"`
	BlobsAfter int64  `json:"blobs_after,omitempty"`
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

// PullManifest is the body of the PullManifest export.
func PullManifest(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r ManifestRequest) (*oci.Manifest, error) {
		return r.client().PullManifest(ctx, r.Reference)
	})
}

// PullBlob is the body of the PullBlob export.
func PullBlob(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r BlobRequest) (*oci.Blob, error) {
		return r.client().PullBlob(ctx, r.Reference, r.BlobRequest)
	})
}

// PullBlobs is the body of the PullBlobs export.
func PullBlobs(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r BlobsRequest) (*BlobsResult, error) {
		blobs, err := r.client().PullBlobs(ctx, r.Reference, r.Blobs, r.Concurrency)
		if err != nil {
			return nil, err
		}
		return &BlobsResult{Blobs: blobs}, nil
	})
}

// TestAuthentication is the body of the TestAuthentication export.
func TestAuthentication(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r AuthRequest) (*oci.AuthResult, error) {
		return r.client().CheckAuth(ctx, r.Reference)
	})
}

// CancelOperation is the body of the CancelOperation export. Cancelling an
// id whose call has not started yet cancels that call when it starts.
func CancelOperation(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r OperationRequest) (*OperationResult, error) {
		return &OperationResult{Running: cancelOperation(r.ID)}, nil
	})
}

// OperationProgress is the body of the OperationProgress export.
func OperationProgress(ctx context.Context, input []byte) []byte {
	return Call(ctx, input, func(ctx context.Context, r OperationRequest) (*OperationResult, error) {
		waitForBlobs(ctx, r.ID, r.BlobsAfter, time.Duration(r.WaitMs)*time.Millisecond)
		s, entries, ok := progressOf(r.ID)
		return &OperationResult{Running: ok, Snapshot: s, Logs: entries}, nil
	})
}
