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
	"github.com/oci-client/liboci/internal/events"
	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/internal/redact"
	"github.com/oci-client/liboci/oci"

	"github.com/oci-client/liboci/mirrors"
)

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
	var sink *events.Sink       // nil until the request asks for events
	defer func() {
		if p := recover(); p != nil {
			out = failure(secrets, rec, sink, &oci.Error{Code: oci.CodeInternal, Err: fmt.Errorf("internal error (please report): %v\n%s", p, debug.Stack())})
		}
	}()

	var req Req
	if err := abi.Decode(input, &req); err != nil {
		return failure(secrets, nil, nil, decodeError(export, err))
	}
	dl := req.CallControl()
	if dl.TimeoutMS < 0 {
		return failure(secrets, nil, nil, &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("timeout_ms must not be negative, got %d", dl.TimeoutMS)})
	}
	level, on, err := logs.ParseLevel(dl.LogLevel)
	if err != nil {
		return failure(secrets, nil, nil, &oci.Error{Code: oci.CodeInvalidArgument, Err: err})
	}
	if on {
		rec = logs.NewRecorder(level, secrets)
		ctx = logs.With(ctx, rec.Logger())
	}
	if dl.Events {
		sink = events.NewSink(secrets)
		ctx = events.With(ctx, sink)
	}
	ctx, finish := startOperation(ctx, dl.OperationID, rec, sink)
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
		return failure(secrets, rec, sink, e)
	}
	env := abi.Envelope{AbiVersion: abi.Version, OK: true, Result: resp, Logs: rec.Drain()}
	env.Events, env.EventsDropped = sink.Drain()
	b, err := json.Marshal(env)
	if err != nil {
		return failure(secrets, rec, sink, &oci.Error{Code: oci.CodeInternal, Err: fmt.Errorf("encoding result: %w", err)})
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
	var missing *abi.MissingFieldError
	if errors.As(err, &missing) {
		return &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("%s: %w", export, err),
			Details: map[string]any{"export": export, "field": missing.Field}}
	}
	return &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("decoding the %s request: %w", export, err)}
}

func failure(secrets *redact.Set, rec *logs.Recorder, sink *events.Sink, e *oci.Error) []byte {
	env := abi.Envelope{AbiVersion: abi.Version, Error: &abi.ErrorBody{
		Code:         string(e.Code),
		Message:      secrets.Scrub(e.Error()),
		Status:       e.Status,
		RegistryCode: e.RegistryCode,
		Details:      e.Details,
		Reference:    secrets.Scrub(e.Reference),
		Digest:       e.Digest,
		URL:          secrets.Scrub(redact.URL(e.URL)),
	}, Logs: rec.Drain()}
	env.Events, env.EventsDropped = sink.Drain()
	b, err := json.Marshal(env)
	if err != nil {
		// Marshalling strings and ints cannot fail; keep a valid envelope anyway.
		return []byte(`{"abi_version":` + strconv.Itoa(abi.Version) + `,"ok":false,"error":{"code":"INTERNAL","message":"encoding error"}}`)
	}
	return b
}
