package oci_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/transfer"
)

func TestOptionsThatCannotApplyAreInvalidArguments(t *testing.T) {
	t.Parallel()
	for name, opt := range map[string]oci.Option{
		"no tries":            oci.WithRetries(0),
		"negative tries":      oci.WithRetries(-3),
		"empty user agent":    oci.WithUserAgent(""),
		"empty CA file":       oci.WithCAFile(""),
		"negative conns":      oci.WithTransfer(transfer.Options{Connections: -1}),
		"negative chunk":      oci.WithTransfer(transfer.Options{ChunkSize: -1}),
		"negative timeout":    oci.WithTransfer(transfer.Options{ReadTimeout: -time.Second}),
		"negative resumes":    oci.WithTransfer(transfer.Options{Resumes: -1}),
		"negative min chunks": oci.WithTransfer(transfer.Options{MinChunked: -1}),
	} {
		_, err := oci.New(oci.WithEnv(map[string]string{}), opt)
		var e *oci.Error
		if !errors.As(err, &e) || e.Code != oci.CodeInvalidArgument {
			t.Errorf("%s: New gave %v, want INVALID_ARGUMENT", name, err)
		}
		c := mustNew(t, oci.WithEnv(map[string]string{}))
		if _, err := c.With(opt); !errors.As(err, &e) || e.Code != oci.CodeInvalidArgument {
			t.Errorf("%s: With gave %v, want INVALID_ARGUMENT", name, err)
		}
	}
	// What applies still does, the zero values keeping the defaults.
	mustNew(t, oci.WithEnv(map[string]string{}), oci.WithRetries(1), oci.WithTransfer(transfer.Options{}), oci.WithDirectIO(false))
}

func TestNegativeConcurrencyIsAnInvalidArgumentBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	c := mustNew(t, oci.WithEnv(map[string]string{}))
	// The reference names nothing that answers: an error other than
	// INVALID_ARGUMENT would mean the call went out.
	_, err := c.PullBlobs(ctx(t), "127.0.0.1:1/x", []oci.BlobRequest{{Digest: "sha256:" + strings.Repeat("0", 64), Path: t.TempDir() + "/b"}}, -1)
	wantCode(t, err, oci.CodeInvalidArgument)
	_, err = c.PushBlobs(ctx(t), "127.0.0.1:1/x", nil, oci.PushOptions{Concurrency: -2})
	wantCode(t, err, oci.CodeInvalidArgument)
}
