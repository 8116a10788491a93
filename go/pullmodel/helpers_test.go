package pullmodel_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/pullmodel"
)

const (
	mtManifest     = "application/vnd.oci.image.manifest.v1+json"
	mtArtifact     = "application/vnd.cncf.model.manifest.v1+json"
	mtConfig       = "application/vnd.cncf.model.config.v1+json"
	mtWeight       = "application/vnd.cncf.model.weight.v1.raw"
	mtWeightConfig = "application/vnd.cncf.model.weight.config.v1.raw"
	mtCodeTarGzip  = "application/vnd.cncf.model.code.v1.tar+gzip"
	annFilepath    = "org.cncf.model.filepath"
)

// layer is one layer of a test model; path "" leaves it unnamed.
type layer struct {
	mediaType string
	path      string
	data      []byte
}

type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pushModel pushes a ModelPack artifact to ref and returns its digest.
func pushModel(t *testing.T, ref string, layers ...layer) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	repo := r.Context().String()
	config := []byte(`{"descriptor":{"name":"test"},"config":{"format":"safetensors"},"modelfs":{"type":"layers","diffIds":[]}}`)
	testutil.PushBlob(t, repo, config)
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	var ls []desc
	for _, l := range layers {
		testutil.PushBlob(t, repo, l.data)
		d := desc{MediaType: l.mediaType, Digest: digestOf(l.data), Size: len(l.data)}
		if l.path != "" {
			d.Annotations = map[string]string{annFilepath: l.path}
		}
		ls = append(ls, d)
	}
	raw, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": mtManifest, "artifactType": mtArtifact,
		"config": desc{MediaType: mtConfig, Digest: digestOf(config), Size: len(config)},
		"layers": ls,
	})
	if err := remote.Put(r, rawManifest{raw, mtManifest}); err != nil {
		t.Fatal(err)
	}
	return digestOf(raw)
}

// tarGz packs files (name -> content) into a gzipped tar.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, n := range sortedNames(files) {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sortedNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// counter counts a registry's manifest and blob requests, blobs by digest.
type counter struct {
	mu        sync.Mutex
	manifests int
	blobs     map[string]int
	delay     time.Duration
}

func count(reg *testutil.Registry) *counter {
	c := &counter{blobs: map[string]int{}}
	reg.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			delay := c.delay
			switch {
			case testutil.IsManifest(r):
				c.manifests++
			case testutil.IsBlobGet(r):
				c.blobs[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
			}
			c.mu.Unlock()
			if delay > 0 && testutil.IsBlobGet(r) {
				time.Sleep(delay)
			}
			next.ServeHTTP(w, r)
		})
	})
	return c
}

func (c *counter) reset() {
	c.mu.Lock()
	c.manifests = 0
	c.blobs = map[string]int{}
	c.mu.Unlock()
}

func (c *counter) totals() (manifests, blobs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.blobs {
		blobs += n
	}
	return c.manifests, blobs
}

func client(t *testing.T) *oci.Client {
	t.Helper()
	c, err := oci.New(oci.WithEnv(testutil.Env(t, "")))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func pull(t *testing.T, ref string, o pullmodel.Options) *pullmodel.Result {
	t.Helper()
	res, err := pullmodel.Pull(testCtx(t), client(t), ref, o)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	return res
}

func wantCode(t *testing.T, err error, code oci.Code) {
	t.Helper()
	if got := oci.AsError(err); got == nil || got.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

func wantFile(t *testing.T, path, content string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != content {
		t.Errorf("%s holds %q, want %q", path, b, content)
	}
}

// sampleModel is two unnamed shards, a named config and a code archive.
func sampleModel(t *testing.T) []layer {
	return []layer{
		{mtWeightConfig, "config.json", []byte(`{"model_type":"tiny"}`)},
		{mtWeight, "", bytes.Repeat([]byte("a"), 3<<20)},
		{mtWeight, "", bytes.Repeat([]byte("b"), 2<<20)},
		{mtCodeTarGzip, "tokenizer", tarGz(t, map[string]string{"tokenizer/vocab.json": `{"a":1}`, "tokenizer/merges.txt": "a b\n"})},
	}
}

func cacheDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "cache")
	// Before the directory goes: the background fsyncs write state files.
	t.Cleanup(pullmodel.WaitDurable)
	return dir
}

func deadPID(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	return p.Pid
}

func itoa(n int) string { return strconv.Itoa(n) }

// setup starts a registry holding a model at org/model:v1, and a cache.
func setup(t *testing.T, layers ...layer) (reg *testutil.Registry, ref, digest, root string) {
	t.Helper()
	reg = testutil.NewRegistry(t)
	ref = reg.Ref("org/model", ":v1")
	return reg, ref, pushModel(t, ref, layers...), cacheDir(t)
}
