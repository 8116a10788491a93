// Package capi implements the JSON-in, JSON-envelope-out contract of the
// C exports in pure Go, so that all of it is testable without cgo. The
// request types are package abi's.
package capi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/redact"
	"github.com/oci-client/liboci/oci"
)

// ErrorBody is the "error" member of a failed envelope.
type ErrorBody struct {
	Code         oci.Code `json:"code"`
	Message      string   `json:"message"`
	Status       int      `json:"status,omitempty"`
	RegistryCode string   `json:"registry_code,omitempty"`
	Details      any      `json:"details,omitempty"`
}

type envelope struct {
	// AbiVersion lets a caller that did not check the AbiVersion export
	// still tell a library of another contract.
	AbiVersion int        `json:"abi_version"`
	OK         bool       `json:"ok"`
	Result     any        `json:"result,omitempty"`
	Error      *ErrorBody `json:"error,omitempty"`
}

// controlled is what Call needs of every request type: the control fields
// (abi.Control, embedded).
type controlled interface{ CallControl() abi.Control }

// Call runs fn on the request decoded from input and returns the envelope.
// export names the export in errors. It never panics: a panic inside fn
// becomes an INTERNAL error. Every error message passes through the call's
// redactor on its way out.
func Call[Req controlled, Resp any](ctx context.Context, export string, input []byte, fn func(context.Context, Req) (Resp, error)) (out []byte) {
	ctx, secrets := redact.WithSet(ctx)
	defer func() {
		if p := recover(); p != nil {
			out = failure(secrets, &oci.Error{Code: oci.CodeInternal, Err: fmt.Errorf("internal error (please report): %v\n%s", p, debug.Stack())})
		}
	}()

	var req Req
	if err := abi.Decode(input, &req); err != nil {
		return failure(secrets, decodeError(export, err))
	}
	dl := req.CallControl()
	if dl.TimeoutMS < 0 {
		return failure(secrets, &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("timeout_ms must not be negative, got %d", dl.TimeoutMS)})
	}
	ctx, finish := startOperation(ctx, dl.OperationID)
	defer finish()
	if dl.TimeoutMS > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(dl.TimeoutMS)*time.Millisecond)
		defer cancel()
	}
	resp, err := fn(ctx, req)
	if err != nil {
		return failure(secrets, oci.AsError(err))
	}
	b, err := json.Marshal(envelope{AbiVersion: abi.Version, OK: true, Result: resp})
	if err != nil {
		return failure(secrets, &oci.Error{Code: oci.CodeInternal, Err: fmt.Errorf("encoding result: %w", err)})
	}
	return b
}

// decodeError is INVALID_ARGUMENT naming the export and, for a key the
// request does not take, the key (also in details, for programs).
func decodeError(export string, err error) *oci.Error {
	var unknown *abi.UnknownFieldError
	if errors.As(err, &unknown) {
		return &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("%s: %w", export, err),
			Details: map[string]any{"export": export, "field": unknown.Field}}
	}
	return &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("decoding the %s request: %w", export, err)}
}

func failure(secrets *redact.Set, e *oci.Error) []byte {
	b, err := json.Marshal(envelope{AbiVersion: abi.Version, Error: &ErrorBody{
		Code:         e.Code,
		Message:      secrets.Scrub(e.Error()),
		Status:       e.Status,
		RegistryCode: e.RegistryCode,
		Details:      e.Details,
	}})
	if err != nil {
		// Marshalling strings and ints cannot fail; keep a valid envelope anyway.
		return []byte(`{"abi_version":` + strconv.Itoa(abi.Version) + `,"ok":false,"error":{"code":"INTERNAL","message":"encoding error"}}`)
	}
	return b
}
