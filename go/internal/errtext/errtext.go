// Package errtext is the one place that reads an error's message to learn
// what it is. Everything else classifies by type (errors.As, errors.Is);
// these are the failures whose producers give no type to match: net/http's
// answers built with errors.New, and go-containerregistry's digest check
// built with fmt.Errorf without %w. Each entry names its producer, so a
// test fails here, not in a caller, when one of them changes its wording.
package errtext

import "strings"

// Kind is what an error's text says it is.
type Kind int

// The kinds Of recognises.
const (
	Unknown Kind = iota
	// PlainHTTPAnswer: net/http spoke TLS and a plain HTTP server answered.
	PlainHTTPAnswer
	// UnsupportedScheme: net/http was given a URL it cannot fetch (a
	// redirect to ftp:, say).
	UnsupportedScheme
	// ConnectionRefused: a refused dial whose errno was lost on the way
	// (flattened into a string by a layer that did not wrap it).
	ConnectionRefused
	// DigestMismatch: go-containerregistry's remote.Get received a
	// manifest whose digest or size is not the one asked for.
	DigestMismatch
)

// PlainHTTPAnswerText is net/http's message for PlainHTTPAnswer.
const PlainHTTPAnswerText = "server gave HTTP response to HTTPS client"

// texts is checked in order: the first match wins. A ping that tried https
// and then http joins both failures into one message, and the plain-HTTP
// answer is the one the user must act on, so it comes first.
var texts = []struct {
	kind Kind
	text string
}{
	{PlainHTTPAnswer, PlainHTTPAnswerText},
	{UnsupportedScheme, "unsupported protocol scheme"},
	{ConnectionRefused, "connection refused"},
	// remote.Get: `manifest digest: %q does not match requested digest: %q for %q`,
	// and its fetcher's `Content-Length header %d does not match expected size %d`.
	{DigestMismatch, "does not match requested digest"},
	{DigestMismatch, "does not match expected size"},
}

// Of is what err's message says it is; Unknown for nil and for anything
// not listed above.
func Of(err error) Kind {
	if err == nil {
		return Unknown
	}
	msg := err.Error()
	for _, t := range texts {
		if strings.Contains(msg, t.text) {
			return t.kind
		}
	}
	return Unknown
}
