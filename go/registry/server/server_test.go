package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { stop(t, s) })
	return s
}

func stop(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func ref(t *testing.T, s *Server, repoTag string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s.Addr() + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rawManifest lets a test push a manifest written by hand (an artifact that
// is no image).
type rawManifest struct {
	body      []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.body, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

type artifact struct {
	ref     name.Reference
	digest  v1.Hash
	payload []byte
}

// pushArtifact pushes a ModelPack-style artifact: an OCI manifest with a
// custom config media type, artifactType and one raw layer.
func pushArtifact(t *testing.T, s *Server, repoTag string) artifact {
	t.Helper()
	r := ref(t, s, repoTag)
	repo := r.Context()
	payload := []byte("weights of " + repoTag + strings.Repeat(".", 4096))
	config := []byte(`{"descriptor":{"name":"tiny"}}`)
	layer := static.NewLayer(payload, "application/vnd.cncf.model.weight.v1.raw")
	cfgLayer := static.NewLayer(config, "application/vnd.cncf.model.config.v1+json")
	for _, l := range []v1.Layer{layer, cfgLayer} {
		if err := remote.WriteLayer(repo, l); err != nil {
			t.Fatalf("WriteLayer: %v", err)
		}
	}
	desc := func(l v1.Layer) map[string]any {
		d, _ := l.Digest()
		n, _ := l.Size()
		mt, _ := l.MediaType()
		return map[string]any{"mediaType": mt, "digest": d.String(), "size": n}
	}
	body, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIManifestSchema1,
		"artifactType":  "application/vnd.cncf.model.manifest.v1+json",
		"config":        desc(cfgLayer),
		"layers":        []any{desc(layer)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(r, rawManifest{body, types.OCIManifestSchema1}); err != nil {
		t.Fatalf("Put manifest: %v", err)
	}
	d, _, _ := v1.SHA256(bytes.NewReader(body))
	return artifact{ref: r, digest: d, payload: payload}
}

// checkArtifact reads the artifact back through the registry at s.
func checkArtifact(t *testing.T, s *Server, a artifact) {
	t.Helper()
	r := ref(t, s, strings.TrimPrefix(a.ref.String(), a.ref.Context().RegistryStr()+"/"))
	got, err := remote.Get(r)
	if err != nil {
		t.Fatalf("Get %s: %v", r, err)
	}
	if got.Digest != a.digest {
		t.Fatalf("manifest digest %s, want %s", got.Digest, a.digest)
	}
	var m v1.Manifest
	if err := json.Unmarshal(got.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	blob, err := remote.Layer(r.Context().Digest(m.Layers[0].Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := blob.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading the layer: %v", err)
	}
	if !bytes.Equal(data, a.payload) {
		t.Fatalf("layer content differs (%d bytes, want %d)", len(data), len(a.payload))
	}
}

func TestImageRoundTrip(t *testing.T) {
	s := start(t, Config{Root: t.TempDir()})
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Fatalf("URL %q, Addr %q: want the real loopback port", s.URL(), s.Addr())
	}
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := ref(t, s, "library/random:v1")
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got, err := remote.Image(r)
	if err != nil {
		t.Fatalf("Image: %v", err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("digest %s, want %s", d, want)
	}
	layers, err := got.Layers()
	if err != nil || len(layers) != 3 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[2].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	// remote's reader checks the digest at EOF.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("reading a layer: %v", err)
	}
	rc.Close()
}

func TestDataAndSecretPersistAcrossRestart(t *testing.T) {
	root := t.TempDir()
	first, err := Start(context.Background(), Config{Root: root, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	a := pushArtifact(t, first, "models/tiny:v1")
	// An upload begun before the restart must be completable after it: the
	// session state in its URL is signed with the persisted secret.
	upload := startUpload(t, first, "models/tiny")
	addr := first.Addr()
	stop(t, first)

	info, err := os.Stat(filepath.Join(root, secretFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("secret file mode %o, want 600", perm)
	}
	secret, _ := os.ReadFile(filepath.Join(root, secretFile))

	second := start(t, Config{Root: root, Addr: addr})
	checkArtifact(t, second, a)
	finishUpload(t, second, upload, []byte("resumed after a restart"))

	again, _ := os.ReadFile(filepath.Join(root, secretFile))
	if !bytes.Equal(secret, again) {
		t.Fatal("the HTTP secret changed across a restart")
	}
}

// startUpload opens a blob upload session and returns its location path.
func startUpload(t *testing.T, s *Server, repo string) string {
	t.Helper()
	resp, err := http.Post(s.URL()+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if i := strings.Index(loc, "/v2/"); i >= 0 {
		return loc[i:]
	}
	t.Fatalf("upload location %q has no /v2/ path", loc)
	return ""
}

func finishUpload(t *testing.T, s *Server, location string, data []byte) {
	t.Helper()
	d, _, _ := v1.SHA256(bytes.NewReader(data))
	sep := "?"
	if strings.Contains(location, "?") {
		sep = "&"
	}
	req, err := http.NewRequest(http.MethodPut, s.URL()+location+sep+"digest="+d.String(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT upload after restart: %s %s", resp.Status, body)
	}
}

func TestProxyServesFromItsStorageWhenUpstreamIsGone(t *testing.T) {
	upstream, err := Start(context.Background(), Config{Root: t.TempDir(), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, upstream) // a second Shutdown is harmless
	a := pushArtifact(t, upstream, "models/cached:v1")

	proxyRoot := t.TempDir()
	proxy := start(t, Config{Root: proxyRoot, ProxyURL: upstream.URL()})
	if proxy.ProxyURL() != upstream.URL() {
		t.Fatalf("ProxyURL %q", proxy.ProxyURL())
	}
	checkArtifact(t, proxy, a)

	// The cache commits a blob after the client has it all; wait for that
	// before taking the upstream away.
	payloadDigest, _, _ := v1.SHA256(bytes.NewReader(a.payload))
	waitForBlob(t, proxyRoot, payloadDigest)
	stop(t, upstream)

	checkArtifact(t, proxy, a)

	// Pushing to a cache is refused.
	resp, err := http.Post(proxy.URL()+"/v2/models/other/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("upload to a pull-through cache answered %s", resp.Status)
	}
}

func waitForBlob(t *testing.T, root string, d v1.Hash) {
	t.Helper()
	path := filepath.Join(root, "docker", "registry", "v2", "blobs", d.Algorithm, d.Hex[:2], d.Hex, "data")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache never stored blob %s", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBindAddressMustBeLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0"} {
		_, err := Start(context.Background(), Config{Root: t.TempDir(), Addr: addr})
		if err == nil || !strings.Contains(err.Error(), "--allow-remote") {
			t.Errorf("Start on %q: %v, want a refusal naming --allow-remote", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.2:5000", "[::1]:0", "localhost:0"} {
		if err := checkBindAddr(addr, false); err != nil {
			t.Errorf("checkBindAddr(%q): %v", addr, err)
		}
	}
	if err := checkBindAddr("0.0.0.0:0", true); err != nil {
		t.Errorf("AllowRemote: %v", err)
	}
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:"} {
		if err := checkBindAddr(addr, true); err == nil {
			t.Errorf("checkBindAddr(%q) accepted a malformed address", addr)
		}
	}
}

func TestStartFailures(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = Start(context.Background(), Config{Root: t.TempDir(), Addr: busy.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("port in use: %v", err)
	}

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Start(context.Background(), Config{Root: file, Addr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("opening storage %q", file)) {
		t.Errorf("root is a file: %v", err)
	}

	for _, c := range []Config{
		{Root: t.TempDir(), Addr: "127.0.0.1:0", LogLevel: "loud"},
		{Root: t.TempDir(), Addr: "127.0.0.1:0", TLSCert: "cert.pem"},
		{Root: t.TempDir(), Addr: "127.0.0.1:0", ProxyURL: "ftp://example.com"},
		{Root: t.TempDir(), Addr: "127.0.0.1:0", ProxyUsername: "u"},
		{Root: "", Addr: "127.0.0.1:0"},
	} {
		if _, err := Start(context.Background(), c); err == nil {
			t.Errorf("Start(%v) succeeded", c)
		}
	}
}

func TestProxyCredentialsStayOutOfErrorsAndStrings(t *testing.T) {
	_, err := Start(context.Background(), Config{Root: t.TempDir(), Addr: "127.0.0.1:0", ProxyURL: "https://user:hunter2@example.com"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("credentials in the URL: %v", err)
	}
	s := Config{ProxyURL: "https://example.com", ProxyUsername: "u", ProxyPassword: "hunter2"}.String()
	if strings.Contains(s, "hunter2") {
		t.Errorf("Config.String shows the password: %s", s)
	}
}

func TestShutdownIsIdempotentAndWaitReturns(t *testing.T) {
	s, err := Start(context.Background(), Config{Root: t.TempDir(), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	stop(t, s)
	stop(t, s)
	if err := s.Wait(); err != nil {
		t.Fatalf("Wait after Shutdown: %v", err)
	}
	if resp, err := http.Get(s.URL() + "/v2/"); err == nil {
		resp.Body.Close()
		t.Fatal("still answering after Shutdown")
	}
}

func TestShutdownDoesNotWaitForUnusedConnections(t *testing.T) {
	s, err := Start(context.Background(), Config{Root: t.TempDir(), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond) // let the server accept it
	began := time.Now()
	stop(t, s)
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("Shutdown took %v with one idle, never-used connection", took)
	}
}
