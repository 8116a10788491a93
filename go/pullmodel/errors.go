package pullmodel

import (
	"errors"
	"fmt"

	"github.com/oci-client/liboci/extract"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
)

// wrap gives err a code unless it has one; nil stays nil.
func wrap(code oci.Code, err error) error { return oci.Coded(code, err) }

// classify gives model and archive errors their codes; others keep theirs.
func classify(err error) error {
	var unsafe *extract.UnsafeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &unsafe):
		return &oci.Error{Code: oci.CodeUnsafeArchive, Err: err}
	case errors.Is(err, extract.ErrCorrupt), errors.Is(err, model.ErrNotModel), errors.Is(err, model.ErrBadManifest):
		return &oci.Error{Code: oci.CodeInvalidModel, Err: err}
	case errors.Is(err, model.ErrAmbiguousIndex), errors.Is(err, model.ErrBadPattern):
		return &oci.Error{Code: oci.CodeInvalidArgument, Err: err}
	}
	return err
}

// notCached is an offline miss of ref (and of the manifest digest, when
// one was missing): callers catch it by its reference.
func notCached(ref, digest, format string, args ...any) error {
	return &oci.Error{
		Code: oci.CodeNotCached, Reference: ref, Digest: digest,
		Err: fmt.Errorf(format+" (offline: OCI_CLIENT_OFFLINE, HF_HUB_OFFLINE or offline=True)", args...),
	}
}
