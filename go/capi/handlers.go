package capi

import (
	"context"
	"path/filepath"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/transfer"
)

// newClient is the registry client a request's pieces describe; t is nil
// for an export that downloads no blob. A field that is absent (0, "")
// takes oci's default; one that cannot apply (a negative number) is an
// INVALID_ARGUMENT error from the option that refuses it.
func newClient(e abi.Environ, n abi.Network, t *abi.Transfer) (*oci.Client, error) {
	env := e.Env
	if env == nil {
		// An explicit empty environment, never the one frozen at load time.
		env = map[string]string{}
	}
	opts := []oci.Option{oci.WithEnv(env), oci.WithInsecureRegistries(n.InsecureRegistries...)}
	if n.CAFile != "" {
		opts = append(opts, oci.WithCAFile(n.CAFile))
	}
	if n.Proxy != "" {
		opts = append(opts, oci.WithProxy(n.Proxy))
	}
	if t != nil {
		opts = append(opts, oci.WithTransfer(transfer.Options{
			Connections: t.Connections,
			ChunkSize:   t.ChunkSize,
			ReadTimeout: time.Duration(t.ReadTimeoutMS) * time.Millisecond,
		}))
		if t.DirectIO != nil {
			opts = append(opts, oci.WithDirectIO(*t.DirectIO))
		}
	}
	if n.Retries != 0 {
		opts = append(opts, oci.WithRetries(n.Retries))
	}
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

func blobRequest(b abi.Blob) oci.BlobRequest {
	return oci.BlobRequest{Digest: b.Digest, Path: b.Path, Size: b.Size, Label: b.Label}
}

// PullManifest is the body of the PullManifest export.
func PullManifest(ctx context.Context, input []byte) []byte {
	return Call(ctx, "PullManifest", input, func(ctx context.Context, r abi.PullManifestRequest) (*abi.ManifestResult, error) {
		c, err := newClient(r.Environ, r.Network, nil)
		if err != nil {
			return nil, err
		}
		m, err := c.PullManifest(ctx, r.Reference)
		if err != nil {
			return nil, err
		}
		w := wireManifest(m)
		return &w, nil
	})
}

// PullBlob is the body of the PullBlob export.
func PullBlob(ctx context.Context, input []byte) []byte {
	return Call(ctx, "PullBlob", input, func(ctx context.Context, r abi.PullBlobRequest) (*abi.PulledBlob, error) {
		c, err := newClient(r.Environ, r.Network, &r.Transfer)
		if err != nil {
			return nil, err
		}
		b, err := c.PullBlob(ctx, r.Reference, blobRequest(r.Blob))
		if err != nil {
			return nil, err
		}
		w := wireBlob(*b)
		return &w, nil
	})
}

// PullBlobs is the body of the PullBlobs export.
func PullBlobs(ctx context.Context, input []byte) []byte {
	return Call(ctx, "PullBlobs", input, func(ctx context.Context, r abi.PullBlobsRequest) (*abi.PullBlobsResult, error) {
		c, err := newClient(r.Environ, r.Network, &r.Transfer)
		if err != nil {
			return nil, err
		}
		reqs := make([]oci.BlobRequest, len(r.Blobs))
		for i, b := range r.Blobs {
			reqs[i] = blobRequest(b)
		}
		blobs, err := c.PullBlobs(ctx, r.Reference, reqs, r.Concurrency)
		if err != nil {
			return nil, err
		}
		return &abi.PullBlobsResult{Blobs: mapSlice(blobs, wireBlob)}, nil
	})
}

// TestAuthentication is the body of the TestAuthentication export.
func TestAuthentication(ctx context.Context, input []byte) []byte {
	return Call(ctx, "TestAuthentication", input, func(ctx context.Context, r abi.TestAuthenticationRequest) (*abi.AuthResult, error) {
		c, err := newClient(r.Environ, r.Network, nil)
		if err != nil {
			return nil, err
		}
		a, err := c.CheckAuth(ctx, r.Reference)
		if err != nil {
			return nil, err
		}
		w := wireAuth(a)
		return &w, nil
	})
}

// CancelOperation is the body of the CancelOperation export. Cancelling an
// id whose call has not started yet cancels that call when it starts.
func CancelOperation(ctx context.Context, input []byte) []byte {
	return Call(ctx, "CancelOperation", input, func(ctx context.Context, r abi.CancelOperationRequest) (*abi.OperationResult, error) {
		return &abi.OperationResult{Running: cancelOperation(r.ID), Blobs: []abi.BlobProgress{}}, nil
	})
}

// OperationProgress is the body of the OperationProgress export.
func OperationProgress(ctx context.Context, input []byte) []byte {
	return Call(ctx, "OperationProgress", input, func(ctx context.Context, r abi.OperationProgressRequest) (*abi.OperationResult, error) {
		waitForBlobs(ctx, r.ID, r.BlobsAfter, time.Duration(r.WaitMS)*time.Millisecond)
		return progressOf(r.ID), nil
	})
}
