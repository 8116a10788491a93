package model

import "errors"

// The kinds of error this package returns, for callers to map to their error
// codes with errors.Is. Each is wrapped with the details.
var (
	// ErrNotModel: the manifest parses but is no model, e.g. a container
	// image, or no layer is usable.
	ErrNotModel = errors.New("not a model")
	// ErrBadManifest: the manifest or config does not parse, has the wrong
	// schema or bad digest or size fields, or names unsafe or duplicate paths.
	ErrBadManifest = errors.New("invalid manifest")
	// ErrAmbiguousIndex: an index has several candidates and no selector, or
	// none that matches the selector; the message lists the candidates.
	ErrAmbiguousIndex = errors.New("ambiguous index")
	// ErrBadPattern: a glob pattern or platform selector does not parse.
	ErrBadPattern = errors.New("invalid pattern")
)
