package capi

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/oci"
)

// entry is a logs.Entry read back.
type entry struct {
	Level, Logger, Msg string
	Attrs              map[string]any
}

func entries(t *testing.T, raw json.RawMessage) []entry {
	t.Helper()
	var es []entry
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &es); err != nil {
			t.Fatalf("logs %s: %v", raw, err)
		}
	}
	return es
}

func TestCallLogsOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	fn := func(ctx context.Context, _ echoReq) (echoResp, error) {
		logs.From(ctx, "test").Info("hello", "n", 1)
		logs.From(ctx, "test").Debug("detail")
		return echoResp{}, nil
	}
	// Not asked: no member at all (TestCallSuccessEnvelope pins the bytes).
	if d := wantSuccess(t, Call(context.Background(), "Echo", []byte(`{}`), fn)); d.raw["logs"] != nil {
		t.Errorf("logs without log_level: %s", d.raw["logs"])
	}
	d := wantSuccess(t, Call(context.Background(), "Echo", []byte(`{"log_level":"info"}`), fn))
	es := entries(t, d.raw["logs"])
	if len(es) != 1 || es[0].Msg != "hello" || es[0].Logger != "test" || es[0].Level != "INFO" {
		t.Errorf("logs %+v", es)
	}
	// A failed call hands its records over too.
	out := Call(context.Background(), "Echo", []byte(`{"log_level":"debug"}`), func(ctx context.Context, _ echoReq) (*echoResp, error) {
		logs.From(ctx, "test").Debug("about to fail")
		return nil, oci.Coded(oci.CodeNotFound, context.Canceled)
	})
	if es := entries(t, wantFailure(t, out, oci.CodeNotFound).raw["logs"]); len(es) != 1 || es[0].Msg != "about to fail" {
		t.Errorf("logs of a failure %+v", es)
	}
}

func TestCallBadLogLevel(t *testing.T) {
	t.Parallel()
	out := Call(context.Background(), "Echo", []byte(`{"log_level":"loud"}`), func(context.Context, echoReq) (echoResp, error) {
		t.Error("ran with a bad log level")
		return echoResp{}, nil
	})
	if msg := wantFailure(t, out, oci.CodeInvalidArgument).Error["message"].(string); !strings.Contains(msg, "log_level") {
		t.Errorf("message %q", msg)
	}
}

// OperationProgress hands out the records made so far; the envelope has
// only the rest, so each record arrives once.
func TestProgressCarriesLogs(t *testing.T) {
	t.Parallel()
	id := opID(t)
	logged, finish := make(chan struct{}), make(chan struct{})
	out := make(chan []byte, 1)
	go func() {
		out <- Call(context.Background(), "Echo", request(t, map[string]any{"operation_id": id, "log_level": "info"}), func(ctx context.Context, _ echoReq) (echoResp, error) {
			logs.From(ctx, "test").Info("first")
			close(logged)
			<-finish
			logs.From(ctx, "test").Info("second")
			return echoResp{}, nil
		})
	}()
	<-logged
	var p map[string]json.RawMessage
	if err := json.Unmarshal(OperationProgress(context.Background(), request(t, map[string]any{"id": id})), &p); err != nil {
		t.Fatal(err)
	}
	var res struct{ Logs json.RawMessage }
	if err := json.Unmarshal(p["result"], &res); err != nil {
		t.Fatal(err)
	}
	if es := entries(t, res.Logs); len(es) != 1 || es[0].Msg != "first" {
		t.Errorf("progress logs %+v", es)
	}
	close(finish)
	es := entries(t, wantSuccess(t, <-out).raw["logs"])
	if len(es) != 1 || es[0].Msg != "second" {
		t.Errorf("envelope logs %+v", es)
	}
}

// A pull through bearer token auth, logged at DEBUG: request lines for the
// registry and the token server, and neither the password nor a token.
func TestTokenAuthLogsHoldNoSecret(t *testing.T) {
	t.Parallel()
	const user, pass = "bob", "token-login-secret-77"
	reg := testutil.NewRegistry(t)
	testutil.PushImage(t, reg.Ref("app", ":v1"), image(t))
	blob := testutil.PushBlob(t, reg.Ref("app", ""), []byte("some blob data"))
	ts := testutil.NewTokenServer(t, user, pass)
	reg.Use(ts.Bearer("repository:app:pull"))
	env := tempEnv(t)
	testutil.WriteJSON(t, filepath.Join(env["DOCKER_CONFIG"], "config.json"), testutil.AuthsConfig(map[string][2]string{reg.Host: {user, pass}}))
	out := PullBlob(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ":v1"), "env": env, "digest": blob, "path": filepath.Join(t.TempDir(), "b"),
		"log_level": "debug", "timeout_ms": int64(30 * time.Second / time.Millisecond),
	}))
	d := wantSuccess(t, out)
	es := entries(t, d.raw["logs"])
	var lines []string
	for _, e := range es {
		lines = append(lines, e.Msg)
	}
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "/token?") || !strings.Contains(all, "/blobs/"+blob+" 200 OK") {
		t.Errorf("request lines missing:\n%s", all)
	}
	if ts.Issued() == 0 {
		t.Fatal("no token issued")
	}
	if s, ok := testutil.Contains(out, pass, testutil.BasicB64(user, pass), "opaque-token-"); ok {
		t.Errorf("envelope contains %q: %s", s, out)
	}
}
