package capi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
)

func TestGlobQuoteMatchesOnlyThePath(t *testing.T) {
	t.Parallel()
	files := []model.File{{Path: "a[1]*?.bin"}, {Path: "a1x.bin"}, {Path: "a[1]xy.bin"}}
	got, err := model.Filter(files, []string{globQuote("a[1]*?.bin")}, nil)
	if err != nil || len(got) != 1 || got[0].Path != "a[1]*?.bin" {
		t.Errorf("quoted pattern selected %v, %v", got, err)
	}
}

// TestCacheVerifyOffline needs no registry: offline, a wrong blob is moved
// aside and reported, nothing is fetched, and it stays a problem.
func TestCacheVerifyOffline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("weights")
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	p := c.BlobPath(d)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("Weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cache.MarkVerified(p); err != nil {
		t.Fatal(err)
	}
	s := &cache.Snapshot{Registry: "127.0.0.1:1", Repository: "org/m", Manifest: d, Layers: []string{d},
		Files: map[string]cache.Entry{"w.bin": {Type: "file", Digest: d, Size: int64(len(data)), Layer: d}}}
	if err := c.WriteSnapshot(s); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteRef("127.0.0.1:1", "org/m", "v1", d); err != nil {
		t.Fatal(err)
	}

	wantFailure(t, CacheVerify(context.Background(), modelRequest(t, map[string]any{"cache_dir": dir, "references": []string{"127.0.0.1:1/org/m:v2"}})), oci.CodeNotFound)
	wantFailure(t, CacheVerify(context.Background(), modelRequest(t, map[string]any{"cache_dir": dir, "concurrency": -1})), oci.CodeInvalidArgument)

	// Report only: nothing moves.
	out := wantSuccess(t, CacheVerify(context.Background(), modelRequest(t, map[string]any{"cache_dir": dir, "repair": false})))
	if out.Result["problems"] != 1.0 {
		t.Errorf("report only: %v", out.Result)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("report only moved the blob: %v", err)
	}

	out = wantSuccess(t, CacheVerify(context.Background(), modelRequest(t, map[string]any{
		"cache_dir": dir, "offline": true, "references": []string{"127.0.0.1:1/org/m:v1"},
	})))
	blobs := out.Result["blobs"].([]any)
	if out.Result["problems"] != 1.0 || out.Result["checked"] != 1.0 || len(blobs) != 1 {
		t.Fatalf("offline: %v", out.Result)
	}
	b := blobs[0].(map[string]any)
	if b["status"] != "corrupt" || b["fixed"] != false || b["moved_to"] == nil ||
		!strings.Contains(b["action"].(string), "not fetched (offline)") {
		t.Errorf("offline, the wrong blob: %v", b)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("offline, the wrong blob is still in blobs/: %v", err)
	}
}
