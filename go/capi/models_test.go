package capi

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/oci"
)

func modelRequest(t *testing.T, fields map[string]any) []byte {
	t.Helper()
	req := map[string]any{"env": testutil.Env(t, ""), "retries": 1}
	for k, v := range fields {
		req[k] = v
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOfflineComesFromTheEnvironmentUnlessTheRequestSays(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cache")
	ref := "127.0.0.1:1/never/asked:v1" // nothing listens: any request would fail with NETWORK
	for _, env := range []map[string]string{{"OCI_CLIENT_OFFLINE": "1"}, {"HF_HUB_OFFLINE": "true"}, {"HF_HUB_OFFLINE": "ON"}} {
		env["HOME"] = t.TempDir()
		out := PullModel(context.Background(), modelRequest(t, map[string]any{"reference": ref, "cache_dir": dir, "env": env}))
		wantFailure(t, out, oci.CodeNotCached)
	}
	env := map[string]string{"HOME": t.TempDir(), "OCI_CLIENT_OFFLINE": "1"}
	out := PullModel(context.Background(), modelRequest(t, map[string]any{"reference": ref, "cache_dir": dir, "env": env, "offline": false}))
	wantFailure(t, out, oci.CodeNetwork)
	env["OCI_CLIENT_OFFLINE"] = "0"
	out = PullModel(context.Background(), modelRequest(t, map[string]any{"reference": ref, "cache_dir": dir, "env": env}))
	wantFailure(t, out, oci.CodeNetwork)
}

func TestModelRequestsAreChecked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, bad := range []map[string]any{
		{"reference": "127.0.0.1:1/a:v1", "cache_dir": dir, "durability": "eventually"},
		{"reference": "127.0.0.1:1/a:v1", "cache_dir": dir, "lease_ms": -1},
		{"reference": "127.0.0.1:1/a:v1", "env": map[string]string{}}, // no HOME, no cache_dir
	} {
		wantFailure(t, PullModel(context.Background(), modelRequest(t, bad)), oci.CodeInvalidArgument)
	}
	wantFailure(t, PullModel(context.Background(), modelRequest(t, map[string]any{"reference": "127.0.0.1:1/a//b:v1", "cache_dir": dir})), oci.CodeInvalidReference)
}

func TestCacheExportsOnAnEmptyCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := wantSuccess(t, CacheList(context.Background(), request(t, map[string]any{"cache_dir": dir})))
	if d.Result["root"] != dir || len(d.Result["repos"].([]any)) != 0 {
		t.Errorf("listing of an empty cache: %v", d.Result)
	}
	wantFailure(t, CacheRemove(context.Background(), request(t, map[string]any{"cache_dir": dir, "reference": "reg.test/a:v1"})), oci.CodeNotFound)
	wantSuccess(t, CachePrune(context.Background(), request(t, map[string]any{"cache_dir": dir, "min_age_ms": 0})))
	d = wantSuccess(t, WaitDurable(context.Background(), []byte(`{}`)))
	for _, k := range []string{"synced", "left", "elapsed_ms"} {
		if _, ok := d.Result[k].(float64); !ok {
			t.Errorf("CacheSync result lacks %q: %v", k, d.Result)
		}
	}
	wantSuccess(t, WaitDurable(context.Background(), []byte(`{"wait_ms": 1000}`)))
	wantFailure(t, WaitDurable(context.Background(), []byte(`{"wait_ms": -1}`)), oci.CodeInvalidArgument)
}

func TestVerifyComesFromTheEnvironmentUnlessTheRequestSays(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  string
		req  any
		want bool
	}{
		{"", nil, false}, {"1", nil, true}, {"yes", nil, true}, {"0", nil, false},
		{"1", false, false}, {"", true, true},
	} {
		var r abi.PullModelRequest
		fields := map[string]any{"reference": "r", "cache_dir": t.TempDir(), "env": map[string]string{"OCI_CLIENT_VERIFY": c.env}}
		if c.req != nil {
			fields["verify"] = c.req
		}
		if err := abi.Decode(modelRequest(t, fields), &r); err != nil {
			t.Fatal(err)
		}
		o, err := pullOptions(r)
		if err != nil || o.Verify != c.want {
			t.Errorf("OCI_CLIENT_VERIFY=%q, verify %v: Verify %v (%v), want %v", c.env, c.req, o.Verify, err, c.want)
		}
	}
}
