// Package capi implements the JSON-in, JSON-envelope-out contract of the
// C exports in pure Go, so that all of it is testable without cgo.
package capi

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/oci-client/liboci/internal/logs"
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
	// Reference, Digest and URL say what failed, where known; URL is
	// redacted (no user information, no signed query parameters).
	Reference string `json:"reference,omitempty"`
	Digest    string `json:"digest,omitempty"`
	URL       string `json:"url,omitempty"`
}

// referenced is a request that names a reference (every one embedding
// Common): an error that does not say which one it concerns is about it.
type referenced interface{ reference() string }

type envelope struct {
	OK     bool       `json:"ok"`
	Result any        `json:"result,omitempty"`
	Error  *ErrorBody `json:"error,omitempty"`
	// Logs are the call's log records not yet read through
	// OperationProgress, when the request asked for them (log_level).
	Logs []logs.Entry `json:"logs,omitempty"`
}

// control is read from every request before the request proper.
type control struct {
	// TimeoutMS bounds the whole call; 0 or absent means no limit.
	TimeoutMS int64 `json:"timeout_ms"`
	// OperationID lets other threads follow and cancel this call.
	OperationID string `json:"operation_id"`
	// LogLevel asks for the call's log records at this level and above
	// ("debug", "info", "warning", "error"); absent: none are made.
	LogLevel string `json:"log_level"`
}

// Call runs fn on the request decoded from input and returns the envelope.
// It never panics: a panic inside fn becomes an INTERNAL error. Every error
// message passes through the call's redactor on its way out.
func Call[Req, Resp any](ctx context.Context, input []byte, fn func(context.Context, Req) (Resp, error)) (out []byte) {
	ctx, secrets := redact.WithSet(ctx)
	var rec *logs.Recorder // nil until the request asks for logs
	defer func() {
		if p := recover(); p != nil {
			out = failure(secrets, rec, &oci.Error{Code: oci.CodeInternal, Err: fmt.Errorf("internal error (please report): %v\n%s", p, debug.Stack())})
		}
	}()

	var dl control
	var req Req
	if err := json.Unmarshal(input, &dl); err != nil {
		return failure(secrets, nil, &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("decoding request: %w", err)})
	}
	if err := json.Unmarshal(input, &req); err != nil {
		return failure(secrets, nil, &oci.Error{Code: oci.CodeInvalidArgument, Err: fmt.Errorf("decoding request: %w", err)})
	}
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
		if r, ok := any(req).(referenced); ok && e.Reference == "" {
			e.Reference = r.reference()
		}
		return failure(secrets, rec, e)
	}
	b, err := json.Marshal(envelope{OK: true, Result: resp, Logs: rec.Drain()})
	if err != nil {
		return failure(secrets, rec, &oci.Error{Code: oci.CodeInternal, Err: fmt.Errorf("encoding result: %w", err)})
	}
	return b
}

func failure(secrets *redact.Set, rec *logs.Recorder, e *oci.Error) []byte {
	b, err := json.Marshal(envelope{Error: &ErrorBody{
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
		return []byte(`{"ok":false,"error":{"code":"INTERNAL","message":"encoding error"}}`)
	}
	return b
}
