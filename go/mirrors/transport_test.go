package mirrors_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/oci-client/liboci/internal/logs"
	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/mirrors"
	"github.com/oci-client/liboci/oci"
)

type seen struct {
	method, path, query, auth, header, rng string
}

// recorder notes every request a registry gets.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (r *recorder) mw(inner func(http.Handler) http.Handler) testutil.Middleware {
	return func(next http.Handler) http.Handler {
		if inner != nil {
			next = inner(next)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.mu.Lock()
			r.reqs = append(r.reqs, seen{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Get("Authorization"), req.Header.Get("X-Dragonfly-Registry"), req.Header.Get("Range")})
			r.mu.Unlock()
			next.ServeHTTP(w, req)
		})
	}
}

func (r *recorder) count(match func(seen) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.reqs {
		if match(s) {
			n++
		}
	}
	return n
}

func blobGets(s seen) bool {
	return s.method == http.MethodGet && strings.Contains(s.path, "/blobs/sha256:")
}
func tagAsks(s seen) bool { return strings.HasSuffix(s.path, "/manifests/v1") }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type setup struct {
	origin, mirror *testutil.Registry
	originSeen     *recorder
	mirrorSeen     *recorder
	client         *oci.Client
	img            v1.Image
	digest         string
	log            *syncBuf
	certs          string
}

const (
	user = "alice"
	pass = "s3cret-origin-password"
)

// newSetup starts an origin that wants a login and a mirror holding the
// same image, with hosts.toml naming the mirror (capabilities caps).
func newSetup(t *testing.T, caps string) *setup {
	return newSetupSized(t, caps, 3<<20, 3)
}

func newSetupSized(t *testing.T, caps string, size, layers int64) *setup {
	t.Helper()
	s := &setup{origin: testutil.NewRegistry(t), mirror: testutil.NewRegistry(t), originSeen: &recorder{}, mirrorSeen: &recorder{}, log: &syncBuf{}}
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	s.img = img
	s.digest, _ = testutil.PushImage(t, s.origin.Ref("org/model", ":v1"), img)
	testutil.PushImage(t, s.mirror.Ref("org/model", ":v1"), img)
	s.origin.Use(s.originSeen.mw(testutil.BasicAuth(user, pass)))
	s.mirror.Use(s.mirrorSeen.mw(nil))
	s.certs = t.TempDir()
	s.writeHosts(t, fmt.Sprintf("server = %q\n[host.%q]\n  capabilities = %s\n  header = { X-Dragonfly-Registry = \"origin\" }\n", "http://"+s.origin.Host, "http://"+s.mirror.Host, caps))
	e := testutil.Env(t, "")
	e["DOCKER_CONFIG"] = t.TempDir()
	testutil.WriteJSON(t, filepath.Join(e["DOCKER_CONFIG"], "config.json"), testutil.AuthsConfig(map[string][2]string{s.origin.Host: {user, pass}}))
	client, err := oci.New(oci.WithEnv(e), oci.WithCertsDirs(s.certs))
	if err != nil {
		t.Fatal(err)
	}
	s.client = client
	return s
}

func (s *setup) writeHosts(t *testing.T, body string) {
	t.Helper()
	dir := filepath.Join(s.certs, strings.Replace(s.origin.Host, ":", "_", 1)+"_")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pull fetches the manifest by tag and every layer, as one call.
func (s *setup) pull(t *testing.T) []oci.Blob {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ctx = mirrors.WithCall(ctx)
	ctx = logs.With(ctx, slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelInfo})))
	ref := s.origin.Ref("org/model", ":v1")
	m, err := s.client.PullManifest(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != s.digest {
		t.Fatalf("manifest %s, want %s", m.Digest, s.digest)
	}
	layers, err := s.img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var reqs []oci.BlobRequest
	for i, l := range layers {
		d, _ := l.Digest()
		size, _ := l.Size()
		reqs = append(reqs, oci.BlobRequest{Digest: d.String(), Path: filepath.Join(dir, fmt.Sprint(i)), Size: size})
	}
	blobs, err := s.client.PullBlobs(ctx, ref, reqs, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		rc, _ := l.Compressed()
		var want bytes.Buffer
		_, _ = want.ReadFrom(rc)
		got, err := os.ReadFile(blobs[i].Path)
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("blob %d differs from the origin's", i)
		}
	}
	return blobs
}

