package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// front stands before a registry, counts the blob GETs that reach it with
// ns=, and flips a byte of each blob answer while corrupt is set.
type front struct {
	*httptest.Server
	blobGets atomic.Int64
	corrupt  atomic.Bool
}

func newFront(t *testing.T, target string) *front {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &front{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if !f.corrupt.Load() || resp.Request.Method != http.MethodGet || !strings.Contains(resp.Request.URL.Path, "/blobs/") {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if len(body) > 0 {
			body[len(body)/2] ^= 0xff
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && r.URL.Query().Get("ns") != "" {
			f.blobGets.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// getBlob reads a blob of a through the registry at s; an error rather
// than a test failure, for goroutines.
func getBlob(s *Server, a artifact) error {
	repo := a.ref.Context().RepositoryStr()
	d, _, _ := v1.SHA256(bytes.NewReader(a.payload))
	resp, err := http.Get(s.URL() + "/v2/" + repo + "/blobs/" + d.String())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(data, a.payload) {
		return fmt.Errorf("status %d, %d bytes (want %d)", resp.StatusCode, len(data), len(a.payload))
	}
	return nil
}

func TestProxyFetchesThroughItsMirrors(t *testing.T) {
	upstream := start(t, Config{Root: t.TempDir()})
	a := pushArtifact(t, upstream, "models/m:v1")
	mirror := start(t, Config{Root: t.TempDir(), ProxyURL: upstream.URL()})
	f := newFront(t, mirror.URL())
	proxy := start(t, Config{
		Root: t.TempDir(), ProxyURL: upstream.URL(), Env: map[string]string{},
		Mirrors: map[string][]string{upstream.Addr(): {f.URL}},
	})
	// Clients at once: each gets the blob whole, and it came through the mirror.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- getBlob(proxy, a) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.blobGets.Load() == 0 {
		t.Fatal("no blob request reached the mirror")
	}
	checkArtifact(t, proxy, a)
}

func TestProxyRefetchesWhatAMirrorCorrupts(t *testing.T) {
	upstream := start(t, Config{Root: t.TempDir()})
	a := pushArtifact(t, upstream, "models/m:v1")
	mirror := start(t, Config{Root: t.TempDir(), ProxyURL: upstream.URL()})
	f := newFront(t, mirror.URL())
	f.corrupt.Store(true)
	proxy := start(t, Config{
		Root: t.TempDir(), ProxyURL: upstream.URL(), Env: map[string]string{},
		Mirrors: map[string][]string{upstream.Addr(): {f.URL}},
	})
	// The first answer breaks before its end; the mirror is skipped and the
	// client's retry gets the blob from the upstream.
	if err := getBlob(proxy, a); err == nil {
		t.Fatal("a corrupted blob was served whole")
	}
	if err := getBlob(proxy, a); err != nil {
		t.Fatal(err)
	}
	if n := f.blobGets.Load(); n != 1 {
		t.Fatalf("the mirror was asked %d times for the blob, want once", n)
	}
	d, _, _ := v1.SHA256(bytes.NewReader(a.payload))
	waitForBlob(t, proxy.Root(), d)
	stored, err := os.ReadFile(filepath.Join(proxy.Root(), "docker", "registry", "v2", "blobs", "sha256", d.Hex[:2], d.Hex, "data"))
	if err != nil || !bytes.Equal(stored, a.payload) {
		t.Fatalf("the cache stored %d bytes (%v), not the blob", len(stored), err)
	}
}
