// Package capi implements the JSON-in, JSON-envelope-out contract of the
// C exports in pure Go, so that all of it is testable without cgo.
package capi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/internal/redact"
	"github.com/oci-client/liboci/oci"

	"github.com/oci-client/liboci/mirrors"
)

// ErrorBody is the "error" member of a failed envelope.
type ErrorBody struct {
	Code         oci.Code `json:"code"`
	Message      string   `json:"message"`
	Status       int      `json:"status,omitempty"`
	RegistryCode string   `json:"registry_code,omitempty"`
	Details      any      `json:"details,omitempty"`
	// Reference, Digest and URL say what failed, where known; URL is
	// redacted (no user information, no signed query parameters).
	Reference string `json:"reference,omitempty"`
	Digest    string `json:"digest,omitempty"`
	URL       string `json:"url,omitempty"`
}

type envelope struct {
	// AbiVersion lets a caller that did not check the AbiVersion export
	// still tell a library of another contract.
	AbiVersion int        `json:"abi_version"`
	OK         bool       `json:"ok"`
	Result     any        `json:"result,omitempty"`
	Error      *ErrorBody `json:"error,omitempty"`
	// Logs are the call's log records not yet read through
	// OperationProgress, when the request asked for them (log_level).
	Logs []logs.Entry `json:"logs,omitempty"`
}

// controlled is what Call needs of every request type: the control fields
// (abi.Control, embedded).
type controlled interface{ CallControl() abi.Control }

// referenceOf is the reference a request names ("" for none): an error
// that does not say which reference it concerns is about that one.
func referenceOf(req any) string {
	v := reflect.Indirect(reflect.ValueOf(req))
	if v.Kind() != reflect.Struct {
		return ""
	}
	if f := v.FieldByName("Reference"); f.IsValid() && f.Kind() == reflect.String {
		return f.String()
	}
	return ""
}

// Call runs fn on the request decoded from input and returns the envelope.
// export names the export in errors. It never panics: a panic inside fn
// becomes an INTERNAL error. Every error message passes through the call's
// redactor on its way out.
func Call[Req controlled, Resp any](ctx context.Context, export string, input []byte, fn func(context.Context, Req) (Resp, error)) (out []byte) {
	ctx, secrets := redact.WithSet(ctx)
	ctx = mirrors.WithCall(ctx) // a pull's requests share what they learn of mirrors
	var rec *logs.Recorder      // nil until the request asks for logs
	defer func() {
		if p := recover(); p != nil {
			out = failure(secrets, rec, &oci.Error{Code: oci.CodeInternal, Err: fmt.Errorf("internal error (please report): %v\n%s", p, debug.Stack())})
		}
	}()

	var req Req
	if err := abi.Decode(input, &req); err != nil {
		return failure(secrets, nil, decodeError(export, err))
	}
	dl := req.CallControl()
	if dl.TimeoutMS < 0 {
		return failure(secrets, nil, &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("timeout_ms must not be negative, got %d", dl.TimeoutMS)})
	}
	level, on, err := logs.ParseLevel(dl.LogLevel)
	if err != nil {
		return failure(secrets, nil, &oci.Error{Code: oci.CodeInvalidArgument, Err: err})
	}
	if on {
		rec = logs.NewRecorder(level, secrets)
		ctx = logs.With(ctx, rec.Logger())
	}
	ctx, finish := startOperation(ctx, dl.OperationID, rec)
	defer finish()
	if dl.TimeoutMS > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(dl.TimeoutMS)*time.Millisecond)
		defer cancel()
	}
	resp, err := fn(ctx, req)
	if err != nil {
		e := oci.AsError(err)
		if e.Reference == "" {
			e.Reference = referenceOf(req)
		}
		return failure(secrets, rec, e)
	}
	b, err := json.Marshal(envelope{AbiVersion: abi.Version, OK: true, Result: resp, Logs: rec.Drain()})
	if err != nil {
		return failure(secrets, rec, &oci.Error{Code: oci.CodeInternal, Err: fmt.Errorf("encoding result: %w", err)})
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

func failure(secrets *redact.Set, rec *logs.Recorder, e *oci.Error) []byte {
	b, err := json.Marshal(envelope{AbiVersion: abi.Version, Error: &ErrorBody{
		Code:         e.Code,
		Message:      secrets.Scrub(e.Error()),
		Status:       e.Status,
		RegistryCode: e.RegistryCode,
		Details:      e.Details,
		Reference:    secrets.Scrub(e.Reference),
		Digest:       e.Digest,
		URL:          secrets.Scrub(redact.URL(e.URL)),
	}, Logs: rec.Drain()})
	if err != nil {
		// Marshalling strings and ints cannot fail; keep a valid envelope anyway.
		return []byte(`{"abi_version":` + strconv.Itoa(abi.Version) + `,"ok":false,"error":{"code":"INTERNAL","message":"encoding error"}}`)
	}
	return b
}
