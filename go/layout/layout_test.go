package layout

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for in, want := range map[string][3]string{
		"/d":                         {"/d", "", ""},
		"/d:v1":                      {"/d", "v1", ""},
		"/a:b/d":                     {"/a:b/d", "", ""},
		"/d:not a tag":               {"/d:not a tag", "", ""},
		"/d@sha256:" + hex64('a'):    {"/d", "", "sha256:" + hex64('a')},
		"rel/dir:1.0-rc":             {"rel/dir", "1.0-rc", ""},
		"/d:v1@sha256:" + hex64('b'): {"/d:v1", "", "sha256:" + hex64('b')},
	} {
		dir, tag, digest := split(in)
		if got := [3]string{dir, tag, digest}; got != want {
			t.Errorf("split(%q) = %q, want %q", in, got, want)
		}
	}
}

func hex64(c byte) string { return strings.Repeat(string(c), 64) }

// writeLayout makes a layout of one blob and one manifest tagged v1.
func writeLayout(t *testing.T) (dir, manifestDigest, blobDigest string) {
	t.Helper()
	dir = t.TempDir()
	put := func(name string, b []byte) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	blobDigest = "sha256:" + hex64('1')
	put("blobs/sha256/"+hex64('1'), []byte("0123456789"))
	manifestDigest = "sha256:" + hex64('2')
	put("blobs/sha256/"+hex64('2'), []byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json"}`))
	idx, _ := json.Marshal(Index{SchemaVersion: 2, Manifests: []Descriptor{{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: manifestDigest, Size: 57, Annotations: map[string]string{RefNameAnnotation: "v1"}}}})
	put("index.json", idx)
	put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	return dir, manifestDigest, blobDigest
}

func get(t *testing.T, url, rng string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestALayoutAnswersAsARegistry(t *testing.T) {
	dir, manifest, blob := writeLayout(t)
	ref, err := Resolve(Prefix + dir + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := strings.Cut(ref, "/")
	if !IsHost(host) || !strings.HasSuffix(ref, "/"+Repository+":v1") {
		t.Fatalf("Resolve = %q", ref)
	}
	if got := Display(host + "/" + Repository + "@" + manifest); got != Prefix+dir+"@"+manifest {
		t.Errorf("Display = %q", got)
	}
	base := "https://" + host + "/v2/" + Repository
	if r := get(t, base+"/manifests/v1", ""); r.StatusCode != 200 || r.Header.Get("Docker-Content-Digest") != manifest ||
		r.Header.Get("Content-Type") != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest by tag: %d %v", r.StatusCode, r.Header)
	}
	if r := get(t, base+"/manifests/latest", ""); r.StatusCode != 200 {
		t.Errorf("latest of a one-manifest layout: %d", r.StatusCode)
	}
	if r := get(t, base+"/manifests/v2", ""); r.StatusCode != 404 {
		t.Errorf("unknown tag: %d", r.StatusCode)
	}
	if r := get(t, base+"/blobs/"+blob, ""); r.StatusCode != 200 || body(t, r) != "0123456789" {
		t.Errorf("whole blob: %d", r.StatusCode)
	}
	if r := get(t, base+"/blobs/"+blob, "bytes=2-5"); r.StatusCode != 206 || body(t, r) != "2345" || r.Header.Get("Content-Range") != "bytes 2-5/10" {
		t.Errorf("range: %d %v", r.StatusCode, r.Header)
	}
	if r := get(t, base+"/blobs/"+blob, "bytes=7-"); r.StatusCode != 206 || body(t, r) != "789" {
		t.Errorf("open range: %d", r.StatusCode)
	}
	if r := get(t, base+"/blobs/"+blob, "bytes=20-"); r.StatusCode != 416 {
		t.Errorf("range past the end: %d", r.StatusCode)
	}
	// Nothing outside blobs/: a digest is checked before it names a file.
	if r := get(t, base+"/blobs/sha256:../../index.json", ""); r.StatusCode != 400 {
		t.Errorf("a path for a digest: %d", r.StatusCode)
	}
	req := httptest.NewRequest(http.MethodPut, base+"/blobs/uploads/", nil)
	if r, _ := RoundTrip(req); r.StatusCode != 405 {
		t.Errorf("a write: %d", r.StatusCode)
	}
}

func TestResolveRefusesWhatIsNoLayout(t *testing.T) {
	if _, err := Resolve(Prefix + t.TempDir() + ":v1"); err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Errorf("err = %v", err)
	}
	if _, err := Resolve(Prefix); err == nil {
		t.Error("no directory accepted")
	}
}
