package pushmodel_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/pullmodel"
	"github.com/oci-client/liboci/pushmodel"
)

// safetensors builds a file with one F32 tensor of shape (rows, cols).
func safetensors(t *testing.T, rows, cols int) []byte {
	t.Helper()
	header, _ := json.Marshal(map[string]any{
		"__metadata__": map[string]string{"format": "pt"},
		"w":            map[string]any{"dtype": "F32", "shape": []int{rows, cols}, "data_offsets": []int{0, rows * cols * 4}},
	})
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.Write(header)
	b.Write(testutil.RandomBytes(t, rows*cols*4))
	return b.Bytes()
}

// modelDir writes an HF-style model directory and returns it with its files.
func modelDir(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		"model-00001-of-00002.safetensors": safetensors(t, 64, 256),
		"model-00002-of-00002.safetensors": safetensors(t, 32, 256),
		"config.json":                      []byte(`{"architectures":["LlamaForCausalLM"],"model_type":"llama"}`),
		"tokenizer/tokenizer.json":         []byte(`{"version":"1.0"}`),
		"tokenizer/nested/vocab.txt":       []byte("a\nb\n"),
		"chat_template.jinja":              []byte("{{ messages }}"),
		"LICENSE":                          []byte("Apache-2.0"),
		"README.md":                        []byte("# model"),
		"q4.gguf":                          append([]byte("GGUF"), testutil.RandomBytes(t, 4096)...),
		"empty.txt":                        {},
		"copy-of-config.json":              []byte(`{"architectures":["LlamaForCausalLM"],"model_type":"llama"}`),
	}
	for p, data := range files {
		testutil.WriteFile(t, filepath.Join(dir, p), data, 0o644)
	}
	// Never published: hidden files and directories, partial downloads.
	testutil.WriteFile(t, filepath.Join(dir, ".git", "HEAD"), []byte("ref"), 0o644)
	testutil.WriteFile(t, filepath.Join(dir, ".gitattributes"), []byte("*"), 0o644)
	testutil.WriteFile(t, filepath.Join(dir, "x.safetensors.incomplete"), []byte("partial"), 0o644)
	return dir, files
}

func client(t *testing.T) *oci.Client {
	c, err := oci.New(oci.WithEnv(testutil.Env(t, "")))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// requests counts the requests a registry gets, by method.
type requests struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *requests) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		if r.n == nil {
			r.n = map[string]int{}
		}
		r.n[req.Method]++
		r.mu.Unlock()
		next.ServeHTTP(w, req)
	})
}

func (r *requests) count(method string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[method]
}