func TestBlobsFromMirrorTagFromOrigin(t *testing.T) {
	s := newSetup(t, `["pull"]`)
	s.pull(t)
	if n := s.originSeen.count(blobGets); n != 0 {
		t.Errorf("origin served %d blobs, want 0", n)
	}
	if n := s.mirrorSeen.count(blobGets); n < 3 {
		t.Errorf("mirror served %d blob requests, want 3 or more", n)
	}
	if n := s.mirrorSeen.count(tagAsks); n != 0 {
		t.Errorf("a pull-only mirror was asked for the tag %d times", n)
	}
	if n := s.originSeen.count(tagAsks); n == 0 {
		t.Error("the tag was not resolved at the origin")
	}
	for _, r := range s.mirrorSeen.reqs {
		if r.auth != "" {
			t.Errorf("the mirror got an Authorization header: %q", r.auth)
		}
		if r.query != "ns="+strings.Replace(s.origin.Host, ":", "%3A", 1) {
			t.Errorf("mirror request %s without ns=origin: %q", r.path, r.query)
		}
		if r.header != "origin" {
			t.Errorf("hosts.toml header missing on %s", r.path)
		}
	}
	if strings.Contains(s.log.String(), "mirror failed") {
		t.Errorf("unexpected failure log:\n%s", s.log)
	}
}

func TestResolveCapabilityAsksMirrorForTag(t *testing.T) {
	s := newSetup(t, `["pull", "resolve"]`)
	s.pull(t)
	if n := s.mirrorSeen.count(tagAsks); n == 0 {
		t.Error("a resolve mirror was not asked for the tag")
	}
	if n := s.originSeen.count(func(x seen) bool { return strings.Contains(x.path, "/manifests/") || blobGets(x) }); n != 0 {
		t.Errorf("origin got %d manifest or blob requests", n)
	}
}

func TestFailingMirrorFallsBackOnceLogged(t *testing.T) {
	for _, tc := range []struct {
		name string
		mw   func(http.Handler) http.Handler
		want string
	}{
		{"5xx", testutil.Status(func(r *http.Request) bool { return testutil.IsBlobGet(r) }, 503, "UNAVAILABLE", nil), "mirror failed"},
		{"404", testutil.Status(func(r *http.Request) bool { return testutil.IsBlobGet(r) }, 404, "BLOB_UNKNOWN", nil), "mirror does not have it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, `["pull"]`)
			s.mirror.Use(s.mirrorSeen.mw(tc.mw))
			s.pull(t)
			if n := s.originSeen.count(blobGets); n != 3 {
				t.Errorf("origin served %d blob requests, want 3", n)
			}
			if n := strings.Count(s.log.String(), tc.want); n != 1 {
				t.Errorf("%q logged %d times, want once:\n%s", tc.want, n, s.log)
			}
		})
	}
}

func TestMirrorDown(t *testing.T) {
	s := newSetup(t, `["pull"]`)
	s.writeHosts(t, fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\"]\n", "http://"+testutil.FreePort(t)))
	s.pull(t)
	if n := s.originSeen.count(blobGets); n != 3 {
		t.Errorf("origin served %d blob requests, want 3", n)
	}
	if n := strings.Count(s.log.String(), "mirror failed"); n != 1 {
		t.Errorf("failure logged %d times, want once:\n%s", n, s.log)
	}
}

func TestCorruptBlobFetchedFromOrigin(t *testing.T) {
	for _, tc := range []struct {
		name          string
		size, layers  int64
		wantOriginMin int
	}{{"streams", 3 << 20, 3, 3}, {"ranged chunks", 40 << 20, 1, 1}} {
		t.Run(tc.name, func(t *testing.T) { testCorruptBlob(t, tc.size, tc.layers, tc.wantOriginMin) })
	}
}

func testCorruptBlob(t *testing.T, size, layers int64, wantOriginMin int) {
	s := newSetupSized(t, `["pull"]`, size, layers)
	// The mirror flips a byte of every blob it serves.
	s.mirror.Use(s.mirrorSeen.mw(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !testutil.IsBlobGet(r) {
				next.ServeHTTP(w, r)
				return
			}
			rec := &capture{header: http.Header{}}
			next.ServeHTTP(rec, r)
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			body := rec.body.Bytes()
			if len(body) > 100 {
				body[100] ^= 0xff
			}
			w.WriteHeader(rec.status)
			_, _ = w.Write(body)
		})
	}))
	s.pull(t)
	if n := s.originSeen.count(blobGets); n < wantOriginMin {
		t.Errorf("origin served %d blob requests, want every blob again", n)
	}
	if size > 16<<20 && s.mirrorSeen.count(func(x seen) bool { return blobGets(x) && x.rng != "" }) == 0 {
		t.Error("no ranged request reached the mirror")
	}
	if n := strings.Count(s.log.String(), "sent wrong bytes"); n != 1 {
		t.Errorf("wrong bytes logged %d times, want once:\n%s", n, s.log)
	}
}

