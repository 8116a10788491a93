// Command liboci is the C ABI of oci-client, built with
// -buildmode=c-shared (liboci.so / liboci.dylib) or -buildmode=c-archive
// (liboci.a plus liboci.h).
//
// The contract, for every export but AbiVersion and FreeString:
//
//   - The argument is a NUL-terminated UTF-8 JSON object. It is copied
//     before the call does anything, so the caller may free or reuse it as
//     soon as the call returns.
//   - The argument takes exactly the fields of the export's request type
//     in package abi (docs/reference/c-abi.md); any other key, or one spelt in
//     another case, or the absence of a required one, fails with
//     INVALID_ARGUMENT naming it. The result is the export's result type
//     in package abi.
//   - The return value is never NULL: a NUL-terminated UTF-8 JSON envelope
//     allocated with malloc, either {"abi_version":N,"ok":true,"result":{...}}
//     or {"abi_version":N,"ok":false,"error":{"code":"...","message":"...",
//     "status":N,"registry_code":"...","details":{...},"reference":"...",
//     "digest":"...","url":"..."}} (status and registry_code only when the
//     registry answered; the others only when known; url without
//     credentials or signed query parameters). AbiVersion() returns the
//     same N: check it once before calling anything else. Codes are listed
//     in package oci; unknown codes must be treated as INTERNAL.
//   - The caller frees the returned pointer exactly once with FreeString,
//     and with nothing else. From Python: restype c_void_p (never
//     c_char_p, which copies the bytes and loses the pointer), read with
//     ctypes.string_at, then FreeString.
//   - Calls are safe from many threads at once. No panic crosses the
//     boundary; messages never contain credentials.
//   - A request may carry "operation_id" (any string unique among running
//     calls) and "timeout_ms". While it runs, OperationProgress and
//     CancelOperation, called from another thread with {"id": ...}, read its
//     progress and cancel it; it then returns promptly with CANCELED.
//     OperationProgress with "wait_ms" and "blobs_after" waits (at most a
//     second) for the next finished blob instead of answering at once.
//     Go never calls back into the caller.
//   - A request may carry "log_level" ("debug", "info", "warning" or
//     "error"; absent: no logs). The call's log records at that level and
//     above then come as "logs" in the results of OperationProgress (those
//     made since the last read) and in its envelope (the rest): a list of
//     {"time": unix seconds, "level", "logger", "msg", "attrs": {...}},
//     credentials masked. At most 1000 wait between reads; the oldest go.
//   - A request may carry "events": true. The call's typed events
//     (abi.Event: {"seq", "time", "kind", <kind>: {...}}) then come as
//     "events" in the results of OperationProgress and in its envelope,
//     each once, numbered from 1; at most 1000 wait between reads, the
//     oldest go and "events_dropped" says how many (docs/reference/events.md).
//   - Go reads GOMAXPROCS and GODEBUG once, when the library loads. Other
//     settings (credentials, proxies, TLS roots) come in each request's
//     "env" member, never from the environment frozen at load time.
//   - Never dlclose the library, and do not call it in a child forked after
//     the first call: the Go runtime does not survive fork.
package main

/*
#include <stdlib.h>
#include <string.h>
*/
import "C"

import (
	"context"
	"unsafe"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/capi"
)

func export(fn func(context.Context, []byte) []byte, input *C.char) *C.char {
	var in []byte
	if input != nil {
		in = C.GoBytes(unsafe.Pointer(input), C.int(C.strlen(input)))
	}
	return C.CString(string(fn(context.Background(), in)))
}

// PullManifest fetches a manifest or index; see package capi.
//
//export PullManifest
func PullManifest(request *C.char) *C.char { return export(capi.PullManifest, request) }

// PullBlob downloads and verifies a blob to a path; see package capi.
//
//export PullBlob
func PullBlob(request *C.char) *C.char { return export(capi.PullBlob, request) }

// PullBlobs downloads several blobs in parallel; see package capi.
//
//export PullBlobs
func PullBlobs(request *C.char) *C.char { return export(capi.PullBlobs, request) }

// CancelOperation cancels the running call whose request had this
// "operation_id" (input {"id": "..."}).
//
//export CancelOperation
func CancelOperation(request *C.char) *C.char { return export(capi.CancelOperation, request) }

// OperationProgress reports bytes and blobs done of a running call.
//
//export OperationProgress
func OperationProgress(request *C.char) *C.char { return export(capi.OperationProgress, request) }

// TestAuthentication checks pull access with the current credentials.
//
//export TestAuthentication
func TestAuthentication(request *C.char) *C.char { return export(capi.TestAuthentication, request) }

// PullModel pulls a model into the cache or a local directory; see package capi.
//
//export PullModel
func PullModel(request *C.char) *C.char { return export(capi.PullModel, request) }

// ExportModel writes a model into an OCI image layout.
//
//export ExportModel
func ExportModel(request *C.char) *C.char { return export(capi.ExportModel, request) }

// InspectModel describes a model without pulling its files.
//
//export InspectModel
func InspectModel(request *C.char) *C.char { return export(capi.InspectModel, request) }

// CacheList lists the models in the cache.
//
//export CacheList
func CacheList(request *C.char) *C.char { return export(capi.CacheList, request) }

// CacheRemove removes a tag or snapshot from the cache.
//
//export CacheRemove
func CacheRemove(request *C.char) *C.char { return export(capi.CacheRemove, request) }

// CachePrune deletes cached content no snapshot uses.
//
//export CachePrune
func CachePrune(request *C.char) *C.char { return export(capi.CachePrune, request) }

// CacheVerify re-hashes cached blobs and repairs wrong ones; see package capi.
//
//export CacheVerify
func CacheVerify(request *C.char) *C.char { return export(capi.CacheVerify, request) }

// CacheSync waits until every blob this process pulled is durable.
//
//export CacheSync
func CacheSync(request *C.char) *C.char { return export(capi.WaitDurable, request) }

// PushModel publishes a model directory; see capi.PushRequest.
//
//export PushModel
func PushModel(request *C.char) *C.char { return export(capi.PushModel, request) }

// RuntimeStats reports the library's goroutines, running operations and Go
// memory, for leak checks (bench/soak.py); see abi.RuntimeStatsResult.
//
//export RuntimeStats
func RuntimeStats(request *C.char) *C.char { return export(capi.RuntimeStats, request) }

// AbiVersion is the version of this contract (abi.Version): a caller
// checks it once, before any other call.
//
//export AbiVersion
func AbiVersion() C.int { return C.int(abi.Version) }

// FreeString releases a string returned by any export. NULL is ignored.
//
//export FreeString
func FreeString(s *C.char) { C.free(unsafe.Pointer(s)) }

func main() {}
