// Package abi holds the wire contract of liboci's C exports: the ABI
// version, the list of exports, the request and result type of each, the
// envelope and the events. It imports
// nothing of the domain packages, so that the contract changes only when
// someone edits it here, on purpose.
//
// Every request type accepts exactly its fields: Decode refuses a key no
// field names (an exact, case-sensitive match), so a misspelt option fails
// instead of quietly becoming a default.
package abi

// Version is the ABI version, reported by the AbiVersion export and in
// every envelope. Bump it when a request or result changes in a way an
// older caller or library would misread (a field renamed, removed or given
// another meaning); adding an optional request field or a result field is
// not such a change.
const Version = 2

// Export is one JSON export: Name is its C symbol, Request and Result zero
// values of its request and result types.
type Export struct {
	Name    string
	Doc     string
	Request any
	Result  any
}

// Exports lists every export that takes a JSON request, in the order the
// docs give them. The cgo shims, Python's loader, the packaging check and
// docs/reference/c-abi.md all follow this list (tests hold them to it).
var Exports = []Export{
	{"PullManifest", "Fetches a manifest or index.", PullManifestRequest{}, ManifestResult{}},
	{"PullBlob", "Downloads and verifies one blob to a path.", PullBlobRequest{}, PulledBlob{}},
	{"PullBlobs", "Downloads and verifies several blobs in parallel.", PullBlobsRequest{}, PullBlobsResult{}},
	{"PullModel", "Pulls a model into the cache or a local directory.", PullModelRequest{}, PullModelResult{}},
	{"InspectModel", "Describes a model without pulling its files.", InspectModelRequest{}, InspectModelResult{}},
	{"CacheList", "Lists the models in the cache.", CacheListRequest{}, CacheListResult{}},
	{"CacheRemove", "Removes a tag or snapshot from the cache.", CacheRemoveRequest{}, RemovedResult{}},
	{"CachePrune", "Deletes cached content no snapshot uses.", CachePruneRequest{}, RemovedResult{}},
	{"CacheSync", "Waits until every blob this process pulled is durable.", CacheSyncRequest{}, CacheSyncResult{}},
	{"CacheVerify", "Re-hashes cached blobs and repairs wrong ones.", CacheVerifyRequest{}, CacheVerifyResult{}},
	{"PushModel", "Publishes a model directory.", PushModelRequest{}, PushModelResult{}},
	{"ExportModel", "Writes a model into an OCI image layout, for sites with no registry.", ExportModelRequest{}, ExportModelResult{}},
	{"TestAuthentication", "Checks pull access with the current credentials.", TestAuthenticationRequest{}, AuthResult{}},
	{"CancelOperation", "Cancels the running call with this operation_id.", CancelOperationRequest{}, OperationResult{}},
	{"OperationProgress", "Reports the progress of a running call.", OperationProgressRequest{}, OperationResult{}},
	{"RuntimeStats", "Reports the library's goroutines, operations and Go memory, for leak checks.", RuntimeStatsRequest{}, RuntimeStatsResult{}},
}

// PlainSymbols are the exports that take no JSON: AbiVersion returns
// Version as a C int; FreeString frees an envelope.
var PlainSymbols = []string{"AbiVersion", "FreeString"}
