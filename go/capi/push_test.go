package capi

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/oci"
)

func TestPushModelRoundTripsThroughTheEnvelope(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "config.json"), []byte(`{}`), 0o644)
	testutil.WriteFile(t, filepath.Join(dir, "model.safetensors"), testutil.RandomBytes(t, 4096), 0o644)
	cache := t.TempDir()
	req := map[string]any{"reference": reg.Ref("org/m", ":v1"), "directory": dir, "cache_dir": cache, "format": "docker"}
	d := wantSuccess(t, PushModel(context.Background(), modelRequest(t, req)))
	if d.Result["format"] != "docker" || d.Result["files"].(float64) != 2 || d.Result["uploaded"].(float64) != 3 {
		t.Errorf("result %v", d.Result)
	}
	if _, err := os.Stat(filepath.Join(cache, "push-digests")); err != nil {
		t.Errorf("no digests remembered in the cache: %v", err)
	}
	req["no_digest_cache"] = true
	req["cache_dir"] = filepath.Join(t.TempDir(), "unused")
	wantSuccess(t, PushModel(context.Background(), modelRequest(t, req)))
	if _, err := os.Stat(req["cache_dir"].(string)); err == nil {
		t.Errorf("no_digest_cache still wrote a cache")
	}
}

func TestPushModelRequestsAreChecked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, bad := range []map[string]any{
		{"reference": "127.0.0.1:1/a:v1", "directory": dir, "cache_dir": dir, "format": "tarball"},
		{"reference": "127.0.0.1:1/a:v1", "directory": filepath.Join(dir, "missing"), "cache_dir": dir},
	} {
		wantFailure(t, PushModel(context.Background(), modelRequest(t, bad)), oci.CodeInvalidArgument)
	}
	wantFailure(t, PushModel(context.Background(), modelRequest(t, map[string]any{"reference": "a//b:v1", "directory": dir, "cache_dir": dir})), oci.CodeInvalidReference)
}
