package pushmodel_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/pullmodel"
	"github.com/oci-client/liboci/pushmodel"
)

// bigFile is over the size pushmodel hashes before a push starts.
const bigFile = 40 << 20

// trace records the registry's requests in order, as "METHOD path".
type trace struct {
	mu    sync.Mutex
	lines []string
}

func (tr *trace) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.lines = append(tr.lines, r.Method+" "+r.URL.Path)
		tr.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// first is the index of the first line holding all of parts, -1 if none.
func (tr *trace) first(parts ...string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, l := range tr.lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return i
		}
	}
	return -1
}

func bigModel(t *testing.T) (string, []byte) {
	dir := t.TempDir()
	weights := testutil.RandomBytes(t, bigFile)
	testutil.WriteFile(t, filepath.Join(dir, "model.safetensors"), weights, 0o644)
	testutil.WriteFile(t, filepath.Join(dir, "config.json"), []byte(`{"model_type":"llama"}`), 0o644)
	return dir, weights
}

// A cold push does not hash a large file before sending it: its upload
// starts before the registry is asked about its digest (which it can only
// be once the file was read), and the result is the right blob.
func TestColdPushUploadsWhileHashing(t *testing.T) {
	reg := testutil.NewRegistry(t)
	var tr trace
	reg.Use(tr.middleware)
	dir, weights := bigModel(t)
	ctx := context.Background()
	res, err := pushmodel.Push(ctx, client(t), dir, reg.Ref("org/model", ":v1"), pushmodel.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	d := digestOf(weights)
	head, patch := tr.first("HEAD", d), tr.first("PATCH")
	if patch < 0 || head < 0 || patch > head {
		t.Fatalf("the upload began at request %d, the HEAD of its digest at %d: %q", patch, head, tr.lines)
	}
	if got := layerDigest(t, res.Raw, "model.safetensors"); got != d || res.Uploaded != 3 {
		t.Errorf("layer %s (want %s), %d uploaded", got, d, res.Uploaded)
	}
	out, err := pullmodel.Pull(ctx, client(t), res.Reference, pullmodel.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(out.Path, "model.safetensors")); !bytes.Equal(got, weights) {
		t.Error("the weights differ after the push")
	}
}

// layersSent fails unless every file of res reached the registry without
// being sent (mounted or, in ggcr's test registry whose blobs are global,
// found): only the config, which names the repository, may be new.
func layersSent(t *testing.T, what string, res *pushmodel.Result) {
	t.Helper()
	for _, b := range res.Blobs {
		if b.Path != "" && (b.How == "uploaded" || b.Sent != 0) {
			t.Errorf("%s: %s was %s, %d bytes sent", what, b.Path, b.How, b.Sent)
		}
	}
}

// A copy of a directory (new paths, new inodes, the same bytes) pushed to
// another repository sends no file: the small files hashed first show the
// registry holds this content, so the large one is hashed before anything
// is sent.
func TestCopyOfAPushedDirectoryMounts(t *testing.T) {
	reg := testutil.NewRegistry(t)
	dir, _ := bigModel(t)
	cache := t.TempDir()
	ctx := context.Background()
	if _, err := pushmodel.Push(ctx, client(t), dir, reg.Ref("org/a", ":v1"), pushmodel.Options{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	cp := copyDir(t, dir)
	res, err := pushmodel.Push(ctx, client(t), cp, reg.Ref("org/b", ":v1"), pushmodel.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	layersSent(t, "copy", res)
}

// A large file alone gives no early sign: it starts uploading while it is
// hashed, and once its digest shows another repository holds it, the
// upload stops and the blob is not sent again.
func TestUploadStopsWhenTheHashFindsAMount(t *testing.T) {
	reg := testutil.NewRegistry(t)
	var tr trace
	dir := t.TempDir()
	weights := testutil.RandomBytes(t, bigFile)
	testutil.WriteFile(t, filepath.Join(dir, "model.safetensors"), weights, 0o644)
	cache := t.TempDir()
	ctx := context.Background()
	if _, err := pushmodel.Push(ctx, client(t), dir, reg.Ref("org/a", ":v1"), pushmodel.Options{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	// A registry that takes uploads slower than a file hashes (a WAN's
	// pace), so that the hash ends first whatever the machine.
	reg.Use(func(next http.Handler) http.Handler {
		return tr.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch {
				r.Body = slowBody{r.Body}
			}
			next.ServeHTTP(w, r)
		}))
	})
	res, err := pushmodel.Push(ctx, client(t), copyDir(t, dir), reg.Ref("org/b", ":v1"), pushmodel.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if b := res.Blobs[0]; b.How == "uploaded" || b.Sent >= bigFile {
		t.Errorf("the copied weights: %+v", b.PushedBlob)
	}
	if tr.first("DELETE", "/v2/org/b/blobs/uploads/") < 0 {
		t.Errorf("the upload started before the mount was not closed: %q", tr.lines)
	}
}

// A model pulled into the cache, pushed to another repository of the same
// registry, sends no file (mounts are proven against distribution in
// tests/test_push_resume.py; ggcr's test registry finds every blob).
func TestPulledModelMountsOnPush(t *testing.T) {
	reg := testutil.NewRegistry(t)
	dir, _ := bigModel(t)
	ctx := context.Background()
	src, err := pushmodel.Push(ctx, client(t), dir, reg.Ref("org/a", ":v1"), pushmodel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	pulled, err := pullmodel.Pull(ctx, client(t), src.Reference, pullmodel.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot itself (links into the cache's blobs, named by digest)
	// and a real copy of it both mount everything.
	for _, d := range []string{pulled.Path, copyDir(t, pulled.Path)} {
		res, err := pushmodel.Push(ctx, client(t), d, reg.Ref("org/b", ":v1"), pushmodel.Options{CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		layersSent(t, d, res)
		if a, b := layerDigest(t, res.Raw, "model.safetensors"), layerDigest(t, src.Raw, "model.safetensors"); a != b {
			t.Errorf("%s: weights published as %s, not %s", d, a, b)
		}
	}
}

// copyDir copies dir's files (following links) to a new directory.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		testutil.WriteFile(t, filepath.Join(out, rel), data, 0o644)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// slowBody reads at most 16 KiB per millisecond (about 16 MB/s).
type slowBody struct{ io.ReadCloser }

func (b slowBody) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return b.ReadCloser.Read(p[:min(len(p), 16<<10)])
}
