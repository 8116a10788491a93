package export_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/oci-client/liboci/export"
	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/oci"
)

func client(t *testing.T) *oci.Client {
	t.Helper()
	c, err := oci.New(oci.WithEnv(testutil.Env(t, "")))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAnImageExportsToALayoutOthersRead(t *testing.T) {
	reg := testutil.NewRegistry(t)
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := testutil.PushImage(t, reg.Ref("models/m", ":v1"), img)
	dir := filepath.Join(t.TempDir(), "layout")
	c := client(t)
	res, err := export.Model(context.Background(), c, reg.Ref("models/m", ":v1"), dir, export.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != digest || res.Tag != "v1" || res.Reference != "oci-layout:"+dir+":v1" || res.Blobs != 5 || res.BlobsDownloaded != 4 {
		t.Fatalf("result %+v", res)
	}
	// go-containerregistry's own layout reader finds the image whole.
	p, err := ggcrlayout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Image(mustHash(t, digest))
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := got.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	if len(layers) != 3 {
		t.Fatalf("%d layers", len(layers))
	}
	// And so does a pull through the layout reference.
	m, err := c.PullManifest(context.Background(), res.Reference)
	if err != nil || m.Digest != digest {
		t.Fatalf("PullManifest(%s) = %v, %v", res.Reference, m, err)
	}

	// Again: every blob is there and right, nothing is fetched.
	again, err := export.Model(context.Background(), c, reg.Ref("models/m", ":v1"), dir, export.Options{})
	if err != nil || again.BlobsDownloaded != 0 {
		t.Fatalf("re-export: %+v, %v", again, err)
	}
	// A wrong blob is replaced.
	l0, _ := layers[0].Digest()
	bad := filepath.Join(dir, "blobs", "sha256", l0.Hex)
	if err := os.WriteFile(bad, []byte("wrong"), 0o644); err != nil {
		t.Fatal(err)
	}
	fixed, err := export.Model(context.Background(), c, reg.Ref("models/m", ":v1"), dir, export.Options{Tag: "other"})
	if err != nil || fixed.BlobsDownloaded != 1 {
		t.Fatalf("repair: %+v, %v", fixed, err)
	}
	idx, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if strings.Count(string(idx), `"org.opencontainers.image.ref.name"`) != 2 {
		t.Errorf("index.json: %s", idx)
	}
}

func TestAnIndexExportsWithEveryManifest(t *testing.T) {
	reg := testutil.NewRegistry(t)
	idx, err := random.Index(1024, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := testutil.PushIndex(t, reg.Ref("models/i", ":v1"), idx)
	dir := t.TempDir()
	res, err := export.Model(context.Background(), client(t), reg.Ref("models/i", "@"+digest), dir, export.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 2 manifests x (config + 2 layers), the two manifests and the index; no tag given.
	if res.Blobs != 9 || res.Tag != "" || res.Reference != "oci-layout:"+dir+"@"+digest {
		t.Fatalf("result %+v", res)
	}
	p, err := ggcrlayout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	inner, err := ii.ImageIndex(mustHash(t, digest))
	if err != nil {
		t.Fatal(err)
	}
	m, err := inner.IndexManifest()
	if err != nil || len(m.Manifests) != 2 {
		t.Fatalf("index manifest %v, %v", m, err)
	}
	for _, d := range m.Manifests {
		img, err := inner.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := img.RawConfigFile(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestExportRefusesALayoutAndABadTag(t *testing.T) {
	c := client(t)
	if _, err := export.Model(context.Background(), c, "oci-layout:/x:v1", t.TempDir(), export.Options{}); err == nil {
		t.Error("a layout reference was exported")
	}
	reg := testutil.NewRegistry(t)
	if _, err := export.Model(context.Background(), c, reg.Ref("a/b", ":v1"), t.TempDir(), export.Options{Tag: "a/b"}); err == nil {
		t.Error("a tag with a slash was taken")
	}
}

func mustHash(t *testing.T, digest string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