func TestPushPullRoundTripBothFormats(t *testing.T) {
	for _, format := range []string{pushmodel.FormatModelPack, pushmodel.FormatDocker} {
		t.Run(format, func(t *testing.T) {
			reg := testutil.NewRegistry(t)
			dir, files := modelDir(t)
			ctx := context.Background()
			c := client(t)
			res, err := pushmodel.Push(ctx, c, dir, reg.Ref("org/model", ":v1"), pushmodel.Options{Format: format})
			if err != nil {
				t.Fatal(err)
			}
			if res.Files != len(files) || res.Uploaded != len(files) {
				// Two files share content (one blob); the config is the other.
				t.Fatalf("files %d uploaded %d, want %d and %d", res.Files, res.Uploaded, len(files), len(files))
			}
			var man struct {
				ArtifactType string `json:"artifactType"`
				Config       struct {
					MediaType string `json:"mediaType"`
				} `json:"config"`
				Layers []struct {
					MediaType   string            `json:"mediaType"`
					Annotations map[string]string `json:"annotations"`
				} `json:"layers"`
			}
			if err := json.Unmarshal(res.Raw, &man); err != nil {
				t.Fatal(err)
			}
			if len(man.Layers) != len(files) {
				t.Fatalf("%d layers, want one per file (%d)", len(man.Layers), len(files))
			}
			if got := man.Layers[0].Annotations["org.cncf.model.filepath"]; got != "model-00001-of-00002.safetensors" {
				t.Errorf("first layer is %q, want the first shard", got)
			}
			for _, l := range man.Layers {
				wantPrefix := "application/vnd.cncf.model."
				if format == pushmodel.FormatDocker {
					wantPrefix = "application/vnd.docker.ai."
				}
				if !strings.HasPrefix(l.MediaType, wantPrefix) || strings.Contains(l.MediaType, "tar") {
					t.Errorf("layer %s has media type %s", l.Annotations["org.cncf.model.filepath"], l.MediaType)
				}
			}

			out, err := pullmodel.Pull(ctx, c, reg.Ref("org/model", ":v1"), pullmodel.Options{CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if out.Model.Format != format {
				t.Errorf("pulled back as %q, pushed as %q", out.Model.Format, format)
			}
			for p, want := range files {
				got, err := os.ReadFile(filepath.Join(out.Path, p))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: pulled back %d bytes (%v), want %d", p, len(got), err, len(want))
				}
			}
			for _, never := range []string{".git/HEAD", ".gitattributes", "x.safetensors.incomplete"} {
				if _, err := os.Stat(filepath.Join(out.Path, never)); err == nil {
					t.Errorf("%s was published", never)
				}
			}
		})
	}
}

func TestConfigDescribesModel(t *testing.T) {
	reg := testutil.NewRegistry(t)
	dir, _ := modelDir(t)
	c := client(t)
	res, err := pushmodel.Push(context.Background(), c, dir, reg.Ref("org/model", ":v1"), pushmodel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var man struct {
		ArtifactType string `json:"artifactType"`
		Config       struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	_ = json.Unmarshal(res.Raw, &man)
	if man.ArtifactType != "application/vnd.cncf.model.manifest.v1+json" {
		t.Errorf("artifactType %q", man.ArtifactType)
	}
	resp, err := http.Get("http://" + reg.Host + "/v2/org/model/blobs/" + man.Config.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg struct {
		Config struct {
			Architecture, Format, ParamSize, Precision string
		} `json:"config"`
		ModelFS struct {
			DiffIDs []string `json:"diffIds"`
		} `json:"modelfs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	// 64*256 + 32*256 parameters, all F32.
	if cfg.Config.ParamSize != "24.6K" || cfg.Config.Precision != "float32" || cfg.Config.Format != "safetensors" || cfg.Config.Architecture != "transformer" {
		t.Errorf("config %+v", cfg.Config)
	}
	if len(cfg.ModelFS.DiffIDs) != res.Files {
		t.Errorf("%d diffIds for %d files", len(cfg.ModelFS.DiffIDs), res.Files)
	}
}

func TestRepushSkipsEveryBlob(t *testing.T) {
	reg := testutil.NewRegistry(t)
	var seen requests
	reg.Use(seen.middleware)
	dir, _ := modelDir(t)
	cache := t.TempDir()
	c := client(t)
	ctx := context.Background()
	ref := reg.Ref("org/model", ":v1")
	first, err := pushmodel.Push(ctx, c, dir, ref, pushmodel.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	patches := seen.count(http.MethodPatch)
	again, err := pushmodel.Push(ctx, c, dir, ref, pushmodel.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != first.Digest {
		t.Errorf("the same directory published to %s, then %s", first.Digest, again.Digest)
	}
	if again.Uploaded != 0 || again.BytesSent != 0 || seen.count(http.MethodPatch) != patches {
		t.Errorf("re-push uploaded %d blobs, %d bytes", again.Uploaded, again.BytesSent)
	}
	if again.Skipped != len(again.Blobs) {
		t.Errorf("skipped %d of %d", again.Skipped, len(again.Blobs))
	}
}

// A file whose size, mtime, inode and device are unchanged is not read
// again: the remembered digest is used. Shown here by changing its bytes
// behind the cache's back (same size, mtime put back): the push still
// names the old digest.
func TestUnchangedFileIsNotHashedAgain(t *testing.T) {
	reg := testutil.NewRegistry(t)
	dir, _ := modelDir(t)
	old := time.Now().Add(-time.Hour)
	cfg := filepath.Join(dir, "config.json")
	if err := os.Chtimes(cfg, old, old); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	c := client(t)
	ctx := context.Background()
	first, err := pushmodel.Push(ctx, c, dir, reg.Ref("org/model", ":v1"), pushmodel.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(cfg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("{"), 0); err != nil { // same byte: content kept
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(cfg, old, old); err != nil {
		t.Fatal(err)
	}
	second, err := pushmodel.Push(ctx, c, dir, reg.Ref("org/model", ":v2"), pushmodel.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := layerDigest(t, first.Raw, "config.json"), layerDigest(t, second.Raw, "config.json"); a != b {
		t.Errorf("the file was hashed again: digest %s, was %s", b, a)
	}
	// Without the cache, it is.
	third, err := pushmodel.Push(ctx, c, dir, reg.Ref("org/model", ":v3"), pushmodel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if layerDigest(t, third.Raw, "config.json") == layerDigest(t, first.Raw, "config.json") {
		t.Errorf("a push without the digest cache did not see the change")
	}
}

func TestChangedFileIsHashedAgain(t *testing.T) {
	reg := testutil.NewRegistry(t)
	dir, _ := modelDir(t)
	cache := t.TempDir()
	c := client(t)
	ctx := context.Background()
	ref := reg.Ref("org/model", ":v1")
	first, err := pushmodel.Push(ctx, c, dir, ref, pushmodel.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	// Same size, new content: only the digest (not size) tells them apart.
	testutil.WriteFile(t, filepath.Join(dir, "config.json"), []byte(`{"architectures":["MambaForCausalLM"],"model_type":"llama"}`), 0o644)
	second, err := pushmodel.Push(ctx, c, dir, ref, pushmodel.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if second.Digest == first.Digest || second.Uploaded != 2 { // the file and the config
		t.Errorf("after a change: digest %s (was %s), uploaded %d", second.Digest, first.Digest, second.Uploaded)
	}
}

// A PATCH that breaks halfway is tried again, and the push completes.
func TestBrokenUploadIsRetried(t *testing.T) {
	reg := testutil.NewRegistry(t)
	var broken atomic.Int64
	reg.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch && r.ContentLength > 32<<10 && broken.Add(1) == 1 {
				_, _ = io.CopyN(io.Discard, r.Body, r.ContentLength/2)
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	dir, files := modelDir(t)
	c := client(t)
	ctx := context.Background()
	res, err := pushmodel.Push(ctx, c, dir, reg.Ref("org/model", ":v1"), pushmodel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if broken.Load() < 2 {
		t.Fatalf("the fault did not fire")
	}
	out, err := pullmodel.Pull(ctx, c, res.Reference, pullmodel.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range files {
		if got, _ := os.ReadFile(filepath.Join(out.Path, p)); !bytes.Equal(got, want) {
			t.Errorf("%s differs after a retried upload", p)
		}
	}
}

// An upload session on another host gets no Authorization header.
func TestCredentialsStayOnTheRegistryHost(t *testing.T) {
	var leaked, sawAuth, otherHits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.Method {
		case http.MethodPatch:
			w.Header().Set("Location", "/upload/1?step=2")
			w.WriteHeader(http.StatusAccepted)
		case http.MethodPut:
			w.WriteHeader(http.StatusCreated)
		}
	}))
	defer other.Close()
	// "localhost" is another host than "127.0.0.1" for credentials.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			testutil.RegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "login")
			return
		}
		sawAuth.Add(1)
		switch {
		case r.Method == http.MethodHead:
			w.WriteHeader(http.StatusNotFound)
		case r.Method == http.MethodPost:
			w.Header().Set("Location", otherURL+"/upload/1")
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	env := testutil.Env(t, "")
	testutil.WriteJSON(t, filepath.Join(env["HOME"], ".docker", "config.json"), testutil.AuthsConfig(map[string][2]string{host: {"alice", "s3cret"}}))
	c := mustClient(t, env)
	data := []byte("weights")
	_, err := c.PushBlobs(context.Background(), host+"/org/model", []oci.PushBlob{{Digest: digestOf(data), Size: int64(len(data)), Data: data}}, oci.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if otherHits.Load() != 2 { // the PATCH and the PUT
		t.Errorf("the upload host got %d requests", otherHits.Load())
	}
	if sawAuth.Load() == 0 || leaked.Load() != 0 {
		t.Errorf("registry saw credentials %d times; the other host %d times", sawAuth.Load(), leaked.Load())
	}
}

func TestWrongCredentialsFailWithoutTheSecret(t *testing.T) {
	reg := testutil.NewRegistry(t)
	reg.Use(testutil.BasicAuth("alice", "right"))
	env := testutil.Env(t, "")
	testutil.WriteJSON(t, filepath.Join(env["HOME"], ".docker", "config.json"), testutil.AuthsConfig(map[string][2]string{reg.Host: {"alice", "wrong-s3cret"}}))
	dir, _ := modelDir(t)
	_, err := pushmodel.Push(context.Background(), mustClient(t, env), dir, reg.Ref("org/model", ":v1"), pushmodel.Options{})
	e := oci.AsError(err)
	if e == nil || e.Code != oci.CodeUnauthorized {
		t.Fatalf("got %v, want UNAUTHORIZED", err)
	}
	if strings.Contains(err.Error(), "wrong-s3cret") || strings.Contains(err.Error(), testutil.BasicB64("alice", "wrong-s3cret")) {
		t.Errorf("the secret is in the error: %v", err)
	}
}

func TestBadDirectories(t *testing.T) {
	reg := testutil.NewRegistry(t)
	c := client(t)
	ctx := context.Background()
	empty := t.TempDir()
	testutil.WriteFile(t, filepath.Join(empty, ".hidden"), []byte("x"), 0o644)
	fifoDir := t.TempDir()
	if err := mkfifo(filepath.Join(fifoDir, "pipe")); err != nil {
		t.Fatal(err)
	}
	linkDir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(linkDir, "real", "a.txt"), []byte("a"), 0o644)
	if err := os.Symlink("real", filepath.Join(linkDir, "sub")); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"missing": filepath.Join(empty, "nope"), "empty": empty, "fifo": fifoDir, "dir-link": linkDir} {
		_, err := pushmodel.Push(ctx, c, dir, reg.Ref("org/model", ":v1"), pushmodel.Options{})
		if e := oci.AsError(err); e == nil || e.Code != oci.CodeInvalidArgument {
			t.Errorf("%s: got %v, want INVALID_ARGUMENT", name, err)
		}
	}
	dir, _ := modelDir(t)
	if _, err := pushmodel.Push(ctx, c, dir, reg.Ref("org/model", ":v1"), pushmodel.Options{Format: "tarball"}); oci.AsError(err).Code != oci.CodeInvalidArgument {
		t.Errorf("unknown format: %v", err)
	}
}

// A symlinked file publishes its target's bytes under the link's name;
// one leading out of the directory (and out of any cache's blobs) only with
// FollowSymlinks, and without it nothing at all reaches the registry.
func TestSymlinkOutOfTheDirectory(t *testing.T) {
	reg := testutil.NewRegistry(t)
	var seen requests
	reg.Use(seen.middleware)
	elsewhere := t.TempDir()
	target := filepath.Join(elsewhere, "id_ed25519")
	testutil.WriteFile(t, target, []byte("secret key"), 0o600)
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "config.json"), []byte("{}"), 0o644)
	if err := os.Symlink(target, filepath.Join(dir, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	c := client(t)
	ctx := context.Background()
	_, err := pushmodel.Push(ctx, c, dir, reg.Ref("org/model", ":v1"), pushmodel.Options{CacheDir: t.TempDir()})
	if e := oci.AsError(err); e == nil || e.Code != oci.CodeInvalidArgument {
		t.Fatalf("got %v, want INVALID_ARGUMENT", err)
	}
	if !strings.Contains(err.Error(), "model.safetensors (a symlink to "+target+")") {
		t.Errorf("the error does not name the link and its target: %v", err)
	}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH"} {
		if n := seen.count(m); n != 0 {
			t.Errorf("a refused push made %d %s requests", n, m)
		}
	}

	res, err := pushmodel.Push(ctx, c, dir, reg.Ref("org/model", ":v1"), pushmodel.Options{FollowSymlinks: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 2 || layerDigest(t, res.Raw, "model.safetensors") != digestOf([]byte("secret key")) {
		t.Errorf("got %+v", res.Blobs)
	}
}

func mustClient(t *testing.T, env map[string]string) *oci.Client {
	t.Helper()
	c, err := oci.New(oci.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