func TestCorruptManifestByDigest(t *testing.T) {
	s := newSetup(t, `["pull"]`)
	s.mirror.Use(s.mirrorSeen.mw(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if testutil.IsManifest(r) && r.Method == http.MethodGet {
				rec := &capture{header: http.Header{}}
				next.ServeHTTP(rec, r)
				for k, v := range rec.header {
					w.Header()[k] = v
				}
				body := bytes.Replace(rec.body.Bytes(), []byte("sha256"), []byte("sha257"), 1)
				w.WriteHeader(rec.status)
				_, _ = w.Write(body)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	ctx := mirrors.WithCall(context.Background())
	ctx = logs.With(ctx, slog.New(slog.NewTextHandler(s.log, nil)))
	m, err := s.client.PullManifest(ctx, s.origin.Ref("org/model", "@"+s.digest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != s.digest {
		t.Fatalf("digest %s", m.Digest)
	}
	if s.mirrorSeen.count(func(x seen) bool { return strings.Contains(x.path, "/manifests/") }) != 1 ||
		s.originSeen.count(func(x seen) bool { return strings.Contains(x.path, "/manifests/sha256:") && x.method == http.MethodGet }) != 1 {
		t.Fatalf("want one manifest from each: mirror %v origin %v", s.mirrorSeen.reqs, s.originSeen.reqs)
	}
	if !strings.Contains(s.log.String(), "manifest has digest") {
		t.Errorf("no log of the bad manifest:\n%s", s.log)
	}
}

func TestNoMirrorsForPushesOrOtherRegistries(t *testing.T) {
	s := newSetup(t, `["pull"]`)
	ctx := mirrors.WithCall(context.Background())
	if _, err := s.client.CheckAuth(ctx, s.origin.Ref("org/model", ":v1")); err != nil {
		t.Fatal(err)
	}
	if n := len(s.mirrorSeen.reqs); n != 0 {
		t.Fatalf("the login check reached the mirror %d times", n)
	}
}

type capture struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = 200
	}
	return c.body.Write(p)
}
func (c *capture) WriteHeader(s int) { c.status = s }

func TestMirrorGetsOnlyItsOwnCredentials(t *testing.T) {
	s := newSetup(t, `["pull"]`)
	s.mirror.Use(s.mirrorSeen.mw(testutil.BasicAuth("bob", "mirror-password")))
	e := testutil.Env(t, "")
	e["DOCKER_CONFIG"] = t.TempDir()
	testutil.WriteJSON(t, filepath.Join(e["DOCKER_CONFIG"], "config.json"), testutil.AuthsConfig(map[string][2]string{
		s.origin.Host: {user, pass},
		s.mirror.Host: {"bob", "mirror-password"},
	}))
	client, err := oci.New(oci.WithEnv(e), oci.WithCertsDirs(s.certs))
	if err != nil {
		t.Fatal(err)
	}
	s.client = client
	s.pull(t)
	if n := s.originSeen.count(blobGets); n != 0 {
		t.Errorf("origin served %d blobs, want 0", n)
	}
	bob := "Basic " + testutil.BasicB64("bob", "mirror-password")
	for _, r := range s.mirrorSeen.reqs {
		if r.auth != "" && r.auth != bob {
			t.Errorf("the mirror got someone else's Authorization: %q", r.auth)
		}
	}
	if s.mirrorSeen.count(func(x seen) bool { return blobGets(x) && x.auth == bob }) < 3 {
		t.Errorf("the mirror's own login was not used: %v", s.mirrorSeen.reqs)
	}
}

func TestRegistryDownMirrorsServe(t *testing.T) {
	s := newSetup(t, `["pull", "resolve"]`)
	s.origin.Server.Close()
	c, err := s.client.With(oci.WithRetries(1)) // no waiting for the dead registry
	if err != nil {
		t.Fatal(err)
	}
	s.client = c
	s.pull(t) // by tag: the mirror may resolve it
	if !strings.Contains(s.log.String(), "registry unreachable") {
		t.Errorf("no word of the registry being down:\n%s", s.log)
	}

	s = newSetup(t, `["pull"]`)
	s.origin.Server.Close()
	if c, err = s.client.With(oci.WithRetries(1)); err != nil {
		t.Fatal(err)
	}
	s.client = c
	ctx := mirrors.WithCall(context.Background())
	if _, err := s.client.PullManifest(ctx, s.origin.Ref("org/model", ":v1")); err == nil {
		t.Fatal("a tag was resolved with the registry down and no mirror allowed to")
	}
	m, err := s.client.PullManifest(ctx, s.origin.Ref("org/model", "@"+s.digest))
	if err != nil || m.Digest != s.digest {
		t.Fatalf("by digest through the mirror: %v", err)
	}
}
