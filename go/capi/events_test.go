package capi

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/events"
	"github.com/oci-client/liboci/internal/testutil"
)

// eventsIn reads the events of an envelope or a result.
func eventsIn(t *testing.T, raw json.RawMessage) []abi.Event {
	t.Helper()
	var evs []abi.Event
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &evs); err != nil {
			t.Fatalf("events %s: %v", raw, err)
		}
	}
	return evs
}

// failFirst answers the first n blob GETs with status, then lets them by.
func failFirst(n int64, status int) testutil.Middleware {
	var seen atomic.Int64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if testutil.IsBlobGet(r) && seen.Add(1) <= n {
				testutil.RegistryError(w, status, "UNAVAILABLE", "try later")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// A blob pulled through a 503 tells of the retry (reason, wait, try), then
// of the blob done and its file verified; a call that asked for no events
// gets none.
func TestPullBlobEventsThroughARetry(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	data := testutil.RandomBytes(t, 5000)
	digest := testutil.PushBlob(t, reg.Ref("app", ""), data)
	reg.Use(failFirst(1, http.StatusServiceUnavailable))
	dest := filepath.Join(t.TempDir(), "b")
	d := wantSuccess(t, PullBlob(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ""), "env": tempEnv(t), "digest": digest, "path": dest, "events": true,
	})))
	evs := eventsIn(t, d.raw["events"])
	var kinds []string
	for i, e := range evs {
		kinds = append(kinds, e.Kind)
		if e.Seq != int64(i+1) {
			t.Errorf("event %d has seq %d", i, e.Seq)
		}
	}
	if strings.Join(kinds, ",") != "blob_retried,blob_done,file_verified" {
		t.Fatalf("kinds %v", kinds)
	}
	r := evs[0].BlobRetried
	if r.Digest != digest || !strings.Contains(r.Reason, "503") || r.WaitMS <= 0 || r.Attempt != 2 || r.Attempts != 5 {
		t.Errorf("blob_retried %+v", r)
	}
	if v := evs[2].FileVerified; v.Path != dest || v.Digest != digest || v.Size != int64(len(data)) {
		t.Errorf("file_verified %+v", v)
	}
	if b := evs[1].BlobDone; b.Digest != digest || b.Fetched != int64(len(data)) {
		t.Errorf("blob_done %+v", b)
	}
	// Not asked: no member at all.
	d = wantSuccess(t, PullBlob(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ""), "env": tempEnv(t), "digest": digest, "path": filepath.Join(t.TempDir(), "c"),
	})))
	if d.raw["events"] != nil {
		t.Errorf("events without asking: %s", d.raw["events"])
	}
}

// Progress reads take the events made since the last read; the envelope
// brings the rest, so each arrives once.
func TestProgressCarriesEvents(t *testing.T) {
	t.Parallel()
	id := opID(t)
	emitted, finish := make(chan struct{}), make(chan struct{})
	out := make(chan []byte, 1)
	go func() {
		out <- Call(context.Background(), "Echo", request(t, map[string]any{"operation_id": id, "events": true}), func(ctx context.Context, _ echoReq) (echoResp, error) {
			events.Emit(ctx, abi.LeaseWaiting{Lease: "first"})
			close(emitted)
			<-finish
			events.Emit(ctx, abi.LeaseWaiting{Lease: "second"})
			return echoResp{}, nil
		})
	}()
	<-emitted
	var env map[string]json.RawMessage
	if err := json.Unmarshal(OperationProgress(context.Background(), request(t, map[string]any{"id": id})), &env); err != nil {
		t.Fatal(err)
	}
	var res struct{ Events json.RawMessage }
	if err := json.Unmarshal(env["result"], &res); err != nil {
		t.Fatal(err)
	}
	if evs := eventsIn(t, res.Events); len(evs) != 1 || evs[0].LeaseWaiting.Lease != "first" || evs[0].Seq != 1 {
		t.Errorf("progress events %+v", evs)
	}
	close(finish)
	evs := eventsIn(t, wantSuccess(t, <-out).raw["events"])
	if len(evs) != 1 || evs[0].LeaseWaiting.Lease != "second" || evs[0].Seq != 2 {
		t.Errorf("envelope events %+v", evs)
	}
}

// A pull through bearer token auth with every event asked for: no event
// holds the password or a token.
func TestTokenAuthEventsHoldNoSecret(t *testing.T) {
	t.Parallel()
	const user, pass = "carol", "token-login-secret-88"
	reg := testutil.NewRegistry(t)
	blob := testutil.PushBlob(t, reg.Ref("app", ""), []byte("some blob data"))
	ts := testutil.NewTokenServer(t, user, pass)
	reg.Use(ts.Bearer("repository:app:pull"))
	reg.Use(failFirst(1, http.StatusTooManyRequests))
	env := tempEnv(t)
	testutil.WriteJSON(t, filepath.Join(env["DOCKER_CONFIG"], "config.json"), testutil.AuthsConfig(map[string][2]string{reg.Host: {user, pass}}))
	out := PullBlob(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ""), "env": env, "digest": blob, "path": filepath.Join(t.TempDir(), "b"),
		"events": true, "timeout_ms": int64(30 * time.Second / time.Millisecond),
	}))
	d := wantSuccess(t, out)
	if len(eventsIn(t, d.raw["events"])) == 0 {
		t.Fatal("no events")
	}
	if s, ok := testutil.Contains(d.raw["events"], pass, testutil.BasicB64(user, pass), "opaque-token-"); ok {
		t.Errorf("events contain %q: %s", s, d.raw["events"])
	}
}
