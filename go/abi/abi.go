// Package abi holds the wire contract of liboci's C exports: the ABI
// version, the list of exports and the request type of each. It imports
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
const Version = 1

// Export is one JSON export: Name is its C symbol, Request a zero value of
// its request type.
type Export struct {
	Name    string
	Doc     string
	Request any
}

// Exports lists every export that takes a JSON request, in the order the
// docs give them. The cgo shims, Python's loader, the packaging check and
// docs/reference/c-abi.md all follow this list (tests hold them to it).
var Exports = []Export{
	{"PullManifest", "Fetches a manifest or index.", PullManifestRequest{}},
	{"PullBlob", "Downloads and verifies one blob to a path.", PullBlobRequest{}},
	{"PullBlobs", "Downloads and verifies several blobs in parallel.", PullBlobsRequest{}},
	{"PullModel", "Pulls a model into the cache or a local directory.", PullModelRequest{}},
	{"InspectModel", "Describes a model without pulling its files.", InspectModelRequest{}},
	{"CacheList", "Lists the models in the cache.", CacheListRequest{}},
	{"CacheRemove", "Removes a tag or snapshot from the cache.", CacheRemoveRequest{}},
	{"CachePrune", "Deletes cached content no snapshot uses.", CachePruneRequest{}},
	{"CacheSync", "Waits until every blob this process pulled is durable.", CacheSyncRequest{}},
	{"CacheVerify", "Re-hashes cached blobs and repairs wrong ones.", CacheVerifyRequest{}},
	{"PushModel", "Publishes a model directory.", PushModelRequest{}},
	{"ExportModel", "Writes a model into an OCI image layout, for sites with no registry.", ExportModelRequest{}},
	{"TestAuthentication", "Checks pull access with the current credentials.", TestAuthenticationRequest{}},
	{"CancelOperation", "Cancels the running call with this operation_id.", CancelOperationRequest{}},
	{"OperationProgress", "Reports the progress of a running call.", OperationProgressRequest{}},
	{"RuntimeStats", "Reports the library's goroutines, operations and Go memory, for leak checks.", RuntimeStatsRequest{}},
}

// PlainSymbols are the exports that take no JSON: AbiVersion returns
// Version as a C int; FreeString frees an envelope.
var PlainSymbols = []string{"AbiVersion", "FreeString"}
