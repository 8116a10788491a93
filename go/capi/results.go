package capi

import (
	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/export"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/pullmodel"
	"github.com/oci-client/liboci/pushmodel"
)

// Results maps each export to a zero value of its result type, for the
// JSON Schema (abi.Schema): package abi imports no domain package, so the
// result types are named here, beside the handlers that return them.
func Results() map[string]any {
	return map[string]any{
		"PullManifest":       oci.Manifest{},
		"PullBlob":           oci.Blob{},
		"PullBlobs":          BlobsResult{},
		"PullModel":          pullmodel.Result{},
		"InspectModel":       pullmodel.Inspection{},
		"CacheList":          cache.Listing{},
		"CacheRemove":        cache.Removed{},
		"CachePrune":         cache.Removed{},
		"CacheSync":          cache.Flushed{},
		"CacheVerify":        VerifyResult{},
		"PushModel":          pushmodel.Result{},
		"ExportModel":        export.Result{},
		"TestAuthentication": oci.AuthResult{},
		"CancelOperation":    OperationResult{},
		"OperationProgress":  OperationResult{},
		"RuntimeStats":       StatsResult{},
	}
}
