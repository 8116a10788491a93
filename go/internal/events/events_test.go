package events

import (
	"context"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/internal/redact"
)

// Log makes the log line and the event in one call; without a sink or a
// logger both cost nothing and say nothing.
func TestLogMakesTheLineAndTheEvent(t *testing.T) {
	t.Parallel()
	Log(context.Background(), "transfer", "nobody listens", abi.BlobRetried{Reason: "x"})
	rec := logs.NewRecorder(slog.LevelInfo, nil)
	sink := NewSink(nil)
	ctx := With(logs.With(context.Background(), rec.Logger()), sink)
	if !Enabled(ctx) || !Wanted(ctx) || Wanted(context.Background()) {
		t.Fatal("Enabled/Wanted")
	}
	Log(ctx, "transfer", "retrying request", abi.BlobRetried{Digest: "sha256:ab", Reason: "503", WaitMS: 150, Attempt: 2, Attempts: 5}, "reason", "503")
	entries := rec.Drain()
	if len(entries) != 1 || entries[0].Msg != "retrying request" || entries[0].Logger != "transfer" {
		t.Errorf("log %+v", entries)
	}
	evs, dropped := sink.Drain()
	if dropped != 0 || len(evs) != 1 {
		t.Fatalf("events %+v, dropped %d", evs, dropped)
	}
	e := evs[0]
	if e.Seq != 1 || e.Kind != "blob_retried" || e.BlobRetried == nil || e.BlobRetried.WaitMS != 150 || e.Time == 0 {
		t.Errorf("event %+v", e)
	}
	if evs, _ := sink.Drain(); len(evs) != 0 {
		t.Errorf("a second drain gave %+v again", evs)
	}
}

// A full sink drops the oldest, says how many, and numbering goes on.
func TestSinkDropsTheOldestAndCountsThem(t *testing.T) {
	t.Parallel()
	s := NewSink(nil)
	s.max = 3
	for range 5 {
		s.Add(abi.FileVerified{Path: "p"})
	}
	evs, dropped := s.Drain()
	if dropped != 2 || len(evs) != 3 || evs[0].Seq != 3 || evs[2].Seq != 5 {
		t.Errorf("events %+v, dropped %d", evs, dropped)
	}
	s.Add(abi.FileVerified{})
	if evs, dropped := s.Drain(); dropped != 0 || evs[0].Seq != 6 {
		t.Errorf("after: %+v, %d", evs, dropped)
	}
}

// Every string field is scrubbed of the call's secrets as it leaves, even
// a secret learnt after the event was made.
func TestDrainMasksSecrets(t *testing.T) {
	t.Parallel()
	ctx, secrets := redact.WithSet(context.Background())
	s := NewSink(secrets)
	s.Add(abi.BlobRetried{Reason: "Get https://x/?token=s3cr3t-t0ken-value: refused by hunter2-password-value"})
	redact.Add(ctx, "hunter2-password-value")
	evs, _ := s.Drain()
	got := evs[0].BlobRetried.Reason
	if strings.Contains(got, "s3cr3t") || strings.Contains(got, "hunter2") {
		t.Errorf("reason %q", got)
	}
}

// NewEvent fills the member of the data's kind, and every kind has one.
func TestEveryKindHasItsMember(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, k := range abi.EventKinds {
		e := abi.NewEvent(1, 0, k)
		if e.Kind != k.EventKind() || seen[e.Kind] {
			t.Errorf("kind %q", e.Kind)
		}
		seen[e.Kind] = true
		if _, ok := abi.Fields(reflectTypeOf(e))[e.Kind]; !ok {
			t.Errorf("Event has no member %q", e.Kind)
		}
		n := 0
		for _, d := range []bool{e.FileFound != nil, e.FileVerified != nil, e.BlobDone != nil, e.BlobRetried != nil,
			e.RedirectFollowed != nil, e.RangeRefused != nil, e.ConnectionsChanged != nil, e.LeaseWaiting != nil, e.LeaseBroken != nil} {
			if d {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d members set", e.Kind, n)
		}
	}
}

func TestDigestsInURLsAndLeases(t *testing.T) {
	t.Parallel()
	hex := strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"https://r.test/v2/org/m/blobs/sha256:" + hex:         "sha256:" + hex,
		"https://r.test/v2/org/m/manifests/sha256:" + hex:     "",
		"https://bucket.s3.test/x/sha256:" + hex + "?sig=1":   "",
		"https://r.test/v2/org/m/blobs/uploads/sha256:" + hex: "",
	} {
		u, _ := url.Parse(in)
		if got := DigestInURL(u); got != want {
			t.Errorf("DigestInURL(%s) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"/c/locks/sha256-" + hex + ".lock":       "sha256:" + hex,
		"/c/locks/layer+sha256-" + hex + ".lock": "sha256:" + hex,
		"/c/locks/file+config.json.lock":         "",
	} {
		if got := DigestInLease(in); got != want {
			t.Errorf("DigestInLease(%s) = %q, want %q", in, got, want)
		}
	}
}

func reflectTypeOf(v any) reflect.Type { return reflect.TypeOf(v) }
