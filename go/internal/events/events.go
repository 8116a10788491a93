// Package events carries each call's typed event stream (abi.Event) in
// its context, beside its logger (package logs).
//
// A call that asked for events ("events": true) gets a Sink; code whose
// context holds none pays one context lookup per event site. A site makes
// one call, Log, that both logs its line and records its event, so the two
// never disagree. As with the logs, nothing calls back into the caller: the
// events wait in the Sink, bounded, until a progress read or the envelope
// takes them.
package events

import (
	"context"
	"log/slog"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/internal/redact"
)

type ctxKey struct{}

// With returns ctx carrying s.
func With(ctx context.Context, s *Sink) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// From returns the Sink of the call ctx belongs to, or nil (all methods
// accept nil).
func From(ctx context.Context) *Sink {
	s, _ := ctx.Value(ctxKey{}).(*Sink)
	return s
}

// Enabled reports whether ctx's call takes events.
func Enabled(ctx context.Context) bool { return From(ctx) != nil }

// Emit records d as an event of ctx's call, if it takes events.
func Emit(ctx context.Context, d abi.EventData) { From(ctx).Add(d) }

// Log logs msg with args at INFO on area's logger and records d as an
// event of ctx's call: one call at a site for both.
func Log(ctx context.Context, area, msg string, d abi.EventData, args ...any) {
	Emit(ctx, d)
	logs.From(ctx, area).Info(msg, args...)
}

// Wanted reports whether a site has anyone to tell, as logs or as events,
// at INFO: a site that must do work to say something (read a lease file,
// format a URL) asks first.
func Wanted(ctx context.Context) bool {
	return Enabled(ctx) || logs.Enabled(ctx, slog.LevelInfo)
}

type pending struct {
	seq  int64
	time float64
	data abi.EventData
}

// Sink keeps one call's events until they are drained. Secrets are masked
// on the way out, as the logs' are, so that a secret the call learns after
// an event was made is masked in it too.
type Sink struct {
	secrets *redact.Set
	max     int

	mu      sync.Mutex
	seq     int64
	events  []pending
	dropped int64
}

// NewSink keeps events, masking secrets' values.
func NewSink(secrets *redact.Set) *Sink {
	return &Sink{secrets: secrets, max: abi.MaxEvents}
}

// Add records d, dropping the oldest event kept when the Sink is full.
func (s *Sink) Add(d abi.EventData) {
	if s == nil {
		return
	}
	now := float64(time.Now().UnixNano()) / 1e9
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	if len(s.events) >= s.max {
		s.events = s.events[1:]
		s.dropped++
	}
	s.events = append(s.events, pending{s.seq, now, d})
}

// Drain returns the events kept since the last drain, oldest first, and
// how many were dropped meanwhile, and forgets them. A nil Sink has none.
func (s *Sink) Drain() ([]abi.Event, int64) {
	if s == nil {
		return nil, 0
	}
	s.mu.Lock()
	in, dropped := s.events, s.dropped
	s.events, s.dropped = nil, 0
	s.mu.Unlock()
	if len(in) == 0 {
		return nil, dropped
	}
	out := make([]abi.Event, len(in))
	for i, p := range in {
		out[i] = abi.NewEvent(p.seq, p.time, s.scrub(p.data))
	}
	return out, dropped
}

// scrub is d with the call's secrets masked in every string field.
func (s *Sink) scrub(d abi.EventData) abi.EventData {
	v := reflect.New(reflect.TypeOf(d)).Elem()
	v.Set(reflect.ValueOf(d))
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.String {
			f.SetString(s.secrets.Scrub(f.String()))
		}
	}
	return v.Interface().(abi.EventData)
}

var digestRE = regexp.MustCompile(`(sha256|sha384|sha512)[:-]([0-9a-f]{64,128})`)

// DigestInURL is the blob digest a registry URL's path names
// (".../blobs/sha256:…"), "" for none.
func DigestInURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	_, rest, ok := strings.Cut(u.Path, "/blobs/")
	if !ok {
		return ""
	}
	if m := digestRE.FindStringSubmatch(rest); m != nil && strings.HasPrefix(rest, m[0]) {
		return m[1] + ":" + m[2]
	}
	return ""
}

// DigestInLease is the blob digest a lease file's name holds
// ("sha256-….lock", "layer+sha256-….lock"), "" for none.
func DigestInLease(path string) string {
	if m := digestRE.FindStringSubmatch(filepath.Base(path)); m != nil {
		return m[1] + ":" + m[2]
	}
	return ""
}

// Host is u's host (and port), "" for none: an event names the hosts a
// redirect went between, never the URL, whose query may be a credential.
func Host(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Host
}
