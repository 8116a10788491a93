package oci_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/oci-client/liboci/internal/testutil"
	"github.com/oci-client/liboci/netconf"
	"github.com/oci-client/liboci/oci"
)

// env returns an environment with an empty HOME and a DOCKER_CONFIG
// holding cfg (when not nil); it returns the config.json path too.
func env(t *testing.T, cfg any) (map[string]string, string) {
	t.Helper()
	e := testutil.Env(t, "")
	dir := t.TempDir()
	e["DOCKER_CONFIG"] = dir
	p := filepath.Join(dir, "config.json")
	if cfg != nil {
		testutil.WriteJSON(t, p, cfg)
	}
	return e, p
}

func anonClient(t *testing.T, opts ...oci.Option) *oci.Client {
	t.Helper()
	e, _ := env(t, nil)
	return mustNew(t, append([]oci.Option{oci.WithEnv(e)}, opts...)...)
}

// mustNew is oci.New for options that must apply.
func mustNew(t *testing.T, opts ...oci.Option) *oci.Client {
	t.Helper()
	c, err := oci.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustWith is c.With for options that must apply.
func mustWith(t *testing.T, c *oci.Client, opts ...oci.Option) *oci.Client {
	t.Helper()
	c, err := c.With(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func ociImage(t *testing.T) v1.Image {
	t.Helper()
	img := mutate.MediaType(randomImage(t), types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

// wantCode asserts err is an *oci.Error with code and returns it.
func wantCode(t *testing.T, err error, code oci.Code) *oci.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	var e *oci.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *oci.Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("code %s (status %d, registry code %q), want %s: %v", e.Code, e.Status, e.RegistryCode, code, err)
	}
	return e
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestPullManifest(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	cases := []struct {
		label string
		img   v1.Image
		mt    types.MediaType
	}{
		{"docker", randomImage(t), types.DockerManifestSchema2},
		{"oci", ociImage(t), types.OCIManifestSchema1},
	}
	c := anonClient(t)
	for _, tc := range cases {
		digest, raw := testutil.PushImage(t, reg.Ref("app/"+tc.label, ":v1"), tc.img)
		if digest != sha(raw) {
			t.Fatalf("test setup: digest %s of %d bytes", digest, len(raw))
		}
		for _, ref := range []string{reg.Ref("app/"+tc.label, ":v1"), reg.Ref("app/"+tc.label, "@"+digest)} {
			m, err := c.PullManifest(ctx(t), ref)
			if err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
			if m.Digest != digest || !bytes.Equal(m.Raw, raw) || m.Size != int64(len(raw)) {
				t.Errorf("%s: digest %s size %d, want %s size %d (raw equal: %v)", ref, m.Digest, m.Size, digest, len(raw), bytes.Equal(m.Raw, raw))
			}
			if m.MediaType != string(tc.mt) {
				t.Errorf("%s: media type %q, want %q", ref, m.MediaType, tc.mt)
			}
			if m.Reference != ref {
				t.Errorf("Reference = %q, want %q", m.Reference, ref)
			}
		}
	}
}

func TestPullManifestIndex(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	digest, raw := testutil.PushIndex(t, reg.Ref("multi", ":latest"), idx)
	m, err := anonClient(t).PullManifest(ctx(t), reg.Ref("multi", ":latest"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != digest || !bytes.Equal(m.Raw, raw) || m.MediaType != string(types.OCIImageIndex) {
		t.Fatalf("got %s %s, want %s %s", m.Digest, m.MediaType, digest, types.OCIImageIndex)
	}
	// The index itself, not a platform's image: no platform resolution.
	im, err := v1.ParseIndexManifest(bytes.NewReader(m.Raw))
	if err != nil || len(im.Manifests) != 2 {
		t.Fatalf("parsed index: %v, %v", im, err)
	}
}

func TestPullManifestNotFound(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	testutil.PushImage(t, reg.Ref("there", ":v1"), randomImage(t))
	c := anonClient(t)
	e := wantCode(t, errOf(c.PullManifest(ctx(t), reg.Ref("there", ":nope"))), oci.CodeNotFound)
	if e.Status != 404 || e.RegistryCode != "MANIFEST_UNKNOWN" {
		t.Errorf("status %d registry code %q", e.Status, e.RegistryCode)
	}
	e = wantCode(t, errOf(c.PullManifest(ctx(t), reg.Ref("absent", ":v1"))), oci.CodeNotFound)
	if e.Status != 404 || e.RegistryCode != "NAME_UNKNOWN" {
		t.Errorf("status %d registry code %q", e.Status, e.RegistryCode)
	}
	if !strings.Contains(e.Error(), "absent") {
		t.Errorf("message %q does not name the reference", e.Error())
	}
}

func errOf[T any](_ T, err error) error { return err }

func TestPullManifestByDigestVerifiesContent(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	digest, raw := testutil.PushImage(t, reg.Ref("app", ":v1"), randomImage(t))
	// The registry answers the digest with other bytes.
	tampered := append(bytes.TrimRight(append([]byte{}, raw...), "}"), []byte(`,"x":1}`)...)
	reg.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/"+digest) {
				w.Header().Set("Content-Type", string(types.DockerManifestSchema2))
				w.Write(tampered)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	_, err := anonClient(t).PullManifest(ctx(t), reg.Ref("app", "@"+digest))
	wantCode(t, err, oci.CodeDigestMismatch)
}

func TestPullBlob(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	data := testutil.RandomBytes(t, 9<<20+17) // two O_DIRECT pieces and an unaligned tail
	digest := testutil.PushBlob(t, reg.Ref("blobs", ""), data)
	dir := t.TempDir()
	dest := filepath.Join(dir, "nested", "deeper", "model.bin")
	b, err := anonClient(t).PullBlob(ctx(t), reg.Ref("blobs", ":anything"), oci.BlobRequest{Digest: digest, Path: dest, Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if b.Digest != digest || b.Size != int64(len(data)) || b.Path != dest {
		t.Errorf("got %+v", b)
	}
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file content differs (%d bytes, %v)", len(got), err)
	}
	fi, _ := os.Stat(dest)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	if ents := dirEntries(t, filepath.Dir(dest)); len(ents) != 1 {
		t.Errorf("destination directory holds %q, want only the blob", ents)
	}

	// Unknown size, and an existing file replaced.
	if err := os.WriteFile(dest, []byte("old content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := anonClient(t).PullBlob(ctx(t), reg.Ref("blobs", ""), oci.BlobRequest{Digest: digest, Path: dest}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Error("existing file not replaced by the blob")
	}
}

func TestPullBlobRelativeDestination(t *testing.T) {
	reg := testutil.NewRegistry(t)
	data := []byte("relative")
	digest := testutil.PushBlob(t, reg.Ref("blobs", ""), data)
	dir := t.TempDir()
	t.Chdir(dir)
	b, err := anonClient(t).PullBlob(ctx(t), reg.Ref("blobs", ""), oci.BlobRequest{Digest: digest, Path: "sub/file"})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "sub", "file")
	if real, _ := filepath.EvalSymlinks(dir); b.Path != want && b.Path != filepath.Join(real, "sub", "file") {
		t.Errorf("Path = %q, want the absolute %q", b.Path, want)
	}
	if got, _ := os.ReadFile(want); string(got) != "relative" {
		t.Errorf("content %q", got)
	}
}

func TestPullBlobBadArguments(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	good := sha([]byte("x"))
	dir := t.TempDir()
	c := anonClient(t)
	cases := []struct {
		label, ref, digest, dest string
		code                     oci.Code
	}{
		{"directory destination", reg.Ref("r", ""), good, dir, oci.CodeInvalidArgument},
		{"empty destination", reg.Ref("r", ""), good, "", oci.CodeInvalidArgument},
		{"digest without algorithm", reg.Ref("r", ""), strings.TrimPrefix(good, "sha256:"), filepath.Join(dir, "f"), oci.CodeInvalidArgument},
		{"short digest", reg.Ref("r", ""), "sha256:abc", filepath.Join(dir, "f"), oci.CodeInvalidArgument},
		{"upper-case digest", reg.Ref("r", ""), strings.ToUpper(good), filepath.Join(dir, "f"), oci.CodeInvalidArgument},
		{"upper-case hex", reg.Ref("r", ""), "sha256:" + strings.ToUpper(strings.TrimPrefix(good, "sha256:")), filepath.Join(dir, "f"), oci.CodeInvalidArgument},
		{"unknown algorithm", reg.Ref("r", ""), "md5:d41d8cd98f00b204e9800998ecf8427e", filepath.Join(dir, "f"), oci.CodeInvalidArgument},
		{"sha512 too short", reg.Ref("r", ""), "sha512:" + strings.TrimPrefix(good, "sha256:"), filepath.Join(dir, "f"), oci.CodeInvalidArgument},
		{"empty reference", "", good, filepath.Join(dir, "f"), oci.CodeInvalidReference},
		{"bad reference", "Not A Reference!", good, filepath.Join(dir, "f"), oci.CodeInvalidReference},
	}
	for _, tc := range cases {
		_, err := c.PullBlob(ctx(t), tc.ref, oci.BlobRequest{Digest: tc.digest, Path: tc.dest})
		if err == nil {
			t.Errorf("%s: no error", tc.label)
			continue
		}
		var e *oci.Error
		if !errors.As(err, &e) || e.Code != tc.code {
			t.Errorf("%s: got %v, want code %s", tc.label, err, tc.code)
		}
	}
	if n := reg.Requests.Load(); n != 0 {
		t.Errorf("invalid arguments still sent %d requests", n)
	}
	if ents := dirEntries(t, dir); len(ents) != 0 {
		t.Errorf("files left behind: %q", ents)
	}
}

func TestPullBlobSHA512(t *testing.T) {
	t.Parallel()
	// Valid sha512 digests are accepted; the registry decides whether it
	// has the blob.
	reg := testutil.NewRegistry(t)
	d := "sha512:" + strings.Repeat("ab", 64)
	_, err := anonClient(t).PullBlob(ctx(t), reg.Ref("r", ""), oci.BlobRequest{Digest: d, Path: filepath.Join(t.TempDir(), "f")})
	if err != nil {
		var e *oci.Error
		if errors.As(err, &e) && e.Code == oci.CodeInvalidArgument {
			t.Fatalf("a well-formed sha512 digest was refused: %v", err)
		}
	}
}

// failedPull runs PullBlob against reg (with mw installed) into a directory
// holding an existing destination file, checks the error code, and that
// the old file survived and no temporary file is left.
func failedPull(t *testing.T, reg *testutil.Registry, digest string, size int64, code oci.Code) *oci.Error {
	t.Helper()
	dir := t.TempDir()
	dest := filepath.Join(dir, "blob")
	fresh := filepath.Join(dir, "fresh")
	if err := os.WriteFile(dest, []byte("previous version"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := anonClient(t, oci.WithRetries(2))
	_, err := c.PullBlob(ctx(t), reg.Ref("blobs", ""), oci.BlobRequest{Digest: digest, Path: dest, Size: size})
	e := wantCode(t, err, code)
	if got, _ := os.ReadFile(dest); string(got) != "previous version" {
		t.Errorf("existing destination changed to %d bytes", len(got))
	}
	// And with no file there before: none after.
	_, err = c.PullBlob(ctx(t), reg.Ref("blobs", ""), oci.BlobRequest{Digest: digest, Path: fresh, Size: size})
	wantCode(t, err, code)
	// Wrong content is thrown away; data cut short is kept to resume from.
	var ents []string
	for _, name := range dirEntries(t, dir) {
		if code == oci.CodeDigestMismatch || !strings.Contains(name, ".incomplete") {
			ents = append(ents, name)
		}
	}
	if len(ents) != 1 || ents[0] != "blob" {
		t.Errorf("directory holds %q, want only the old file", ents)
	}
	return e
}

func TestPullBlobDigestMismatch(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	data := testutil.RandomBytes(t, 4096)
	digest := testutil.PushBlob(t, reg.Ref("blobs", ""), data)
	wrong := append([]byte{}, data...)
	wrong[100] ^= 0xff
	reg.Use(testutil.Serve(wrong))
	e := failedPull(t, reg, digest, int64(len(data)), oci.CodeDigestMismatch)
	if !strings.Contains(e.Error(), sha(wrong)) {
		t.Errorf("message %q does not name the digest received", e.Error())
	}
	// Unknown size: the digest check still catches it.
	failedPull(t, reg, digest, 0, oci.CodeDigestMismatch)
}

func TestPullBlobSizeMismatch(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	data := testutil.RandomBytes(t, 1000)
	digest := testutil.PushBlob(t, reg.Ref("blobs", ""), data)
	t.Run("announced", func(t *testing.T) {
		// Refused on the announced length, before reading the body.
		e := failedPull(t, reg, digest, int64(len(data)+1), oci.CodeDigestMismatch)
		if !strings.Contains(e.Error(), "registry has 1000 bytes, descriptor says 1001") {
			t.Errorf("message %q", e.Error())
		}
	})
	t.Run("longer unannounced body", func(t *testing.T) {
		r := testutil.NewRegistry(t)
		d := testutil.PushBlob(t, r.Ref("blobs", ""), data)
		r.Use(testutil.Chunked(append(append([]byte{}, data...), make([]byte, 1<<20)...)))
		// Reading stops one byte past the expected size.
		e := failedPull(t, r, d, int64(len(data)), oci.CodeDigestMismatch)
		if !strings.Contains(e.Error(), "registry sent more than the 1000 bytes of the blob") {
			t.Errorf("message %q", e.Error())
		}
	})
	t.Run("shorter unannounced body", func(t *testing.T) {
		r := testutil.NewRegistry(t)
		d := testutil.PushBlob(t, r.Ref("blobs", ""), data)
		r.Use(testutil.Chunked(data[:500]))
		e := failedPull(t, r, d, int64(len(data)), oci.CodeDigestMismatch)
		if !strings.Contains(e.Error(), "received 500 bytes, descriptor says 1000") {
			t.Errorf("message %q", e.Error())
		}
	})
}

func TestPullBlobTruncated(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	data := testutil.RandomBytes(t, 64<<10)
	digest := testutil.PushBlob(t, reg.Ref("blobs", ""), data)
	reg.Use(testutil.Truncate(data[:10<<10], len(data)))
	failedPull(t, reg, digest, int64(len(data)), oci.CodeNetwork)
	failedPull(t, reg, digest, 0, oci.CodeNetwork)
}

func TestPullBlobNotFound(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	testutil.PushBlob(t, reg.Ref("blobs", ""), []byte("something"))
	e := failedPull(t, reg, sha([]byte("never pushed")), 0, oci.CodeNotFound)
	if e.Status != http.StatusNotFound || e.RegistryCode != "BLOB_UNKNOWN" {
		t.Errorf("status %d registry code %q, want 404 BLOB_UNKNOWN", e.Status, e.RegistryCode)
	}
}

func TestPullBlobParentIsFile(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	digest := testutil.PushBlob(t, reg.Ref("blobs", ""), []byte("data"))
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := anonClient(t).PullBlob(ctx(t), reg.Ref("blobs", ""), oci.BlobRequest{Digest: digest, Path: filepath.Join(file, "blob")})
	wantCode(t, err, oci.CodeIO)
}

func TestInvalidReference(t *testing.T) {
	t.Parallel()
	c := anonClient(t)
	for _, ref := range []string{"", " ubuntu", "ubuntu\n", "UPPER/case", "reg.test/repo:bad tag", "reg.test/repo@sha256:short", "reg.test/repo:" + strings.Repeat("t", 200),
		"reg.test/a//b:v1", "reg.test/a/:v1", "reg.test//a", "/a/b", "a/b/", "reg.test:5000//a@sha256:" + strings.Repeat("0", 64)} {
		_, err := c.PullManifest(ctx(t), ref)
		wantCode(t, err, oci.CodeInvalidReference)
		_, err = c.CheckAuth(ctx(t), ref)
		wantCode(t, err, oci.CodeInvalidReference)
	}
}

func TestParseReferenceDefaults(t *testing.T) {
	t.Parallel()
	c := anonClient(t, oci.WithInsecureRegistries("plain.test:5000"))
	r, err := c.ParseReference("ubuntu")
	if err != nil || r.Name() != "index.docker.io/library/ubuntu:latest" || r.Context().Scheme() != "https" {
		t.Fatalf("ubuntu -> %v, %v", r, err)
	}
	r, err = c.ParseReference("plain.test:5000/app:v1")
	if err != nil || r.Context().Scheme() != "http" {
		t.Fatalf("listed insecure registry: scheme %s, %v", r.Context().Scheme(), err)
	}
	r, err = c.ParseReference("other.test:5000/app:v1")
	if err != nil || r.Context().Scheme() != "https" {
		t.Fatalf("unlisted registry: scheme %s, %v", r.Context().Scheme(), err)
	}
}

// basicRegistry serves a seeded image behind Basic auth for alice.
func basicRegistry(t *testing.T, pass string) (*testutil.Registry, string, []byte, string) {
	t.Helper()
	reg := testutil.NewRegistry(t)
	digest, raw := testutil.PushImage(t, reg.Ref("private/app", ":v1"), randomImage(t))
	blob := testutil.PushBlob(t, reg.Ref("private/app", ""), []byte("private blob content"))
	reg.Use(testutil.BasicAuth("alice", pass))
	return reg, digest, raw, blob
}

func TestBasicAuthFromDockerConfig(t *testing.T) {
	t.Parallel()
	const pass = "correct-horse-battery"
	reg, digest, raw, blob := basicRegistry(t, pass)
	e, cfgPath := env(t, testutil.AuthsConfig(map[string][2]string{reg.Host: {"alice", pass}}))
	c := mustNew(t, oci.WithEnv(e))

	m, err := c.PullManifest(ctx(t), reg.Ref("private/app", ":v1"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != digest || !bytes.Equal(m.Raw, raw) {
		t.Errorf("manifest %s, want %s", m.Digest, digest)
	}
	dest := filepath.Join(t.TempDir(), "b")
	if _, err := c.PullBlob(ctx(t), reg.Ref("private/app", ""), oci.BlobRequest{Digest: blob, Path: dest}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); string(got) != "private blob content" {
		t.Errorf("blob %q", got)
	}
	res, err := c.CheckAuth(ctx(t), reg.Ref("private/app", ":v1"))
	if err != nil {
		t.Fatal(err)
	}
	want := oci.AuthResult{Registry: reg.Host, Repository: "private/app", Anonymous: false, Source: cfgPath, Digest: digest}
	if *res != want {
		t.Errorf("CheckAuth = %+v, want %+v", *res, want)
	}
}

func TestBasicAuthFailures(t *testing.T) {
	t.Parallel()
	const pass = "correct-horse-battery"
	reg, _, _, blob := basicRegistry(t, pass)
	wrongEnv, _ := env(t, testutil.AuthsConfig(map[string][2]string{reg.Host: {"alice", "wrong-password-123"}}))
	for label, c := range map[string]*oci.Client{
		"wrong password": mustNew(t, oci.WithEnv(wrongEnv)),
		"anonymous":      anonClient(t),
	} {
		t.Run(label, func(t *testing.T) {
			_, err := c.PullManifest(ctx(t), reg.Ref("private/app", ":v1"))
			e := wantCode(t, err, oci.CodeUnauthorized)
			if e.Status != http.StatusUnauthorized {
				t.Errorf("status %d", e.Status)
			}
			if strings.Contains(e.Error(), "wrong-password-123") || strings.Contains(e.Error(), pass) {
				t.Errorf("message leaks a password: %q", e.Error())
			}
			_, err = c.PullBlob(ctx(t), reg.Ref("private/app", ""), oci.BlobRequest{Digest: blob, Path: filepath.Join(t.TempDir(), "b")})
			wantCode(t, err, oci.CodeUnauthorized)
			_, err = c.CheckAuth(ctx(t), reg.Ref("private/app", ":v1"))
			wantCode(t, err, oci.CodeUnauthorized)
		})
	}
	// The message says which login was tried, without the secret.
	_, err := mustNew(t, oci.WithEnv(wrongEnv)).CheckAuth(ctx(t), reg.Ref("private/app", ":v1"))
	if err == nil || !strings.Contains(err.Error(), `"alice"`) {
		t.Errorf("message %v does not name the user", err)
	}
	_, err = anonClient(t).CheckAuth(ctx(t), reg.Ref("private/app", ":v1"))
	if err == nil || !strings.Contains(err.Error(), "anonymously") {
		t.Errorf("message %v does not say the call was anonymous", err)
	}
}

func TestRegistryStatusCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status  int
		regCode string
		code    oci.Code
		retried bool
	}{
		{http.StatusForbidden, "DENIED", oci.CodeDenied, false},
		{http.StatusUnauthorized, "DENIED", oci.CodeDenied, false},
		{http.StatusTooManyRequests, "TOOMANYREQUESTS", oci.CodeTooManyRequests, true},
		{http.StatusInternalServerError, "UNKNOWN", oci.CodeRegistry, true},
		{http.StatusBadGateway, "", oci.CodeRegistry, true},
		{http.StatusBadRequest, "MANIFEST_INVALID", oci.CodeRegistry, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status, tc.regCode), func(t *testing.T) {
			t.Parallel()
			reg := testutil.NewRegistry(t)
			testutil.PushImage(t, reg.Ref("app", ":v1"), randomImage(t))
			var hits atomic.Int64
			reg.Use(testutil.Status(testutil.IsManifest, tc.status, tc.regCode, &hits))
			_, err := anonClient(t).PullManifest(ctx(t), reg.Ref("app", ":v1"))
			e := wantCode(t, err, tc.code)
			if e.Status != tc.status || e.RegistryCode != tc.regCode {
				t.Errorf("status %d registry code %q, want %d %q", e.Status, e.RegistryCode, tc.status, tc.regCode)
			}
			if n := hits.Load(); tc.retried && n < 2 {
				t.Errorf("%d answered once: not retried", tc.status)
			} else if !tc.retried && n != 1 {
				t.Errorf("%d asked %d times, want once", tc.status, n)
			}
		})
	}
}

func TestTransientErrorRetried(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	data := []byte("eventually served")
	digest := testutil.PushBlob(t, reg.Ref("blobs", ""), data)
	var failures atomic.Int64
	reg.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if testutil.IsBlobGet(r) && failures.Add(1) == 1 {
				testutil.RegistryError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "try again")
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	dest := filepath.Join(t.TempDir(), "b")
	if _, err := anonClient(t).PullBlob(ctx(t), reg.Ref("blobs", ""), oci.BlobRequest{Digest: digest, Path: dest}); err != nil {
		t.Fatalf("a single 503 failed the pull: %v", err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Errorf("content %q", got)
	}
}

func TestBearerTokenFlow(t *testing.T) {
	t.Parallel()
	const pass = "token-service-password"
	reg := testutil.NewRegistry(t)
	digest, _ := testutil.PushImage(t, reg.Ref("team/model", ":v1"), randomImage(t))
	data := testutil.RandomBytes(t, 10000)
	blob := testutil.PushBlob(t, reg.Ref("team/model", ""), data)
	ts := testutil.NewTokenServer(t, "bob", pass)
	reg.Use(ts.Bearer("repository:team/model:pull"))

	e, _ := env(t, testutil.AuthsConfig(map[string][2]string{reg.Host: {"bob", pass}}))
	c := mustNew(t, oci.WithEnv(e))
	m, err := c.PullManifest(ctx(t), reg.Ref("team/model", ":v1"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != digest {
		t.Errorf("digest %s, want %s", m.Digest, digest)
	}
	q := ts.Queries()
	if len(q) == 0 || !strings.Contains(q[0], "scope=repository%3Ateam%2Fmodel%3Apull") || !strings.Contains(q[0], "service=test-registry") {
		t.Errorf("token requests %q", q)
	}
	issued := ts.Issued()

	// Another call reuses the cached transport and its token.
	dest := filepath.Join(t.TempDir(), "blob")
	if _, err := mustNew(t, oci.WithEnv(e)).PullBlob(ctx(t), reg.Ref("team/model", ""), oci.BlobRequest{Digest: blob, Path: dest, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Error("blob content differs")
	}
	if ts.Issued() != issued {
		t.Errorf("tokens issued went from %d to %d: the cached token was not reused", issued, ts.Issued())
	}

	// The registry stops honouring the old token: the client gets a new one.
	ts.Revoke()
	if _, err := mustNew(t, oci.WithEnv(e)).PullManifest(ctx(t), reg.Ref("team/model", "@"+digest)); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if ts.Issued() != issued+1 {
		t.Errorf("tokens issued: %d, want %d (one refresh)", ts.Issued(), issued+1)
	}
	ts.Revoke()
	if _, err := mustNew(t, oci.WithEnv(e)).PullBlob(ctx(t), reg.Ref("team/model", ""), oci.BlobRequest{Digest: blob, Path: dest}); err != nil {
		t.Fatalf("blob after revocation: %v", err)
	}
	if res, err := mustNew(t, oci.WithEnv(e)).CheckAuth(ctx(t), reg.Ref("team/model", ":v1")); err != nil || res.Anonymous || res.Digest != digest {
		t.Errorf("CheckAuth = %+v, %v", res, err)
	}
}

func TestBearerTokenDenied(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	testutil.PushImage(t, reg.Ref("team/model", ":v1"), randomImage(t))
	ts := testutil.NewTokenServer(t, "bob", "right-password")
	reg.Use(ts.Bearer("repository:team/model:pull"))
	e, _ := env(t, testutil.AuthsConfig(map[string][2]string{reg.Host: {"bob", "wrong-password-456"}}))
	for label, c := range map[string]*oci.Client{"wrong password": mustNew(t, oci.WithEnv(e)), "anonymous": anonClient(t)} {
		_, err := c.PullManifest(ctx(t), reg.Ref("team/model", ":v1"))
		e := wantCode(t, err, oci.CodeUnauthorized)
		if strings.Contains(e.Error(), "wrong-password-456") {
			t.Errorf("%s: message leaks the password: %q", label, e.Error())
		}
		_, err = c.CheckAuth(ctx(t), reg.Ref("team/model", ":v1"))
		wantCode(t, err, oci.CodeUnauthorized)
	}
	if ts.Issued() != 0 {
		t.Errorf("%d tokens issued to wrong credentials", ts.Issued())
	}
}

func TestCheckAuthAnonymous(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	digest, _ := testutil.PushImage(t, reg.Ref("pub", ":v1"), randomImage(t))
	res, err := anonClient(t).CheckAuth(ctx(t), reg.Ref("pub", ":v1"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Anonymous || res.Source != "" || res.Digest != digest || res.Repository != "pub" || res.Registry != reg.Host {
		t.Errorf("got %+v", res)
	}
	_, err = anonClient(t).CheckAuth(ctx(t), reg.Ref("pub", ":missing"))
	e := wantCode(t, err, oci.CodeNotFound)
	if e.Status != 404 {
		t.Errorf("status %d", e.Status)
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	addr := testutil.FreePort(t)
	_, err := anonClient(t).PullManifest(ctx(t), addr+"/app:v1")
	wantCode(t, err, oci.CodeNetwork)
}

func TestContextErrors(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	testutil.PushImage(t, reg.Ref("app", ":v1"), randomImage(t))
	reg.Use(testutil.HangManifests(t))
	c := anonClient(t)
	tctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.PullManifest(tctx, reg.Ref("app", ":v1"))
	wantCode(t, err, oci.CodeTimeout)
	if time.Since(start) > 5*time.Second {
		t.Errorf("timeout took %v", time.Since(start))
	}

	cctx, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel2)
	_, err = c.PullManifest(cctx, reg.Ref("app", ":v1"))
	wantCode(t, err, oci.CodeCanceled)

	done, cancel3 := context.WithCancel(context.Background())
	cancel3()
	_, err = c.PullBlob(done, reg.Ref("app", ""), oci.BlobRequest{Digest: sha([]byte("x")), Path: filepath.Join(t.TempDir(), "f")})
	wantCode(t, err, oci.CodeCanceled)
}

func tlsRegistry(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, strings.TrimPrefix(srv.URL, "https://")
}

func TestTLSRegistry(t *testing.T) {
	t.Parallel()
	srv, host := tlsRegistry(t)
	img := randomImage(t)
	ref, err := name.ParseReference(host + "/secure:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(srv.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	ca := testutil.CertPEM(t, srv)

	_, err = anonClient(t).PullManifest(ctx(t), host+"/secure:v1")
	wantCode(t, err, oci.CodeTLS)

	for label, c := range map[string]*oci.Client{
		"ca file":       anonClient(t, oci.WithCAFile(ca)),
		"SSL_CERT_FILE": mustNew(t, oci.WithEnv(map[string]string{"HOME": t.TempDir(), "SSL_CERT_FILE": ca})),
		"insecure":      anonClient(t, oci.WithInsecureRegistries(host)),
	} {
		m, err := c.PullManifest(ctx(t), host+"/secure:v1")
		if err != nil {
			t.Errorf("%s: %v", label, err)
			continue
		}
		if m.Digest != digest.String() {
			t.Errorf("%s: digest %s", label, m.Digest)
		}
	}

	_, err = anonClient(t, oci.WithCAFile(filepath.Join(t.TempDir(), "missing.pem"))).PullManifest(ctx(t), host+"/secure:v1")
	wantCode(t, err, oci.CodeInvalidArgument)
}

func TestProxyFromEnvMap(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	digest, _ := testutil.PushImage(t, reg.Ref("app", ":v1"), randomImage(t))
	proxy := testutil.NewProxy(t, reg.Inner())
	_, port, _ := strings.Cut(reg.Host, ":")
	host := "registry.test:" + port
	e, _ := env(t, nil)
	e["HTTP_PROXY"] = proxy.Server.URL
	c := mustNew(t, oci.WithEnv(e), oci.WithInsecureRegistries(host))
	m, err := c.PullManifest(ctx(t), host+"/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != digest {
		t.Errorf("digest %s", m.Digest)
	}
	hosts := proxy.Hosts()
	if len(hosts) == 0 {
		t.Fatal("the proxy saw no request")
	}
	for _, h := range hosts {
		if h != host {
			t.Errorf("proxy asked for %q", h)
		}
	}
	// Without the proxy in the env map, registry.test does not resolve.
	e2, _ := env(t, nil)
	_, err = mustNew(t, oci.WithEnv(e2), oci.WithInsecureRegistries(host)).PullManifest(ctx(t), host+"/app:v1")
	wantCode(t, err, oci.CodeNetwork)
}

func TestUserAgent(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	testutil.PushImage(t, reg.Ref("app", ":v1"), randomImage(t))
	var agents atomic.Value
	reg.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if testutil.IsManifest(r) {
				agents.Store(r.UserAgent())
			}
			next.ServeHTTP(w, r)
		})
	})
	if _, err := anonClient(t, oci.WithUserAgent("custom-agent/9")).PullManifest(ctx(t), reg.Ref("app", ":v1")); err != nil {
		t.Fatal(err)
	}
	if ua, _ := agents.Load().(string); !strings.HasPrefix(ua, "custom-agent/9") {
		t.Errorf("User-Agent %q", ua)
	}
	if _, err := anonClient(t).PullManifest(ctx(t), reg.Ref("app", ":v1")); err != nil {
		t.Fatal(err)
	}
	if ua, _ := agents.Load().(string); !strings.HasPrefix(ua, oci.DefaultUserAgent) {
		t.Errorf("default User-Agent %q", ua)
	}
}

func TestCredentialErrorsClassified(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	testutil.PushImage(t, reg.Ref("app", ":v1"), randomImage(t))
	e := testutil.Env(t, "")
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "config.json"), []byte("{not json"), 0o600)
	e["DOCKER_CONFIG"] = dir
	_, err := mustNew(t, oci.WithEnv(e)).PullManifest(ctx(t), reg.Ref("app", ":v1"))
	wantCode(t, err, oci.CodeCredentials)
}

// storage is a stand-in for the object store a registry redirects blob
// downloads to; it records the Authorization header of each request.
func storage(t *testing.T, data []byte) (url string, auths func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	return "http://localhost:" + port + "/bucket/blob?X-Amz-Signature=abc", func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func redirectBlobs(to string) testutil.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if testutil.IsBlobGet(r) {
				http.Redirect(w, r, to, http.StatusTemporaryRedirect)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestPullBlobRedirectKeepsCredentialsHome(t *testing.T) {
	t.Parallel()
	const pass = "registry-only-password"
	reg := testutil.NewRegistry(t)
	data := testutil.RandomBytes(t, 2048)
	digest := testutil.PushBlob(t, reg.Ref("app", ""), data)
	url, seen := storage(t, data)
	basic := testutil.BasicAuth("alice", pass)
	reg.Use(func(next http.Handler) http.Handler { return basic(redirectBlobs(url)(next)) })
	e, _ := env(t, testutil.AuthsConfig(map[string][2]string{reg.Host: {"alice", pass}}))
	dest := filepath.Join(t.TempDir(), "b")
	if _, err := mustNew(t, oci.WithEnv(e)).PullBlob(ctx(t), reg.Ref("app", ""), oci.BlobRequest{Digest: digest, Path: dest, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Error("content differs")
	}
	s := seen()
	if len(s) == 0 {
		t.Fatal("the storage server was never asked")
	}
	for _, a := range s {
		if a != "" {
			t.Errorf("the storage host received Authorization %q", a)
		}
	}
}

func TestPullBlobRedirectToPlainHTTPRemoteRefused(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	digest := testutil.PushBlob(t, reg.Ref("app", ""), []byte("data"))
	reg.Use(redirectBlobs("http://storage.invalid:1/blob"))
	_, err := anonClient(t).PullBlob(ctx(t), reg.Ref("app", ""), oci.BlobRequest{Digest: digest, Path: filepath.Join(t.TempDir(), "b")})
	e := wantCode(t, err, oci.CodeTLS)
	var pe *netconf.PlainHTTPError
	if !errors.As(e, &pe) || pe.Host != "storage.invalid:1" {
		t.Errorf("error %v does not carry the refused host", e)
	}
}

func TestConcurrentPullsToOneDestination(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	data := testutil.RandomBytes(t, 256<<10)
	digest := testutil.PushBlob(t, reg.Ref("app", ""), data)
	dir := t.TempDir()
	dest := filepath.Join(dir, "blob")
	c := anonClient(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.PullBlob(ctx(t), reg.Ref("app", ""), oci.BlobRequest{Digest: digest, Path: dest, Size: int64(len(data))})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Error("content differs after concurrent pulls")
	}
	if ents := dirEntries(t, dir); len(ents) != 1 {
		t.Errorf("directory holds %q", ents)
	}
}

func TestFailedPullCreatesNoDirectories(t *testing.T) {
	t.Parallel()
	reg := testutil.NewRegistry(t)
	data := []byte("some content")
	digest := testutil.PushBlob(t, reg.Ref("app", ""), data)
	root := t.TempDir()
	c := anonClient(t)
	// The registry has no such blob.
	_, err := c.PullBlob(ctx(t), reg.Ref("app", ""), oci.BlobRequest{Digest: sha([]byte("other")), Path: filepath.Join(root, "a", "b", "blob")})
	wantCode(t, err, oci.CodeNotFound)
	// The registry announces the wrong length.
	_, err = c.PullBlob(ctx(t), reg.Ref("app", ""), oci.BlobRequest{Digest: digest, Path: filepath.Join(root, "c", "blob"), Size: 999})
	wantCode(t, err, oci.CodeDigestMismatch)
	// Credentials are refused.
	reg.Use(testutil.BasicAuth("u", "p"))
	_, err = c.PullBlob(ctx(t), reg.Ref("app", ""), oci.BlobRequest{Digest: digest, Path: filepath.Join(root, "d", "blob")})
	wantCode(t, err, oci.CodeUnauthorized)
	if ents := dirEntries(t, root); len(ents) != 0 {
		t.Errorf("failed pulls created %q", ents)
	}
}
