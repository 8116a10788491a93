package logs

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/redact"
)

func recorded(t *testing.T, level string) (context.Context, *Recorder, *redact.Set) {
	t.Helper()
	min, on, err := ParseLevel(level)
	if err != nil || !on {
		t.Fatalf("ParseLevel(%q) = %v, %v, %v", level, min, on, err)
	}
	ctx, secrets := redact.WithSet(context.Background())
	r := NewRecorder(min, secrets)
	return With(ctx, r.Logger()), r, secrets
}

func TestNoLoggerDiscards(t *testing.T) {
	ctx := context.Background()
	if Enabled(ctx, slog.LevelError) {
		t.Error("a context without a logger is enabled")
	}
	l := From(ctx, "transfer")
	if l.Enabled(ctx, slog.LevelError) {
		t.Error("the default logger takes records")
	}
	l.Info("nobody hears this") // must not panic
	var nilRec *Recorder
	if got := nilRec.Drain(); got != nil {
		t.Errorf("nil recorder drained %v", got)
	}
}

func TestRecordsAtLevel(t *testing.T) {
	ctx, r, _ := recorded(t, "info")
	From(ctx, "transfer").Debug("below the level")
	From(ctx, "transfer").Info("retrying request", "attempt", 2, "wait", 1500*time.Millisecond,
		"reason", errors.New("503 Service Unavailable"), "retry_after", true, slog.Group("g", "k", "v"))
	From(ctx, "cache").Warn("lease broken")
	got := r.Drain()
	if len(got) != 2 {
		t.Fatalf("got %d records, want 2: %+v", len(got), got)
	}
	e := got[0]
	if e.Level != "INFO" || e.Logger != "transfer" || e.Msg != "retrying request" || e.Time <= 0 {
		t.Errorf("record = %+v", e)
	}
	b, _ := json.Marshal(e.Attrs)
	want := `{"attempt":2,"wait":"1.5s","reason":"503 Service Unavailable","retry_after":true,"g.k":"v"}`
	if string(b) != want {
		t.Errorf("attrs = %s, want %s", b, want)
	}
	if got[1].Level != "WARNING" || got[1].Logger != "cache" {
		t.Errorf("second record = %+v", got[1])
	}
	if again := r.Drain(); len(again) != 0 {
		t.Errorf("drained twice: %+v", again)
	}
	if !Enabled(ctx, slog.LevelInfo) || Enabled(ctx, slog.LevelDebug) {
		t.Error("Enabled does not follow the level")
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError} {
		if got, on, err := ParseLevel(in); err != nil || !on || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v, %v", in, got, on, err)
		}
	}
	if _, on, err := ParseLevel(""); on || err != nil {
		t.Error("an empty level turns logs on")
	}
	if _, _, err := ParseLevel("verbose"); err == nil {
		t.Error("an unknown level is accepted")
	}
}

// A secret learned after the record was made is masked all the same.
func TestDrainMasksSecrets(t *testing.T) {
	ctx, r, _ := recorded(t, "debug")
	From(ctx, "http").Info("auth with hunter2-secret", "header", "Bearer abcdefgh12345678", "pw", "hunter2-secret", "n", 3)
	redact.Add(ctx, "hunter2-secret")
	b, _ := json.Marshal(r.Drain())
	s := string(b)
	for _, secret := range []string{"hunter2-secret", "abcdefgh12345678"} {
		if strings.Contains(s, secret) {
			t.Errorf("%q in %s", secret, s)
		}
	}
	if !strings.Contains(s, redact.Mask) {
		t.Errorf("nothing masked: %s", s)
	}
}

func TestURLMasksQueryAndPassword(t *testing.T) {
	u, _ := url.Parse("https://alice:s3cret@cdn.test/blobs/x?X-Amz-Signature=abc&Expires=9&flag#frag")
	got := URL(u)
	want := "https://alice:[REDACTED]@cdn.test/blobs/x?X-Amz-Signature=[REDACTED]&Expires=[REDACTED]&flag"
	if got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	if got := RawURL("http://reg.test/v2/"); got != "http://reg.test/v2/" {
		t.Errorf("a plain URL changed: %q", got)
	}
	if got := RawURL("://bad\x7f?sig=secret"); strings.Contains(got, "secret") {
		t.Errorf("unparsable URL kept: %q", got)
	}
}

func TestBoundedOldestDropped(t *testing.T) {
	ctx, r, _ := recorded(t, "info")
	r.max = 3
	for i := range 5 {
		From(ctx, "x").Info("n", "i", i)
	}
	got := r.Drain()
	if len(got) != 4 || got[0].Level != "WARNING" || !strings.Contains(got[0].Msg, "2 log records dropped") {
		t.Fatalf("got %+v", got)
	}
	if got[1].Attrs[0].Value != int64(2) || got[3].Attrs[0].Value != int64(4) {
		t.Errorf("kept the wrong ones: %+v", got[1:])
	}
}

// Two calls at once each get their own records: nothing is shared.
func TestCallsDoNotShare(t *testing.T) {
	var wg sync.WaitGroup
	recs := make([]*Recorder, 2)
	for i := range recs {
		ctx, r, _ := recorded(t, "info")
		recs[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				From(ctx, "x").Info("call", "i", i)
			}
		}()
	}
	wg.Wait()
	for i, r := range recs {
		got := r.Drain()
		if len(got) != 100 {
			t.Fatalf("call %d: %d records", i, len(got))
		}
		for _, e := range got {
			if e.Attrs[0].Value != int64(i) {
				t.Fatalf("call %d got call %v's record", i, e.Attrs[0].Value)
			}
		}
	}
}
